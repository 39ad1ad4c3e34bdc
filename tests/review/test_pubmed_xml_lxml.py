"""The lxml parser gives the same Articles as the stdlib parser it replaced, on every PubMed
record of ../shared/fixtures and on the markup, book and edge cases the importer meets."""

import dataclasses
import io
import re

import pytest

from review.article import ImportFileError
from review.importers import pubmed_xml
from tests.review import pubmed_xml_reference as reference
from tests.shared import shared

FIXTURES = sorted(shared("fixtures", "entrez").glob("pubmed*.xml")) + [shared("fixtures", "exports", "pubmed.xml")]


def both(raw):
    new = [dataclasses.asdict(a) for a in pubmed_xml.parse(io.BytesIO(raw), name="f.xml")]
    old = [dataclasses.asdict(a) for a in reference.parse(io.BytesIO(raw), name="f.xml")]
    return new, old


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_every_fixture_gives_the_same_articles_as_the_stdlib_parser(path):
    new, old = both(path.read_bytes())
    assert len(new) == len(old) > 0
    assert new == old
    assert all(a["title"] and a["pmid"] for a in new)


def test_all_fixture_records_in_one_file_give_the_same_articles():
    articles = [
        a for p in FIXTURES for a in re.findall(rb"<PubmedArticle>.*?</PubmedArticle>", p.read_bytes(), re.DOTALL)
    ]
    raw = b'<?xml version="1.0"?>\n<PubmedArticleSet>\n' + b"\n".join(articles) + b"\n</PubmedArticleSet>\n"
    new, old = both(raw)
    assert len(new) == len(articles) == 18
    assert new == old


EDGES = {
    "comment-and-pi-inside-a-title": b"<ArticleTitle>Kratom <!-- note --> and <?pi x?>PTSD<i>in</i> rats.</ArticleTitle>",
    "cdata": b"<ArticleTitle><![CDATA[Kratom & <PTSD>]]> rats</ArticleTitle>",
    "character-references": b"<ArticleTitle>Caf&#xe9; &amp; r&#233;sum&#233; &lt;1&gt;</ArticleTitle>",
    "empty-fields": b"<ArticleTitle/><VernacularTitle>Vernacular</VernacularTitle>",
    "mathml": (
        b'<ArticleTitle>V<mml:math xmlns:mml="http://www.w3.org/1998/Math/MathML">\n  <mml:mi>O</mml:mi>\n'
        b"  <mml:mn>2</mml:mn>\n</mml:math> max</ArticleTitle>"
    ),
    "nested-markup": b"<ArticleTitle><b>CO<sub>2</sub> <i>in <u>vivo</u></i></b> tail</ArticleTitle>",
}


@pytest.mark.parametrize("title", EDGES.values(), ids=EDGES.keys())
def test_edge_cases_give_the_same_articles(title):
    raw = shared("fixtures", "entrez", "pubmed1.xml").read_bytes()
    raw, count = re.subn(rb"<ArticleTitle>.*?</ArticleTitle>", title.replace(b"\\", b"\\\\"), raw, count=1, flags=re.S)
    assert count == 1
    new, old = both(raw)
    assert new == old
    assert new[0]["title"]


def test_a_book_and_a_single_record_document_are_read_alike():
    book = (
        b'<?xml version="1.0"?><PubmedArticleSet><PubmedBookArticle><BookDocument><PMID Version="1">1</PMID>'
        b"<Book><BookTitle>Gene<sup>R</sup></BookTitle><PubDate><Year>1993</Year></PubDate>"
        b"<AuthorList><Author><LastName>Adam</LastName><Initials>M</Initials></Author></AuthorList></Book>"
        b"<PublicationType>Review</PublicationType></BookDocument></PubmedBookArticle></PubmedArticleSet>"
    )
    new, old = both(book)
    assert new == old and new[0]["journal"] == "" and new[0]["authors"] == ["Adam, M"]
    single = re.search(
        rb"<PubmedArticle>.*?</PubmedArticle>", shared("fixtures", "entrez", "pubmed4.xml").read_bytes(), re.S
    )
    new, old = both(single.group())  # a lone record as the document: read as one record
    assert new == old and len(new) == 1


