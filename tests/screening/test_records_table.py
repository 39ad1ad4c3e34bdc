"""The records table at scale: its own row rendering, its sorts, its counts and its query count."""

import re

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_tables2 import RequestConfig

from review import annotations
from review.models import Record, Search, Stage
from screening import tables
from screening.tables import RECORD_COLUMNS, RecordTable
from tests.screening.team import make_team, vote

TA, FT = Stage.TITLE_ABSTRACT, Stage.FULL_TEXT
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL indexes and plans (run with DATABASE_URL=postgres://...)"
)


def records_page(client, review, **params):
    response = client.get(reverse("screening:records", args=[review.slug]), params)
    assert response.status_code == 200
    return response


def listed(response):
    return [row.record.pk for row in response.context["table"].paginated_rows]


def fill(review, n, *, start=0):
    """``n`` plain records in ``review`` (bulk, like a big import): every 5th a duplicate of the one
    before it, every 3rd with "trauma" in its abstract, years over a decade and some unknown."""
    search = Search.objects.create(review=review, kind="file", source="Embase", filename=f"bulk{start}.ris")
    Record.objects.bulk_create(
        Record(
            review=review,
            search=search,
            source=search.source,
            title=f"Record {i:05d} on kratom",
            abstract="Posttraumatic stress after trauma." if i % 3 == 0 else "Something else entirely.",
            authors=[f"Author{i}, A."],
            year=None if i % 7 == 0 else 2010 + i % 10,
            journal="Journal of Tests",
        )
        for i in range(start, start + n)
    )
    pks = list(Record.objects.filter(search=search).order_by("pk").values_list("pk", flat=True))
    for before, pk in zip(pks, pks[1:]):
        if pk % 5 == 0:
            Record.objects.filter(pk=pk).update(duplicate_of_id=before, duplicate_reason="title")
    return pks


# The rows RecordTable renders itself are the rows django-tables2's template renders -------------


def html_rows(html):
    """The <tr> rows of a rendered table's body, whitespace between tags dropped."""
    body = html[html.index("<tbody") : html.index("</tbody>")]
    body = re.sub(r">\s+<", "><", body)
    return re.findall(r"<tr[^>]*>.*?</tr>", body, flags=re.S)


@pytest.mark.parametrize("who", ["bob", "alice"])
def test_its_own_rows_are_what_django_tables2_renders(review, alice, bob, carol, who):
    team = make_team(review, bob, carol)
    annotations.add_tag(team.conflict, "animal <study>", user=bob)
    annotations.add_tag(team.conflict, "check", user=bob)
    annotations.add_tag(team.included, "check", user=carol)
    fill(review, 30)
    user = {"bob": bob, "alice": alice}[who]
    membership = review.memberships.get(user=user)
    for sort in ("", "-year", "ta_outcome", "-duplicate"):
        request = RequestFactory().get("/", {"sort": sort} if sort else {})
        request.user = user
        base = Record.objects.for_review(review).only(*RECORD_COLUMNS)
        table = RecordTable(base, review=review, membership=membership)
        RequestConfig(request, paginate={"per_page": 200}).configure(table)
        ours = html_rows(render_to_string(RecordTable._meta.template_name, {"table": table}, request))
        theirs = html_rows(render_to_string("django_tables2/table.html", {"table": table}, request))
        assert len(ours) == Record.objects.for_review(review).count()
        assert ours == theirs
    # The rows cover what the table can show: outcomes, full text, tags (escaped), duplicates.
    page = "".join(ours)
    for shown in ("outcome-include", "outcome-exclude", "&lt;study&gt;", "dup of #", "—"):
        assert shown in page
    assert ("outcome-conflict" in page) == (who == "alice")


# Sorts ------------------------------------------------------------------------------------------


def test_titles_sort_by_their_indexed_start_then_the_rest_then_the_number(client, review, bob):
    pks = fill(review, 12)
    # Two titles alike in their first 200 characters (the indexed part) still sort by the rest.
    stem = "A" * tables.TITLE_SORT_PREFIX
    Record.objects.filter(pk=pks[0]).update(title=stem + " zeta")
    Record.objects.filter(pk=pks[1]).update(title=stem + " alpha")
    Record.objects.filter(pk__in=pks[2:4]).update(title="Same title")
    client.force_login(bob)
    records = Record.objects.for_review(review)
    expected = [r.pk for r in sorted(records, key=lambda r: (r.title, r.pk))]
    assert listed(records_page(client, review, sort="title")) == expected
    assert listed(records_page(client, review, sort="-title")) == expected[::-1]


def test_equal_years_keep_the_order_of_their_numbers(client, review, bob):
    fill(review, 40)
    client.force_login(bob)
    known = Record.objects.for_review(review).filter(year__isnull=False)
    expected = [r.pk for r in sorted(known, key=lambda r: (r.year, r.pk))]
    shown = listed(records_page(client, review, sort="year", year_min=2000, per_page=100))
    assert shown == expected


