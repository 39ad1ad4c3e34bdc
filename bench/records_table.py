"""How fast the records table and the screening page are with 100,000 records.

Run from the project root:

    .venv/bin/python bench/records_table.py [--records 100000] [--repeat 5]

It builds a throw-away SQLite database in a temporary folder, fills one review with real titles
and abstracts from ../shared/datasets (cycled up to the count asked for) through bulk_create,
marks every 20th record a duplicate, gives the first tenth title/abstract decisions, puts one
of five tags on every 4th record, then
renders pages through Django's test client and prints the median milliseconds and the number
of SQL queries per request.
"""

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGES = [
    ("records, default order", "records", ""),
    ("records, sort by -year", "records", "?sort=-year"),
    ("records, sort by title", "records", "?sort=title"),
    ("records, page 1000", "records", "?page=1000"),
    ("records, TA pending + unique", "records", "?ta=pending&duplicates=unique"),
    ("records, TA include", "records", "?ta=include"),
    ("records, my TA excludes", "records", "?decision=exclude&decision_stage=title_abstract"),
    ("records, year 2010-2015", "records", "?year_min=2010&year_max=2015"),
    ("records, text 'trauma'", "records", "?q=trauma"),
    ("records, source + year sort", "records", "?source=Embase&sort=year"),
    ("records, tagged (1 of 5 tags)", "records", "?tag={tag}"),
    ("screen, title/abstract", "screen", ""),
]


def dataset_rows():
    from tests.shared import shared

    rows = []
    for path in sorted(shared("datasets").glob("*.csv")):
        with open(path, encoding="utf-8") as fh:
            rows.extend(csv.DictReader(fh))
    return rows


def populate(n):
    from django.contrib.auth import get_user_model
    from django.db.models import F
    from django.db.models.functions import Mod

    from review.models import Membership, Record, RecordTag, Review, Role, Search, Tag
    from screening.models import Decision

    owner = get_user_model().objects.create_user("alice", password="x")
    bob = get_user_model().objects.create_user("bob", password="x")
    review = Review.objects.create(slug="bench", title="Benchmark review", created_by=owner)
    Membership.objects.create(review=review, user=owner, role=Role.OWNER)
    Membership.objects.create(review=review, user=bob, role=Role.REVIEWER)
    searches = [
        Search.objects.create(review=review, kind="file", source=s, filename=f"{s}.ris")
        for s in ("PubMed", "Embase", "Scopus")
    ]
    rows = dataset_rows()
    batch = []
    for i in range(n):
        row = rows[i % len(rows)]
        search = searches[i % len(searches)]
        batch.append(
            Record(
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
                ta_outcome="" if i >= n // 10 else ("include" if i % 7 == 0 else "exclude"),
            )
        )
        if len(batch) == 5000:
            Record.objects.bulk_create(batch)
            batch = []
    Record.objects.bulk_create(batch)
    first = Record.objects.order_by("pk").values_list("pk", flat=True).first()
    # Every 20th record duplicates the record before it.
    Record.objects.filter(review=review, pk__gt=first).alias(step=Mod(F("pk") - first, 20)).filter(step=0).update(
        duplicate_of_id=F("pk") - 1, ta_outcome=""
    )
    decided = Record.objects.filter(review=review, duplicate_of__isnull=True).exclude(ta_outcome="")
    Decision.objects.bulk_create(
        [
            Decision(record_id=pk, reviewer=bob, stage="title_abstract", decision=outcome)
            for pk, outcome in decided.values_list("pk", "ta_outcome")
        ],
        batch_size=5000,
    )
    tags = [Tag.objects.create(review=review, name=f"tag {i}") for i in range(5)]
    pks = Record.objects.filter(review=review).values_list("pk", flat=True)
    RecordTag.objects.bulk_create(
        [RecordTag(record_id=pk, tag=tags[i % 5], added_by=bob) for i, pk in enumerate(pks) if i % 4 == 0],
        batch_size=5000,
    )
    return review, bob


def measure(client, path, repeat):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timings, queries = [], 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            response = client.get(path)
            timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
        queries = len(ctx.captured_queries)
    return statistics.median(timings), queries


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="sieve-bench-")
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp.name}/bench.sqlite3"
    os.environ["SIEVE_DATA_DIR"] = tmp.name
    os.makedirs(f"{tmp.name}/static")  # whitenoise warns about a missing STATIC_ROOT otherwise
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sieve.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    start = time.perf_counter()
    review, bob = populate(args.records)
    print(f"Populated {args.records:,} records in {time.perf_counter() - start:.1f} s ({tmp.name})")

    client = Client()
    client.force_login(bob)
    print(f"{'page':34} {'median ms':>10} {'queries':>8}")
    for label, name, query in PAGES:
        args_ = [review.slug, "title_abstract"] if name == "screen" else [review.slug]
        query = query.format(tag=review.tags.values_list("pk", flat=True).first())
        ms, queries = measure(client, reverse(f"screening:{name}", args=args_) + query, args.repeat)
        print(f"{label:34} {ms:10.1f} {queries:8d}")
    print(f"Reproduce: .venv/bin/python bench/records_table.py --records {args.records} --repeat {args.repeat}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
