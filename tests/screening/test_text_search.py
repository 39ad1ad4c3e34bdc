"""The records table's word search (screening/textsearch.py): the same records on SQLite and
PostgreSQL (``make test`` runs this file on both), clear messages for what cannot be read, and
highlighting that escapes the imported titles."""

import re

import pytest
from django.db import connection, transaction
from django.urls import reverse

from review.models import Record, Search
from screening import textsearch
from screening.filters import RecordFilter
from screening.textsearch import All, Any, Not, Term

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL indexes and plans (run with DATABASE_URL=postgres://...)"
)

# name: (title, abstract)
RECORDS = {
    "rats": ("Kratom in rats", "Adult rats were dosed."),
    "rat": ("A rat model of PTSD", "One rat."),
    "covid": ("COVID-19 and stress", "During the pandemic."),
    "covid_space": ("Covid 19 lockdown", ""),
    "covid19": ("COVID19 registry", ""),
    "hyphen": ("Post-traumatic stress disorder in veterans", "Trauma exposure."),
    "joined": ("Posttraumatic growth", "After trauma, growth."),
    "alzheimer": ("Alzheimer's disease and sleep", ""),
    "accents": ("Naïve Bayes screening", "ÉCLAIR cohort."),
    "numbers": ("Dose 3.5 mg/kg of kratom", "Built for x86_64."),
    "markup": ("<script>alert(1)</script> kratom", ""),
}

EVERY = set(RECORDS)
QUERIES = [
    ("rat", {"rat"}),  # no stemming
    ("RAT*", {"rat", "rats"}),
    ("rats OR rat", {"rats", "rat"}),
    ("kratom", {"rats", "numbers", "markup"}),
    ("kratom rats", {"rats"}),
    ("kratom AND rats", {"rats"}),
    ("kratom NOT rats", {"numbers", "markup"}),
    ("kratom -rats", {"numbers", "markup"}),
    ("NOT kratom", EVERY - {"rats", "numbers", "markup"}),
    ('"rat model"', {"rat"}),
    ('"model rat"', set()),
    ('"dose 3.5"', {"numbers"}),
    ("COVID-19", {"covid", "covid_space"}),
    ("covid19", {"covid19"}),
    ("covid*", {"covid", "covid_space", "covid19"}),
    ("post-traumatic", {"hyphen"}),
    ("posttraumatic", {"joined"}),
    ("post*", {"hyphen", "joined"}),
    ("traumatic", {"hyphen"}),
    ("trauma", {"hyphen", "joined"}),  # in the abstracts
    ("Alzheimer's", {"alzheimer"}),
    ("alzheimer", {"alzheimer"}),
    ("NAÏVE", {"accents"}),
    ("naive", set()),  # accents count
    ("éclair", {"accents"}),
    ("3.5", {"numbers"}),
    ("mg/kg", {"numbers"}),
    ("x86", {"numbers"}),
    ("and", {"covid", "alzheimer"}),  # a word in small letters, not the operator
    ("(rat OR covid*) AND NOT registry", {"rat", "covid", "covid_space"}),
    ("stress -covid", {"hyphen"}),
    ("stress -(covid OR veterans)", set()),
    ("growth?", {"joined"}),
    ("COVID-19: a review", set()),  # a pasted title: the colon separates words
    ("Kratom - in rats", {"rats"}),  # a dash alone is punctuation, not NOT
    ("script", {"markup"}),
    ("kratom' & !rats | <-> :*", {"rats"}),  # tsquery syntax typed is no syntax: words kratom, rats
]


@pytest.fixture
def records(review):
    search = Search.objects.create(review=review, kind="file", source="Embase", filename="words.ris")
    made = {
        name: Record.objects.create(review=review, search=search, source="Embase", title=title, abstract=abstract)
        for name, (title, abstract) in RECORDS.items()
    }
    return {record.pk: name for name, record in made.items()}


