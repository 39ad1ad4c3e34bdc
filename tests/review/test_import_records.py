"""manage.py import_records: a thin command over review.importing.import_file."""

import io

import pytest
from django.core.management import CommandError, call_command

from review.models import Record, Search
from tests.shared import shared


def _run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("import_records", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_alice_imports_endnote_then_zotero_and_sees_the_duplicates(review, alice):
    out, _ = _run(review.slug, str(shared("fixtures", "exports", "baseline_endnote.ris")), "--user", "alice")
    assert out.strip() == "baseline_endnote.ris (RIS, source Lens): 100 added, 0 duplicates, 0 skipped"
    out, _ = _run(review.slug, str(shared("fixtures", "exports", "baseline_zotero.ris")))
    assert "100 added, 100 duplicates, 0 skipped" in out
    assert Search.objects.filter(review=review).first().run_by == alice


def test_the_source_defaults_to_the_database_and_can_be_named(review):
    out, _ = _run(review.slug, str(shared("fixtures", "medline", "pubmed_result2.txt")))
    assert "(MEDLINE, source PubMed): 4 added" in out
    out, _ = _run(review.slug, str(shared("fixtures", "exports", "scopus.ris")), "--source", "Scopus (2024-05-01)")
    assert "source Scopus (2024-05-01)" in out
    assert Record.objects.filter(review=review, source="Scopus (2024-05-01)").count() == 6


def test_warnings_go_to_stderr_and_empty_records_are_counted(review):
    out, err = _run(review.slug, str(shared("fixtures", "exports", "faulty_year.ris")))
    assert "'10 15' is not a year" in err and "1 added" in out
    out, _ = _run(review.slug, str(shared("fixtures", "exports", "baseline_reference_types.ris")))
    assert "0 added, 0 duplicates, 0 skipped, 61 empty left out" in out


def test_a_bad_file_stops_the_command_and_stores_nothing(review, tmp_path):
    path = tmp_path / "cut.ris"
    path.write_text(shared("fixtures", "exports", "scopus.ris").read_text(encoding="utf-8").rsplit("ER  -", 1)[0])
    with pytest.raises(CommandError, match=r"Nothing imported: cut\.ris: record 6 \(line \d+\) is cut short"):
        _run(review.slug, str(path))
    assert not Record.objects.exists() and not Search.objects.exists()


def test_unknown_review_user_or_file(review, tmp_path):
    with pytest.raises(CommandError, match="No review with slug 'nope'"):
        _run("nope", str(shared("fixtures", "exports", "scopus.ris")))
    with pytest.raises(CommandError, match="No user named 'zed'"):
        _run(review.slug, str(shared("fixtures", "exports", "scopus.ris")), "--user", "zed")
    with pytest.raises(CommandError, match="missing.ris: cannot be opened"):
        _run(review.slug, str(tmp_path / "missing.ris"))


def test_the_command_reports_records_read_on_stderr_as_it_goes(review, monkeypatch):
    from review import importing

    monkeypatch.setattr(importing, "PARSED_EVERY", 40)
    out, err = _run(review.slug, str(shared("fixtures", "exports", "baseline_endnote.ris")))
    assert [line for line in err.replace("\r", "\n").split("\n") if line] == [
        "Read 40 records",
        "Read 80 records",
        "Read 100 records",
    ]
    assert "100 added" in out
