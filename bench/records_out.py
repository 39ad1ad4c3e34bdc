"""How long exporting a whole review takes (RIS, CSV, XLSX, with and without decisions), how many
queries it makes and how much memory it holds; and the bulk actions over the whole filter.

Run from the project root:

    .venv/bin/python bench/records_out.py [--records 100000] [--exclude 10000]

It builds the throw-away SQLite review of bench/records_table.py (real titles and abstracts from
../shared/datasets, a tenth of the records decided, every 20th a duplicate), then writes each export
to /dev/null through screening.records_out.export (what the command and the Download button call)
and prints seconds, queries, megabytes written and the process's peak resident memory so far. Then
bulk-tags every record and bulk-excludes ``--exclude`` undecided ones as bob (screening.bulk.apply).
"""

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--exclude", type=int, default=10_000)
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="sieve-bench-")
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp.name}/bench.sqlite3"
    os.environ["SIEVE_DATA_DIR"] = tmp.name
    os.makedirs(f"{tmp.name}/static")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sieve.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench.records_table import populate
    from review.models import Membership, Record
    from screening import bulk, records_out

    call_command("migrate", verbosity=0)
    start = time.perf_counter()
    review, bob = populate(args.records)
    print(f"Populated {args.records:,} records in {time.perf_counter() - start:.1f} s; peak {peak_mb():.0f} MB")
    records = Record.objects.for_review(review)
    print(f"{'export':24} {'seconds':>8} {'queries':>8} {'MB out':>8} {'peak MB':>8}")
    for fmt in ("ris", "csv", "xlsx"):
        for with_decisions in (False, True):
            written = 0
            with CaptureQueriesContext(connection) as queries, open(os.devnull, "wb") as out:
                start = time.perf_counter()
                for piece in records_out.export(review, records, fmt, with_decisions=with_decisions):
                    written += len(piece)
                    out.write(piece)
                seconds = time.perf_counter() - start
            label = f"{fmt}{' + decisions' if with_decisions else ''}"
            print(f"{label:24} {seconds:8.2f} {len(queries.captured_queries):8d} {written / 1e6:8.1f} {peak_mb():8.0f}")

    membership = Membership.objects.select_related("review").get(review=review, user=bob)
    for label, selected, action in (
        ("bulk tag, every record", records, bulk.Action("tag", tag="bench")),
        (
            f"bulk exclude, {args.exclude:,} undecided",
            records.filter(pk__in=records.unique().filter(ta_outcome="").order_by("pk").values("pk")[: args.exclude]),
            bulk.Action("exclude", stage="title_abstract", reason="Animal study"),
        ),
    ):
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            counts = bulk.apply(review, membership, selected, action)
            seconds = time.perf_counter() - start
        print(f"{label:34} {seconds:8.2f} s {len(queries.captured_queries):6d} queries, {counts.changed:,} changed")
    print(f"Reproduce: .venv/bin/python bench/records_out.py --records {args.records} --exclude {args.exclude}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
