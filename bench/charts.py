"""Time the Charts page's figures and drawings (screening/charts.py) on dual-screened reviews of
10,000 and 100,000 records, and count their queries.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sieve_charts .venv/bin/python bench/charts.py --sizes 10000 100000

Each review has its first 60% of records voted on by two reviewers at title/abstract and agreed on
(written in bulk, an hour of votes per 40 records), as a prioritised order finds them: one in seven
included in the first fifth, one in fifty after; the rest wait. Prints, per size, the seconds and
queries of each chart's figures and SVG as the owner sees them, and of the stopping rule's
``stage_progress`` alone (the dashboard pays it too; the recall chart adds where the rule would stop). Uses a throw-away database (SQLite in a temporary
directory unless DATABASE_URL is set; then the test runner's machinery creates and drops one).

Measured on PostgreSQL, 2 cores shared with other work (load about 13), 7 Dec 2026:
    10,000: progress 0.36 s (2 queries), stage_progress 0.88 s, recall 0.12 s, agreement 0.05 s (1 query)
    100,000: progress 2.9 s (2 queries), stage_progress 48 s on its first call (progress_report's own
    cost, the dashboard's too), recall 1.5 s, agreement 0.34 s (1 query); each SVG under 0.04 s.
    --no-analyze at 10,000: progress 0.25 s (a first-vote anti-join took 28 s there, a window 118 s).
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--no-analyze", action="store_true", help="keep PostgreSQL without statistics")
    args = parser.parse_args()
    os.environ.setdefault("SIEVE_DATA_DIR", tempfile.mkdtemp(prefix="sieve-charts-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sieve.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        for size in args.sizes:
            run(size, analyze=not args.no_analyze)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}  ({settings.DATABASES['default']['ENGINE']})")


def _outcome(i, size):
    if i >= 0.6 * size:
        return "pending"
    return "include" if i % (7 if i < 0.2 * size else 50) == 0 else "exclude"


def build(size, analyze):
    from datetime import UTC, datetime, timedelta

    from django.contrib.auth import get_user_model

    from review.models import Membership, Record, Review, Role, Search
    from screening.models import Decision

    users = [get_user_model().objects.create_user(f"{name}{size}") for name in ("alice", "bob", "carol")]
    review = Review.objects.create(slug=f"bench-{size}", title="Charts bench", created_by=users[0])
    review.title_abstract_reviewers = 2
    review.save()
    for user, role in zip(users, (Role.OWNER, Role.REVIEWER, Role.REVIEWER)):
        Membership.objects.create(review=review, user=user, role=role)
    search = Search.objects.create(review=review, kind="file", source="bench")
    start = datetime(2026, 3, 2, tzinfo=UTC)
    for low in range(0, size, 5000):
        records = Record.objects.bulk_create(
            Record(review=review, search=search, title=f"r{i}", ta_outcome=_outcome(i, size))
            for i in range(low, min(low + 5000, size))
        )
        Decision.objects.bulk_create(
            Decision(
                record=r,
                reviewer=u,
                stage="title_abstract",
                decision=r.ta_outcome if (j or i % 11) else "exclude",
                created_at=start + timedelta(hours=(low + i) // 40),
            )
            for i, r in enumerate(records)
            for j, u in enumerate(users[1:])
            if r.ta_outcome != "pending"
        )
    from django.db import connection

    if analyze and connection.vendor == "postgresql":
        # As autovacuum would a minute after a bulk import (--no-analyze: the planner without
        # statistics, as just after one).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE screening_decision; ANALYZE review_record")
    return review, Membership.objects.get(review=review, user=users[0])


def run(size, analyze=True):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from screening import charts, progress_report

    review, owner = build(size, analyze)
    stage = "title_abstract"
    steps = [
        ("progress figures", lambda: charts.reviewer_progress(review, stage, owner)),
        ("stage_progress", lambda: progress_report.stage_progress(review, stage)),
        ("recall figures", lambda: charts.recall_chart(review, stage)),
        ("agreement figures", lambda: charts.pair_agreement(review, stage)),
    ]
    print(f"{size:,} records, {2 * size:,} votes")
    results = {}
    for name, step in steps:
        with CaptureQueriesContext(connection) as queries:
            began = time.perf_counter()
            results[name] = step()
            took = time.perf_counter() - began
        print(f"  {name:<20} {took:7.3f} s  {len(queries):3d} queries")
    for name, draw in (
        ("progress svg", lambda: charts.progress_svg(results["progress figures"])),
        ("recall svg", lambda: charts.recall_svg(results["recall figures"])),
        ("agreement svg", lambda: charts.agreement_svg(stage, results["agreement figures"])),
    ):
        began = time.perf_counter()
        svg = draw()
        print(f"  {name:<20} {time.perf_counter() - began:7.3f} s  {len(svg):,} bytes")


if __name__ == "__main__":
    main()
