"""Sieve's `manage.py simulate` against ASReview LAB's default model (ELAS u4) on the shared datasets.

    .venv/bin/python bench/run_screening.py                 # every dataset, seeds 1-3, via ../shared/bench/screening.py
    .venv/bin/python bench/run_screening.py --in-process    # same priors and metrics, without a subprocess per run
    .venv/bin/python bench/run_screening.py --datasets Chou_2004 Oud_2018 --seeds 1

The default runs `../shared/bench/screening.py project DATASET SEEDS` (which calls `manage.py
simulate` with the review's criteria from bench/criteria/DATASET.txt) and compares each run with
ASReview's own runs in ../shared/bench/asreview_elas_u4.jsonl. `--in-process` imports the shared
script's `priors` and `metrics` and calls simulate's `replay` directly: the same order, faster to
iterate on. Prints per-dataset loss (ratio to ELAS u4), WSS@95 and recall@10%, then the means.
"""

import argparse
import csv
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DATASETS = ["Chou_2004", "Donners_2021", "Jeyaraman_2020", "Nelson_2002", "Oud_2018", "van_de_Schoot_2018"]


def shared_screening():
    spec = importlib.util.spec_from_file_location("shared_screening", SHARED / "bench" / "screening.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def criteria_file(dataset):
    path = ROOT / "bench" / "criteria" / f"{dataset}.txt"
    return path if path.exists() else None


def run_subprocess(dataset, seeds):
    """One JSON line per seed from the shared benchmark, TOOL=project, with the review's criteria."""
    # The shared script calls `manage.py simulate DATASET --prior I E --seed S`; the criteria reach
    # simulate through SIEVE_SIMULATE_CRITERIA_FILE (the shared script passes no extra arguments).
    env = dict(os.environ, PROJECT_PY=sys.executable)
    path = criteria_file(dataset)
    if path:
        env["SIEVE_SIMULATE_CRITERIA_FILE"] = str(path)
    command = [sys.executable, str(SHARED / "bench" / "screening.py"), "project"]
    command += [str(SHARED / "datasets" / f"{dataset}.csv"), ",".join(map(str, seeds))]
    out = subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def run_in_process(dataset, seeds):
    import django

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sieve.settings")
    django.setup()
    from screening import ranking
    from screening.management.commands.simulate import dataset_texts, read_dataset, replay

    shared = shared_screening()
    csv.field_size_limit(10**9)
    rows = read_dataset(str(SHARED / "datasets" / f"{dataset}.csv"))
    path = criteria_file(dataset)
    criteria = path.read_text(encoding="utf-8") if path else ""
    gold = [1 if row["label_included"] == "1" else 0 for row in rows]
    features = ranking.build_features(dataset_texts(rows), criteria=criteria)
    results = []
    for seed in seeds:
        started = time.perf_counter()
        _, labels = replay(features, gold.__getitem__, list(shared.priors(rows, seed)), seed=seed)
        m = shared.metrics(labels, len(rows))
        m.update(dataset=dataset, seed=seed, seconds=round(time.perf_counter() - started, 1))
        results.append(m)
    return results


def baseline():
    runs = {}
    for line in (SHARED / "bench" / "asreview_elas_u4.jsonl").read_text().splitlines():
        run = json.loads(line)
        runs[(run["dataset"], run["seed"])] = run
    return runs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--in-process", action="store_true")
    args = parser.parse_args()
    elas = baseline()
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"{'dataset':20} {'loss':>7} {'ELAS':>7} {'ratio':>6} {'WSS95':>6} {'ELAS':>6} {'rec10':>6} {'ELAS':>6} {'s/run':>6}"
    )
    table = []
    for dataset in args.datasets:
        runs = (run_in_process if args.in_process else run_subprocess)(dataset, args.seeds)
        ours = {k: statistics.mean(r[k] for r in runs) for k in ("loss", "wss95", "recall10", "seconds")}
        theirs = {k: statistics.mean(elas[(dataset, s)][k] for s in args.seeds) for k in ("loss", "wss95", "recall10")}
        ratio = ours["loss"] / theirs["loss"]
        table.append((dataset, ours, theirs, ratio))
        print(
            f"{dataset:20} {ours['loss']:7.4f} {theirs['loss']:7.4f} {ratio:6.3f} {ours['wss95']:6.3f} "
            f"{theirs['wss95']:6.3f} {ours['recall10']:6.3f} {theirs['recall10']:6.3f} {ours['seconds']:6.1f}",
            flush=True,
        )
    mean_loss = statistics.mean(t[1]["loss"] for t in table)
    mean_elas = statistics.mean(t[2]["loss"] for t in table)
    print(f"mean loss {mean_loss:.4f} vs ELAS u4 {mean_elas:.4f}: ratio {mean_loss / mean_elas:.3f}")
    print(f"mean of per-dataset loss ratios {statistics.mean(t[3] for t in table):.3f}")
    wss, wss_elas = statistics.mean(t[1]["wss95"] for t in table), statistics.mean(t[2]["wss95"] for t in table)
    print(f"mean WSS@95 {wss:.4f} vs ELAS u4 {wss_elas:.4f}")
    worst = max(table, key=lambda t: t[3])
    print(f"worst dataset {worst[0]}: loss ratio {worst[3]:.3f}")


if __name__ == "__main__":
    main()
