"""Time the first retrain-and-rank after an import (screening.retrain.retrain, what the worker and
`manage.py rank` run) on reviews of 10,000 and 100,000 records, built from the texts of
../shared/datasets repeated and shuffled, with 1% of the records labelled (a fifth of those relevant).

    DATABASE_URL=postgres://127.0.0.1:5432/sieve_bench .venv/bin/python bench/rank_review.py --sizes 10000 100000 [--dual]

Prints, per size: the first retrain after the import without the import-time build (it builds the
features itself), then with it (screening.tasks.prepare_ranking, what review.signals.records_added
enqueues): a retrain that finds the features in memory (the worker that built them) and one that
loads them from the disk cache (a fresh `manage.py rank`); and what the background task took. Uses a throw-away database (SQLite in a temporary directory unless
DATABASE_URL is set; then the database is created by the test runner's machinery and dropped).
"""

import argparse
import csv
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATASETS = ROOT.parent / "shared" / "datasets"


def texts():
    csv.field_size_limit(10**8)
    rows = []
    for path in sorted(DATASETS.glob("*.csv")):
        with path.open(encoding="utf-8") as fh:
            rows += [(r["title"] or "", r["abstract"] or "") for r in csv.DictReader(fh)]
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--dual",
        action="store_true",
        help="dual screening, a tenth of the labelled records still waiting for their second vote "
        "(their scores then come from a second, blind model: two fits per retrain)",
    )
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="sieve-rank-bench-")
    os.environ.setdefault("SIEVE_DATA_DIR", tmp)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sieve.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import get_runner, setup_test_environment  # noqa: F401

    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run(args.sizes, texts(), dual=args.dual)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(
        f"command: {' '.join([Path(sys.executable).name, *sys.argv])}  (database: {settings.DATABASES['default']['ENGINE']})"
    )


def run(sizes, corpus, *, dual=False):
    from django.contrib.auth import get_user_model

    from review.models import Record, Review, Search, Stage
    from screening import retrain, tasks
    from screening.models import Decision

    def forget_features():
        retrain._FEATURES.clear()
        for path in retrain._cache_dir().glob("*.npz"):
            path.unlink()

    bob = get_user_model().objects.create_user("bob", "bob@example.org", "x")
    for size in sizes:
        rng = random.Random(size)
        review = Review.objects.create(
            slug=f"bench-{size}",
            title=f"Bench {size}",
            question="kratom for PTSD",
            title_abstract_reviewers=2 if dual else 1,
        )
        search = Search.objects.create(review=review, kind="file", source="bench")
        Record.objects.bulk_create(
            (
                Record(review=review, search=search, source="bench", title=t, abstract=a)
                for t, a in (corpus[rng.randrange(len(corpus))] for _ in range(size))
            ),
            batch_size=5000,
        )
        pks = list(Record.objects.filter(review=review).values_list("pk", flat=True))
        labelled = rng.sample(pks, size // 100)
        Decision.objects.bulk_create(
            Decision(
                record_id=pk, reviewer=bob, stage=Stage.TITLE_ABSTRACT, decision="include" if i % 5 == 0 else "exclude"
            )
            for i, pk in enumerate(labelled)
        )
        outcomes = {"include": [], "exclude": []}
        for i, pk in enumerate(labelled):
            if dual and i % 10 == 3:
                continue  # one vote so far: pending, waiting for the second reviewer
            outcomes["include" if i % 5 == 0 else "exclude"].append(pk)
        for outcome, ids in outcomes.items():
            Record.objects.filter(pk__in=ids).update(ta_outcome=outcome)
        # Without the import-time build: the first retrain after the import builds the features.
        forget_features()
        t0 = time.perf_counter()
        retrain.retrain_now(review, Stage.TITLE_ABSTRACT)
        cold = time.perf_counter() - t0
        # With it: what records_added enqueues after the import commits (build, cache, retrain).
        forget_features()
        t0 = time.perf_counter()
        built = tasks.prepare_ranking.call(review.pk)["built"][Stage.TITLE_ABSTRACT]
        task = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_ = retrain.retrain_now(review, Stage.TITLE_ABSTRACT)
        warm = time.perf_counter() - t0
        retrain._FEATURES.clear()
        t0 = time.perf_counter()
        retrain.retrain_now(review, Stage.TITLE_ABSTRACT)
        from_disk = time.perf_counter() - t0
        print(
            f"{size:>7} records: first retrain after the import {cold:.2f} s without the import-time build; "
            f"with it {warm:.2f} s (features in the worker's memory), {from_disk:.2f} s (from the disk cache, "
            f"as in `manage.py rank`). The import-time task took {task:.2f} s in the background: reading "
            f"the texts {built['texts']:.2f} s, TF-IDF {built['build']:.2f} s, then its own retrain. "
            f"{run_.scored} records scored, {run_.relevant_labels}+{run_.irrelevant_labels} labels"
            + (" (dual screening: two fits)" if dual else "")
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
