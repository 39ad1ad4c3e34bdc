"""The stopping rule in simulation on the shared labelled datasets, as the web runs it.

Run from the project root (one core; the model orders take most of the time, so cache them):

    nice -n 10 .venv/bin/python bench/stopping.py [--seeds 1,2,3] [--draws 20] [--shuffles 20] [--every 10]
        [--datasets Chou_2004,...] [--orders-cache DIR]

For each dataset and seed it screens the records in the order screening/ranking.py gives (priors:
one included and one excluded record picked by seed as ../shared/bench/screening.py does; the
model retrains after every ``--every`` labels), and applies screening/stopping.py at recall
target 95% and confidence 95%, checking after every record, in these strategies:

  ranked       buscar's test (bias 1) on the model's order. Guarantee rests on the ranking being
               no worse than random.
  web          what the dashboard does: the ranked test while ranked screening goes on; when it
               suggests a random sample (screening/stopping.py ``ranked_phase_stalled``: 5% of the
               records, at least 50, in a row without a relevant one), the sample starts over
               everything left, the queue hands it out in a permutation drawn by
               screening/stopping.py ``draw_permutation`` (as screening/sampling.py does), and from then on the sample test decides.
               A stop before the switch rests on the ranking; one after it does not.
  sample-only  the same switch, but only the sample test may stop: no assumption about the model.
  oracle       the sample started right after the last relevant record of the model's order (not
               knowable in practice): the most a sample after this ranking can leave.
  shuffled     buscar on a random order: its assumption holds with equality there, which shows
               whether checking after every record keeps the nominal 95%.

Each sample strategy draws ``--draws`` permutations per seed (they cost no model run); the shuffled
check draws ``--shuffles`` random orders per seed. Then the
ceilings: for every dataset, the most any test whose guarantee does not rest on the ranking can
leave unscreened (see bench/README.md for the argument): with r relevant records, m =
floor(r / 0.95) + 1 - r of them must be ruled out among the L unscreened of the R not known to be
relevant, and no sampling design can do that unless C(L, m) / C(R, m) <= 5%; with a perfect
ranking R = N - r.

It prints, per dataset and overall: the share of runs reaching 95% recall when the rule said
stop, the mean share of records left unscreened, and the mean recall at the stop. Last, the cost
of one ``recommend`` (what the dashboard calls) on a synthetic 100,000-record stage.

Measured: see bench/README.md ("Stopping rule").
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
STRATEGIES = ["ranked", "web", "sample-only", "oracle", "shuffled"]


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


def cached_order(name, texts, labels, seed, every, cache, features):
    path = cache / f"{name}-{seed}-{every}.npy" if cache else None
    if path and path.exists():
        return np.load(path), features
    features = features or ranking.build_features(texts)
    order = np.array(ranked_order(features, labels, seed, every))
    if path:
        np.save(path, order)
    return order, features


def switch_point(seq, n_total):
    """Where the dashboard first suggests a random sample (None: never)."""
    for i in range(1, len(seq) + 1):
        if stopping.ranked_phase_stalled(seq[:i], n_total):
            return i
    return None


def switch_point_fast(seq, n_total):
    """``switch_point`` in one pass (the same rule: a run of ``max(50, 5%)`` irrelevant records)."""
    window = max(stopping.STALL_FLOOR, int(stopping.STALL_SHARE * n_total))
    since = 0
    for i, v in enumerate(seq, 1):
        since = 0 if v else since + 1
        if since >= window:
            return i
    return None


def sample_phase(order, labels, switch, seed, draw):
    """The screening order with everything after ``switch`` in the queue's sample permutation."""
    rest = stopping.draw_permutation(order[switch:].tolist(), f"{seed:016x}{draw:016x}")
    return labels[np.concatenate((order[:switch], np.array(rest, dtype=np.int64)))]


def outcome(seq, stop_at, total_relevant):
    stop_at = len(seq) if stop_at is None else stop_at
    recall = seq[:stop_at].sum() / total_relevant
    return {"left": 1 - stop_at / len(seq), "recall": recall, "reached": recall >= TARGET - 1e-12}


