"""Deduplication on import: PMID and DOI first, then title + year + first author; merges undone."""

import dataclasses

import pytest

from review import dedup
from review.importers import medline, ris
from review.importing import import_articles, import_file, merge, unmerge
from review.models import Event, Record, Search
from tests.shared import shared


def _import(review, *parts):
    return import_file(review=review, path=shared("fixtures", *parts))


def _zotero_articles():
    with shared("fixtures", "exports", "baseline_zotero.ris").open(encoding="utf-8") as lines:
        return list(ris.parse(lines, "baseline_zotero.ris"))


def _store(review, articles, source="by hand"):
    search = Search(review=review, kind=Search.Kind.FILE, source=source)
    return import_articles(search=search, articles=articles)


def test_the_same_100_records_from_endnote_and_zotero_are_100_duplicates(review):
    endnote = _import(review, "exports", "baseline_endnote.ris")
    zotero = _import(review, "exports", "baseline_zotero.ris")
    assert (endnote.added, endnote.duplicates) == (100, 0)
    assert (zotero.added, zotero.duplicates) == (100, 100)
    records = Record.objects.for_review(review)
    assert records.unique().count() == 100 and records.duplicates().count() == 100
    # Every Zotero record points at an EndNote record, never at another Zotero record.
    assert set(records.duplicates().values_list("search", flat=True)) == {zotero.search.pk}
    assert set(records.duplicates().values_list("duplicate_of__search", flat=True)) == {endnote.search.pk}
    assert Event.objects.filter(review=review, kind=Event.Kind.MERGE).count() == 100


def test_without_dois_the_zotero_records_still_match_by_title_year_and_first_author(review):
    _import(review, "exports", "baseline_endnote.ris")
    articles = [dataclasses.replace(a, doi="", url="") for a in _zotero_articles()]
    result = _store(review, articles)
    assert result.duplicates == 100
    assert set(result.reasons) <= {"title", "title_fuzzy"}


def test_equal_titles_with_different_dois_are_different_reports(review):
    original = _zotero_articles()[0]
    correction = dataclasses.replace(original, doi="10.1038/s42256-021-00300-1")
    result = _store(review, [original, correction])
    assert (result.added, result.duplicates) == (2, 0)


def test_a_title_variant_one_year_later_with_the_first_author_abbreviated_is_a_duplicate(review):
    original = _zotero_articles()[0]
    variant = dataclasses.replace(
        original,
        doi="",
        title=original.title.upper() + ".",
        year=original.year + 1,
        authors=["Van De Schoot, R."] + original.authors[1:],
    )
    result = _store(review, [original, variant])
    assert result.duplicates == 1 and dict(result.reasons) == {"title": 1}


def test_the_same_title_two_years_apart_or_by_another_first_author_is_not_a_duplicate(review):
    original = _zotero_articles()[0]
    later = dataclasses.replace(original, doi="", year=original.year + 2)
    other_author = dataclasses.replace(original, doi="", authors=["Oberski, Daniel"])
    result = _store(review, [original, later, other_author])
    assert result.duplicates == 0


def test_the_duplicate_records_csv_finds_its_duplicates(review):
    result = _import(review, "exports", "duplicate_records.csv")
    records = list(result.search.records.order_by("pk"))
    assert (result.added, result.duplicates) == (14, 2)
    # Row 2 repeats row 1's title "a" (without its DOI); row 4 ("c") shares DOI 10.3 with row 3 ("b").
    assert (records[1].duplicate_of, records[1].duplicate_reason) == (records[0], "title")
    assert (records[3].duplicate_of, records[3].duplicate_reason) == (records[2], "doi")
    # Blank DOIs ("   ") and empty titles never make two records alike.
    assert all(r.duplicate_of is None for i, r in enumerate(records) if i not in (1, 3))


def test_a_pubmed_record_seen_again_in_medline_format_is_matched_by_pmid(review):
    _import(review, "exports", "pubmed.xml")
    medline_first = import_file(review=review, path=shared("fixtures", "medline", "pubmed_result1.txt"))
    assert medline_first.duplicates == 0
    again = _import(review, "exports", "pubmed.xml")
    assert again.duplicates == 10 and dict(again.reasons) == {"pmid": 10}


def test_a_pmid_repeated_within_one_file_is_a_duplicate_not_skipped(review):
    with shared("fixtures", "medline", "pubmed_result2.txt").open() as lines:
        articles = list(medline.parse(lines, "pubmed_result2.txt"))
    result = _store(review, articles + articles[:1])
    assert (result.added, result.duplicates, result.skipped) == (5, 1, 0)
    assert dict(result.reasons) == {"pmid": 1}


def test_embase_ris_and_csv_of_the_same_search_are_duplicates(review):
    _import(review, "exports", "embase.ris")
    result = _import(review, "exports", "embase.csv")
    assert result.duplicates == 6 and dict(result.reasons) == {"doi": 6}


def test_undoing_a_merge_keeps_the_record_apart(review, alice):
    _import(review, "exports", "baseline_endnote.ris")
    _import(review, "exports", "baseline_zotero.ris")
    record = Record.objects.for_review(review).duplicates().order_by("pk").first()
    original = record.duplicate_of
    unmerge(record, user=alice)
    record.refresh_from_db()
    assert record.duplicate_of is None and record.not_duplicate and record.duplicate_reason == ""
    assert Record.objects.for_review(review).unique().count() == 101
    event = Event.objects.get(review=review, record=record, kind=Event.Kind.UNMERGE)
    assert event.detail == {"was_duplicate_of": original.pk} and event.actor == alice
    # A third copy of the same records still links to the earliest original.
    third = _import(review, "exports", "baseline_zotero.ris")
    assert third.duplicates == 100
    assert Record.objects.for_review(review).filter(search=third.search, duplicate_of=original).exists()


def test_merging_by_hand_points_at_the_surviving_original(review, alice):
    _import(review, "exports", "ovid_psycinfo.ris")
    a, b = Record.objects.for_review(review).order_by("pk")[:2]
    merge(b, into=a, user=alice)
    b.refresh_from_db()
    assert (b.duplicate_of, b.duplicate_reason) == (a, "manual")
    with pytest.raises(ValueError):
        merge(a, into=a, user=alice)


@pytest.mark.parametrize(
    "raw, norm",
    [
        ("https://doi.org/10.1000/ABC.", "10.1000/abc"),
        ("http://dx.doi.org/10.1002/cpp.2398", "10.1002/cpp.2398"),
        ("doi: 10.1016/J.BJOMS.2019.09.011", "10.1016/j.bjoms.2019.09.011"),
        ("10.1016%2fj.mehy.2019.109324", "10.1016/j.mehy.2019.109324"),
        ("10.3", "10.3"),
        ("   ", ""),
        ("not a doi", ""),
    ],
)
def test_normalise_doi(raw, norm):
    assert dedup.normalise_doi(raw) == norm


def test_normalise_title_folds_case_accents_markup_and_punctuation():
    assert dedup.normalise_title("<i>Café</i>-au-lait   spots: a REVIEW.") == "cafe au lait spots a review"
