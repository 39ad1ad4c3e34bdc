"""Time closing a title/abstract stage on the stopping rule's recommendation (screening.closing),
and reopening it, on reviews of 10,000 and 100,000 records.

    DATABASE_URL=postgres://127.0.0.1:5432/sieve_bench .venv/bin/python bench/close_stage.py --sizes 10000 100000

Each review gets 40 relevant outcomes first, then irrelevant ones until buscar's ranked test says
stop at 95% recall / 95% confidence (about 63% of the records screened); the rest is what the
closure marks. Prints the time of the dashboard's check (`check_closable`), of `close_stage` (it
locks every record of the stage, re-runs the test and writes a row per marked record) and of
`reopen_stage`. Uses a throw-away database (SQLite in a temporary directory unless DATABASE_URL is
set; then the test runner's machinery creates and drops one).
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RELEVANT = 40


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    os.environ.setdefault("SIEVE_DATA_DIR", tempfile.mkdtemp(prefix="sieve-close-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sieve.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run(args.sizes)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}  ({settings.DATABASES['default']['ENGINE']})")


def screened_for_stop(size):
    """How many records, 40 relevant then irrelevant, the ranked test needs to say stop."""
    from screening import stopping

    low, high = RELEVANT, size
    while low < high:  # the test says stop from some count on: find the first
        middle = (low + high) // 2
        labels = [1] * RELEVANT + [0] * (middle - RELEVANT)
        if stopping.recommend(labels, size).stop:
            high = middle
        else:
            low = middle + 1
    return low


def run(sizes):
    from django.contrib.auth import get_user_model

    from review.models import Membership, Record, Review, Role, Search, Stage
    from screening import closing
    from screening.models import Decision

    ta = Stage.TITLE_ABSTRACT
    alice = get_user_model().objects.create_user("alice", "alice@example.org", "x")
    for size in sizes:
        review = Review.objects.create(slug=f"close-{size}", title=f"Close {size}", question="kratom for PTSD")
        Membership.objects.create(review=review, user=alice, role=Role.OWNER)
        search = Search.objects.create(review=review, kind="file", source="bench")
        Record.objects.bulk_create(
            (Record(review=review, search=search, source="bench", title=f"Record {i}") for i in range(size)),
            batch_size=5000,
        )
        pks = list(Record.objects.filter(review=review).order_by("pk").values_list("pk", flat=True))
        screened = screened_for_stop(size)
        Decision.objects.bulk_create(
            (
                Decision(record_id=pk, reviewer=alice, stage=ta, decision="include" if i < RELEVANT else "exclude")
                for i, pk in enumerate(pks[:screened])
            ),
            batch_size=5000,
        )
        Record.objects.filter(pk__in=pks[:RELEVANT]).update(ta_outcome="include")
        Record.objects.filter(pk__in=pks[RELEVANT:screened]).update(ta_outcome="exclude")
        t0 = time.perf_counter()
        closing.check_closable(review, ta)
        check = time.perf_counter() - t0
        t0 = time.perf_counter()
        closure = closing.close_stage(review, ta, alice, expect=size - screened)
        close = time.perf_counter() - t0
        t0 = time.perf_counter()
        closing.reopen_stage(review, ta, alice)
        reopen = time.perf_counter() - t0
        print(
            f"{size:>7} records, {screened:,} screened, {closure.records_marked:,} marked: "
            f"check {check:.2f} s, close {close:.2f} s, reopen {reopen:.2f} s"
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
