"""The stopping rule in simulation on the shared labelled datasets.

Run from the project root (one core, a few minutes for seeds 1-3):

    nice -n 10 .venv/bin/python bench/stopping.py [--seeds 1,2,3] [--every 10] [--datasets Chou_2004,...]

For each dataset and seed it screens the records in the order screening/ranking.py gives (priors:
one included and one excluded record picked by seed as ../shared/bench/screening.py does; the
model retrains after every ``--every`` labels), then applies screening/stopping.py to that order
at recall target 95% and confidence 95%, checking after every record, in these strategies:

  ranked      buscar's test (bias 1) on the ranked order.
  sample      screen ranked until 5% of the records (at least 50) have gone by without a relevant
              one, then draw the rest uniformly at random and test on that sample alone (no
              assumption about the model).
  ideal       buscar's test on the ideal order (every relevant record first): the most any test of
              this kind can leave unscreened on the dataset, whatever the model.
  shuffled    buscar's test on a random order: its assumption (a ranking no better than random)
              holds with equality, so this shows whether checking after every record keeps the
              nominal 95%.

It prints, per dataset and overall: the share of runs reaching 95% recall when the rule said stop,
the mean share of records left unscreened, and the mean recall at the stop. Last, the cost of one
``recommend`` (what the dashboard calls) on a synthetic 100,000-record stage with 800 relevant.

Measured (baseline ELAS-u4 ranking, seeds 1-3; seeds 1-5 gave the same to 0.6 points):
  ranked    100% of 18 runs reached 95% recall, 17.3% of records left unscreened on average
  sample    100% of 18 runs, 14.2% left (no assumption about the model)
  ideal     27.8% left: the ceiling of this test on these six datasets, whatever the model
  shuffled  91.9% of 360 runs reached 95% (Jeyaraman_2020: 81.7%)
"""

import argparse
import csv
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from screening import ranking, stopping  # noqa: E402
from tests.shared import shared  # noqa: E402

DATASETS = ["van_de_Schoot_2018", "Chou_2004", "Jeyaraman_2020", "Oud_2018", "Nelson_2002", "Donners_2021"]
TARGET = 0.95
CONFIDENCE = 0.95


def load(name):
    csv.field_size_limit(10**9)
    with open(shared("datasets", f"{name}.csv"), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    texts = [ranking.document_text(r["title"], r["abstract"]) for r in rows]
    labels = np.array([1 if r["label_included"] == "1" else 0 for r in rows])
    return texts, labels


def priors(labels, seed):
    """The same prior pair as ../shared/bench/screening.py picks for this seed."""
    rng = random.Random(seed)
    inc = [i for i, v in enumerate(labels) if v == 1]
    exc = [i for i, v in enumerate(labels) if v != 1]
    return rng.choice(inc), rng.choice(exc)


def ranked_order(features, labels, seed, every):
    """Rows in the order the model would hand them out, retraining after every ``every`` labels."""
    order = list(priors(labels, seed))
    known = {r: int(labels[r]) for r in order}
    n = len(labels)
    while len(order) < n:
        scores = ranking.score(features, known, seed=seed)
        for r in ranking.next_rows(scores, order, k=every):
            order.append(r)
            known[r] = int(labels[r])
    return order


def stall_point(seq, n_total):
    """Where the ranked phase stalls: 5% of the records (at least 50) without a relevant one."""
    window = max(50, int(0.05 * n_total))
    since = 0
    for i, v in enumerate(seq, 1):
        since = 0 if v else since + 1
        if since >= window:
            return i
    return len(seq)


def outcome(seq, stop_at, total_relevant):
    stop_at = len(seq) if stop_at is None else stop_at
    recall = seq[:stop_at].sum() / total_relevant
    return {"left": 1 - stop_at / len(seq), "recall": recall, "reached": recall >= TARGET}


def run(name, seeds, every):
    texts, labels = load(name)
    features = ranking.build_features(texts)
    n, total = len(labels), int(labels.sum())
    results = {"ranked": [], "sample": [], "ideal": [], "shuffled": []}
    for seed in seeds:
        seq = labels[ranked_order(features, labels, seed, every)]
        results["ranked"].append(outcome(seq, stopping.simulate_stop_at(seq, n), total))

        switch = stall_point(seq, n)
        rng = np.random.default_rng(seed)
        mixed = np.concatenate((seq[:switch], rng.permutation(seq[switch:])))
        stop = stopping.simulate_stop_at(mixed, n, sampled_from=switch)
        results["sample"].append(outcome(mixed, stop, total))

        ideal = np.sort(labels)[::-1]
        results["ideal"].append(outcome(ideal, stopping.simulate_stop_at(ideal, n), total))

        for repeat in range(20):  # cheap: no model, so more draws per seed
            shuffled = np.random.default_rng([seed, repeat]).permutation(labels)
            results["shuffled"].append(outcome(shuffled, stopping.simulate_stop_at(shuffled, n), total))
    return results


def summary(runs):
    return (
        f"{np.mean([r['reached'] for r in runs]):6.1%} reached  "
        f"{np.mean([r['left'] for r in runs]):6.1%} left  "
        f"recall {np.mean([r['recall'] for r in runs]):.3f} (min {min(r['recall'] for r in runs):.3f})"
    )


def cost():
    """Seconds for one ``recommend`` on 100,000 records, at three points of a synthetic screening."""
    rng = np.random.default_rng(0)
    n, relevant = 100_000, 800
    weights = np.ones(n)
    weights[:relevant] = 20  # a model that finds relevant records 20 times as readily
    seq = (rng.choice(n, n, replace=False, p=weights / weights.sum()) < relevant).astype(int)
    for screened in (5_000, 40_000, 90_000):
        for sampled_from in (None, screened // 2):
            started = time.perf_counter()
            advice = stopping.recommend(seq[:screened], n, sampled_from=sampled_from)
            print(
                f"  recommend, {screened:,} of {n:,} screened, {advice.method:13}: "
                f"{time.perf_counter() - started:.3f} s (stop={advice.stop}, remaining {advice.estimated_remaining} "
                f"in {advice.interval})"
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--every", type=int, default=10, help="retrain after this many labels")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    everything = {"ranked": [], "sample": [], "ideal": [], "shuffled": []}
    for name in args.datasets.split(","):
        started = time.perf_counter()
        results = run(name, seeds, args.every)
        print(f"{name}  ({time.perf_counter() - started:.0f} s)")
        for strategy, runs in results.items():
            print(f"  {strategy:8} {summary(runs)}")
            everything[strategy].extend(runs)
        sys.stdout.flush()
    print(f"all datasets, seeds {args.seeds}, retrain every {args.every}, target {TARGET:.0%} at {CONFIDENCE:.0%}:")
    for strategy, runs in everything.items():
        print(f"  {strategy:8} {summary(runs)}  ({len(runs)} runs)")
    print("cost:")
    cost()
    print(
        f"command: .venv/bin/python bench/stopping.py --seeds {args.seeds} --every {args.every} --datasets {args.datasets}"
    )


if __name__ == "__main__":
    main()
