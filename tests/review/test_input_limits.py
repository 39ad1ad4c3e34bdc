"""Hostile or broken input: oversized uploads and fields, deeply nested or entity-laden XML,
workbooks whose stated size is wrong. Each is refused with a message naming the problem (or,
for the workbook, read whole), and nothing is stored."""

import io
import os
import re
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.core.management import CommandError, call_command
from django.urls import reverse

from review import limits
from review.article import ImportFileError
from review.importers import pubmed_xml
from review.importing import import_file, run_search
from review.models import Record, Search
from review.pubmed import PubMedError
from tests import eutils_server as stand_in
from tests.shared import shared

eutils_server = stand_in.eutils_server  # the fixture, where pytest looks for it
MB = 1024 * 1024


@pytest.fixture
def nothing_stored(review):
    before = (Record.objects.count(), Search.objects.count())
    yield
    assert (Record.objects.count(), Search.objects.count()) == before


def ris_record(title, abstract="", authors=()):
    lines = ["TY  - JOUR", f"TI  - {title}", *(f"AU  - {a}" for a in authors)]
    if abstract:
        lines.append(f"AB  - {abstract}")
    return "\n".join([*lines, "ER  - ", ""])


# --- Upload size -------------------------------------------------------------------------------


@pytest.fixture
def small_limit(settings):
    settings.MAX_UPLOAD_SIZE = 1 * MB
    # Uploads over 100 KB would go to a temporary file on disk.
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 100 * 1024


@pytest.fixture
def disk_writes(monkeypatch):
    """Bytes Django's temporary-file handler wrote to disk."""
    written = []
    original = TemporaryFileUploadHandler.receive_data_chunk

    def spy(self, raw_data, start):
        written.append(len(raw_data))
        return original(self, raw_data, start)

    monkeypatch.setattr(TemporaryFileUploadHandler, "receive_data_chunk", spy)
    return written


def post_file(client, review, name, data):
    return client.post(reverse("review:import", args=[review.slug]), {"file": SimpleUploadedFile(name, data)})


def test_carols_3_mb_upload_over_a_1_mb_limit_is_stopped_before_it_reaches_disk(
    client, review, carol, small_limit, disk_writes, nothing_stored
):
    client.force_login(carol)
    data = ris_record("Kratom and PTSD", abstract="x" * 3 * MB).encode()
    response = post_file(client, review, "big.ris", data)
    assert response.status_code == 200
    assert response.context["form"].errors["file"] == [
        "big.ris: the file is 3 MB; the limit is 1 MB (SIEVE_MAX_UPLOAD_MB)."
    ]
    assert sum(disk_writes) == 0


def test_a_file_just_over_the_limit_is_stopped_at_the_limit_and_named_in_bytes(
    client, review, carol, small_limit, disk_writes, nothing_stored
):
    client.force_login(carol)
    data = ris_record("Kratom and PTSD", abstract="x" * (MB + 10_000)).encode()
    response = post_file(client, review, "over.ris", data)
    (error,) = response.context["form"].errors["file"]
    assert re.fullmatch(
        r"over\.ris: the file is [\d,]+ bytes; the limit is 1 MB \(1,048,576 bytes\) \(SIEVE_MAX_UPLOAD_MB\)\.", error
    )
    # What went to disk stopped at the limit, not at the end of the file.
    assert sum(disk_writes) <= MB


def test_a_file_under_the_limit_still_imports(client, review, carol, small_limit, inline_worker):
    client.force_login(carol)
    response = post_file(client, review, "small.ris", ris_record("Kratom and PTSD").encode())
    assert response.status_code == 302
    assert Record.objects.filter(review=review, title="Kratom and PTSD").exists()


def test_the_import_page_states_the_limit(client, review, carol, small_limit):
    client.force_login(carol)
    response = client.get(reverse("review:import", args=[review.slug]))
    assert "At most 1 MB." in response.content.decode()


