"""Full texts: a record's PDF (upload, replace, remove, serve), bulk upload, open-access search."""

import io
import zipfile

import pytest
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from review import fulltexts
from review.models import Event, FullText, Job, Record, Search
from tests import eutils_server as stand_in

eutils_server = stand_in.eutils_server

PDF = b"%PDF-1.4\n% a small test file\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
OTHER_PDF = b"%PDF-1.7\n% another one\n%%EOF\n"


@pytest.fixture(autouse=True)
def storage(tmp_path, monkeypatch):
    """PDFs stored in the test's own folder (the field's storage is STORAGES['fulltexts'])."""
    store = FileSystemStorage(location=tmp_path / "fulltexts")
    monkeypatch.setattr(FullText._meta.get_field("file"), "storage", store)
    return store


@pytest.fixture
def records(review):
    search = Search.objects.create(review=review, kind="file", source="Embase")
    made = [
        Record(
            review=review, search=search, source="Embase", title="Kratom and PTSD", pmid="111", ta_outcome="include"
        ),
        Record(
            review=review, search=search, source="Embase", title="Kratom in veterans", doi="10.1000/ABC.1", pmid="222"
        ),
        Record(
            review=review, search=search, source="Embase", title="Twin one", doi="10.1000/twin", ta_outcome="include"
        ),
        Record(review=review, search=search, source="Embase", title="Twin two", doi="10.1000/TWIN"),
        Record(review=review, search=search, source="Embase", title="By key", source_key="Smith 2020", pmcid="PMC77"),
    ]
    Record.objects.bulk_create(made)
    return list(Record.objects.filter(review=review).order_by("pk"))


def upload(client, review, record, data=PDF, name="paper.pdf", **extra):
    url = reverse("screening:fulltext_upload", args=[review.slug, record.pk])
    return client.post(url, {"pdf": SimpleUploadedFile(name, data, "application/pdf"), **extra})


def fulltext_events(record):
    return list(Event.objects.filter(record=record, kind=Event.Kind.FULLTEXT).values_list("detail", flat=True))


# --- One record's PDF ----------------------------------------------------------------------------


def test_a_reviewer_attaches_then_replaces_then_removes_a_pdf_all_audited(
    client, review, records, bob, storage, django_capture_on_commit_callbacks
):
    record = records[0]
    client.force_login(bob)
    with django_capture_on_commit_callbacks(execute=True):
        assert upload(client, review, record, name="../../etc/Evil name<script>.pdf").status_code == 302
    fulltext = FullText.objects.get(record=record)
    first = fulltext.file.name
    # The stored name is the server's (review folder, random name), never the uploader's.
    assert first.startswith(f"{review.pk}/") and "Evil" not in first and ".." not in first
    assert fulltext.filename == "Evil name_script.pdf" and fulltext.size == len(PDF)
    assert storage.open(first).read() == PDF

    with django_capture_on_commit_callbacks(execute=True):
        upload(client, review, record, data=OTHER_PDF, name="better.pdf")
    fulltext.refresh_from_db()
    assert storage.open(fulltext.file.name).read() == OTHER_PDF
    assert not storage.exists(first)  # the replaced file is gone once the change is committed

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("screening:fulltext_remove", args=[review.slug, record.pk]))
    fulltext.refresh_from_db()
    assert not fulltext.file and not storage.listdir(str(review.pk))[1]
    details = fulltext_events(record)
    assert [(d["action"], d.get("filename")) for d in details] == [
        ("added", "Evil name_script.pdf"),
        ("replaced", "better.pdf"),
        ("removed", "better.pdf"),
    ]
    assert Event.objects.filter(record=record, kind=Event.Kind.FULLTEXT, actor=bob).count() == 3


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"<html>not a pdf</html>", "not a PDF"), (b"", "the file is empty"), (PDF + b"x" * 2000, "larger than")],
)
def test_what_is_not_an_acceptable_pdf_is_refused_with_a_clear_message(
    client, review, records, bob, settings, data, message
):
    settings.SIEVE_MAX_PDF_SIZE = 1000
    client.force_login(bob)
    response = upload(client, review, records[0], data=data, name="x.pdf", next="/r/kratom-ptsd/")
    assert response.status_code == 302 and response["Location"] == "/r/kratom-ptsd/"
    page = client.get(reverse("review:record", args=[review.slug, records[0].pk]))
    assert message in page.content.decode()
    assert not FullText.objects.filter(record=records[0]).exclude(file="").exists()
    assert fulltext_events(records[0]) == []


