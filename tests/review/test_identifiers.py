"""Identifiers and sources read from each export's own fields (issue 8), by the pure importers.

The small files under files/ are written in the exact shape each database exports (tags,
spacing, line endings); the shared fixtures are real exports.
"""

from pathlib import Path

import pytest

from review.importers import identifiers, read_articles, sniff
from tests.shared import shared

FILES = Path(__file__).parent / "files"


def read(path, data=None):
    """(Sniffed, articles, warnings) for a file, or for ``data`` read as if it were that file."""
    import io

    stream = io.BytesIO(data if data is not None else Path(path).read_bytes())
    sniffed = sniff(stream, Path(path).name)
    warnings = []
    return sniffed, list(read_articles(stream, sniffed, Path(path).name, warnings.append)), warnings


def export(name):
    return shared("fixtures", "exports", name)


# --- identifiers -------------------------------------------------------------------------


def test_dimensions_pmids_and_pmcids_come_from_its_user_fields():
    sniffed, articles, _ = read(FILES / "dimensions.ris")
    assert [a.pmid for a in articles] == ["35957633", "38180140", ""]
    assert [a.pmcid for a in articles] == ["PMC9371299", "", ""]
    assert articles[0].doi == "10.1371/journal.pone.0272012"
    assert articles[0].url == "https://app.dimensions.ai/details/publication/pub.1150182134"
    assert (sniffed.database, sniffed.platform, sniffed.source) == ("Dimensions", "Dimensions", "Dimensions")


def test_ovid_medline_accession_numbers_in_links_are_pmids():
    sniffed, articles, _ = read(FILES / "ovid_medline.ris")
    assert [a.pmid for a in articles] == ["39012781", "38877321"]
    # Records with only an L2 link keep it.
    assert articles[1].url == "http://ovidsp.ovid.com/ovidweb.cgi?T=JS&PAGE=reference&D=medl&NEWS=N&AN=38877321"
    assert articles[0].doi == "10.1177/02698811241254831"
    assert (sniffed.database, sniffed.platform, sniffed.source) == ("MEDLINE", "Ovid", "MEDLINE (Ovid)")


def test_ovid_embase_and_psycinfo_accession_numbers_are_not_pmids():
    sniffed, articles, _ = read(FILES / "ovid_embase.ris")
    assert [a.pmid for a in articles] == [""]
    assert (sniffed.database, sniffed.platform) == ("Embase", "Ovid")
    _, psycinfo, _ = read(export("ovid_psycinfo.ris"))
    assert [a.pmid for a in psycinfo] == [""] * 6
    assert all(a.url.startswith("http://ovidsp.ovid.com/") for a in psycinfo)


def test_pubmed_links_give_pmids_and_pmc_links_pmcids():
    sniffed, articles, _ = read(FILES / "pubmed_links.ris")
    # The third record's note cites two PMIDs (its own and a comment's): that field gives none.
    assert [a.pmid for a in articles] == ["29248691", "28521200", ""]
    assert [a.pmcid for a in articles] == ["", "", "PMC4126873"]
    assert articles[1].url == "https://pubmed.ncbi.nlm.nih.gov/28521200/"
    assert (sniffed.database, sniffed.platform) == ("PubMed", "PubMed")


def test_ebsco_medline_accession_numbers_are_pmids():
    sniffed, articles, _ = read(FILES / "ebsco_medline.ris")
    assert [a.pmid for a in articles] == ["29054408"]
    assert (sniffed.database, sniffed.platform, sniffed.source) == ("MEDLINE", "EBSCOhost", "MEDLINE (EBSCOhost)")


# PMIDs / PMC IDs found in each real export (checked by hand against the files: EndNote's Lens
# export holds PubMed and PMC links as extra L2 lines, Zotero's fewer of them; CINAHL via
# Rayyan writes "PMID: NLM123"; PsycInfo's accession numbers are no PMIDs).
PMID_COUNTS = [
    ("baseline_endnote.ris", 100, 80, 57),
    ("baseline_zotero.ris", 100, 23, 14),
    ("embase.ris", 6, 3, 0),
    ("scopus.ris", 6, 5, 0),
    ("pubmed_endnote.txt", 6, 6, 0),
    ("ris_issue_992.txt", 19, 3, 0),
    ("ovid_psycinfo.ris", 6, 0, 0),
    ("ovid_zotero.ris", 6, 0, 0),
    ("pubmed_zotero.ris", 6, 0, 0),
    ("proquest.ris", 6, 0, 0),
]


