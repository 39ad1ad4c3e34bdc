"""Records out: RIS/CSV/XLSX from the command and the records table (screening/records_out.py)."""

import csv
import io
import re
from dataclasses import asdict

import openpyxl
import pytest
import rispy
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from review.importers import ris
from review.models import Record, Search
from screening import records_out
from screening.decisions import record_decision
from tests.screening.team import FT, OPEN_NOTE, SECRET_NOTE, SECRET_REASON, TA
from tests.shared import shared

FULL = {
    "title": "Kratom use among veterans with PTSD: a cohort study",
    "abstract": "Background: kratom is used by veterans. Methods: a cohort of 120.",
    "authors": ["Rudnik, Agata", "Basinska, Malgorzata A.", "WHO Study Group"],
    "year": 2019,
    "journal": "Przeglad gastroenterologiczny",
    "volume": "14",
    "issue": "2",
    "pages": "121-128",
    "doi": "10.5114/pg.2018.81081",
    "pmid": "31616501",
    "pmcid": "PMC6791138",
    "keywords": ["kratom", "post-traumatic stress disorder"],
    "url": "https://www.termedia.pl/kratom-ptsd",
    "publication_type": "Journal",
}


def add(review, n=1, **fields):
    search = Search.objects.filter(review=review).first() or Search.objects.create(
        review=review, kind="file", source="Embase"
    )
    records = [Record(review=review, search=search, source="Embase", **{**FULL, **fields}) for _ in range(n)]
    return Record.objects.bulk_create(records)


def content(pieces):
    return b"".join(pieces)


def ris_text(review, records=None, **kwargs):
    records = Record.objects.for_review(review) if records is None else records
    return content(records_out.export(review, records, "ris", **kwargs)).decode("utf-8")


def test_ris_comes_back_whole_through_sieves_importer(review):
    add(review)
    articles = list(ris.parse(io.StringIO(ris_text(review)), name="out.ris"))
    assert len(articles) == 1
    back = asdict(articles[0])
    for field, value in FULL.items():
        assert back[field] == value, field


def test_ris_comes_back_whole_through_rispy_with_the_tags_endnote_and_zotero_use(review):
    add(review)
    (entry,) = rispy.loads(ris_text(review))
    assert entry["type_of_reference"] == "JOUR"
    assert entry["title"] == FULL["title"]
    assert entry["authors"] == FULL["authors"]
    assert entry["year"] == "2019"
    assert entry["secondary_title"] == FULL["journal"]
    assert (entry["volume"], entry["number"], entry["start_page"], entry["end_page"]) == ("14", "2", "121", "128")
    assert entry["doi"] == FULL["doi"]
    assert (entry["accession_number"], entry["database_provider"]) == ("31616501", "NLM")
    assert entry["abstract"] == FULL["abstract"]
    assert entry["keywords"] == FULL["keywords"]
    assert entry["urls"] == [FULL["url"]]
    assert "notes" not in entry and "label" not in entry  # decisions only on request


def tags_in(text):
    return {m.group(1) for m in re.finditer(r"^([A-Z][A-Z0-9])  -", text, re.MULTILINE)}


EXPORTS = ("baseline_endnote.ris", "pubmed_endnote.txt", "baseline_zotero.ris", "pubmed_zotero.ris")


def test_every_tag_written_is_one_endnote_or_zotero_writes_in_their_exports(review):
    add(review)
    written = tags_in(ris_text(review))
    theirs = set().union(*(tags_in(shared("fixtures", "exports", n).read_text(encoding="utf-8-sig")) for n in EXPORTS))
    # C2 (the PMCID) is the tag PubMed's own RIS writes it in; none of these exports has a PMCID.
    assert written - {"C2"} <= theirs
    assert {"TY", "TI", "AU", "PY", "T2", "VL", "IS", "SP", "EP", "DO", "AN", "DP", "AB", "KW", "UR", "ER"} <= written
    with_decisions = tags_in(ris_text(review, with_decisions=True))
    assert with_decisions - written == {"N1", "LB"}
    # And the file starts at the first TY, as theirs do (no "1." counter line).
    assert ris_text(review).startswith("TY  - JOUR\n")


def test_an_endnote_export_goes_out_and_back_in_unchanged(review):
    from tests.screening.test_queue import import_ris

    import_ris(review, "baseline_endnote.ris", "EndNote")
    fields = ("title", "authors", "year", "journal", "volume", "issue", "pages", "doi", "pmid", "abstract", "keywords")
    before = [tuple(r) for r in Record.objects.for_review(review).order_by("pk").values_list(*fields)]
    back = [tuple(getattr(a, f) for f in fields) for a in ris.parse(io.StringIO(ris_text(review)), name="out.ris")]
    assert len(back) == len(before) > 50
    assert back == before


