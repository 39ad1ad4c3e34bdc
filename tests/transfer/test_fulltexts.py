"""Full texts in the review file (format version 3): each PDF travels in the archive, is checked
on import (PDF, size limit, the SHA-256 and size its row gives) and stored under a new name; a bad
PDF refuses the whole file, naming the record, and no PDF of a failed or abandoned import stays
in the storage."""

import hashlib
import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from review import fulltexts
from review.models import FullText, Job, Record, Review, Search
from tests.transfer.conftest import stored_files
from tests.transfer.test_file_checks import forge, nothing_written, rewrite
from tests.transfer.test_views import download
from transfer import importing, tasks
from transfer.exporting import ExportError, export_review
from transfer.fileformat import FORMAT_VERSION
from transfer.importing import TransferError, discard_abandoned_review_imports, import_review

PDF = b"%PDF-1.4\n% the cohort study\n" + b"x" * 5000 + b"\n%%EOF\n"
OTHER = b"%PDF-1.7\n% the trial\n%%EOF\n"


@pytest.fixture
def records(review):
    search = Search.objects.create(review=review, kind="file", source="Embase")
    Record.objects.bulk_create(
        Record(review=review, search=search, source="Embase", title=f"Kratom cohort {i}", pmid=str(100 + i))
        for i in range(4)
    )
    return list(Record.objects.filter(review=review).order_by("pk"))


@pytest.fixture
def exported(records, bob, tmp_path):
    fulltexts.attach(records[0], PDF, filename="cohort.pdf", user=bob)
    fulltexts.attach(records[1], OTHER, filename="PMC5.pdf", source=FullText.Source.PMC, pmcid="PMC5")
    FullText.objects.create(record=records[2], oa_checked_at=timezone.now(), oa_note=fulltexts.NO_OPEN_ACCESS)
    path = tmp_path / "kratom.zip"
    result = export_review(review=records[0].review, out=path)
    assert (result.pdfs, result.pdf_bytes) == (2, len(PDF) + len(OTHER))
    return path


def rows(path, name="fulltexts.jsonl"):
    with zipfile.ZipFile(path) as archive:
        return [json.loads(line) for line in archive.read(name).splitlines()]


def test_the_file_holds_each_pdf_under_its_records_id_and_no_storage_name(exported, records, pdf_storage):
    with zipfile.ZipFile(exported) as archive:
        assert json.loads(archive.read("manifest.json"))["version"] == FORMAT_VERSION == 3
        assert archive.read(f"fulltexts/{records[0].pk}.pdf") == PDF
        assert archive.read(f"fulltexts/{records[1].pk}.pdf") == OTHER
        assert archive.getinfo(f"fulltexts/{records[0].pk}.pdf").compress_type == zipfile.ZIP_STORED
    by_record = {row["record"]: row for row in rows(exported)}
    assert by_record[records[0].pk]["file"] == f"fulltexts/{records[0].pk}.pdf"
    assert by_record[records[0].pk]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert by_record[records[1].pk]["oa_pmcid"] == "PMC5"
    assert by_record[records[2].pk]["file"] == "" and by_record[records[2].pk]["oa_note"]
    # The server's own storage names stay on the server.
    stored = {f.file.name for f in FullText.objects.exclude(file="")}
    text = zipfile.ZipFile(exported).read("fulltexts.jsonl").decode()
    assert stored and not any(name in text for name in stored)


def test_the_copy_serves_the_same_pdfs_from_files_of_its_own(exported, records, client, alice, pdf_storage):
    copy = import_review(source=exported, slug="copy").review
    originals = stored_files(pdf_storage)
    texts = {f.record.title: f for f in FullText.objects.filter(record__review=copy).select_related("record")}
    assert set(texts) == {"Kratom cohort 0", "Kratom cohort 1", "Kratom cohort 2"}
    first = texts["Kratom cohort 0"]
    assert first.file.name.startswith(f"{copy.pk}/") and first.filename == "cohort.pdf"
    assert (first.size, first.source, first.added_by.username) == (len(PDF), "upload", "bob")
    assert texts["Kratom cohort 1"].oa_pmcid == "PMC5" and not texts["Kratom cohort 2"].has_pdf
    assert len([n for n in originals if n.startswith(f"{copy.pk}/")]) == 2
    # Served by the copy's own page, to its members.
    client.force_login(alice)
    response = client.get(reverse("screening:fulltext_pdf", args=[copy.slug, first.record_id]))
    assert response.status_code == 200 and b"".join(response.streaming_content) == PDF