@pytest.mark.parametrize(("typed", "expected"), QUERIES, ids=[q for q, _ in QUERIES])
def test_the_same_records_match_on_either_database(review, bob, records, typed, expected):
    membership = review.memberships.get(user=bob)
    base = Record.objects.for_review(review)
    filters = RecordFilter({"q": typed}, queryset=base, review=review, user=bob, membership=membership)
    assert filters.is_valid(), filters.errors
    assert {records[pk] for pk in filters.qs.values_list("pk", flat=True)} == expected


# Reading what was typed ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "tree"),
    [
        ("rat mice", All((Term(("rat",)), Term(("mice",))))),
        ("rat OR mice", Any((Term(("rat",)), Term(("mice",))))),
        ("rat -mice*", All((Term(("rat",)), Not(Term(("mice",), prefix=True))))),
        ('"Post-Traumatic stress"', Term(("post", "traumatic", "stress"))),
        ("COVID-19*", Term(("covid", "19"), prefix=True)),
        ("a OR b AND c", Any((Term(("a",)), All((Term(("b",)), Term(("c",))))))),
        ("rat && ; ,", Term(("rat",))),  # no word in "&&", ";" or ",": nothing to look for there
        ("   ", None),
    ],
)
def test_what_is_typed_reads_as_a_tree(typed, tree):
    assert textsearch.parse(typed) == tree


def test_the_tsquery_is_built_from_the_words_only():
    # Quotes, colons and bars typed are separators, never tsquery syntax.
    query = textsearch.parse("(\"it's\" OR (x' | y'):*) AND NOT covid-19*")
    assert textsearch.tsquery(query) == "((('it' <-> 's') | (('x') & ('y'))) & !('covid' <-> '19':*))"


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ('"rat model', 'A quotation mark (") is not closed.'),
        ("(rat OR mice", "A parenthesis is not closed."),
        ("rat OR mice)", "A closing parenthesis has no opening one."),
        ("NOT", "AND, OR and NOT each need a word after them"),
        ("rat AND", "AND, OR and NOT each need a word after them"),
        ("OR rat", "AND, OR and NOT each need a word after them"),
        ("*ma", "A wildcard (*) can only end a word (rat*), not begin it: *ma"),
        ("r*t", "A wildcard (*) can only end a word (rat*): r*t"),
        ("--- ;", "The search has no letters or digits to look for."),
        ("rat " * 300, "The search is 1200 characters long; it can be at most 1000."),
        ("(" * 11 + "a OR b" + ")" * 11, "Parentheses can be nested 10 deep at most."),
    ],
)
def test_what_cannot_be_read_says_why(typed, message):
    with pytest.raises(textsearch.SearchSyntaxError, match=None) as error:
        textsearch.parse(typed)
    assert message in str(error.value)


def test_a_search_that_cannot_be_read_lists_nothing_and_says_why(client, review, bob, records):
    client.force_login(bob)
    response = client.get(reverse("screening:records", args=[review.slug]), {"q": '"rat model'})
    assert response.status_code == 200
    page = response.content.decode()
    assert "A quotation mark (&quot;) is not closed." in page
    assert list(response.context["table"].paginated_rows) == []
    assert "0 records match" in page
    # The box says what it understands.
    assert 'aria-describedby="search-help"' in page and "rat* for rat, rats" in page


# Highlighting -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "title", "shown"),
    [
        ("rat*", "Rats and a rat", "<mark>Rats</mark> and a <mark>rat</mark>"),
        ("rat", "Rats and a rat", "Rats and a <mark>rat</mark>"),
        ('"rat model"', "A rat model, a rat", "A <mark>rat model</mark>, a rat"),
        ("COVID-19", "COVID-19 & covid 19", "<mark>COVID-19</mark> &amp; <mark>covid 19</mark>"),
        ("kratom -rat", "Kratom in a rat", "<mark>Kratom</mark> in a rat"),  # what is excluded is not marked
        ("post* traumatic", "Post-traumatic", "<mark>Post</mark>-<mark>traumatic</mark>"),
        ("script", "<script>alert(1)</script>", "&lt;<mark>script</mark>&gt;alert(1)&lt;/<mark>script</mark>&gt;"),
        ("mark", "<mark>x</mark>", "&lt;<mark>mark</mark>&gt;x&lt;/<mark>mark</mark>&gt;"),
    ],
)
def test_matches_are_marked_in_escaped_text(typed, title, shown):
    assert textsearch.highlight(title, textsearch.parse(typed)) == shown


