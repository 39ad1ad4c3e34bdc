"""Time exporting and importing a whole review (transfer/) of 100,000 records, and its memory.

    .venv/bin/python bench/transfer_review.py --records 100000 [--keep big.zip]
    .venv/bin/python bench/transfer_review.py --import-only big.zip [--writer]  # the import's own memory
    DATABASE_URL=postgres://127.0.0.1:5432/sieve_bench .venv/bin/python bench/transfer_review.py

The review gets ``--records`` records with abstracts (one in ten a duplicate of the one before),
two title/abstract votes and an audit event per vote on each, and a tag on every tenth. Prints the
export time, the file's size, the import time, the rows per second, and the process's peak
resident memory after each step (ru_maxrss: the whole process, Django included). Uses a throw-away
database (an SQLite file in a temporary directory unless DATABASE_URL is set).
"""

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(n):
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from review.models import Event, Membership, Record, RecordTag, Review, Role, Search, Tag
    from screening.models import Decision

    User = get_user_model()
    alice, bob = (User.objects.create_user(u, f"{u}@example.org") for u in ("alice", "bob"))
    review = Review.objects.create(slug="big", title="Big review", created_by=alice, title_abstract_reviewers=2)
    Membership.objects.create(review=review, user=alice, role=Role.OWNER)
    Membership.objects.create(review=review, user=bob, role=Role.REVIEWER)
    search = Search.objects.create(review=review, kind="file", source="Embase", run_by=alice)
    tag = Tag.objects.create(review=review, name="check")
    abstract = "Background: kratom and post-traumatic stress. " * 30
    now = timezone.now()
    for start in range(0, n, 5000):
        records = Record.objects.bulk_create(
            Record(
                review=review,
                search=search,
                source="Embase",
                title=f"Kratom cohort {i}",
                abstract=abstract,
                authors=["Singh, D", "Narayanan, S"],
                year=2000 + i % 25,
                pmid=str(10_000_000 + i),
                ta_outcome="exclude",
            )
            for i in range(start, min(n, start + 5000))
        )
        Decision.objects.bulk_create(
            Decision(record=r, reviewer=u, stage="title_abstract", decision="exclude", created_at=now)
            for r in records
            for u in (alice, bob)
        )
        Event.objects.bulk_create(
            Event(
                review=review,
                record=r,
                actor=u,
                kind="decision",
                created_at=now,
                detail={"stage": "title_abstract", "decision": "exclude", "reason": "", "note": ""},
            )
            for r in records
            for u in (alice, bob)
        )
        RecordTag.objects.bulk_create(RecordTag(record=r, tag=tag, added_by=bob) for r in records[::10])
        for a, b in zip(records[::10], records[1::10]):
            b.duplicate_of, b.duplicate_reason = a, "title"
        Record.objects.bulk_update(records[1::10], ["duplicate_of", "duplicate_reason"])
    return review


class Writer(threading.Thread):
    """Another user writing (a login's last_login) every 0.1 s on its own connection while the import
    runs: the longest wait for the database tells whether the import locks others out."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stopping, self.waits, self.errors = threading.Event(), [], []

    def run(self):
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.utils import timezone

        User = get_user_model()
        user = User.objects.create_user("walk-in")
        try:
            while not self.stopping.wait(0.1):
                t = time.perf_counter()
                try:
                    User.objects.filter(pk=user.pk).update(last_login=timezone.now())
                except Exception as error:  # "database is locked": what the import must not cause
                    self.errors.append(str(error))
                self.waits.append(time.perf_counter() - t)
        finally:
            connection.close()

    def report(self):
        self.stopping.set()
        self.join()
        waits = sorted(self.waits) or [0.0]
        return (
            f"another connection's {len(waits)} writes during it: longest {max(waits):.2f} s, "
            f"95th percentile {waits[int(0.95 * (len(waits) - 1))]:.3f} s, {len(self.errors)} failed"
        )


def import_only(path, writer=False):
    from transfer.importing import import_review

    other = Writer() if writer else None
    if other:
        other.start()
    t, cpu = time.perf_counter(), time.process_time()
    result = import_review(source=path, slug="big-copy")
    import_s, import_cpu = time.perf_counter() - t, time.process_time() - cpu
    if other:
        print(other.report())
    rows = sum(result.counts.values())
    print(
        f"import alone (fresh process): {import_s:.1f} s wall, {import_cpu:.1f} s CPU ({rows / import_s:,.0f} rows/s)"
        f"  (peak {peak_mb():.0f} MB)"
    )


def run(n, keep=None):
    from transfer.exporting import export_review
    from transfer.importing import import_review

    t = time.perf_counter()
    review = build(n)
    print(
        f"built a review of {n:,} records, {2 * n:,} votes, {2 * n:,} events in {time.perf_counter() - t:.1f} s"
        f"  (peak {peak_mb():.0f} MB)"
    )
    path = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="sieve-transfer-bench-")) / "big.zip"
    t, cpu = time.perf_counter(), time.process_time()
    result = export_review(review=review, out=path)
    export_s, export_cpu = time.perf_counter() - t, time.process_time() - cpu
    rows = sum(result.counts.values())
    print(
        f"export: {export_s:.1f} s wall, {export_cpu:.1f} s CPU, {rows:,} rows ({rows / export_s:,.0f}/s), "
        f"file {path.stat().st_size / 1e6:.1f} MB  (peak {peak_mb():.0f} MB)"
    )
    t, cpu = time.perf_counter(), time.process_time()
    import_review(source=path, slug="big-copy")
    import_s, import_cpu = time.perf_counter() - t, time.process_time() - cpu
    print(
        f"import: {import_s:.1f} s wall, {import_cpu:.1f} s CPU ({rows / import_s:,.0f} rows/s)"
        f"  (peak {peak_mb():.0f} MB)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--keep", help="write the review file here and keep it")
    parser.add_argument("--import-only", help="only import this review file (the import's memory alone)")
    parser.add_argument("--writer", action="store_true", help="with --import-only: another connection writes meanwhile")
    args = parser.parse_args()
    os.environ.setdefault("SIEVE_DATA_DIR", tempfile.mkdtemp(prefix="sieve-transfer-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sieve.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    if connection.vendor == "sqlite":
        # A file, as in production: Django's SQLite test database is in memory, which would count
        # the whole database as this process's memory.
        connection.settings_dict["TEST"]["NAME"] = str(Path(os.environ["SIEVE_DATA_DIR"]) / "bench.sqlite3")
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        if args.import_only:
            import_only(args.import_only, writer=args.writer)
        else:
            run(args.records, args.keep)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}  ({settings.DATABASES['default']['ENGINE']})")


if __name__ == "__main__":
    main()