def test_the_pdf_is_served_to_members_only_with_safe_headers(client, review, records, alice, erin, dave):
    record = records[0]
    fulltexts.attach(record, PDF, filename='we"ird; name.pdf', user=alice)
    url = reverse("screening:fulltext_pdf", args=[review.slug, record.pk])

    client.force_login(dave)  # an outsider
    assert client.get(url).status_code == 404
    assert upload(client, review, record).status_code == 404

    client.force_login(erin)  # a viewer reads, changes nothing
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"] == 'inline; filename="we_ird_ name.pdf"'
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self';" in response["Content-Security-Policy"] + ";"
    assert "'none' 'self'" not in response["Content-Security-Policy"]
    download = client.get(url + "?download=1")
    assert download["Content-Disposition"].startswith("attachment;")
    assert upload(client, review, record, data=OTHER_PDF).status_code == 403
    assert client.post(reverse("screening:fulltext_remove", args=[review.slug, record.pk])).status_code == 403
    assert len(fulltext_events(record)) == 1

    # A record without a PDF: 404, as for any missing thing.
    assert client.get(reverse("screening:fulltext_pdf", args=[review.slug, records[1].pk])).status_code == 404


def test_the_full_text_card_shows_the_pdf_beside_the_decision_buttons(client, review, records, bob):
    record = records[0]  # at full text (included at title/abstract)
    fulltexts.attach(record, PDF, filename="paper.pdf", user=bob)
    client.force_login(bob)
    page = client.get(reverse("screening:screen", args=[review.slug, "full_text"]) + f"?record={record.pk}")
    html = page.content.decode()
    pdf_url = reverse("screening:fulltext_pdf", args=[review.slug, record.pk])
    assert f'<iframe class="fulltext-viewer" src="{pdf_url}"' in html
    assert html.index('class="decision-form"') < html.index("fulltext-viewer")
    assert f'href="{pdf_url}?download=1"' in html
    assert "frame-src 'self'" in page["Content-Security-Policy"]
    assert "object-src 'none'" in page["Content-Security-Policy"]
    # Title/abstract cards show no PDF panel.
    ta = client.get(reverse("screening:screen", args=[review.slug, "title_abstract"]) + f"?record={record.pk}")
    assert "fulltext-viewer" not in ta.content.decode()
    # The record's page shows it too, and the audit trail says what happened.
    detail = client.get(reverse("review:record", args=[review.slug, record.pk])).content.decode()
    assert f'src="{pdf_url}"' in detail and "PDF added: paper.pdf" in detail


# --- Bulk upload -----------------------------------------------------------------------------------


def test_bulk_upload_matches_by_pmid_doi_pmcid_and_file_name_and_never_guesses(client, review, records, bob):
    first, by_doi, twin, _, by_key = records
    for pmid in ("444", "555"):
        Record.objects.create(review=review, search=first.search, source="Embase", title=pmid, pmid=pmid)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("papers/10.1000_abc.1.pdf", PDF)  # DOI with "_" for "/", any case
        z.writestr("papers/notes.txt", b"hello")
        z.writestr("papers/555.pdf", b"hello")
        z.writestr("__MACOSX/._111.pdf", b"junk")
    files = [
        SimpleUploadedFile("111.pdf", PDF, "application/pdf"),  # PMID
        SimpleUploadedFile("PMC77.pdf", PDF, "application/pdf"),  # PMCID
        SimpleUploadedFile("10.1000_twin.pdf", PDF, "application/pdf"),  # two records share the DOI
        SimpleUploadedFile("999.pdf", PDF, "application/pdf"),  # no such PMID
        SimpleUploadedFile("smith 2020.pdf", PDF, "application/pdf"),  # source key: same record as PMC77
        SimpleUploadedFile("444.pdf", b"GIF89a", "application/pdf"),
        SimpleUploadedFile("all.zip", archive.getvalue(), "application/zip"),
    ]
    client.force_login(bob)
    response = client.post(reverse("screening:fulltext_bulk", args=[review.slug]), {"files": files})
    assert response.status_code == 200
    attached = {m.name: (m.record.pk, m.how) for m in response.context["attached"]}
    refused = {m.name: m.problem for m in response.context["refused"]}
    assert attached == {"111.pdf": (first.pk, "PMID"), "10.1000_abc.1.pdf": (by_doi.pk, "DOI")}
    assert refused["10.1000_twin.pdf"].startswith(f"ambiguous: records #{twin.pk}, #{twin.pk + 1}")
    assert "no record of this review has the PMID “999”" in refused["999.pdf"]
    assert "also named by smith 2020.pdf" in refused["PMC77.pdf"]
    assert "also named by PMC77.pdf" in refused["smith 2020.pdf"]
    assert refused["444.pdf"] == "444.pdf: not a PDF (a PDF file starts with “%PDF-”)."
    assert refused["555.pdf"] == "555.pdf: not a PDF (a PDF file starts with “%PDF-”)."
    assert refused["notes.txt"] == "no record of this review has the file name “notes”"
    assert "._111.pdf" not in refused
    assert set(FullText.objects.exclude(file="").values_list("record", flat=True)) == {first.pk, by_doi.pk}
    html = response.content.decode()
    assert "2 attached, 7 not attached" in html


