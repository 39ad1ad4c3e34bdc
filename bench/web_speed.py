"""Web speed at 100,000 records on PostgreSQL, ranking on: decide -> next card, and the records table.

Run from the project root (PostgreSQL on 127.0.0.1; the database is emptied and rebuilt):

    DATABASE_URL=postgres://127.0.0.1:5432/sieve_speed .venv/bin/python bench/web_speed.py [--records 100000] [--requests 200]
    ... bench/web_speed.py --reuse        # keep the review built by an earlier run

It fills one dual-screened review with real titles and abstracts from ../shared/datasets (cycled
up to the count asked for), 20 reviewers, a finished ranking run that scored every record, the
review's inclusion criteria (so the ranked order is every reviewer's default), and two votes on
the first tenth of the records. Then, through Django's test client as one reviewer, it times
``--requests`` htmx decisions as the page sends them with its prefetched next card (each POST
answers with the card after the one shown), as many without the prefetch (each POST answers with
the next card itself, claimed), and as many records
table pages (default order, sorted, filtered, deep pages), and prints p50/p95/max and the queries
per request. ``bench/load.py`` reuses ``build_review``.
"""

import argparse
import csv
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SLUG = "web-speed"
REVIEWERS = 20
PASSWORD = "bench-password-1"
TABLE_PAGES = [
    "",
    "?sort=-year",
    "?sort=title",
    "?page=500",
    "?ta=pending&duplicates=unique",
    "?q=trauma",
    "?q=%22post+traumatic%22+OR+ptsd*",
]
DECIDE_URL = re.compile(r'hx-post="([^"]+/decide/)"')


def setup(database_url):
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sieve.settings")
    import django

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]


def dataset_rows():
    from tests.shared import shared

    rows = []
    for path in sorted(shared("datasets").glob("*.csv")):
        with open(path, encoding="utf-8") as fh:
            rows.extend(csv.DictReader(fh))
    return rows


def _record(review, search, row, decided):
    from review.models import Record

    return Record(
        review=review,
        search=search,
        source=search.source,
        title=row["title"],
        abstract=row["abstract"],
        authors=[a.strip() for a in row["authors"].split(";") if a.strip()],
        year=int(row["year"]) if row["year"] else None,
        journal=row["journal"],
        pmid=row["pmid"],
        doi=row["doi"],
        ta_outcome=decided or "",
    )


