"""Formats refused before issue 8: Web of Science plain text, Cochrane CENTRAL (text and RIS),
EndNote XML, BibTeX. Each is told from its content, read lazily, and a damaged file is named
by record and line. The files under files/ are written in each exporter's exact shape.
"""

import io
from pathlib import Path

import pytest

from review.article import ImportFileError
from review.importers import read_articles, sniff

FILES = Path(__file__).parent / "files"


def read(name, data=None):
    data = data if data is not None else (FILES / name).read_bytes()
    stream = io.BytesIO(data)
    sniffed = sniff(stream, name)
    warnings = []
    return sniffed, list(read_articles(stream, sniffed, name, warnings.append)), warnings


def fails(name, data, *fragments):
    with pytest.raises(ImportFileError) as error:
        read(name, data)
    message = str(error.value)
    assert name in message
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- Web of Science plain text -------------------------------------------------------------


def test_web_of_science_plain_text_is_read_with_its_continuation_lines():
    sniffed, articles, warnings = read("wos_plain.txt")
    assert (sniffed.label, sniffed.database, sniffed.platform) == (
        "Web of Science plain text",
        "Web of Science",
        "Web of Science",
    )
    first, second = articles
    assert first.title == "Traditional and non-traditional uses of Mitragynine (Kratom): A survey of the literature"
    assert first.authors == ["Singh, Darshan", "Narayanan, Suresh", "Vicknasingam, Balasingam"]
    assert first.abstract.endswith("Its leaves are chewed or brewed as tea.")
    assert (first.year, first.journal, first.volume, first.pages) == (2016, "BRAIN RESEARCH BULLETIN", "126", "41-46")
    assert (first.doi, first.pmid, first.source_key) == (
        "10.1016/j.brainresbull.2016.05.004",
        "27178014",
        "WOS:000385319100006",
    )
    assert "Traditional use" in first.keywords
    assert (second.pmid, second.source_key, second.year) == ("", "WOS:000405046500010", 2017)
    assert warnings == []


def test_web_of_science_plain_text_cut_short_is_named():
    data = (FILES / "wos_plain.txt").read_bytes()
    fails("savedrecs.txt", data[: data.rindex(b"ER")], "record 2 (line 30) is cut short")


def test_web_of_science_plain_text_with_a_stray_line_is_named():
    data = (FILES / "wos_plain.txt").read_bytes().replace(b"PY 2016", b"<html>Service unavailable</html>")
    fails("savedrecs.txt", data, "record 1 (line 3)", "line 20 is neither a field nor a continuation")


# --- Cochrane CENTRAL ------------------------------------------------------------------------


def test_cochrane_central_text_export_is_read():
    sniffed, articles, _ = read("cochrane_central.txt")
    assert (sniffed.label, sniffed.database, sniffed.platform) == (
        "Cochrane CENTRAL export",
        "Cochrane Central Register of Controlled Trials",
        "Cochrane Library",
    )
    trial, registry = articles
    assert (trial.source_key, trial.pmid, trial.doi) == ("CN-02345678", "25995615", "10.2147/DDDT.S79658")
    assert trial.authors == ["Trakulsrichai, S", "Sathirakul, K", "Auparakkitanon, S"]
    assert (trial.year, trial.volume, trial.pages) == (2015, "9", "2421-2429")
    assert trial.keywords[-1] == "*Mitragyna"
    assert trial.url == "https://www.cochranelibrary.com/central/doi/10.1002/central/CN-02345678/full"
    # EMBASE's id in XR is not a PMID.
    assert (registry.source_key, registry.pmid, registry.publication_type) == (
        "CN-02456789",
        "",
        "Trial registry record",
    )


def test_cochrane_central_ris_export_is_read_as_ris_from_central():
    sniffed, articles, _ = read("cochrane_central.ris")
    assert (sniffed.label, sniffed.database, sniffed.platform) == (
        "RIS",
        "Cochrane Central Register of Controlled Trials",
        "Cochrane Library",
    )
    assert (articles[0].source_key, articles[0].pmid) == ("CN-02345678", "25995615")


def test_a_cochrane_export_cut_short_is_named():
    text = (FILES / "cochrane_central.txt").read_bytes()
    fails("citation-export.txt", text[: text.index(b"Record #2")], "holds 1 of the 2 records", "cut short")


def test_a_cochrane_export_with_a_record_missing_in_between_is_named():
    text = (FILES / "cochrane_central.txt").read_bytes().replace(b"Record #2 of 2", b"Record #3 of 3")
    fails("citation-export.txt", text, "line 26 starts record #3, but record #2 was expected")


# --- EndNote XML -----------------------------------------------------------------------------


def test_endnote_xml_is_read_through_its_style_wrappers():
    sniffed, articles, _ = read("endnote.xml")
    assert (sniffed.label, sniffed.database, sniffed.platform) == ("EndNote XML", "PubMed", "PubMed")
    first, chapter = articles
    assert first.title == "Kratom use and mental health: A systematic review"
    assert first.authors == ["Swogger, M. T.", "Walsh, Z."]
    assert (first.year, first.journal, first.volume, first.pages) == (2018, "Drug Alcohol Depend", "183", "134-140")
    assert (first.doi, first.pmid) == ("10.1016/j.drugalcdep.2017.10.012", "29248691")
    assert first.abstract == "BACKGROUND: Kratom is a plant used for pain & opioid withdrawal."
    assert first.url == "https://www.ncbi.nlm.nih.gov/pubmed/29248691"
    assert (chapter.publication_type, chapter.pmcid, chapter.pmid) == ("Book Section", "PMC7777777", "")


def test_truncated_endnote_xml_is_named():
    data = (FILES / "endnote.xml").read_bytes()
    fails("My Library.xml", data[: data.index(b"<record><rec-number>18") + 40], "record 2", "XML is broken")


def test_endnote_xml_with_entities_is_refused():
    data = b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaa">]><xml><records><record>&a;</record></records></xml>'
    fails("bomb.xml", data, "entities")


# --- BibTeX ----------------------------------------------------------------------------------


def test_bibtex_is_read_with_string_macros_and_latex_accents():
    pytest.importorskip("bibtexparser")
    sniffed, articles, _ = read("refs.bib")
    assert sniffed.label == "BibTeX"
    article, chapter = articles
    assert article.title == "Kratom use and mental health: A systematic review"
    assert article.authors == ["Swogger, Marc T.", "Walsh, Zach"]
    assert (article.journal, article.pages, article.year) == ("Drug and Alcohol Dependence", "134-140", 2018)
    assert (article.doi, article.pmid, article.source_key) == (
        "10.1016/j.drugalcdep.2017.10.012",
        "29248691",
        "swogger2018kratom",
    )
    assert chapter.authors == ["Hassan, Zurina", "Müller, Christian P."]
    assert (chapter.title, chapter.journal, chapter.pmid) == (
        "Kratom in South-East Asia",
        "Handbook of Novel Psychoactive Substances",
        "33333333",
    )


def test_a_broken_bibtex_entry_is_named_by_line():
    pytest.importorskip("bibtexparser")
    data = (FILES / "refs.bib").read_bytes().replace(b"  year = 2021,\n", b"  year = {2021,\n")
    fails("refs.bib", data, "entry at line 17")