def test_bulk_upload_is_refused_to_viewers_and_outsiders(client, review, records, erin, dave):
    url = reverse("screening:fulltext_bulk", args=[review.slug])
    client.force_login(erin)
    assert client.post(url, {"files": [SimpleUploadedFile("111.pdf", PDF)]}).status_code == 403
    client.force_login(dave)
    assert client.get(url).status_code == 404
    assert not FullText.objects.exists()


# --- Open access -------------------------------------------------------------------------------------


@pytest.fixture
def quick_ncbi(settings):
    settings.NCBI_MAX_TRIES = 2
    settings.NCBI_BACKOFF = 0.01
    settings.NCBI_RETRY_TOTAL = 2


def test_the_open_access_search_is_a_job_that_fetches_pmc_pdfs(
    client, review, records, bob, eutils_server, inline_worker, quick_ncbi
):
    search = records[0].search
    extra = Record.objects.create(
        review=review, search=search, source="Embase", title="Closed", pmid="333", ta_outcome="include"
    )
    no_pmid = records[2]  # at full text, no PMID
    eutils_server.pmc_links = {"111": "PMC900", "333": "PMC901"}
    eutils_server.pmc_oa = {"PMC900": PDF}  # PMC901 is in PMC but not open access
    client.force_login(bob)
    response = client.post(reverse("screening:fulltext_open_access", args=[review.slug]))
    job = Job.objects.get(kind=Job.Kind.FULLTEXT_SEARCH)
    assert response["Location"] == reverse("review:job", args=[review.slug, job.pk])
    assert job.status == Job.Status.DONE, job.error
    # Only records at full text (records[1] was not included) are asked about, in one elink.
    assert sorted(job.params["records"]) == sorted([records[0].pk, no_pmid.pk, extra.pk])
    (elink,) = eutils_server.requests("elink")
    assert sorted(elink.params["id_list"]) == ["111", "333"]
    assert job.result == {"asked": 2, "linked": 2, "fetched": 1}
    assert "2 records with a PMID or PMCID asked about" in job.summary and "1 without a PMID or PMCID" in job.summary
    assert (job.done, job.total) == (4, 4)  # the links, then each record
    page = client.get(response["Location"]).content.decode()
    assert "Open-access full-text search" in page and "1 PDFs fetched" in page

    fetched = FullText.objects.get(record=records[0])
    assert fetched.source == "pmc" and fetched.oa_pmcid == "PMC900"
    assert fetched.file.read() == PDF
    closed = FullText.objects.get(record=extra)
    assert not closed.file and closed.oa_pmcid == "PMC901" and "open-access subset" in closed.oa_note
    extra.refresh_from_db()
    assert extra.pmcid == "PMC901"
    assert fulltext_events(records[0])[0]["source"] == "pmc"

    card = client.get(reverse("screening:screen", args=[review.slug, "full_text"]) + f"?record={extra.pk}")
    assert "Read it on PubMed Central (PMC901)" in card.content.decode()


def test_a_record_without_a_pmc_copy_says_no_open_access_copy_found(
    client, review, records, bob, eutils_server, inline_worker, quick_ncbi
):
    client.force_login(bob)
    client.post(reverse("screening:fulltext_open_access", args=[review.slug]), {"record": records[0].pk})
    fulltext = FullText.objects.get(record=records[0])
    assert fulltext.oa_checked_at and not fulltext.oa_pmcid and not fulltext.file
    page = client.get(reverse("review:record", args=[review.slug, records[0].pk])).content.decode()
    assert "No open-access copy found" in page


def test_pubmed_unreachable_fails_the_job_with_a_clear_message(
    client, review, records, bob, eutils_server, inline_worker, quick_ncbi
):
    eutils_server.plan("elink", [stand_in.Fault(status=500)], forever=True)
    client.force_login(bob)
    client.post(reverse("screening:fulltext_open_access", args=[review.slug]))
    job = Job.objects.get(kind=Job.Kind.FULLTEXT_SEARCH)
    assert job.status == Job.Status.FAILED and "HTTP 500" in job.error
    assert not FullText.objects.exists()


# --- PRISMA ----------------------------------------------------------------------------------------


