"""File imports: every shared export file, read by content, stored with its real values.

Expected values were read from the files themselves (first record unless said otherwise).
"""

import io
import os
import shutil
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from review import importing
from review.article import ImportFileError
from review.importing import import_file
from review.models import Record, Search
from tests.shared import shared

BASELINE_ENDNOTE_TITLE = (
    "The Value of Radiologic Interventions and 18 F-DOPA PET in Diagnosing and Localizing Focal "
    "Congenital Hyperinsulinism: Systematic Review and Meta-Analysis"
)

# file, records, source, format, {field: value of the first record}
FILES = [
    (
        ("exports", "baseline_endnote.ris"),
        100,
        "Lens",  # EndNote export of Lens records: every UR links to lens.org
        "RIS",
        dict(
            title=BASELINE_ENDNOTE_TITLE,
            first_author="Blomberg, Björn A.",
            n_authors=5,
            year=2012,
            journal="Molecular imaging and biology",
            doi="10.1007/s11307-012-0572-0",
            volume="15",
            issue="1",
            pages="97-105",
            abstract="This systematic review and meta-analysis aimed to quantify",
        ),
    ),
    (
        ("exports", "baseline_zotero.ris"),
        100,
        "Lens",
        "RIS",
        dict(
            title="An open source machine learning framework for efficient and transparent systematic reviews",
            first_author="van de Schoot, Rens",
            n_authors=17,
            year=2021,
            journal="Nature Machine Intelligence",
            doi="10.1038/s42256-020-00287-7",
            pages="125-133",
            abstract="To help researchers conduct a systematic",
        ),
    ),
    (
        ("exports", "embase.ris"),
        6,
        "Embase",
        "RIS",
        dict(
            title="Duplication cysts: Diagnosis, management, and the role of endoscopic ultrasound",
            authors=["Liu, R.", "Adler, D.G."],
            year=2014,
            journal="Endoscopic Ultrasound",
            doi="10.4103/2303-9027.138783",
            volume="3",
            issue="3",
            pages="152-160",
            abstract="Gastrointestinal tract duplication cysts are rare",
        ),
    ),
    (
        ("exports", "embase.csv"),
        6,
        "Embase",
        "CSV",
        dict(
            title="Duplication cysts: Diagnosis, management, and the role of endoscopic ultrasound",
            authors=["Liu, R.", "Adler, D.G."],
            year=2014,
            journal="Endoscopic Ultrasound",
            doi="10.4103/2303-9027.138783",
            volume="3",
            issue="3",
            pages="152-160",
            abstract="Gastrointestinal tract duplication cysts are rare",
        ),
    ),
    (
        ("exports", "scopus.ris"),
        6,
        "Scopus",
        "RIS",
        dict(
            title="Stress and the brain-gut axis in functional and chronic-inflammatory gastrointestinal diseases",
            first_author="Labanski, A.",
            n_authors=4,
            year=2020,
            journal="Psychoneuroendocrinology",
            doi="10.1016/j.psyneuen.2019.104501",
            volume="111",
            abstract="The broad role of stress in the brain-gut axis",
        ),
    ),
    (
        ("exports", "web_of_science.txt"),
        10,
        "Web of Science",
        "RIS",
        dict(
            title="Holding Yourself Captive: Perceptions of Custody During Interviews and Interrogations",
            authors=["Alceste, F", "Luke, TJ", "Kassin, SM"],
            year=2018,
            journal="JOURNAL OF APPLIED RESEARCH IN MEMORY AND COGNITION",
            doi="10.1016/j.jarmac.2018.03.001",
            pages="387-397",
            source_key="WOS:000444108200009",
            abstract="Police custody activates important legal",
        ),
    ),
    (
        ("exports", "proquest.ris"),
        6,
        "PTSDpubs",
        "RIS",
        dict(
            title="Predictors of posttraumatic stress symptom trajectories following the fatal 2011 Christchurch",
            first_author="Jones, Hannah",
            n_authors=7,
            year=2019,
            journal="Journal of Traumatic Stress",
            doi="10.1002/jts.22387",
            abstract="People respond differently to potentially traumatic events.",
        ),
    ),
    (
        ("exports", "ovid_psycinfo.ris"),
        6,
        "APA PsycInfo",
        "RIS",
        dict(
            title="The influence of self-criticism on depression symptoms among ambulatory patients with "
            "inflammatory bowel disease.",
            first_author="Trindade, Ines A",
            n_authors=5,
            year=2019,
            journal="Clinical Psychology & Psychotherapy",
            doi="10.1002/cpp.2398",
            pages="",
            source_key="2019-65183-001",
            abstract="Considering that self-criticism is an important process",
        ),
    ),
    (
        ("exports", "ovid_zotero.ris"),
        6,
        "ovid_zotero.ris",
        "RIS",
        dict(
            title="The influence of self-criticism on depression symptoms among ambulatory patients with "
            "inflammatory bowel disease.",
            first_author="Trindade, Ines A",
            n_authors=5,
            year=2019,
            journal="Clinical Psychology & Psychotherapy",
            doi="10.1002/cpp.2398",
        ),
    ),
    (
        ("exports", "pubmed_endnote.txt"),
        6,
        "PubMed",
        "RIS",
        dict(
            title="Boswellia serrata: an overall assessment of in vitro, preclinical, pharmacokinetic and clinical data",
            authors=["Abdel-Tawab, M.", "Werz, O.", "Schubert-Zsilavecz, M."],
            year=2011,
            journal="Clin Pharmacokinet",
            doi="10.2165/11586800-000000000-00000",
            pmid="21553931",
            volume="50",
            issue="6",
            pages="349-69",
            abstract="Non-steroidal anti-inflammatory drug (NSAID) intake",
        ),
    ),
    (
        ("exports", "pubmed_zotero.ris"),
        6,
        "pubmed_zotero.ris",
        "RIS",
        dict(
            title="The importance of cognitive flexibility and flexibility in coping with stress",
            first_author="Rudnik, Agata",
            n_authors=4,
            year=2019,
            journal="Przeglad gastroenterologiczny",
            doi="10.5114/pg.2018.81081",
            pages="121-128",
        ),
    ),
    (
        ("exports", "ris_issue_1099.txt"),
        7,
        "ris_issue_1099.txt",
        "RIS",
        dict(
            title="Design and prototyping of directly driven outer rotor permanent magnet generator",
            first_author="Vaimann, T.",
            n_authors=5,
            year=2018,
            journal="Advances in Electrical and Electronic Engineering",
            doi="10.15598/aeee.v16i3.2698",
            pages="271-278",
            abstract="The paper is about the design and prototyping",
        ),
    ),
    (
        ("exports", "ris_issue_992.txt"),
        19,
        "ris_issue_992.txt",
        "RIS",
        dict(
            title="Overcoming Medication Reconciliation Challenges",
            n_authors=0,
            year=2011,
            journal="Joint Commission Perspectives on Patient Safety",
            pages="1-5",
            source_key="1",
        ),
    ),
    (
        ("exports", "ris_many_authors.ris"),
        1,
        "ris_many_authors.ris",
        "RIS",
        dict(
            title="This is the title",
            first_author="Verylongname, Christopher",
            n_authors=7456,
            year=None,
            abstract="This is a random text",
        ),
    ),
    (
        ("exports", "faulty_year.ris"),
        1,
        "faulty_year.ris",
        "RIS",
        dict(
            title=BASELINE_ENDNOTE_TITLE,
            year=None,
            abstract="This systematic review and meta-analysis aimed",
        ),
    ),
    (
        ("exports", "generic_labels.csv"),
        6,
        "generic_labels.csv",
        "CSV",
        dict(
            title="Title of reference",
            authors=["Marx, Karl", "Lindgren, Astrid"],
            year=2014,
            volume="9",
            keywords=["Pippi", "Nordwind", "Piraten"],
            abstract="BACKGROUND: Lorem ipsum dolor sit amet",
        ),
    ),
    (
        ("exports", "generic_semicolon.csv"),
        2,
        "generic_semicolon.csv",
        "CSV",
        dict(
            title="Title of reference",
            authors=["Marx, Karl", "Lindgren, Astrid"],
            year=2014,
            url="http://example_url.com",
        ),
    ),
    (
        ("exports", "generic_tab.tsv"),
        2,
        "generic_tab.tsv",
        "TSV",
        dict(
            title="Title of reference",
            authors=["Marx, Karl", "Lindgren, Astrid"],
            year=2014,
        ),
    ),
    (
        ("exports", "pubmed.xml"),
        10,
        "PubMed",
        "PubMed XML",
        dict(
            title="A new decompression device for treating odontogenic cysts using a silicone tube.",
            first_author="Kimura, M",
            n_authors=5,
            year=2019,
            pmid="31690499",
            doi="10.1016/j.bjoms.2019.09.011",
            journal="The British journal of oral & maxillofacial surgery",
        ),
    ),
    (
        ("medline", "pubmed_result1.txt"),
        1,
        "PubMed",
        "MEDLINE",
        dict(
            title="The Bio* toolkits--a brief overview.",
            authors=["Mangalam, Harry"],
            year=2002,
            journal="Briefings in bioinformatics",
            pmid="12230038",
            volume="3",
            issue="3",
            pages="296-302",
            abstract="Bioinformatics research is often difficult to do with commercial software. The Open Source",
        ),
    ),
    (
        ("medline", "pubmed_result2.txt"),
        4,
        "PubMed",
        "MEDLINE",
        dict(
            title="A high level interface to SCOP and ASTRAL implemented in python.",
            authors=["Casbon, James A", "Crooks, Gavin E", "Saqi, Mansoor A S"],
            year=2006,
            journal="BMC bioinformatics",
            pmid="16403221",
            doi="10.1186/1471-2105-7-10",
        ),
    ),
    (
        ("medline", "pubmed_result3.txt"),
        1,
        "PubMed",
        "MEDLINE",
        dict(
            n_authors=4,
            first_author="Qiao, Shan",
            year=2012,
            journal="Medical physics",
            pmid="23039619",
            doi="10.1118/1.4748329",
            pages="5795-813",
        ),
    ),
    (
        ("entrez", "pubmed1.xml"),
        2,
        "PubMed",
        "PubMed XML",
        dict(
            title="The treatment of AIDS behind the walls of correctional facilities.",
            n_authors=1,
            year=1990,
            pmid="12091962",
            journal="Social justice (San Francisco, Calif.)",
            doi="",
        ),
    ),
    (
        ("entrez", "pubmed2.xml"),
        2,
        "PubMed",
        "PubMed XML",
        dict(
            title="Is cryopreservation a homogeneous process?",
            n_authors=8,
            year=2001,
            pmid="11748933",
            doi="10.1006/cryo.2001.2328",
            journal="Cryobiology",
        ),
    ),
    (
        ("entrez", "pubmed4.xml"),
        1,
        "PubMed",
        "PubMed XML",
        dict(
            title="Leucocyte telomere length, genetic variants at the",
            n_authors=22,
            year=2017,
            pmid="27797938",
            doi="10.1136/gutjnl-2016-312510",
            journal="Gut",
        ),
    ),
    (
        ("entrez", "pubmed5.xml"),
        1,
        "PubMed",
        "PubMed XML",
        dict(
            title="Occupational pesticide exposure and subclinical hypothyroidism among male pesticide applicators.",
            n_authors=12,
            year=2018,
            pmid="28775130",
            doi="10.1136/oemed-2017-104431",
        ),
    ),
    (
        ("entrez", "pubmed6.xml"),
        1,
        "PubMed",
        "PubMed XML",
        dict(
            title='A "Blood Relationship" Between',
            n_authors=2,
            year=2018,
            pmid="30108519",
            doi="10.3389/fphys.2018.01034",
            journal="Frontiers in physiology",
        ),
    ),
    (
        ("entrez", "pubmed7.xml"),
        1,
        "PubMed",
        "PubMed XML",
        dict(
            title="Development of a pulmonary imaging biomarker pipeline for phenotyping of chronic lung disease.",
            n_authors=9,
            year=2018,
            pmid="29963580",
            doi="10.1117/1.JMI.5.2.026002",
        ),
    ),
    (
        ("datasets", "Donners_2021.csv"),
        258,
        "Donners_2021.csv",
        "CSV",
        dict(
            title="Innovative Pharmacological Therapies for the Hemophilias Not Based on Deficient Factor Replacement",
            authors=["Mannucci, Pier Mannuccio", "Mancuso, Maria Elisa", "Santagostino, Elena", "Franchini, Massimo"],
            year=2016,
            journal="Seminars in Thrombosis and Hemostasis",
            doi="10.1055/s-0036-1571310",
            source_key="1",
        ),
    ),
]