@pytest.mark.parametrize("name, records, pmids, pmcids", PMID_COUNTS, ids=[c[0] for c in PMID_COUNTS])
def test_pmids_found_in_the_shared_exports(name, records, pmids, pmcids):
    _, articles, _ = read(export(name))
    assert len(articles) == records
    assert sum(1 for a in articles if a.pmid) == pmids
    assert sum(1 for a in articles if a.pmcid) == pmcids
    assert all(a.pmid.isdigit() for a in articles if a.pmid)


def test_endnote_and_zotero_exports_of_the_same_records_agree_on_pmids():
    _, endnote, _ = read(export("baseline_endnote.ris"))
    _, zotero, _ = read(export("baseline_zotero.ris"))
    by_doi = {a.doi.lower(): a.pmid for a in endnote}
    assert all(by_doi[a.doi.lower()] == a.pmid for a in zotero if a.pmid)


def test_a_field_naming_two_different_identifiers_gives_none():
    assert identifiers.first_unambiguous(identifiers.pmids, "PMID: 1234 and PMID: 5678") == ""
    assert identifiers.first_unambiguous(identifiers.pmids, "PMID: 1234; PMID: 1234") == "1234"
    # The next field that names one still counts.
    assert identifiers.first_unambiguous(identifiers.pmids, "PMID: 1 PMID: 2", ["https://pubmed.ncbi.nlm.nih.gov/3/"])
    assert identifiers.first_unambiguous(identifiers.dois, ["https://doi.org/10.1000/a1", "doi:10.1000/B2"]) == ""
    assert identifiers.first_unambiguous(identifiers.pmcids, "PMC1234567 PMC7654321") == ""


def test_carriers_look_for_hints_in_the_decoded_text_and_not_across_fields():
    """The one hint check on all of a record's fields together (issue 9) answers as each field would."""
    # "P%4DID" names no PMID until the percent-escape is decoded.
    assert identifiers.Carriers(["x", "P%4DID: 123"]).first(identifiers.pmids) == "123"
    assert identifiers.Carriers("10%2E1000/abc").first(identifiers.dois) == "10.1000/abc"
    # "pm" ending one value and "c123456" starting the next make no PMC ID, nor "PM" "ID: 1" a PMID.
    carriers = identifiers.Carriers(["see pm", "c1234567"], "PM", "ID: 1")
    assert carriers.first(identifiers.pmcids) == "" and carriers.first(identifiers.pmids) == ""
    carriers = identifiers.Carriers(None, "", [], ["", "PMID: 7 and PMC7654321"], 10.5)
    assert (carriers.first(identifiers.pmids), carriers.first(identifiers.pmcids)) == ("7", "PMC7654321")


def test_a_record_without_any_link_gets_its_doi_link():
    _, articles, _ = read(export("pubmed_zotero.ris"))
    assert articles[0].url == "https://doi.org/10.5114/pg.2018.81081"


def test_medline_pmc_field_is_the_pmcid():
    _, articles, _ = read(shared("fixtures", "medline", "pubmed_result2.txt"))
    assert [a.pmcid for a in articles] == ["PMC1373603", "", "", ""]


def test_zotero_csv_extra_column_gives_pmid_and_pmcid(tmp_path):
    # Zotero's CSV export: identifiers live in the "Extra" column, one per line.
    text = (
        '"Key","Item Type","Publication Year","Author","Title","Publication Title","DOI","Url","Extra"\r\n'
        '"ABCD1234","journalArticle","2018","Swogger, Marc T.; Walsh, Zach",'
        '"Kratom use and mental health: A systematic review","Drug and Alcohol Dependence","",'
        '"","PMID: 29248691\nPMCID: PMC5555555"\r\n'
    )
    _, articles, _ = read(tmp_path / "zotero.csv", text.encode())
    assert (articles[0].pmid, articles[0].pmcid) == ("29248691", "PMC5555555")


def test_dimensions_csv_is_read_below_its_about_the_data_line():
    sniffed, articles, _ = read(FILES / "dimensions.csv")
    assert (sniffed.format, sniffed.database, sniffed.platform) == ("csv", "Dimensions", "Dimensions")
    assert [(a.pmid, a.pmcid, a.source_key) for a in articles] == [
        ("35957633", "PMC9371299", "pub.1150182134"),
        ("38180140", "", "pub.1167654321"),
    ]
    assert (articles[1].pages, articles[1].issue, articles[1].location) == ("1131-1140", "5", "line 4")


def test_lens_csv_names_lens_and_keeps_its_identifiers():
    sniffed, articles, _ = read(FILES / "lens.csv")
    assert (sniffed.database, sniffed.platform) == ("Lens", "Lens")
    assert [(a.pmid, a.pmcid) for a in articles] == [("29248691", ""), ("24698080", "PMC4126873")]
    assert articles[1].url == "https://doi.org/10.1016/j.drugalcdep.2014.03.017"


