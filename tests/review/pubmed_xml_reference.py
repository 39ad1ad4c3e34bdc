"""The PubMed XML parser as it was before lxml (xml.etree through defusedxml, start and end events),
kept verbatim as the reference the lxml parser is compared with (test_pubmed_xml_lxml.py).
"""

import re
import xml.etree.ElementTree as ET

from defusedxml import DefusedXmlException, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import iterparse

from review.article import Article, ImportFileError

ARTICLE_TAGS = {"PubmedArticle", "PubmedBookArticle"}
ROOT_TAGS = {"PubmedArticleSet", "PubmedBookArticleSet"} | ARTICLE_TAGS
NCBI_ERROR_TAGS = {"eFetchResult", "ERROR"}
MATHML = "{http://www.w3.org/1998/Math/MathML}"
YEAR = re.compile(r"\b(\d{4})\b")
# How deep elements may nest. A PubMed record is about 10 levels deep, MathML in a title or
# abstract adds a few more; a thousand nested <i> is no record (and would exhaust the stack).
MAX_DEPTH = 100


class NcbiErrorAnswer(ImportFileError):
    """NCBI answered with its error document (<eFetchResult><ERROR>...) instead of records."""

    def __init__(self, message, error=""):
        super().__init__(message)
        self.error = error  # NCBI's own words: "Unable to obtain query #1"


def parse(stream, name=""):
    """Yield one Article per PubmedArticle (and PubmedBookArticle) in ``stream``, a binary file.

    A malformed or truncated file raises ImportFileError naming the file, the record being
    read and the line and column where the XML broke off; records before it have been yielded.
    """
    name = name or str(getattr(stream, "name", "") or "PubMed XML")
    number = 0
    root = current = None
    depth = 0
    try:
        # defusedxml refuses entity declarations and external references (billion laughs, XXE);
        # PubMed XML declares none.
        for event, elem in iterparse(stream, events=("start", "end"), forbid_entities=True, forbid_external=True):
            if event == "end":
                depth -= 1
            else:
                depth += 1
                if depth > MAX_DEPTH:
                    raise ImportFileError(_too_deep(name, number + 1, current))
            if root is None:
                root = elem
                if root.tag not in ROOT_TAGS | NCBI_ERROR_TAGS:
                    raise ImportFileError(_not_pubmed(name, root))
                continue
            if elem.tag in ARTICLE_TAGS:
                if event == "start":
                    current = elem
                    continue
                number += 1
                yield _article(elem, number)
                # Drop what has been read: the record and its place in the root.
                elem.clear()
                root.clear()
                current = None
    except (EntitiesForbidden, ExternalReferenceForbidden) as exc:
        kind = "an external reference" if isinstance(exc, ExternalReferenceForbidden) else "an entity"
        raise ImportFileError(
            f"{name}: the XML declares {kind} ({exc.name!r}), which PubMed XML never does; "
            "the file is refused (entities can expand into gigabytes or read files on the server)."
        ) from None
    except DefusedXmlException as exc:
        raise ImportFileError(f"{name}: the XML is refused: {exc}.") from None
    except ET.ParseError as exc:
        line, column = exc.position
        reason = str(exc).split(":")[0]
        if root is None:
            raise ImportFileError(f"{name}: this is not XML ({reason} at line {line}, column {column}).") from None
        raise ImportFileError(
            f"{name}: the XML is malformed or cut short at line {line}, column {column} "
            f"(record {number + 1}, after {number} complete records): {reason}."
        ) from None
    if root.tag in NCBI_ERROR_TAGS:
        raise NcbiErrorAnswer(_not_pubmed(name, root), error=" ".join("".join(root.itertext()).split()))


def _too_deep(name, number, article):
    pmid = ""
    if article is not None:
        pmid = (article.findtext("MedlineCitation/PMID") or article.findtext("BookDocument/PMID") or "").strip()
    where = f"record {number}" + (f" (PMID {pmid})" if pmid else "")
    return (
        f"{name}: {where}: the XML nests elements more than {MAX_DEPTH} deep (markup such as <i> inside <i> "
        "inside <i>...), which no PubMed record does; nothing was imported."
    )


def _not_pubmed(name, root):
    # NCBI answers some failed efetch requests with a small error document instead of records.
    message = " ".join("".join(root.itertext()).split())[:300]
    return f"{name}: this is not PubMed XML (the document is <{root.tag}>, expected <PubmedArticleSet>)" + (
        f": {message}" if message else "."
    )