def _check(record, expected):
    for name, value in expected.items():
        if name == "first_author":
            assert record.authors[0] == value
        elif name == "n_authors":
            assert len(record.authors) == value
        elif name in ("title", "abstract") and value:
            assert getattr(record, name).startswith(value), name
        else:
            assert getattr(record, name) == value, name


@pytest.mark.parametrize("parts, count, source, label, first", FILES, ids=[f[0][1] for f in FILES])
def test_each_shared_file_imports_with_its_real_values(review, alice, parts, count, source, label, first):
    result = import_file(
        review=review, path=shared(*parts) if parts[0] == "datasets" else shared("fixtures", *parts), user=alice
    )
    records = Record.objects.for_review(review).order_by("pk")
    assert records.count() == count == result.added
    assert (result.search.source, result.search.file_format) == (source, label)
    assert result.search.kind == Search.Kind.FILE and result.search.run_by == alice
    assert result.search.filename == parts[-1]
    _check(records.first(), first)


def _import(review, *parts, **kw):
    return import_file(review=review, path=shared("fixtures", *parts), **kw)


def test_pmids_hidden_in_database_specific_tags_are_found(review):
    # Embase keeps the MEDLINE PMID in C5, Scopus in C2 (second record of each file).
    _import(review, "exports", "embase.ris")
    _import(review, "exports", "scopus.ris")
    pmids = set(Record.objects.for_review(review).exclude(pmid="").values_list("pmid", flat=True))
    assert {"15368318", "30396417", "21218094", "31421429", "30704343"} <= pmids