def _pdf_changed(exported, record, data, *, fix_row=False, size=None):
    """The file with record ``record``'s PDF replaced by ``data``; ``fix_row`` also forges the row's
    SHA-256 and size (and the manifest's checksum of the section) to match."""
    member = f"fulltexts/{record.pk}.pdf"
    out = exported.with_name("tampered.zip")
    with zipfile.ZipFile(exported) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, data if item.filename == member else src.read(item))
    if not fix_row:
        return out

    def change(text):
        lines = []
        for line in text.splitlines():
            row = json.loads(line)
            if row["record"] == record.pk:
                row["sha256"], row["size"] = hashlib.sha256(data).hexdigest(), len(data) if size is None else size
            lines.append(json.dumps(row))
        return "\n".join(lines) + "\n"

    return forge(out, "fulltexts.jsonl", change)


@pytest.mark.parametrize(
    "data, fix_row, size, message",
    [
        (PDF.replace(b"cohort", b"forged"), False, None, "SHA-256 is not the one its record gives"),
        (b"MZ\x90\x00 not a pdf" * 10, True, None, "not a PDF"),
        (b"", True, None, "the file is empty"),
        (PDF, True, 12, "not the 12 its record gives"),
    ],
)
def test_a_tampered_pdf_refuses_the_file_naming_the_record_and_nothing_lands(
    exported, records, pdf_storage, data, fix_row, size, message
):
    before = stored_files(pdf_storage)
    reviews, users = Review.objects.count(), 3
    # The second PDF is the bad one: the first was stored already when the import fails.
    tampered = _pdf_changed(exported, records[1], data, fix_row=fix_row, size=size)
    with pytest.raises(TransferError, match=message) as refused:
        import_review(source=tampered, slug="copy")
    assert f"the PDF of record {records[1].pk} in the file (“Kratom cohort 1”)" in str(refused.value)
    assert "fulltexts.jsonl, line 2" in str(refused.value)
    nothing_written(reviews, users)
    assert not FullText.objects.exclude(record__review=records[0].review).exists()
    assert stored_files(pdf_storage) == before  # the first PDF, stored, was removed


def test_a_pdf_over_the_size_limit_is_refused(exported, records, settings, pdf_storage):
    before = stored_files(pdf_storage)
    settings.SIEVE_MAX_PDF_SIZE = 1000  # OTHER (under) is stored, PDF (over) refused
    with pytest.raises(TransferError, match=f"record {records[0].pk} in the file.*larger than the"):
        import_review(source=exported, slug="copy")
    assert stored_files(pdf_storage) == before and not Review.objects.filter(slug="copy").exists()


@pytest.mark.parametrize(
    "change, message",
    [
        # A row naming another member (or a path) is refused, never used as a name.
        (lambda row: {**row, "file": "../../settings.py"}, "file must be 'fulltexts/"),
        (lambda row: {**row, "file": f"fulltexts/{row['record'] + 1}.pdf"}, "file must be 'fulltexts/"),
        (lambda row: {**row, "sha256": None}, "needs its sha256 and size"),
        (lambda row: {**row, "record": 99999, "file": "fulltexts/99999.pdf"}, "has no fulltexts/99999.pdf"),
    ],
)
def test_a_forged_fulltexts_row_is_refused(exported, records, pdf_storage, change, message):
    before = stored_files(pdf_storage)

    def forged(text):
        lines = [json.loads(line) for line in text.splitlines()]
        lines[0] = change(lines[0])
        return "\n".join(json.dumps(row) for row in lines) + "\n"

    with pytest.raises(TransferError, match=message):
        import_review(source=forge(exported, "fulltexts.jsonl", forged), slug="copy")
    assert stored_files(pdf_storage) == before and not Review.objects.filter(slug="copy").exists()