# --- sources -----------------------------------------------------------------------------

EBSCO_CODES = [
    ("psyh", "APA PsycInfo"),
    ("i3h", "Criminal Justice Abstracts"),
    ("ecn", "EconLit"),
    ("cmedm", "MEDLINE"),
    ("rzh", "CINAHL"),
    ("a9h", "Academic Search Complete"),
    ("eric", "ERIC"),
    ("bth", "Business Source Premier"),
    ("e000xna", "eBook Collection (EBSCOhost)"),
    ("zzz", "zzz"),  # a code we do not know is named as written
]


@pytest.mark.parametrize("code, name", EBSCO_CODES)
def test_ebsco_database_codes_are_named(code, name):
    data = (FILES / "ebsco_psycinfo.ris").read_bytes().replace(b"psyh", code.encode())
    sniffed, _, _ = read("ebsco.ris", data)
    label = name if "EBSCOhost" in name else f"{name} (EBSCOhost)"
    assert (sniffed.database, sniffed.platform, sniffed.source) == (name, "EBSCOhost", label)


def test_ebsco_compound_dates_give_the_issue_year():
    _, articles, warnings = read(FILES / "ebsco_psycinfo.ris")
    assert [a.year for a in articles] == [2014, 2019]
    assert warnings == []


@pytest.mark.parametrize(
    "code, name",
    [
        ("medp", "MEDLINE"),
        ("medall", "MEDLINE"),
        ("prem", "MEDLINE"),
        ("psyc16", "APA PsycInfo"),
        ("emed24", "Embase"),
        ("emez", "Embase"),
        ("coch", "Cochrane Database of Systematic Reviews"),
        ("cctr", "Cochrane Central Register of Controlled Trials"),
    ],
)
def test_ovid_database_codes_are_named(code, name):
    data = (FILES / "ovid_medline.ris").read_bytes().replace(b"D=medp", f"D={code}".encode())
    data = data.replace(b"D=medl", f"D={code}".encode())
    sniffed, _, _ = read("ovid.ris", data)
    assert (sniffed.database, sniffed.platform, sniffed.source) == (name, "Ovid", f"{name} (Ovid)")


def test_ovid_db_tag_names_the_database():
    data = (FILES / "ovid_embase.ris").read_bytes().replace(b"ID  -", b"DB  - Ovid MEDLINE(R) ALL\nID  -")
    data = data.replace(b"ovidsp.ovid.com", b"example.org")
    sniffed, _, _ = read("ovid.ris", data)
    assert (sniffed.database, sniffed.platform) == ("MEDLINE", "Ovid")


@pytest.mark.parametrize(
    "name, database, platform",
    [
        ("baseline_endnote.ris", "Lens", "Lens"),  # EndNote export of Lens records: no DB/DP, lens.org links
        ("embase.ris", "Embase", "Embase.com"),
        ("scopus.ris", "Scopus", "Scopus"),
        ("web_of_science.txt", "Web of Science", "Web of Science"),
        ("proquest.ris", "PTSDpubs", "ProQuest"),
        ("pubmed_endnote.txt", "PubMed", "PubMed"),
        ("ovid_psycinfo.ris", "APA PsycInfo", "Ovid"),
        ("pubmed_zotero.ris", "", ""),  # nothing in the file says where it came from
    ],
)
def test_shared_exports_name_their_database_and_platform(name, database, platform):
    sniffed, _, _ = read(export(name))
    assert (sniffed.database, sniffed.platform) == (database, platform)


# --- Web of Science tab-delimited ----------------------------------------------------------


def test_web_of_science_tab_delimited_ids_are_ut_not_keywords_plus():
    sniffed, articles, warnings = read(FILES / "wos_tab.txt")
    assert (sniffed.format, sniffed.database, sniffed.platform) == ("tsv", "Web of Science", "Web of Science")
    assert [a.source_key for a in articles] == [
        "WOS:000385319100006",
        "WOS:000405046500010",
        "WOS:000424178400018",
    ]
    assert warnings == []  # Keywords Plus repeat from row to row; the ids do not
    assert [a.pmid for a in articles] == ["27178014", "28521200", "29248691"]


def test_utf16_without_a_byte_order_mark_is_read():
    text = (FILES / "wos_tab.txt").read_text(encoding="utf-8-sig")
    for encoding in ("utf-16-le", "utf-16-be"):
        sniffed, articles, _ = read("savedrecs.txt", text.encode(encoding))
        assert sniffed.encoding == encoding
        assert [a.title for a in articles] == [a.title for a in read(FILES / "wos_tab.txt")[1]]