def test_ris_keywords_on_continuation_lines_are_one_keyword_each(review):
    _import(review, "exports", "ris_issue_992.txt")
    keywords = Record.objects.for_review(review).order_by("pk").first().keywords
    assert len(keywords) == 13
    assert keywords[0] == "Health Facility Administration" and keywords[-1] == "Patient Education"


def test_a_book_in_a_citavi_export_keeps_its_doi(review):
    _import(review, "exports", "ris_issue_1099.txt")
    book = Record.objects.for_review(review).get(title__startswith="Validity Frame Driven")
    assert book.doi == "10.1007/978-3-030-58167-1_7" and book.publication_type == "Whole book"


def test_a_year_that_is_no_year_is_left_empty_with_a_warning(review):
    result = _import(review, "exports", "faulty_year.ris")
    assert Record.objects.for_review(review).get().year is None
    assert result.warnings == ["faulty_year.ris: record 1 (line 1): '10 15' is not a year; the year is left empty."]


def test_records_with_nothing_to_screen_are_left_out_and_counted(review):
    # 61 records holding only a reference type and a note: nothing a reviewer could screen.
    result = _import(review, "exports", "baseline_reference_types.ris")
    assert (result.added, result.empty) == (0, 61)
    assert Record.objects.for_review(review).count() == 0
    assert Search.objects.get(pk=result.search.pk).fetched == 61
    assert "61 empty records left out" in result.summary()