def test_prisma_reports_sought_are_the_full_text_records_and_not_retrieved_the_decision(review, records, bob):
    from screening import prisma
    from screening.decisions import record_decision

    first, second, twin, other_twin, by_key = records
    for record in (second, other_twin, by_key):
        record_decision(record=record, reviewer=bob, stage="title_abstract", decision="include")
    record_decision(record=records[0], reviewer=bob, stage="title_abstract", decision="include")
    record_decision(record=twin, reviewer=bob, stage="title_abstract", decision="exclude")
    # Five records screened, four sent on to full text. Two of them have a PDF.
    fulltexts.attach(first, PDF, filename="a.pdf", user=bob)
    fulltexts.attach(second, PDF, filename="b.pdf", user=bob)
    record_decision(record=first, reviewer=bob, stage="full_text", decision="include")
    record_decision(record=other_twin, reviewer=bob, stage="full_text", decision="not_retrieved")
    record_decision(record=by_key, reviewer=bob, stage="full_text", decision="not_retrieved")
    counts = prisma.compute(review)
    assert counts.reports_sought == 4
    # "Not retrieved" is the decision, whatever PDFs are attached; a PDF alone decides nothing.
    assert counts.reports_not_retrieved == 2
    assert counts.reports_assessed == 1 and counts.awaiting_full_text == 1
    fulltexts.attach(by_key, PDF, filename="found later.pdf", user=bob)
    assert prisma.compute(review).reports_not_retrieved == 2


def test_deleting_the_review_removes_its_pdfs_from_the_storage(
    review, records, other_review, bob, dave, storage, django_capture_on_commit_callbacks
):
    from review import removal

    fulltexts.attach(records[0], PDF, filename="a.pdf", user=bob)
    search = Search.objects.create(review=other_review, kind="file", source="Embase")
    kept = Record.objects.create(review=other_review, search=search, source="Embase", title="Other")
    fulltexts.attach(kept, PDF, filename="b.pdf", user=dave)
    assert storage.listdir(str(review.pk))[1]
    with django_capture_on_commit_callbacks(execute=True):
        removal.delete_review(review, confirmation=review.slug)
    assert not storage.exists(str(review.pk)) or storage.listdir(str(review.pk))[1] == []
    assert storage.open(FullText.objects.get(record=kept).file.name).read() == PDF


def test_the_find_open_access_command_does_what_the_job_does(review, records, eutils_server, quick_ncbi):
    from django.core.management import CommandError, call_command

    eutils_server.pmc_links = {"111": "PMC900"}
    eutils_server.pmc_oa = {"PMC900": PDF}
    out = io.StringIO()
    call_command("find_open_access", review.slug, stdout=out)
    assert "1 records with a PMID or PMCID asked about: 1 in PubMed Central, 1 PDFs fetched" in out.getvalue()
    assert FullText.objects.get(record=records[0]).file.read() == PDF
    eutils_server.plan("elink", [stand_in.Fault(status=500)], forever=True)
    records[0].fulltext.file.delete()
    Record.objects.filter(pk=records[0].pk).update(pmcid="")  # else it goes straight to PMC
    with pytest.raises(CommandError, match="HTTP 500"):
        call_command("find_open_access", review.slug, stdout=out)


def test_a_record_with_a_known_pmcid_goes_straight_to_pmc(review, records, eutils_server, quick_ncbi):
    by_key = records[4]  # PMCID PMC77, no PMID
    eutils_server.pmc_oa = {"PMC77": PDF}
    result = fulltexts.find_open_access(review, [by_key.pk])
    assert (result.asked, result.linked, result.fetched, result.without_pmid) == (1, 1, 1, 0)
    assert eutils_server.requests("elink") == []
    assert FullText.objects.get(record=by_key).file.read() == PDF


def test_bulk_upload_replaces_audits_and_runs_the_same_queries_for_more_files(
    review, records, bob, storage, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    search = records[0].search
    Record.objects.bulk_create(
        Record(review=review, search=search, source="Embase", title=str(i), pmid=str(7000 + i)) for i in range(6)
    )
    made = list(Record.objects.filter(pmid__startswith="700").order_by("pk"))

    def bulk(pmids):
        files = [SimpleUploadedFile(f"{p}.pdf", PDF + p.encode(), "application/pdf") for p in pmids]
        with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
            matches = fulltexts.bulk_attach(review, files, user=bob)
        assert all(m.record for m in matches), [m.problem for m in matches]
        return len(queries)

    assert bulk(["7000", "7001"]) == bulk(["7002", "7003", "7004", "7005"])
    first_name = FullText.objects.get(record=made[0]).file.name
    bulk(["7000"])  # replaced
    fulltext = FullText.objects.get(record=made[0])
    assert fulltext.file.name != first_name and not storage.exists(first_name)
    assert fulltext.file.read() == PDF + b"7000"
    assert [d["action"] for d in fulltext_events(made[0])] == ["added", "replaced"]
    assert Event.objects.filter(kind=Event.Kind.FULLTEXT, actor=bob).count() == 7