def test_a_missing_pdf_member_is_refused(exported, records, pdf_storage):
    member = f"fulltexts/{records[0].pk}.pdf"
    out = exported.with_name("cut.zip")
    with zipfile.ZipFile(exported) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            if item.filename != member:
                dst.writestr(item, src.read(item))
    with pytest.raises(TransferError, match=f"has no {member}"):
        import_review(source=out, slug="copy")


def test_a_failure_after_the_pdfs_are_stored_removes_them(exported, pdf_storage):
    before = stored_files(pdf_storage)

    def landing():
        assert len(stored_files(pdf_storage)) == len(before) + 2  # both stored, then the landing fails
        raise TransferError("stopped at the landing")

    with pytest.raises(TransferError, match="stopped at the landing"):
        import_review(source=exported, slug="copy", landing=landing)
    assert stored_files(pdf_storage) == before


def test_a_killed_import_leaves_its_pdfs_only_until_the_staged_clean_up(exported, pdf_storage, monkeypatch):
    before = stored_files(pdf_storage)
    # Killed at the landing: no clean-up runs in the import's own process.
    monkeypatch.setattr(importing, "_discard_quietly", lambda loader: None)

    def killed():
        raise SystemExit

    with pytest.raises(SystemExit):
        import_review(source=exported, slug="copy", landing=killed)
    staged = Review.all_objects.get(slug="copy")
    left = stored_files(pdf_storage) - before
    assert len(left) == 2 and all(name.startswith(f"{staged.pk}/") for name in left)
    # A PDF stored just before the kill, whose row was never written, is in the review's folder too.
    pdf_storage.save(f"{staged.pk}/unwritten.pdf", ContentFile(OTHER))

    assert discard_abandoned_review_imports() == 0  # still within the time a live import may take
    assert len(stored_files(pdf_storage) - before) == 3
    Review.all_objects.filter(pk=staged.pk).update(staged_at=timezone.now() - timedelta(days=1))
    assert discard_abandoned_review_imports() == 1
    assert stored_files(pdf_storage) == before
    assert not FullText.objects.filter(record__review_id=staged.pk).exists()


def test_a_version_2_file_without_full_texts_still_imports(exported, records):
    def as_version_2(text):
        manifest = json.loads(text)
        manifest["version"] = 2
        del manifest["sections"]["fulltexts"]
        return json.dumps(manifest)

    old = rewrite(exported, "manifest.json", as_version_2)
    v2 = old.with_name("v2.zip")
    with zipfile.ZipFile(old) as src, zipfile.ZipFile(v2, "w") as dst:
        for item in src.infolist():
            if not item.filename.startswith("fulltexts"):
                dst.writestr(item, src.read(item))
    copy = import_review(source=v2, slug="copy").review
    assert Record.objects.for_review(copy).count() == 4
    assert not FullText.objects.filter(record__review=copy).exists()


def test_an_export_whose_pdf_is_gone_from_the_storage_says_which(records, pdf_storage, tmp_path):
    fulltext = fulltexts.attach(records[3], PDF, filename="lost.pdf")
    pdf_storage.delete(fulltext.file.name)
    with pytest.raises(ExportError, match=f"record #{records[3].pk} \\(lost.pdf\\) is missing"):
        export_review(review=records[0].review, out=tmp_path / "out.zip")
    with pytest.raises(CommandError, match="is missing from the server's storage"):
        call_command("export_review", records[0].review.slug, "-o", str(tmp_path / "out2.zip"))
    assert not (tmp_path / "out2.zip").exists()