def test_records_with_only_a_title_or_only_an_abstract_are_kept(review):
    for name in ("baseline_empty_values.ris", "missing_values.csv"):
        result = _import(review, "exports", name)
        records = list(result.search.records.order_by("pk"))
        assert [r.title for r in records] == ["Title of reference", "", "Title of reference", ""]
        assert records[1].abstract.startswith("Lorem ipsum") or records[1].abstract.startswith("BACKGROUND: Lorem")
        assert records[0].abstract == ""


def test_repeated_record_ids_are_kept_and_reported(review):
    result = _import(review, "exports", "generic_bad_record_id.csv")
    keys = list(result.search.records.order_by("pk").values_list("source_key", flat=True))
    assert keys == ["0", "0", "3", "4f", "5", "7"]
    assert result.warnings == [
        "generic_bad_record_id.csv: 1 records repeat an id used earlier in the file ('0' again at line 3); "
        "ids are kept as they are."
    ]


def test_the_format_comes_from_the_content_not_the_extension(review, tmp_path):
    medline_as_ris = tmp_path / "export.ris"
    shutil.copy(shared("fixtures", "medline", "pubmed_result2.txt"), medline_as_ris)
    result = import_file(review=review, path=medline_as_ris)
    assert (result.search.file_format, result.added) == ("MEDLINE", 4)