def test_the_command_line_import_refuses_a_file_over_the_limit(review, tmp_path, settings, nothing_stored):
    settings.MAX_UPLOAD_SIZE = 1 * MB
    path = tmp_path / "big.ris"
    path.write_text(ris_record("Kratom", abstract="x" * 2 * MB))
    with pytest.raises(CommandError, match=r"big\.ris: the file is 2 MB; the limit is 1 MB \(SIEVE_MAX_UPLOAD_MB\)"):
        call_command("import_records", review.slug, str(path))


def test_a_pipe_is_read_no_further_than_the_limit(review, settings, nothing_stored):
    settings.MAX_UPLOAD_SIZE = 1 * MB
    read_end, write_end = os.pipe()
    data = ris_record("Kratom", abstract="x" * 2 * MB).encode()
    with os.fdopen(read_end, "rb") as stream, os.fdopen(write_end, "wb") as sink:
        import threading

        writer = threading.Thread(target=lambda: (sink.write(data), sink.close()))
        writer.start()
        with pytest.raises(ImportFileError, match=r"piped\.ris: the file is more than 1 MB"):
            import_file(review=review, fileobj=stream, filename="piped.ris")
        stream.read()  # let the writer finish
        writer.join()


# --- Caps on one field ------------------------------------------------------------------------


def test_a_50_mb_abstract_refuses_the_import_naming_file_record_and_field(review, tmp_path, settings, nothing_stored):
    settings.MAX_UPLOAD_SIZE = 100 * MB
    path = tmp_path / "huge-abstract.ris"
    path.write_text(ris_record("Fine") + ris_record("Kratom", abstract="x" * 50 * MB))
    with pytest.raises(ImportFileError) as error:
        import_file(review=review, path=path)
    assert str(error.value) == (
        "huge-abstract.ris: record 2 (line 4): the abstract has 52,428,800 characters; "
        f"the limit is {limits.ARTICLE_TEXT['abstract']:,}. Nothing was imported."
    )


def test_too_many_authors_and_one_overlong_author_are_refused(review, tmp_path, monkeypatch, nothing_stored):
    monkeypatch.setitem(limits.ARTICLE_LISTS, "authors", (3, 20))
    many = tmp_path / "many.csv"
    many.write_text('title,authors\nKratom,"Liu R.; Adler D.; Baracat E.; Marx K."\n')
    with pytest.raises(ImportFileError, match=r"many\.csv: line 2: it lists 4 authors; the limit is 3\."):
        import_file(review=review, path=many)
    long = tmp_path / "long.csv"
    long.write_text(f'title,authors\nKratom,"Liu R.; {"A" * 30}, B."\n')
    with pytest.raises(ImportFileError, match=r"long\.csv: line 2: authors 2 has 34 characters; the limit is 20\."):
        import_file(review=review, path=long)


def test_a_pubmed_record_over_a_cap_fails_the_search_naming_its_pmid(eutils_server, review, monkeypatch, settings):
    settings.NCBI_BACKOFF = 0.01
    monkeypatch.setitem(limits.ARTICLE_TEXT, "title", 20)
    with pytest.raises(PubMedError, match=r"PubMed: record \d+ \(PMID \d+\): the title has [\d,]+ characters"):
        run_search(review=review, query="biopython")
    assert not Record.objects.exists() and not Search.objects.exists()


# --- PubMed XML: nesting and entities ----------------------------------------------------------


def pubmed_doc(abstract, doctype=""):
    return (
        '<?xml version="1.0"?>\n'
        + doctype
        + "<PubmedArticleSet>"
        + "".join(
            f"<PubmedArticle><MedlineCitation><PMID>{pmid}</PMID><Article><ArticleTitle>Record {pmid}</ArticleTitle>"
            f"<Abstract><AbstractText>{text}</AbstractText></Abstract></Article></MedlineCitation></PubmedArticle>"
            for pmid, text in ((111, "Plain"), (222, abstract))
        )
        + "</PubmedArticleSet>"
    ).encode()