def test_pdfs_stored_after_another_process_discarded_the_import_are_removed(exported, pdf_storage, monkeypatch):
    # A job's re-run (or the next import) takes this import for abandoned and removes its staged
    # review, folder and all, just before this import stores its first PDF: that PDF and the next
    # are stored after the folder was emptied, and the import then stops (its review is gone).
    before = stored_files(pdf_storage)
    store = fulltexts.store_checked_stream
    discarded = []

    def store_after_a_discard(review_pk, *args, **kwargs):
        if not discarded:
            discarded.append(importing.discard_staged_import(review_pk))
        return store(review_pk, *args, **kwargs)

    monkeypatch.setattr(fulltexts, "store_checked_stream", store_after_a_discard)
    with pytest.raises(TransferError, match="nothing of it was imported"):
        import_review(source=exported, slug="copy")
    assert discarded == [True]
    assert stored_files(pdf_storage) == before


def test_full_texts_are_written_every_few_megabytes_of_pdfs_so_the_import_stays_alive(exported, monkeypatch):
    # A staged import silent for SIEVE_IMPORT_STALE_SECONDS is taken for abandoned: copying a
    # thousand large PDFs before writing their rows would look like that.
    monkeypatch.setattr(importing, "PDF_BYTES_PER_BATCH", 1)
    writes = []
    flush = importing._Loader.flush

    def counted(loader, table, pending, ids):
        if table.model is FullText and pending:
            writes.append(len(pending))
        return flush(loader, table, pending, ids)

    monkeypatch.setattr(importing._Loader, "flush", counted)
    import_review(source=exported, slug="copy")
    assert writes == [1, 1, 1]  # each PDF's row at once; the row without a PDF at the end


def test_the_web_export_and_import_jobs_carry_the_pdfs(exported, records, client, alice, dave, pdf_storage):
    client.force_login(alice)
    data = download(client, records[0].review)
    client.force_login(dave)
    upload = io.BytesIO(data)
    upload.name = "kratom.sieve.zip"
    client.post(reverse("transfer:import"), {"file": upload, "slug": "kratom-copy"})
    tasks.import_review_file.call(job_id=Job.objects.get(kind=Job.Kind.REVIEW_IMPORT).pk)
    copy = Review.objects.get(slug="kratom-copy")
    record = Record.objects.get(review=copy, title="Kratom cohort 0")
    response = client.get(reverse("screening:fulltext_pdf", args=[copy.slug, record.pk]))
    assert response.status_code == 200 and b"".join(response.streaming_content) == PDF
    page = client.get(reverse("review:record", args=[copy.slug, record.pk])).content.decode()
    assert "cohort.pdf" in page and "Download the PDF" in page


def test_a_web_export_whose_pdf_is_gone_fails_saying_which_and_leaves_no_file(
    records, client, alice, pdf_storage, settings
):
    fulltext = fulltexts.attach(records[3], PDF, filename="lost.pdf")
    pdf_storage.delete(fulltext.file.name)
    client.force_login(alice)
    client.post(reverse("review:export", args=[records[0].review.slug]))
    job = Job.objects.get(kind=Job.Kind.EXPORT)
    tasks.export_review_file.call(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and f"record #{records[3].pk} (lost.pdf) is missing" in job.error
    assert list(Path(settings.SIEVE_EXPORT_DIR).iterdir()) == []


def test_a_stream_over_the_limit_is_refused_while_read_and_nothing_is_stored(review, settings, pdf_storage):
    # Whatever size the zip announces, the bytes read are counted.
    settings.SIEVE_MAX_PDF_SIZE = 1000
    with pytest.raises(fulltexts.FullTextError, match="x.pdf: the file is larger than"):
        fulltexts.store_checked_stream(review.pk, io.BytesIO(PDF), name="x.pdf", sha256=hashlib.sha256(PDF).hexdigest())
    assert stored_files(pdf_storage) == set()
    name = fulltexts.store_checked_stream(
        review.pk, io.BytesIO(OTHER), name="y.pdf", sha256=hashlib.sha256(OTHER).hexdigest(), size=len(OTHER)
    )
    assert name.startswith(f"{review.pk}/") and pdf_storage.open(name).read() == OTHER