def test_an_upload_is_read_from_its_file_object(review, bob):
    upload = SimpleUploadedFile("my embase.ris", shared("fixtures", "exports", "embase.ris").read_bytes())
    result = import_file(review=review, fileobj=upload, filename=upload.name, source="Embase.com", user=bob)
    assert (result.added, result.search.source, result.search.filename) == (6, "Embase.com", "my embase.ris")


def test_a_windows_1252_file_is_read(review, tmp_path):
    path = tmp_path / "endnote-ansi.ris"
    text = shared("fixtures", "exports", "baseline_endnote.ris").read_text(encoding="utf-8-sig")
    path.write_bytes(text.encode("cp1252", errors="replace"))
    _ = import_file(review=review, path=path)
    assert Record.objects.for_review(review).order_by("pk").first().authors[0] == "Blomberg, Björn A."


def test_a_utf16_tab_delimited_export_is_read(review, tmp_path):
    path = tmp_path / "savedrecs.txt"
    path.write_bytes(shared("fixtures", "exports", "generic_tab.tsv").read_text(encoding="utf-8").encode("utf-16"))
    result = import_file(review=review, path=path)
    assert (result.added, result.search.file_format) == (2, "TSV")
    assert result.search.records.order_by("pk").first().authors == ["Marx, Karl", "Lindgren, Astrid"]


def test_a_pipe_that_cannot_seek_is_read(review):
    read_end, write_end = os.pipe()
    os.write(write_end, shared("fixtures", "exports", "embase.ris").read_bytes())  # 21 kB fits the pipe
    os.close(write_end)
    with os.fdopen(read_end, "rb") as stream:
        assert not stream.seekable()
        result = import_file(review=review, fileobj=stream, filename="embase.ris")
    assert (result.added, result.search.source) == (6, "Embase")


def test_an_xlsx_workbook_reads_like_its_csv(review, tmp_path):
    import csv

    from openpyxl import Workbook

    rows = list(csv.reader(shared("datasets", "Donners_2021.csv").open(encoding="utf-8")))
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    for row in rows[:51]:
        sheet.append([int(v) if v.isdigit() and len(v) < 6 else v for v in row])
    book.save(tmp_path / "donners.xlsx")
    result = import_file(review=review, path=tmp_path / "donners.xlsx")
    assert (result.added, result.search.file_format) == (50, "Excel workbook")
    first = result.search.records.order_by("pk").first()
    assert (first.doi, first.year, first.authors[0]) == ("10.1055/s-0036-1571310", 2016, "Mannucci, Pier Mannuccio")


# --- bad files: a clear error naming the file and the place, and nothing stored -------------


@pytest.fixture
def counts(review):
    def now():
        return Record.objects.count(), Search.objects.count()

    return now


def _fails(review, path, counts, *fragments):
    before = counts()
    with pytest.raises(ImportFileError) as error:
        import_file(review=review, path=path)
    message = str(error.value)
    assert path.name in message
    for fragment in fragments:
        assert fragment in message
    assert counts() == before
    return message


def test_a_ris_record_cut_short_rolls_back_everything_already_stored(review, tmp_path, counts, monkeypatch):
    # Small chunks, so that 99 records are in the database when record 100 turns out cut short.
    monkeypatch.setattr(importing, "CHUNK", 10)
    lines = shared("fixtures", "exports", "baseline_zotero.ris").read_text(encoding="utf-8").splitlines()
    last_ty = max(i for i, line in enumerate(lines) if line.startswith("TY  -"))
    path = tmp_path / "cut.ris"
    path.write_text("\n".join(lines[: last_ty + 5]) + "\n", encoding="utf-8")
    _fails(review, path, counts, f"record 100 (line {last_ty + 1})", "cut short")


def test_a_ris_record_without_er_before_the_next_one_is_named(review, tmp_path, counts):
    text = shared("fixtures", "exports", "scopus.ris").read_text(encoding="utf-8")
    path = tmp_path / "no-er.ris"
    path.write_text(text.replace("ER  -", "", 1), encoding="utf-8")
    _fails(review, path, counts, "record 1 (line 1) has no ER line")