def test_line_breaks_in_a_value_never_start_a_new_tag(review):
    add(review, title="First line\nER  - \nTY  - JOUR", abstract="a\r\nb")
    (entry,) = rispy.loads(ris_text(review))
    assert entry["title"] == "First line ER  -  TY  - JOUR"
    assert entry["abstract"] == "a b"


# Decisions and blinding ---------------------------------------------------------------------------


def test_decisions_come_as_notes_and_a_label_on_request(review, team):
    text = ris_text(review, Record.objects.filter(pk=team.included.pk), with_decisions=True)
    (entry,) = rispy.loads(text)
    assert entry["label"] == "Included"
    assert "Sieve title/abstract vote by bob: include" in entry["notes"]
    assert "Sieve full text vote by carol: include" in entry["notes"]


def test_alice_the_owner_gets_every_vote_with_reasons_and_notes(client, review, team, alice):
    client.force_login(alice)
    response = client.get(reverse("screening:records_export", args=[review.slug, "csv"]) + "?decisions=1")
    text = content(response.streaming_content).decode("utf-8")
    assert SECRET_REASON in text and SECRET_NOTE in text


@pytest.mark.parametrize("fmt", ["ris", "csv", "xlsx"])
def test_bob_the_blinded_reviewer_gets_no_vote_of_carols_on_an_open_record(client, review, team, bob, fmt):
    client.force_login(bob)
    response = client.get(reverse("screening:records_export", args=[review.slug, fmt]) + "?decisions=1")
    assert response.status_code == 200
    body = content(response.streaming_content)
    if fmt == "xlsx":
        book = openpyxl.load_workbook(io.BytesIO(body))
        body = "\n".join(str(c.value) for row in book.active.iter_rows() for c in row).encode()
    text = body.decode("utf-8")
    assert SECRET_REASON not in text and SECRET_NOTE not in text
    # Nor that the votes disagree: his conflict reads as pending.
    assert "Conflict" not in text
    # A reconciled record's votes are open to all, and bob's own votes are his.
    assert OPEN_NOTE in text and "vote by bob: include" in text


def test_erin_the_viewer_may_export_what_a_viewer_sees(client, review, team, erin):
    client.force_login(erin)
    response = client.get(reverse("screening:records_export", args=[review.slug, "ris"]) + "?decisions=1")
    assert response.status_code == 200
    text = content(response.streaming_content).decode("utf-8")
    assert len(rispy.loads(text)) == Record.objects.for_review(review).count()
    assert SECRET_REASON not in text and SECRET_NOTE not in text and "Conflict" not in text


def test_dave_the_outsider_gets_404_and_a_stranger_the_login_page(client, review, team, dave):
    url = reverse("screening:records_export", args=[review.slug, "ris"])
    assert client.get(url).status_code == 302
    client.force_login(dave)
    assert client.get(url).status_code == 404
    assert client.get(reverse("screening:records_export", args=["no-such-review", "ris"])).status_code == 404


def test_an_unknown_format_or_a_bad_filter_is_refused_with_a_reason(client, review, team, alice):
    client.force_login(alice)
    assert client.get(reverse("screening:records_export", args=[review.slug, "docx"])).status_code == 404
    response = client.get(reverse("screening:records_export", args=[review.slug, "csv"]) + "?ta=nonsense")
    assert response.status_code == 400
    assert b"ta:" in response.content


# The table's filtered set -------------------------------------------------------------------------


def test_the_download_holds_exactly_the_filtered_set_on_every_page(client, review, alice, bob):
    excluded = add(review, 60, title="Rats given kratom")
    add(review, 30, title="Kratom in veterans")
    for record in excluded:
        record_decision(record=record, reviewer=bob, stage=TA, decision="exclude")
    client.force_login(alice)
    page = client.get(reverse("screening:records", args=[review.slug]) + "?ta=exclude")
    assert b"Download the 60 matching records" in page.content
    assert reverse("screening:records_export", args=[review.slug, "ris"]).encode() in page.content
    response = client.get(reverse("screening:records_export", args=[review.slug, "csv"]) + "?ta=exclude&page=2")
    rows = list(csv.DictReader(io.StringIO(content(response.streaming_content).decode("utf-8"))))
    assert sorted(int(r["Sieve ID"]) for r in rows) == sorted(r.pk for r in excluded)


# Spreadsheets -------------------------------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1:A2)"]


def test_a_title_that_looks_like_a_formula_stays_text_in_csv(review):
    for title in FORMULAS:
        add(review, title=title)
    text = content(records_out.export(review, Record.objects.for_review(review), "csv")).decode("utf-8")
    titles = [row["Title"] for row in csv.DictReader(io.StringIO(text))]
    assert titles == ["'" + t for t in FORMULAS]