def run(name, seeds, every, draws, shuffles, cache):
    texts, labels = load(name)
    n, total = len(labels), int(labels.sum())
    results = {s: [] for s in STRATEGIES}
    features = None
    for seed in seeds:
        order, features = cached_order(name, texts, labels, seed, every, cache, features)
        seq = labels[order]
        ranked_stop = stopping.simulate_stop_at(seq, n)
        results["ranked"].append(outcome(seq, ranked_stop, total))
        switch = switch_point_fast(seq, n)
        assert switch is None or switch == switch_point(seq[: switch + 1], n)
        last = int(np.flatnonzero(seq).max()) + 1
        for draw in range(draws):
            if switch is None or switch >= n:
                results["web"].append(outcome(seq, ranked_stop, total))
                results["sample-only"].append(outcome(seq, None, total))
            else:
                mixed = sample_phase(order, labels, switch, seed, draw)
                only = stopping.simulate_stop_at(mixed, n, sampled_from=switch, ranked_checks=False)
                results["sample-only"].append(outcome(mixed, only, total))
                # The ranked checks before the switch see the same records in every draw.
                web = ranked_stop if ranked_stop is not None and ranked_stop <= switch else only
                results["web"].append(outcome(mixed, web, total))
            if last < n:
                mixed = sample_phase(order, labels, last, seed, draw)
                only = stopping.simulate_stop_at(mixed, n, sampled_from=last, ranked_checks=False)
                results["oracle"].append(outcome(mixed, only, total))
            else:
                results["oracle"].append(outcome(seq, None, total))
        for repeat in range(shuffles):  # buscar checked after every record: slow on the larger sets
            shuffled = np.random.default_rng([seed, repeat]).permutation(labels)
            results["shuffled"].append(outcome(shuffled, stopping.simulate_stop_at(shuffled, n), total))
    return results


def ceiling(name):
    """(N, r, m, the most a test free of the ranking can leave with a perfect ranking, as a share)."""
    _, labels = load(name)
    n, r = len(labels), int(labels.sum())
    m = stopping.relevant_needed(r, TARGET) - r
    return n, r, m, stopping.most_left_unscreened(r, n - r, recall_target=TARGET, confidence=CONFIDENCE) / n


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
    parser.add_argument("--draws", type=int, default=20, help="sample permutations per seed")
    parser.add_argument("--shuffles", type=int, default=20, help="random orders per seed for the shuffled check")
    parser.add_argument("--every", type=int, default=10, help="retrain after this many labels")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--orders-cache", default="", help="a folder to keep the model orders in between runs")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    cache = Path(args.orders_cache) if args.orders_cache else None
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    everything = {s: [] for s in STRATEGIES}
    for name in args.datasets.split(","):
        started = time.perf_counter()
        results = run(name, seeds, args.every, args.draws, args.shuffles, cache)
        print(f"{name}  ({time.perf_counter() - started:.0f} s)")
        for strategy, runs in results.items():
            print(f"  {strategy:11} {summary(runs)}  ({len(runs)} runs)")
            everything[strategy].extend(runs)
        sys.stdout.flush()
    print(
        f"all datasets, seeds {args.seeds}, {args.draws} draws each, retrain every {args.every}, "
        f"target {TARGET:.0%} at {CONFIDENCE:.0%}:"
    )
    for strategy, runs in everything.items():
        print(f"  {strategy:11} {summary(runs)}  ({len(runs)} runs)")
    print("ceiling of any test free of the ranking, with a perfect ranking (share of records left unscreened):")
    shares = []
    for name in args.datasets.split(","):
        n, r, m, share = ceiling(name)
        shares.append(share)
        print(f"  {name:20} N={n:5}  r={r:3}  m={m}  0.05^(1/m)={0.05 ** (1 / m):.3f}  ceiling {share:6.1%}")
    print(f"  mean ceiling {np.mean(shares):.1%}")
    print("cost:")
    cost()
    print(
        f"command: .venv/bin/python bench/stopping.py --seeds {args.seeds} --draws {args.draws} "
        f"--shuffles {args.shuffles} --every {args.every} "
        f"--datasets {args.datasets}"
    )


if __name__ == "__main__":
    main()