def test_the_table_marks_the_matches_in_the_titles_escaped(client, review, bob, records):
    client.force_login(bob)
    response = client.get(reverse("screening:records", args=[review.slug]), {"q": "script OR kratom"})
    page = response.content.decode()
    assert "&lt;<mark>script</mark>&gt;alert(1)&lt;/<mark>script</mark>&gt; <mark>kratom</mark>" in page
    assert "<script>alert" not in page
    assert "<mark>Kratom</mark> in rats" in page
    # Without a search nothing is marked.
    page = client.get(reverse("screening:records", args=[review.slug])).content.decode()
    assert "<mark>" not in page and "&lt;script&gt;alert(1)" in page


# PostgreSQL: the word index serves the search ---------------------------------------------------


@on_postgresql
def test_postgresql_answers_the_search_from_the_word_index(review, bob, records):
    membership = review.memberships.get(user=bob)
    landed = Record.objects.all()  # no review condition, which other indexes would serve
    filters = RecordFilter(
        {"q": '"rat model" OR covid*'}, queryset=landed, review=review, user=bob, membership=membership
    )
    savepoint = transaction.savepoint()
    with connection.cursor() as cursor:
        # In this tiny table the records table's own index reads every landed record more cheaply.
        cursor.execute("DROP INDEX record_review_listed")
        cursor.execute("ANALYZE review_record")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        text = filters.qs.explain()
    transaction.savepoint_rollback(savepoint)
    assert "Bitmap Index Scan on record_words_landed" in text, text
    assert "'''rat'' <-> ''model'' | ''covid'':*'::tsquery" in text, text


@on_postgresql
def test_postgresql_word_index_takes_a_record_once_when_it_lands(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'review_record'")
        indexes = dict(cursor.fetchall())
        cursor.execute("SELECT stxname FROM pg_statistic_ext")
        statistics = {name for (name,) in cursor.fetchall()}
    assert not [name for name in indexes if "trgm" in name]  # the trigram indexes are gone
    assert indexes["record_words_landed"].endswith("WHERE (NOT staged)")
    assert "to_tsvector('simple'::regconfig, regexp_replace(" in indexes["record_words_landed"]
    assert "record_words" in statistics and not {"record_title_upper", "record_abstract_upper"} & statistics


TRICKY = [
    "COVID-19, IL-6 and 5-HT2A; post-traumatic",
    "3.5 mg/kg, 1e+5 and -8; v1.2.3 of 10.1016/j.x.2020.01.001",
    "e.g. http://x.org/a?b=c#d, foo@bar.com, C:\\path\\file.txt /usr/bin ~user",
    "<i>Drosophila</i> &amp; &#946; x86_64 __init__",
    "Alzheimer's don't 1/2 ¼ x² 3−2 50% $5",
    "Müller–Lyon naïve ﬁsh İstanbul Straße 北京 Ωmega",
]


@on_postgresql
def test_postgresql_indexes_the_words_python_reads(review):
    # The same words, in the same order (positions make phrases), from PostgreSQL's parser over the
    # index's expression as from textsearch.WORD: what makes the two databases agree.
    search = Search.objects.create(review=review, kind="file", source="Embase", filename="tricky.ris")
    for text in TRICKY:
        Record.objects.create(review=review, search=search, source="Embase", title=text[:20], abstract=text[20:])
    rows = (
        Record.objects.filter(search=search)
        .annotate(words=textsearch.Words())
        .values_list("title", "abstract", "words")
    )
    for title, abstract, vector in rows:
        positions = {}
        for lexeme, at in re.findall(r"'((?:[^']|'')*)':([\d,]+)", vector):
            for position in at.split(","):
                positions[int(position)] = lexeme.replace("''", "'")
        read = [textsearch._lower(w) for w in textsearch.WORD.findall(title + " " + abstract)]
        assert [positions[p] for p in sorted(positions)] == read
