"""Time undoing an import and deleting a whole review (review/removal.py) at 100,000 records.

    .venv/bin/python bench/removal.py --records 100000
    DATABASE_URL=postgres://127.0.0.1:5432/sieve_bench .venv/bin/python bench/removal.py --records 100000

Builds a review with two imports: the first of ``--records`` records, with a vote, an audit event
and a rank on each of its first 20,000 and a hand-out on 5,000; the second of a tenth as many, each
a duplicate of one of the first import's records. Times: the refused undo of the first import (its
check), the undo of the second (its records removed), then deleting the review. Uses a throw-away
database (SQLite in a temporary directory unless DATABASE_URL is set; then the test runner's
machinery creates and drops one).
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORKED = 20_000


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.setdefault("SIEVE_DATA_DIR", tempfile.mkdtemp(prefix="sieve-removal-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sieve.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run(args.records)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}  ({settings.DATABASES['default']['ENGINE']})")


def build(n):
    from django.contrib.auth import get_user_model

    from review.models import Event, Membership, Record, Review, Role, Search
    from screening.models import Decision, HandOut, RankingRun, RecordScore

    bob = get_user_model().objects.create_user("bob")
    review = Review.objects.create(slug="big", title="Big review")
    Membership.objects.create(review=review, user=bob, role=Role.OWNER)
    first = Search.objects.create(review=review, kind="file", source="Embase")
    second = Search.objects.create(review=review, kind="file", source="Scopus")
    Record.objects.bulk_create(
        (Record(review=review, search=first, source="Embase", title=f"Kratom study {i}") for i in range(n)),
        batch_size=2000,
    )
    pks = list(Record.objects.filter(search=first).order_by("pk").values_list("pk", flat=True))
    Record.objects.bulk_create(
        (
            Record(review=review, search=second, source="Scopus", title=f"Kratom study {i}", duplicate_of_id=pk)
            for i, pk in enumerate(pks[: n // 10])
        ),
        batch_size=2000,
    )
    worked = pks[:WORKED]
    Decision.objects.bulk_create(
        (Decision(record_id=pk, reviewer=bob, stage="title_abstract", decision="exclude") for pk in worked),
        batch_size=2000,
    )
    Record.objects.filter(pk__in=worked[:5000]).update(ta_outcome="exclude")
    Event.objects.bulk_create(
        (Event(review=review, record_id=pk, actor=bob, kind=Event.Kind.DECISION) for pk in worked), batch_size=2000
    )
    run = RankingRun.objects.create(review=review, stage="title_abstract", version=1)
    RecordScore.objects.bulk_create(
        (RecordScore(run=run, record_id=pk, score=0.5, rank=i) for i, pk in enumerate(worked, 1)), batch_size=2000
    )
    HandOut.objects.bulk_create(
        (HandOut(record_id=pk, reviewer=bob, stage="title_abstract", order="import") for pk in worked[:5000]),
        batch_size=2000,
    )
    return review, first, second, bob


def timed(label, call):
    start = time.perf_counter()
    result = call()
    print(f"{label:<45} {time.perf_counter() - start:7.2f} s")
    return result


def run(n):
    from review import removal
    from review.models import Record

    start = time.perf_counter()
    review, first, second, bob = build(n)
    print(f"built {n:,} + {n // 10:,} records in {time.perf_counter() - start:.1f} s")

    def refused():
        try:
            removal.undo_import(first, user=bob)
        except removal.RemovalRefused as e:
            return str(e)
        raise SystemExit("the undo of worked-on records was not refused")

    timed(f"undo of {n:,} worked-on records (refused)", refused)
    plan = timed(f"undo of {n // 10:,} duplicate records", lambda: removal.undo_import(second, user=bob))
    assert plan.records == n // 10 and not Record.objects.filter(search=second).exists()
    timed(f"delete the review ({n:,} records)", lambda: removal.delete_review(review, confirmation="big"))
    assert not Record.objects.exists()


if __name__ == "__main__":
    main()