def test_binary_junk_is_refused(review, tmp_path, counts):
    path = tmp_path / "junk.ris"
    path.write_bytes(bytes(range(256)) * 40)
    _fails(review, path, counts, "binary file")


def test_a_table_without_a_title_column_is_refused(review, tmp_path, counts):
    text = shared("fixtures", "exports", "generic_labels.csv").read_text(encoding="utf-8")
    path = tmp_path / "no-title.csv"
    path.write_text(text.replace(",title,", ",heading,", 1), encoding="utf-8")
    _fails(review, path, counts, "no title column", "heading")


def test_a_csv_row_with_too_many_fields_is_named_by_line(review, tmp_path, counts):
    text = shared("fixtures", "exports", "duplicate_records.csv").read_text(encoding="utf-8")
    path = tmp_path / "extra.csv"
    path.write_text(text.replace("d;lorem;;lorem", "d;lorem;;lorem;surprise"), encoding="utf-8")
    _fails(review, path, counts, "line 6 has 5 fields but the header has 4")


def test_a_file_that_stops_being_utf8_far_down_is_named_by_line(review, tmp_path, counts, monkeypatch):
    monkeypatch.setattr(importing, "CHUNK", 10)
    data = shared("fixtures", "exports", "baseline_zotero.ris").read_bytes()
    lines = data.split(b"\n")
    lines[2700] = lines[2700] + b" \xff"
    path = tmp_path / "mixed.ris"
    path.write_bytes(b"\n".join(lines))
    _fails(review, path, counts, "line 2701 is not utf-8 text")


def test_a_damaged_medline_file_is_named_by_line(review, tmp_path, counts):
    lines = shared("fixtures", "medline", "pubmed_result2.txt").read_text().splitlines()
    lines.insert(100, "<html>Service unavailable</html>")
    path = tmp_path / "damaged.nbib"
    path.write_text("\n".join(lines) + "\n")
    _fails(review, path, counts, "line 101 is not a MEDLINE field line")


def test_truncated_pubmed_xml_is_refused(review, tmp_path, counts):
    data = shared("fixtures", "exports", "pubmed.xml").read_bytes()
    path = tmp_path / "truncated.xml"
    path.write_bytes(data[: len(data) // 2])
    _fails(review, path, counts)


def test_pmc_full_text_xml_is_refused_with_a_way_out(review, counts):
    message = _fails(review, shared("fixtures", "entrez", "efetch_pmc.xml"), counts, "PMC full-text XML")
    assert "PubMed" in message


def test_a_web_of_science_plain_text_export_is_imported(review, counts):
    # Refused with "export as RIS instead" before issue 8.
    result = import_file(review=review, path=Path(__file__).parent / "files" / "wos_plain.txt")
    assert (result.added, result.search.file_format, result.search.source) == (
        2,
        "Web of Science plain text",
        "Web of Science",
    )
    assert sorted(result.search.records.values_list("source_key", flat=True)) == [
        "WOS:000385319100006",
        "WOS:000405046500010",
    ]


def test_an_esearch_result_holds_no_records(review, counts):
    _fails(review, shared("fixtures", "entrez", "esearch1.xml"), counts, "search result")


def test_an_unknown_format_and_an_empty_file_are_refused(review, tmp_path, counts):
    path = tmp_path / "notes.txt"
    path.write_text("Dear colleague,\nplease find the references attached.\n")
    _fails(review, path, counts, "not recognised")
    empty = tmp_path / "empty.ris"
    empty.write_bytes(b"")
    _fails(review, empty, counts, "empty")


def test_a_text_mode_file_object_is_a_programming_error(review):
    with pytest.raises(ValueError):
        import_file(review=review, fileobj=io.StringIO("TY  - JOUR\nER  -\n"))


@pytest.mark.parametrize(
    "name, database, platform",
    [("proquest.ris", "PTSDpubs", "ProQuest"), ("ovid_psycinfo.ris", "APA PsycInfo", "Ovid")],
)
def test_the_database_and_its_platform_are_stored_apart(review, alice, name, database, platform):
    search = import_file(review=review, path=shared("fixtures", "exports", name), user=alice).search
    assert (search.source, search.platform) == (database, platform)