def test_a_title_that_looks_like_a_formula_stays_text_in_xlsx(review):
    for title in FORMULAS:
        add(review, title=title)
    body = content(records_out.export(review, Record.objects.for_review(review), "xlsx"))
    sheet = openpyxl.load_workbook(io.BytesIO(body)).active
    header = [c.value for c in sheet[1]]
    cells = [row[header.index("Title")] for row in sheet.iter_rows(min_row=2)]
    assert [c.value for c in cells] == FORMULAS
    assert {c.data_type for c in cells} == {"s"}  # "f" would be a formula Excel runs


def test_csv_and_xlsx_carry_the_same_columns_and_decisions_on_request(review, team):
    records = Record.objects.filter(pk=team.included.pk)
    plain = next(csv.reader(io.StringIO(content(records_out.export(review, records, "csv")).decode())))
    assert plain == list(records_out.COLUMNS)
    text = content(records_out.export(review, records, "csv", with_decisions=True)).decode()
    (row,) = csv.DictReader(io.StringIO(text))
    assert (row["Status"], row["TA outcome"], row["FT outcome"]) == ("Included", "Include", "Include")
    book = openpyxl.load_workbook(io.BytesIO(content(records_out.export(review, records, "xlsx", with_decisions=True))))
    assert [c.value for c in book.active[1]] == list(records_out.COLUMNS) + list(records_out.DECISION_COLUMNS)


# Size ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["ris", "csv"])
def test_queries_grow_with_chunks_not_records(review, team, monkeypatch, fmt):
    monkeypatch.setattr(records_out, "CHUNK", 7)
    add(review, 60)
    records = Record.objects.for_review(review)
    n = records.count()
    with CaptureQueriesContext(connection) as queries:
        out = content(records_out.export(review, records, fmt, with_decisions=True))
    assert out
    chunks = n // 7 + 1
    # Per chunk: the records, their votes, their resolutions (and one empty read at the end).
    assert len(queries) <= 3 * chunks + 1, len(queries)


# The command --------------------------------------------------------------------------------------


def test_the_command_writes_the_included_records(review, team, tmp_path):
    out = tmp_path / "included.ris"
    call_command("export_records", review.slug, "--format", "ris", "--outcome", "included", "-o", str(out))
    entries = rispy.loads(out.read_text(encoding="utf-8"))
    assert [e["title"] for e in entries] == [team.included.title]


def test_the_command_takes_excluded_at_a_stage_with_decisions(review, team, tmp_path):
    out = tmp_path / "excluded.csv"
    call_command(
        "export_records", review.slug, "--format", "csv", "--outcome", "excluded", "--stage", "ta", "--with-decisions",
        "-o", str(out),
    )  # fmt: skip
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [int(r["Sieve ID"]) for r in rows] == [team.agreed.pk]
    assert rows[0]["Status"] == "Title/abstract: Exclude"


def test_the_command_as_bob_shows_what_bob_sees(review, team, tmp_path, bob):
    out = tmp_path / "bob.ris"
    call_command("export_records", review.slug, "--with-decisions", "--as", "bob", "-o", str(out))
    text = out.read_text(encoding="utf-8")
    assert SECRET_NOTE not in text and OPEN_NOTE in text


def test_the_command_names_what_is_wrong(review, tmp_path):
    with pytest.raises(CommandError, match="No review with slug 'nope'"):
        call_command("export_records", "nope", "-o", str(tmp_path / "x.ris"))
    with pytest.raises(CommandError, match="'zoe' is not a member"):
        call_command("export_records", review.slug, "--as", "zoe", "-o", str(tmp_path / "x.ris"))


def test_full_text_stage_names_match_the_models():
    assert records_out.stage_named("ft") == FT and records_out.stage_named("title_abstract") == TA
    with pytest.raises(records_out.ExportError, match="Unknown stage 'abstract'"):
        records_out.stage_named("abstract")


def test_control_characters_in_an_abstract_do_not_break_the_xlsx(review):
    # Found by bench/records_out.py: an abstract from the shared datasets holds vertical tabs, and
    # openpyxl refused the whole workbook.
    add(review, abstract="traumatic\x0binjuries\x01 and\x0cresilience")
    body = content(records_out.export(review, Record.objects.for_review(review), "xlsx"))
    sheet = openpyxl.load_workbook(io.BytesIO(body)).active
    header = [c.value for c in sheet[1]]
    assert sheet.cell(row=2, column=header.index("Abstract") + 1).value == "traumatic injuries  and resilience"
    (entry,) = rispy.loads(ris_text(review))
    assert entry["abstract"] == "traumatic injuries  and resilience"
