"""A job moving a big review shows how far it got: export_review and import_review report
``progress(rows done, rows in all)`` as they go (the background-job page draws its bar from it)."""

import pytest

from review.models import Record, Search
from screening.decisions import record_decision
from transfer import exporting, importing
from transfer.exporting import export_review
from transfer.importing import import_review


@pytest.fixture
def exported(review, bob, tmp_path, monkeypatch):
    search = Search.objects.create(review=review, kind="file", source="Embase")
    records = Record.objects.bulk_create(
        Record(review=review, search=search, source="Embase", title=f"Kratom cohort {i}") for i in range(60)
    )
    Record.objects.filter(pk=records[1].pk).update(duplicate_of=records[0], duplicate_reason="title")
    for record in records[2:22]:
        record_decision(record=record, reviewer=bob, stage="title_abstract", decision="exclude")
    # Small steps, so that a small review reports several times.
    monkeypatch.setattr(exporting, "CHUNK", 7)
    monkeypatch.setattr(exporting, "PROGRESS_EVERY", 10)
    monkeypatch.setattr(importing, "BATCH", 7)
    monkeypatch.setattr(importing, "PROGRESS_EVERY", 10)
    calls = []
    path = tmp_path / "kratom.zip"
    result = export_review(review=review, out=path, progress=lambda done, total: calls.append((done, total)))
    return path, result, calls


def assert_counts_up_to(calls, total):
    assert len(calls) >= 5, calls
    done = [d for d, _ in calls]
    assert done == sorted(done) and len(set(done)) == len(done)  # increasing
    assert {t for _, t in calls} == {total}
    assert calls[-1] == (total, total)


def test_the_export_reports_rows_written_of_rows_to_write(exported):
    _, result, calls = exported
    rows = sum(n for name, n in result.counts.items() if name != "users")
    assert rows > 60 + 20 + 20  # records, decisions, their events
    assert_counts_up_to(calls, rows)


def test_the_import_reports_rows_written_of_rows_in_the_file(exported):
    path, result, _ = exported
    calls = []
    imported = import_review(source=path, slug="copy", progress=lambda done, total: calls.append((done, total)))
    rows = sum(n for name, n in result.counts.items() if name != "users")
    assert sum(imported.counts.values()) == rows
    assert_counts_up_to(calls, rows)
    assert Record.objects.filter(review=imported.review).count() == 60
    assert Record.objects.filter(review=imported.review, duplicate_of__isnull=False).count() == 1
