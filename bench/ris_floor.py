"""Where the floor of a RIS import is: rispy's bare parse, the importer's read alone, the whole import.

Builds the RIS file of bench/ingest.py (bench/import_ris.py's generator, ~55% duplicates) and
times, each in a fresh process, in CPU and wall seconds:

- bare: rispy's own parser over the file (the issue's baseline for RIS);
- rispy dicts: the importer's framing and rispy's line parsing alone (``ris._entries``), the part
  of the read no field mapping can avoid;
- read: ``review.importers.read_articles`` (framing, rispy, field mapping, identifier searches,
  field caps), no database;
- import: ``review.importing.import_file`` into a fresh review of a migrated database (the read,
  dedup, staged chunked writes, landing).

It prints each with its ratio to the bare parse, and what the import adds to the read: if the
read alone already takes most of the 2x budget, the target cannot be met by the reader. Run from
the project root (a throw-away SQLite file unless --database-url names a PostgreSQL database):

    .venv/bin/python bench/ris_floor.py [--records 20000] [--database-url URL]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STAGES = ["bare", "dicts", "read", "import"]
LABELS = {
    "bare": "bare rispy parse",
    "dicts": "framing + rispy dicts",
    "read": "importer's read, no database",
    "import": "whole import with dedup",
}


def _count(path, stage):
    if stage == "bare":
        from bench.ingest import bare_read

        return bare_read("ris", path)
    from review.importers import _lines, read_articles, ris, sniff

    with open(path, "rb") as stream:
        if stage == "dicts":
            parser = ris.RisParser(list_tags=[*ris.LIST_TYPE_TAGS, "L1", "L2", "L4"])
            return sum(1 for _ in ris._entries(_lines(stream, "utf-8", path), path, parser))
        return sum(1 for _ in read_articles(stream, sniff(stream, path), path, warn=lambda message: None))


def child(stage, path, slug):
    if stage == "import":
        from bench.ingest import imported

        count, _, seconds, cpu, parser_cpu, *_ = imported(path, slug)
        cpu += parser_cpu  # the parser process's CPU counts too (review.importers.process)
    else:
        started, cpu = time.perf_counter(), time.process_time()
        count = _count(path, stage)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "cpu": cpu, "records": count, "peak_mb": peak}))


def run_child(stage, path, url, slug):
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "sieve.settings",
        "SIEVE_MAX_UPLOAD_MB": "100000",
    }
    args = [sys.executable, __file__, "--child", stage, "--path", str(path), "--slug", slug]
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{stage} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--database-url", help="default: a throw-away SQLite file")
    parser.add_argument("--child", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--slug", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.path, args.slug)

    from bench.ingest import make_ris

    with tempfile.TemporaryDirectory(prefix="sieve-ris-floor-") as folder:
        url = args.database_url or f"sqlite:///{folder}/bench.sqlite3"
        path = Path(folder, "big.ris")
        make_ris(path, args.records)
        database = "PostgreSQL" if url.startswith("postgres") else "SQLite"
        print(
            f"{args.records:,} RIS records, {path.stat().st_size / 1e6:,.0f} MB, {database}, python {sys.version.split()[0]}"
        )
        runs = {}
        for stage in STAGES:
            runs[stage] = run = run_child(stage, path, url, f"ris-floor-{int(time.time())}")
            assert run["records"] == args.records, (stage, run)
            bare = runs["bare"]
            print(
                f"{LABELS[stage]:30s} {run['cpu']:7.2f} s CPU {run['seconds']:7.2f} s wall   "
                f"{run['cpu'] / bare['cpu']:5.2f}x CPU {run['seconds'] / bare['seconds']:5.2f}x wall   "
                f"peak RSS {run['peak_mb']:.0f} MB"
            )
        read, done = runs["read"], runs["import"]
        print(
            f"the import adds {done['cpu'] - read['cpu']:.2f} s CPU to the read "
            f"({(done['cpu'] - read['cpu']) / runs['bare']['cpu']:.2f}x the bare parse): dedup, rows, writes, landing"
        )
    load = os.getloadavg()
    print(f"load: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min)")
    print(
        f"command: .venv/bin/python bench/ris_floor.py --records {args.records}"
        + (" --database-url URL" if args.database_url else "")
    )


if __name__ == "__main__":
    main()
