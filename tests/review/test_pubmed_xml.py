import io
import re
import tracemalloc
import xml.etree.ElementTree as ET

import pytest

from review.article import ImportFileError
from review.importers.pubmed_xml import parse
from tests.shared import shared


def entrez(name):
    return shared("fixtures", "entrez", name)


def read(path):
    with open(path, "rb") as stream:
        return list(parse(stream))


def by_pmid(path):
    return {a.pmid: a for a in read(path)}


def test_it_reads_every_record_of_the_pubmed_website_export():
    path = shared("fixtures", "exports", "pubmed.xml")
    expected = [e.text for e in ET.parse(path).getroot().findall("PubmedArticle/MedlineCitation/PMID")]
    articles = read(path)
    assert [a.pmid for a in articles] == expected
    assert len(articles) == 10
    first = articles[0]
    assert first.title == "A new decompression device for treating odontogenic cysts using a silicone tube."
    assert first.journal == "The British journal of oral & maxillofacial surgery"
    assert first.authors[:2] == ["Kimura, M", "Ishibashi, K"]
    assert first.doi == "10.1016/j.bjoms.2019.09.011"
    assert first.year == 2019
    assert first.url == "https://pubmed.ncbi.nlm.nih.gov/31690499/"
    assert first.location == "record 1"


def test_it_reads_the_citation_fields_of_an_efetch_record():
    gut = by_pmid(entrez("pubmed4.xml"))["27797938"]
    assert gut.journal == "Gut"
    assert (gut.volume, gut.issue, gut.pages, gut.year) == ("66", "6", "1116-1122", 2017)
    assert gut.doi == "10.1136/gutjnl-2016-312510"
    assert gut.authors[0] == "Bao, Ying"
    assert len(gut.authors) == 22
    assert gut.publication_type.startswith("Journal Article; Observational Study; Research Support, N.I.H., Extramural")
    # Author keywords first, then the MeSH descriptors.
    assert gut.keywords[0] == "PANCREATIC CANCER"
    assert "Adenocarcinoma" in gut.keywords


def test_it_flattens_inline_markup_in_titles_and_abstracts():
    gut = by_pmid(entrez("pubmed4.xml"))["27797938"]
    assert (
        gut.title
        == "Leucocyte telomere length, genetic variants at the TERT gene region and risk of pancreatic cancer."
    )
    runners = by_pmid(entrez("pubmed6.xml"))["30108519"]
    assert runners.title.startswith('A "Blood Relationship" Between the Overlooked Minimum Lactate Equivalent')
    # <sub>, <sup> and MathML become plain text, without the layout whitespace.
    assert '"Minimum Lactate Equivalent" (LEmin)' in runners.abstract
    assert "15.0 ± 1.1 km·h-1" in runners.abstract
    assert "maximal oxygen uptake ( V.O2max )" in runners.abstract


def test_it_joins_a_structured_abstract_with_its_labels():
    pesticides = by_pmid(entrez("pubmed5.xml"))["28775130"]
    sections = pesticides.abstract.split("\n")
    assert [s.split(":")[0] for s in sections] == ["OBJECTIVES", "METHODS", "RESULTS", "CONCLUSIONS"]
    assert sections[0].startswith("OBJECTIVES: Animal studies suggest that exposure to pesticides")
    assert pesticides.keywords[:2] == ["agriculture", "hypothyroidism"]


def test_it_keeps_a_collective_author():
    lungs = by_pmid(entrez("pubmed7.xml"))["29963580"]
    assert lungs.authors[0] == "Guo, Fumin"
    assert lungs.authors[-1] == "Canadian Respiratory Research Network"


def test_it_takes_the_year_from_a_medline_date():
    # <MedlineDate>2014 Jan-Apr</MedlineDate>
    eruption = by_pmid(shared("fixtures", "exports", "pubmed.xml"))["24709432"]
    assert eruption.year == 2014
    assert eruption.doi == ""


def test_it_falls_back_to_the_electronic_date_without_a_pub_date():
    raw = entrez("pubmed5.xml").read_bytes()
    undated = re.sub(rb"<PubDate>.*?</PubDate>", b"<PubDate></PubDate>", raw, count=1, flags=re.DOTALL)
    (article,) = parse(io.BytesIO(undated))
    assert article.year == 2017  # <ArticleDate DateType="Electronic"><Year>2017</Year>


def test_it_reads_the_doi_from_the_article_ids_or_the_elocation():
    # PMID 9997 has its DOI only in PubmedData/ArticleIdList.
    assert by_pmid(entrez("pubmed1.xml"))["9997"].doi == "10.1016/0005-2795(76)90109-4"
    raw = entrez("pubmed6.xml").read_bytes()
    without = raw.replace(b'<ArticleId IdType="doi">10.3389/fphys.2018.01034</ArticleId>', b"")
    assert without != raw
    (article,) = parse(io.BytesIO(without))
    assert article.doi == "10.3389/fphys.2018.01034"  # from <ELocationID EIdType="doi">