def build_review(n, *, reviewers=REVIEWERS, decided_share=0.1, seed=1):
    """A fresh database holding one dual-screened review of ``n`` records, ranked; returns it."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from review.models import Membership, Record, Review, Role, Search, Stage
    from screening.models import Decision, RankingRun, RecordScore

    call_command("flush", interactive=False, verbosity=0)
    User = get_user_model()
    owner = User.objects.create_user("alice", password=PASSWORD)
    review = Review.objects.create(
        slug=SLUG,
        title="Web speed benchmark review",
        created_by=owner,
        question="Does kratom relieve post-traumatic stress?",
        inclusion_criteria="Adults with PTSD; kratom or mitragynine; any outcome on symptoms.",
        title_abstract_reviewers=2,
    )
    Membership.objects.create(review=review, user=owner, role=Role.OWNER)
    people = [User.objects.create_user(f"reviewer{i:02d}", password=PASSWORD) for i in range(reviewers)]
    Membership.objects.bulk_create(Membership(review=review, user=u, role=Role.REVIEWER) for u in people)
    search = Search.objects.create(review=review, kind="file", source="PubMed", filename="bench.xml")
    rows = dataset_rows()
    decided_until = int(n * decided_share)
    batch = []
    for i in range(n):
        decided = ("include" if i % 9 == 0 else "exclude") if i < decided_until else ""
        batch.append(_record(review, search, rows[i % len(rows)], decided))
        if len(batch) == 5000:
            Record.objects.bulk_create(batch)
            batch = []
    Record.objects.bulk_create(batch)
    decided = Record.objects.filter(review=review).exclude(ta_outcome="").values_list("pk", "ta_outcome")
    Decision.objects.bulk_create(
        (
            Decision(record_id=pk, reviewer=voter, stage=Stage.TITLE_ABSTRACT, decision=outcome)
            for pk, outcome in decided.iterator()
            for voter in people[:2]
        ),
        batch_size=5000,
    )
    # A finished run that scored every record still to screen (what the worker stores).
    pending = list(Record.objects.filter(review=review, ta_outcome="").values_list("pk", flat=True))
    scores = sorted(((random.Random(seed * 1_000_003 + pk).random(), pk) for pk in pending), reverse=True)
    run = RankingRun.objects.create(
        review=review,
        stage=Stage.TITLE_ABSTRACT,
        version=1,
        status=RankingRun.Status.DONE,
        decisions_seen=2 * decided_until,
        relevant_labels=1,
        irrelevant_labels=1,
        used_criteria=True,
        scored=len(pending),
        terms={"kratom": 2.0, "trauma": 1.5, "stress": 1.2, "ptsd": 1.1},
    )
    RecordScore.objects.bulk_create(
        (RecordScore(run=run, record_id=pk, score=score, rank=rank) for rank, (score, pk) in enumerate(scores, 1)),
        batch_size=5000,
    )
    from django.db import connection

    if connection.vendor == "postgresql":
        # What autovacuum does to a settled table: statistics, and the visibility map that lets
        # counts use index-only scans (right after a bulk insert it is not set yet).
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    return review


def percentiles(values):
    ordered = sorted(values)

    def at(share):
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    return {"p50": statistics.median(ordered), "p95": at(0.95), "max": ordered[-1], "n": len(ordered)}


def timed(client, method, path, **kwargs):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        start = time.perf_counter()
        response = getattr(client, method)(path, **kwargs)
        ms = (time.perf_counter() - start) * 1000
    assert response.status_code == 200, (path, response.status_code, response.content[:500])
    return response, ms, len(ctx.captured_queries)


NEXT_CARD = re.compile(r'<template class="next-card" data-record="(\d+)">.*?hx-post="([^"]+/decide/)"', re.S)


def _cards(html):
    """(decide URL of the card on screen, (pk, decide URL) of the prefetched card after it or None)."""
    main = html.split('<template class="next-card"')[0]
    shown = DECIDE_URL.search(main)
    following = NEXT_CARD.search(html)
    return (shown.group(1) if shown else None), (following.groups() if following else None)


def measure_decisions(client, review, requests, *, prefetch=True):
    """Time ``requests`` htmx decisions as the screening page sends them. With ``prefetch`` (what
    the page does): the prefetched card is shown when the decision is sent (no request), and the
    POST says so and gets back only the card after it. Without: each POST answers with the next
    card itself (the page before prefetching, or a browser whose prefetched card was not ready)."""
    from django.urls import reverse

    response = client.get(reverse("screening:screen", args=[review.slug, "title_abstract"]))
    shown, following = _cards(response.content.decode())
    timings, queries, next_only = [], set(), 0
    for i in range(requests):
        decision = "include" if i % 10 == 0 else "exclude"
        headers = {"HX-Request": "true"}
        if prefetch and following:
            headers["X-Sieve-Showing"] = following[0]
        response, ms, n = timed(client, "post", shown, data={"decision": decision}, headers=headers)
        timings.append(ms)
        queries.add(n)
        html = response.content.decode()
        if response.headers.get("X-Sieve-Next-Only"):
            next_only += 1
            shown, following = following[1], (NEXT_CARD.search(html).groups() if NEXT_CARD.search(html) else None)
        else:
            shown, following = _cards(html)
    return percentiles(timings), sorted(queries), next_only


def measure_table(client, review, requests):
    from django.db import connection
    from django.urls import reverse

    base = reverse("screening:records", args=[review.slug])
    timings, per_page, queries = [], {}, set()
    for i in range(requests):
        query = TABLE_PAGES[i % len(TABLE_PAGES)]
        # The query log holds 9,000 queries: once full, a capture would count none.
        connection.queries_log.clear()
        _, ms, n = timed(client, "get", base + query)
        timings.append(ms)
        per_page.setdefault(query or "(default)", []).append(ms)
        queries.add(n)
    return percentiles(timings), per_page, sorted(queries)


def show(label, figures, queries):
    print(
        f"{label:28} p50 {figures['p50']:7.1f} ms  p95 {figures['p95']:7.1f} ms  max {figures['max']:7.1f} ms"
        f"  ({figures['n']} requests, queries per request {queries})"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--reuse", action="store_true", help="keep the review an earlier run built")
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgres://127.0.0.1:5432/sieve_speed")
    )
    args = parser.parse_args()
    setup(args.database_url)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from review.models import Record, Review

    call_command("migrate", verbosity=0)
    review = Review.objects.filter(slug=SLUG).first() if args.reuse else None
    if review is None:
        start = time.perf_counter()
        review = build_review(args.records)
        print(f"Built {args.records:,} records in {time.perf_counter() - start:.1f} s")
    print(f"{connection.vendor}: {Record.objects.filter(review=review).count():,} records, dual screening, ranked")
    client = Client()
    # A reviewer who has not screened yet: each run of the bench takes the next unused one.
    used = set(review.memberships.filter(user__decisions__isnull=False).values_list("user_id", flat=True))
    fresh = review.memberships.exclude(user_id__in=used).exclude(role="owner").order_by("user__username").first()
    user = fresh.user if fresh else get_user_model().objects.get(username="reviewer00")
    client.force_login(user)
    figures, queries, next_only = measure_decisions(client, review, args.requests)
    show("decide POST (prefetched)", figures, queries)
    print(
        f"    {next_only} of {args.requests} answers held only the card after the one shown; the next card"
        " itself is shown from the page's prefetched copy when the decision is sent (no request)"
    )
    figures, queries, _ = measure_decisions(client, review, args.requests, prefetch=False)
    show("decide -> next card (no prefetch)", figures, queries)
    figures, per_page, queries = measure_table(client, review, args.requests)
    show("records table", figures, queries)
    for page, timings in per_page.items():
        print(f"    {page:36} p50 {statistics.median(timings):7.1f} ms  max {max(timings):7.1f} ms")
    print(
        "Reproduce: DATABASE_URL=" + args.database_url + " .venv/bin/python bench/web_speed.py "
        f"--records {args.records} --requests {args.requests}"
    )


if __name__ == "__main__":
    main()