def _article(elem, number):
    if elem.tag == "PubmedBookArticle":
        return _book_article(elem, number)
    citation = elem.find("MedlineCitation")
    article = citation.find("Article") if citation is not None else None
    if article is None:
        return Article(location=f"record {number}")
    pmid = (citation.findtext("PMID") or "").strip()
    journal = article.find("Journal")
    issue = journal.find("JournalIssue") if journal is not None else None
    return Article(
        title=_text(article.find("ArticleTitle")) or _text(article.find("VernacularTitle")),
        abstract=_abstract(article.find("Abstract")) or _abstract(citation.find("OtherAbstract")),
        authors=_authors(article.find("AuthorList")),
        year=_year(issue.find("PubDate") if issue is not None else None) or _year(article.find("ArticleDate")),
        journal=_text(journal.find("Title")) if journal is not None else "",
        volume=_text(issue.find("Volume")) if issue is not None else "",
        issue=_text(issue.find("Issue")) if issue is not None else "",
        pages=_pages(article.find("Pagination")),
        doi=_doi(elem.find("PubmedData/ArticleIdList"), article),
        pmid=pmid,
        keywords=_keywords(citation),
        url=f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/" if pmid else "",
        publication_type="; ".join(_texts(article.findall("PublicationTypeList/PublicationType"))),
        source_key=pmid,
        location=f"record {number}",
    )


def _book_article(elem, number):
    document = elem.find("BookDocument")
    if document is None:
        return Article(location=f"record {number}")
    book = document.find("Book")
    pmid = (document.findtext("PMID") or "").strip()
    title = _text(document.find("ArticleTitle"))
    book_title = _text(book.find("BookTitle")) if book is not None else ""
    return Article(
        title=title or book_title,
        abstract=_abstract(document.find("Abstract")),
        authors=_authors(document.find("AuthorList"))
        or _authors(book.find("AuthorList") if book is not None else None),
        year=_year(book.find("PubDate") if book is not None else None),
        journal=book_title if title else "",
        pages=_pages(document.find("Pagination")),
        doi=_doi(elem.find("PubmedBookData/ArticleIdList"), document),
        pmid=pmid,
        keywords=_unique(_texts(document.findall("KeywordList/Keyword"))),
        url=f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/" if pmid else "",
        publication_type="; ".join(_texts(document.findall("PublicationType"))) or "Book",
        source_key=pmid,
        location=f"record {number}",
    )


def _text(elem):
    """The element's text with inline markup (<i>, <sup>, MathML) flattened, spaces collapsed."""
    if elem is None:
        return ""
    return " ".join(_flatten(elem).split())


def _flatten(elem):
    if elem.tag.startswith(MATHML):
        # MathML is laid out one symbol per indented line: V . O 2 max -> V.O2max
        return "".join(t.strip() for t in elem.itertext())
    parts = [elem.text or ""]
    for child in elem:
        parts.append(_flatten(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _texts(elems):
    return [t for t in (_text(e) for e in elems) if t]


def _unique(items):
    return list(dict.fromkeys(items))


def _abstract(abstract):
    if abstract is None:
        return ""
    sections = []
    for part in abstract.findall("AbstractText"):
        text = _text(part)
        label = (part.get("Label") or "").strip()
        if text and label:
            sections.append(f"{label}: {text}")
        elif text or label:
            sections.append(text or label)
    return "\n".join(sections)


def _authors(author_list):
    if author_list is None:
        return []
    names = []
    for author in author_list.findall("Author"):
        if author.get("ValidYN") == "N":
            continue  # an erroneous entry PubMed keeps only for the record's history
        collective = _text(author.find("CollectiveName"))
        surname = _text(author.find("LastName"))
        given = _text(author.find("ForeName")) or _text(author.find("Initials"))
        if surname:
            names.append(f"{surname}, {given}" if given else surname)
        elif collective:
            names.append(collective)
    return names


def _year(date):
    if date is None:
        return None
    for text in (date.findtext("Year"), date.findtext("MedlineDate")):
        match = YEAR.search(text or "")
        if match:
            return int(match.group(1))
    return None


def _pages(pagination):
    if pagination is None:
        return ""
    medline = _text(pagination.find("MedlinePgn"))
    if medline:
        return medline
    start, end = _text(pagination.find("StartPage")), _text(pagination.find("EndPage"))
    return f"{start}-{end}" if start and end else start


def _doi(id_list, article):
    # PubmedData's own ArticleIdList: the ReferenceList holds other ArticleIdLists (the cited works).
    if id_list is not None:
        for article_id in id_list.findall("ArticleId"):
            if article_id.get("IdType") == "doi" and _text(article_id):
                return _text(article_id)
    for location in article.findall("ELocationID"):
        if location.get("EIdType") == "doi" and _text(location):
            return _text(location)
    return ""


def _keywords(citation):
    keywords = _texts(citation.findall("KeywordList/Keyword"))
    mesh = _texts(citation.findall("MeshHeadingList/MeshHeading/DescriptorName"))
    return _unique(keywords + mesh)