def test_it_uses_the_page_range_without_a_medline_pagination():
    raw = entrez("pubmed1.xml").read_bytes().replace(b"<MedlinePgn>113-25</MedlinePgn>", b"")
    first = next(parse(io.BytesIO(raw)))
    assert first.pages == "113-125"  # <StartPage>113</StartPage><EndPage>125</EndPage>


def test_it_reads_a_book_chapter():
    book = b"""<?xml version="1.0"?>
<PubmedArticleSet><PubmedBookArticle><BookDocument>
<PMID Version="1">20301295</PMID>
<Book><Publisher><PublisherName>University of Washington, Seattle</PublisherName></Publisher>
<BookTitle book="gene">GeneReviews<sup>&#174;</sup></BookTitle><PubDate><Year>1993</Year></PubDate></Book>
<ArticleTitle book="gene" part="rett">MECP2 Disorders</ArticleTitle>
<AuthorList Type="authors"><Author><LastName>Kaur</LastName><ForeName>Satbir</ForeName></Author></AuthorList>
<Abstract><AbstractText Label="CLINICAL CHARACTERISTICS">MECP2 disorders include...</AbstractText></Abstract>
</BookDocument><PubmedBookData><ArticleIdList><ArticleId IdType="bookaccession">NBK1497</ArticleId>
</ArticleIdList></PubmedBookData></PubmedBookArticle></PubmedArticleSet>"""
    (chapter,) = parse(io.BytesIO(book), name="genereviews.xml")
    assert (chapter.pmid, chapter.title, chapter.journal) == ("20301295", "MECP2 Disorders", "GeneReviews®")
    assert chapter.authors == ["Kaur, Satbir"]
    assert chapter.year == 1993
    assert chapter.abstract == "CLINICAL CHARACTERISTICS: MECP2 disorders include..."


def test_a_truncated_file_names_the_file_record_and_line():
    raw = shared("fixtures", "exports", "pubmed.xml").read_bytes()
    cut = raw[: len(raw) // 2]
    complete = cut.count(b"</PubmedArticle>")
    read = []
    with pytest.raises(ImportFileError) as error:
        for article in parse(io.BytesIO(cut), name="search-2024.xml"):
            read.append(article)
    assert len(read) == complete
    message = str(error.value)
    assert message.startswith("search-2024.xml: ")
    assert f"record {complete + 1}" in message
    last_line = cut.count(b"\n") + 1
    assert f"line {last_line}," in message


def test_a_malformed_record_names_its_line():
    path = shared("fixtures", "exports", "pubmed.xml")
    lines = path.read_bytes().split(b"\n")
    # Break the third record's title.
    number = [i for i, line in enumerate(lines) if b"</ArticleTitle>" in line][2]
    lines[number] = lines[number].replace(b"</ArticleTitle>", b"</Title>")
    with pytest.raises(ImportFileError, match=rf"line {number + 1}, column \d+ \(record 3, after 2 complete"):
        list(parse(io.BytesIO(b"\n".join(lines)), name="pubmed.xml"))


def test_it_refuses_other_xml_and_ncbi_error_documents():
    with open(entrez("esearch1.xml"), "rb") as stream, pytest.raises(ImportFileError, match="not PubMed XML"):
        list(parse(stream))
    error = b'<?xml version="1.0"?>\n<eFetchResult>\n<ERROR>Unable to obtain query #1</ERROR>\n</eFetchResult>'
    with pytest.raises(ImportFileError, match="efetch.xml: this is not PubMed XML .*Unable to obtain query #1"):
        list(parse(io.BytesIO(error), name="efetch.xml"))
    with pytest.raises(ImportFileError, match="empty.xml: this is not XML"):
        list(parse(io.BytesIO(b""), name="empty.xml"))


def test_the_file_name_comes_from_the_open_file(tmp_path):
    raw = entrez("pubmed4.xml").read_bytes()
    path = tmp_path / "pubmed4-cut.xml"
    path.write_bytes(raw[: len(raw) // 3])
    with (
        open(path, "rb") as stream,
        pytest.raises(ImportFileError, match=rf"^{re.escape(str(path))}: .*\(record 1, after 0 complete"),
    ):
        list(parse(stream))


def test_memory_stays_flat_while_reading_many_records():
    raw = shared("fixtures", "exports", "pubmed.xml").read_bytes()
    head, rest = raw.split(b"<PubmedArticle>", 1)
    body = b"<PubmedArticle>" + rest.rsplit(b"</PubmedArticleSet>", 1)[0]
    big = head + body * 200 + b"</PubmedArticleSet>\n"  # 2,000 records, about 15 MB
    stream = io.BytesIO(big)
    tracemalloc.start()
    try:
        count = sum(1 for _ in parse(stream))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 2000
    # A parser that kept the tree would hold several times the file's size.
    assert peak < len(big) / 5