# Counts -----------------------------------------------------------------------------------------


def test_the_count_is_exact_and_a_text_search_counts_up_to_its_limit(client, review, bob, monkeypatch):
    fill(review, 30)
    client.force_login(bob)
    matching = [r.pk for r in Record.objects.for_review(review).order_by("pk") if "trauma" in r.abstract.lower()]
    assert len(matching) == 10
    response = records_page(client, review, q="TRAUMA", per_page=4)
    assert response.context["total"] == tables.Total(10)
    assert "10 records match" in response.content.decode()

    monkeypatch.setattr(tables, "TEXT_SEARCH_COUNT_LIMIT", 6)
    response = records_page(client, review, q="trauma", per_page=4)
    assert response.context["total"] == tables.Total(6, exact=False)
    assert "More than 6 records match" in response.content.decode()
    assert "10 records" not in response.content.decode()
    # It pages on without a total, and every match is reached.
    seen = []
    for page in (1, 2, 3):
        seen += listed(records_page(client, review, q="trauma", per_page=4, page=page))
    assert seen == matching
    # Exactly at the limit the count is exact.
    monkeypatch.setattr(tables, "TEXT_SEARCH_COUNT_LIMIT", 10)
    assert records_page(client, review, q="trauma").context["total"] == tables.Total(10)
    # Without a text search the count is exact whatever the limit.
    unique = Record.objects.for_review(review).unique().count()
    assert records_page(client, review, duplicates="unique").context["total"] == tables.Total(unique)


def test_a_page_past_the_last_of_a_text_search_shows_the_first(client, review, bob, monkeypatch):
    fill(review, 30)
    monkeypatch.setattr(tables, "TEXT_SEARCH_COUNT_LIMIT", 2)
    client.force_login(bob)
    first = listed(records_page(client, review, q="trauma", per_page=4))
    assert listed(records_page(client, review, q="trauma", per_page=4, page=99)) == first


# Query count ------------------------------------------------------------------------------------

PAGES = [
    {},
    {"sort": "-year"},
    {"sort": "title"},
    {"page": 3},
    {"ta": "pending", "duplicates": "unique"},
    {"q": "trauma"},
    {"decision": "include", "decision_stage": TA},
    {"tag": "TAG"},
]


def queries(client, review, params):
    with CaptureQueriesContext(connection) as ctx:
        records_page(client, review, **params)
    return len(ctx.captured_queries)


def test_its_query_count_grows_neither_with_the_rows_shown_nor_with_the_review(client, review, bob, carol):
    pks = fill(review, 60)
    tag = annotations.add_tag(Record.objects.get(pk=pks[0]), "check", user=bob)
    for pk in pks[:10]:
        record = Record.objects.get(pk=pk)
        if record.duplicate_of_id is None:
            vote(record, bob, "include")
            annotations.add_tag(record, f"tag {pk}", user=carol)
    client.force_login(bob)
    pages = [{k: (tag.pk if v == "TAG" else v) for k, v in p.items()} for p in PAGES]
    small = [queries(client, review, {**p, "per_page": 10}) for p in pages]
    assert max(small) <= 12
    assert [queries(client, review, {**p, "per_page": 50}) for p in pages] == small

    more = fill(review, 240, start=60)
    for pk in more[:40]:
        annotations.add_tag(Record.objects.get(pk=pk), f"tag {pk}", user=carol)
    assert [queries(client, review, {**p, "per_page": 50}) for p in pages] == small


# PostgreSQL: the indexes the table relies on match the SQL Django writes -------------------------


def plan(queryset, *, scan):
    """PostgreSQL's plan for ``queryset`` when it may only ``scan`` "index" or "bitmap" and should not
    sort whole (the test tables are tiny: left to itself it would read and sort them whole)."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE review_record")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"SET LOCAL enable_sort = {'off' if scan == 'index' else 'on'}")
        cursor.execute(f"SET LOCAL enable_bitmapscan = {'on' if scan == 'bitmap' else 'off'}")
        cursor.execute(f"SET LOCAL enable_indexscan = {'on' if scan == 'index' else 'off'}")
    return queryset.explain()


# The word index of the text search: tests/screening/test_text_search.py.


@on_postgresql
def test_postgresql_counts_and_sorts_from_the_table_indexes(review, bob):
    fill(review, 30)
    membership = review.memberships.get(user=bob)
    records = Record.objects.for_review(review)
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'record_review_listed'")
        (listed_index,) = cursor.fetchone()
    # The count's columns are all in it, so PostgreSQL counts from the index alone.
    assert "(review_id, id) INCLUDE (ta_outcome, ft_outcome, duplicate_of_id) WHERE (NOT staged)" in listed_index
    table = RecordTable(records.only(*RECORD_COLUMNS), review=review, membership=membership)
    for sort, index in (("title", "record_review_title_sort"), ("-year", "record_review_year_id")):
        table.order_by = sort
        assert index in plan(table.data.data[:50], scan="index"), sort
