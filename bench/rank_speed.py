"""Cost of one retrain-and-rank (``ranking.score`` + ``ranking.next_rows``) on large synthetic reviews.

    .venv/bin/python bench/rank_speed.py                        # 10,000 and 100,000 records, 20% screened
    .venv/bin/python bench/rank_speed.py --records 10000 --screened 0.5

The corpora are built from the shared datasets' titles and abstracts (../shared/datasets): each
synthetic record is one real record's text plus words drawn from another, so the vocabulary and
lengths are realistic and no two records are the same. A fraction of records is labelled (5% of
them relevant, at random), as in the middle of a review. Feature building is timed separately: it
happens once at import, not at every retrain. Targets (issue 7): under 1 s at 10,000 records and
under 15 s at 100,000, on 2 cores.
"""

import argparse
import csv
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from screening import ranking  # noqa: E402


def pool_texts():
    csv.field_size_limit(10**9)
    texts = []
    for path in sorted((ROOT.parent / "shared" / "datasets").glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            texts += [ranking.document_text(r["title"], r["abstract"]) for r in csv.DictReader(handle)]
    return texts


def corpus(n, pool, rng):
    words = [text.split() for text in pool]
    return [
        " ".join(pool[i % len(pool)].split() + rng.sample(w, min(30, len(w))))
        for i, w in ((i, words[rng.randrange(len(words))]) for i in range(n))
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", nargs="+", type=int, default=[10_000, 100_000])
    parser.add_argument("--screened", type=float, default=0.2, help="fraction of records already labelled")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}  (cpus: {os.cpu_count()})")
    rng = random.Random(1)
    pool = pool_texts()
    for n in args.records:
        texts = corpus(n, pool, rng)
        started = time.perf_counter()
        features = ranking.build_features(texts, criteria="Question: which trials of this treatment report outcomes?")
        built = time.perf_counter() - started
        labelled = rng.sample(range(n), int(n * args.screened))
        labels = {row: int(rng.random() < 0.05) for row in labelled}
        labels[labelled[0]], labels[labelled[1]] = 1, 0
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            scores = ranking.score(features, labels, seed=1)
            ranking.next_rows(scores, labels.keys(), k=10)
            times.append(time.perf_counter() - started)
        print(
            f"{n:>7} records, {len(labels)} screened: retrain-and-rank {min(times):.2f} s "
            f"(best of {args.repeat}; features built once in {built:.1f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
