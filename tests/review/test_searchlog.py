import csv
import io
from datetime import UTC, datetime

from review.importing import import_file
from review.models import Search
from review.searchlog import COLUMNS, search_log_csv
from tests.shared import shared


def test_every_search_and_import_is_logged_in_order(review, alice):
    pubmed = Search.objects.create(
        review=review,
        kind="pubmed",
        source="PubMed",
        query="kratom AND ptsd",
        query_translation='"kratom"[All Fields] AND "ptsd"[All Fields]',
        mindate="2000/01/01",
        maxdate="2024/12/31",
        run_at=datetime(2024, 5, 2, 9, 30, tzinfo=UTC),
        run_by=alice,
        hits=37,
        fetched=37,
        added=37,
    )
    endnote = import_file(
        review=review, path=shared("fixtures", "exports", "baseline_endnote.ris"), source="Embase", user=alice
    )
    zotero = import_file(review=review, path=shared("fixtures", "exports", "baseline_zotero.ris"), user=alice)

    rows = list(csv.DictReader(io.StringIO(search_log_csv(review))))
    assert list(rows[0]) == [header for _, header in COLUMNS]
    assert [r["Database / source"] for r in rows] == ["PubMed", "Embase", zotero.search.source]
    first, second, third = rows
    assert first["Date run (UTC)"] == "2024-05-02 09:30:00"
    assert (first["Kind"], first["Query"], first["Query translation"]) == (
        "PubMed search",
        pubmed.query,
        pubmed.query_translation,
    )
    assert (first["Date from"], first["Date to"], first["Hits"], first["Records added"]) == (
        "2000/01/01",
        "2024/12/31",
        "37",
        "37",
    )
    assert (second["Kind"], second["File name"], second["Run by"]) == ("File import", "baseline_endnote.ris", "alice")
    assert second["File format"] == endnote.search.file_format != ""
    assert second["Date run (UTC)"] == endnote.search.run_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert second["Hits"] == ""  # unknown for a file
    for row, result in [(second, endnote), (third, zotero)]:
        assert row["Records added"] == str(result.added)
        assert row["Duplicates"] == str(result.duplicates)
        assert row["Records fetched"] == str(result.search.fetched)
    # The Zotero export holds the same 100 records as the EndNote one: all of them duplicates.
    assert (third["Records added"], third["Duplicates"]) == ("100", "100")


def test_a_review_without_searches_has_only_the_header(review):
    assert search_log_csv(review).splitlines() == [",".join(header for _, header in COLUMNS)]