def test_an_undefined_entity_is_refused_like_the_stdlib_parser_did():
    doctype = (
        b'<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
        b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
    )
    raw = shared("fixtures", "entrez", "pubmed1.xml").read_bytes()
    raw = re.sub(rb"<!DOCTYPE[^>]*>\s*", b"", raw)
    raw = raw.replace(b"<PubmedArticleSet>", doctype + b"<PubmedArticleSet>", 1)
    raw = re.sub(rb"(<ArticleTitle>)", rb"\1&nbsp;", raw, count=1)
    for parse in (pubmed_xml.parse, reference.parse):
        with pytest.raises(
            ImportFileError,
            match=r"^f\.xml: the XML is malformed.*\(record 1, after 0 complete records\): undefined entity &nbsp;",
        ):
            list(parse(io.BytesIO(raw), name="f.xml"))


def test_the_depth_guard_needs_no_python_recursion():
    raw = shared("fixtures", "entrez", "pubmed1.xml").read_bytes()
    deep = b"<i>" * 100_000 + b"x" + b"</i>" * 100_000
    raw = re.sub(rb"(<ArticleTitle>)", lambda m: m[1] + deep, raw, count=1)
    with pytest.raises(
        ImportFileError, match=rf"record 1 \(PMID \d+\): the XML nests elements more than {pubmed_xml.MAX_DEPTH}"
    ):
        list(pubmed_xml.parse(io.BytesIO(raw), name="f.xml"))


AUTHOR_LISTS = {
    "parts-after-affiliations-and-repeated": (
        b'<AuthorList CompleteYN="Y"><Author ValidYN="Y"><AffiliationInfo><Affiliation>X</Affiliation>'
        b'</AffiliationInfo><Identifier Source="ORCID">0000</Identifier><LastName>Adler</LastName>'
        b"<LastName>Second</LastName><Initials>D</Initials><ForeName>Dana</ForeName></Author>"
        b"<Author><Initials>K</Initials><LastName>Marx</LastName></Author>"
        b"<Author><ForeName>Only</ForeName></Author>"
        b"<Author><CollectiveName>Kratom <i>Study</i> Group</CollectiveName></Author>"
        b"<Author><LastName>Both</LastName><CollectiveName>Ignored Group</CollectiveName></Author>"
        b'<Author ValidYN="N"><LastName>Wrong</LastName></Author>'
        b"<Author><LastName/><ForeName>Blank</ForeName></Author></AuthorList>"
    ),
    "empty": b"<AuthorList/>",
}


@pytest.mark.parametrize("authors", AUTHOR_LISTS.values(), ids=AUTHOR_LISTS.keys())
def test_author_name_parts_are_read_as_the_stdlib_parser_reads_them(authors):
    raw = shared("fixtures", "entrez", "pubmed1.xml").read_bytes()
    raw, count = re.subn(rb"<AuthorList.*?</AuthorList>", authors, raw, count=1, flags=re.S)
    assert count == 1
    new, old = both(raw)
    assert new == old


def test_mesh_descriptors_of_several_heading_lists_are_read_in_document_order():
    mesh = (
        b'<MeshHeadingList><MeshHeading><DescriptorName UI="D1">Rats</DescriptorName>'
        b"<QualifierName>drug effects</QualifierName></MeshHeading><MeshHeading><QualifierName>q</QualifierName>"
        b"<DescriptorName>  Mitragyna\n speciosa </DescriptorName><DescriptorName>Second</DescriptorName>"
        b"</MeshHeading><MeshHeading/></MeshHeadingList><MeshHeadingList><MeshHeading>"
        b"<DescriptorName>Later <i>list</i></DescriptorName></MeshHeading></MeshHeadingList>"
        b"<KeywordList><Keyword>Rats</Keyword></KeywordList>"
    )
    raw = shared("fixtures", "entrez", "pubmed1.xml").read_bytes()
    raw = re.sub(rb"<MeshHeadingList>.*?</MeshHeadingList>|<KeywordList.*?</KeywordList>", b"", raw, flags=re.S)
    raw, count = re.subn(rb"</MedlineCitation>", mesh + b"</MedlineCitation>", raw, count=1)
    assert count == 1
    new, old = both(raw)
    assert new == old
    assert new[0]["keywords"] == ["Rats", "Mitragyna speciosa", "Second", "Later list"]