def test_a_thousand_nested_italics_are_a_clear_error_naming_the_record(review, tmp_path, nothing_stored):
    path = tmp_path / "nested.xml"
    path.write_bytes(pubmed_doc("<i>" * 1000 + "deep" + "</i>" * 1000))
    with pytest.raises(ImportFileError) as error:
        import_file(review=review, path=path)
    assert str(error.value).startswith(
        f"nested.xml: record 2 (PMID 222): the XML nests elements more than {pubmed_xml.MAX_DEPTH} deep"
    )


def test_real_inline_markup_still_reads(review, tmp_path):
    path = tmp_path / "markup.xml"
    path.write_bytes(pubmed_doc("<b>CO<sub>2</sub> <i>in <u>vivo</u></i></b>"))
    assert import_file(review=review, path=path).added == 2
    assert Record.objects.get(pmid="222").abstract == "CO2 in vivo"


BILLION_LAUGHS = (
    '<!DOCTYPE PubmedArticleSet [<!ENTITY lol0 "lol">'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    + "]>\n"
)


@pytest.mark.parametrize(
    "doctype, text",
    [
        (BILLION_LAUGHS, "&lol9;"),
        ('<!DOCTYPE PubmedArticleSet [<!ENTITY secret SYSTEM "file:///etc/passwd">]>\n', "&secret;"),
        ('<!DOCTYPE PubmedArticleSet [<!ENTITY name "Kratom">]>\n', "&name;"),
    ],
    ids=["billion-laughs", "external-entity", "internal-entity"],
)
def test_xml_entities_are_refused_before_any_expansion(review, tmp_path, doctype, text, nothing_stored):
    path = tmp_path / "entities.xml"
    path.write_bytes(pubmed_doc(text, doctype))
    with pytest.raises(ImportFileError, match=r"entities\.xml: the XML declares an entity \('\w+'\)"):
        import_file(review=review, path=path)


def test_pubmeds_own_doctype_is_still_read(review, tmp_path):
    doctype = (
        '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
        '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
    )
    path = tmp_path / "doctype.xml"
    path.write_bytes(pubmed_doc("Plain", doctype))
    assert import_file(review=review, path=path).added == 2


# --- .xlsx with a stale <dimension> ------------------------------------------------------------


def test_an_xlsx_whose_dimension_says_ten_rows_is_read_whole(review, tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Title", "Year", "Authors", "Journal", "DOI", "PMID", "Pages", "Volume", "Issue", "Abstract"])
    for n in range(1, 1000):
        sheet.append([f"Study {n}", 2000 + n % 20, "Liu R.", "J", "", "", "", "", "", "text"])
    book.save(tmp_path / "full.xlsx")
    # Rewrite <dimension ref="A1:J1000"> to what a careless writer leaves: the first ten rows.
    with zipfile.ZipFile(tmp_path / "full.xlsx") as source, zipfile.ZipFile(tmp_path / "stale.xlsx", "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data, count = re.subn(rb'<dimension ref="[^"]+"', b'<dimension ref="A1:J10"', data)
                assert count == 1
            target.writestr(item, data)
    result = import_file(review=review, path=tmp_path / "stale.xlsx")
    assert result.added == 999
    assert Record.objects.filter(review=review, title="Study 999").exists()


def test_an_xlsx_whose_dimension_cuts_the_header_still_finds_the_title(review, tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["Authors", "Year", "Title"])
    book.active.append(["Liu R.", 2020, "Kratom"])
    book.save(tmp_path / "full.xlsx")
    out = io.BytesIO()
    with zipfile.ZipFile(tmp_path / "full.xlsx") as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb'<dimension ref="[^"]+"', b'<dimension ref="A1:B1"', data)
            target.writestr(item, data)
    (tmp_path / "cut.xlsx").write_bytes(out.getvalue())
    assert import_file(review=review, path=tmp_path / "cut.xlsx").added == 1


def test_shared_pubmed_export_still_reads_with_the_entity_guard(review):
    assert import_file(review=review, path=shared("fixtures", "exports", "pubmed.xml")).added > 0
