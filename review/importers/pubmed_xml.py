"""PubMed XML (efetch retmode=xml, or "Save > PubMed XML" on the website) -> Article iterator.

Streams with lxml's iterparse (libxml2), asking only for the events of the record elements,
and drops each record once read, so memory stays flat however large the file: Bio.Entrez.read
builds the whole document (about 1 GB and 9 s per 10,000 records), this parser keeps one record
(bench/pubmed_xml.py measures both).
"""

import re

from lxml import etree

from review.article import Article, ImportFileError

ARTICLE_TAGS = {"PubmedArticle", "PubmedBookArticle"}
ROOT_TAGS = {"PubmedArticleSet", "PubmedBookArticleSet"} | ARTICLE_TAGS
NCBI_ERROR_TAGS = {"eFetchResult", "ERROR"}
MATHML = "{http://www.w3.org/1998/Math/MathML}"
YEAR = re.compile(r"\b(\d{4})\b")
# How deep elements may nest: libxml2's own limit without XML_PARSE_HUGE (it stops the parse
# with "Excessive depth in document"). A PubMed record is about 10 levels deep, MathML in a
# title or abstract adds a few more; a thousand nested <i> is no record.
MAX_DEPTH = 256
_POSITION = re.compile(r",? line \d+, column \d+$")
# The MeSH descriptors of a MedlineCitation, found in C: one XPath call for the ten or so of a
# record costs half the walk over MeshHeadingList and each MeshHeading's children in Python.
_MESH_DESCRIPTORS = etree.XPath("MeshHeadingList/MeshHeading/DescriptorName")


class NcbiErrorAnswer(ImportFileError):
    """NCBI answered with its error document (<eFetchResult><ERROR>...) instead of records."""

    def __init__(self, message, error=""):
        super().__init__(message)
        self.error = error  # NCBI's own words: "Unable to obtain query #1"


class _UndefinedEntity(Exception):
    """A field refers to an entity the document does not declare (&nbsp; under PubMed's DTD)."""


def parse(stream, name=""):
    """Yield one Article per PubmedArticle (and PubmedBookArticle) in ``stream``, a binary file.

    A malformed or truncated file raises ImportFileError naming the file, the record being
    read and the line and column where the XML broke off; records before it have been yielded.
    """
    name = name or str(getattr(stream, "name", "") or "PubMed XML")
    number = 0
    root = current = None
    # Entities are never expanded nor fetched (no DTD is loaded, nothing from the network); a
    # document that declares any is refused at its root, before a single record is read.
    events = etree.iterparse(
        stream,
        events=("start", "end"),
        tag=ROOT_TAGS | NCBI_ERROR_TAGS,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        for event, elem in events:
            if root is None:
                root = elem
                while root.getparent() is not None:  # <foo><PubmedArticle>: the first event is not the root
                    root = root.getparent()
                if root.tag not in ROOT_TAGS | NCBI_ERROR_TAGS:
                    raise ImportFileError(_not_pubmed(name, root))
                _refuse_entities(name, root)
                if elem is root:
                    continue
            if elem.tag not in ARTICLE_TAGS:
                continue
            if event == "start":
                current = elem
                continue
            article = _article(elem, number + 1)
            number += 1
            yield article
            # Drop what has been read: the record, and the records before it in the root.
            elem.clear(keep_tail=True)
            parent = elem.getparent()
            while elem.getprevious() is not None:
                del parent[0]
            current = None
    except _UndefinedEntity as exc:
        raise ImportFileError(
            f"{name}: the XML is malformed (record {number + 1}, after {number} complete records): "
            f"undefined entity &{exc};."
        ) from None
    except etree.XMLSyntaxError as exc:
        raise ImportFileError(_syntax_error(name, exc, events, root, number, current)) from None
    if root is None:
        root = events.root
        if root is None:
            raise ImportFileError(f"{name}: this is not XML (no element found).")
        if root.tag not in ROOT_TAGS | NCBI_ERROR_TAGS:
            raise ImportFileError(_not_pubmed(name, root))
        _refuse_entities(name, root)
    if root.tag in NCBI_ERROR_TAGS:
        raise NcbiErrorAnswer(_not_pubmed(name, root), error=" ".join("".join(root.itertext()).split()))


def _refuse_entities(name, root):
    dtd = root.getroottree().docinfo.internalDTD
    for entity in dtd.iterentities() if dtd is not None else ():
        raise ImportFileError(
            f"{name}: the XML declares an entity ({entity.name!r}), which PubMed XML never does; "
            "the file is refused (entities can expand into gigabytes or read files on the server)."
        )


def _syntax_error(name, exc, events, root, number, current):
    # libxml2 reports some errors (an undefined entity) in the parser's log, and the exception
    # only as "no element found" at line 0: the log's last error is the one to show.
    errors = [e for e in events.error_log if e.level >= etree.ErrorLevels.ERROR]
    if errors and (exc.position or (0, 0))[0] == 0:
        line, column, reason = errors[-1].line, errors[-1].column, errors[-1].message
    else:
        (line, column), reason = exc.position or (0, 0), _POSITION.sub("", exc.msg or str(exc))
    if "Excessive depth" in reason:
        return _too_deep(name, number + 1, current)
    if root is None:
        if not errors and line == 0:
            return f"{name}: this is not XML (no element found)."
        return f"{name}: this is not XML ({reason} at line {line}, column {column})."
    return (
        f"{name}: the XML is malformed or cut short at line {line}, column {column} "
        f"(record {number + 1}, after {number} complete records): {reason}."
    )


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
    # Each element's children are walked once (``_firsts``) rather than searched by path, tag by
    # tag: the same first-match choice as ``find``, in a third of the time.
    citation = elem.find("MedlineCitation")
    cited = _firsts(citation)
    article = cited.get("Article")
    if article is None:
        return Article(location=f"record {number}")
    pmid = (citation.findtext("PMID") or "").strip()
    parts = _firsts(article)
    journal = _firsts(parts.get("Journal"))
    issue = _firsts(journal.get("JournalIssue"))
    return Article(
        title=_text(parts.get("ArticleTitle")) or _text(parts.get("VernacularTitle")),
        abstract=_abstract(parts.get("Abstract")) or _abstract(cited.get("OtherAbstract")),
        authors=_authors(parts.get("AuthorList")),
        year=_year(issue.get("PubDate")) or _year(parts.get("ArticleDate")),
        journal=_text(journal.get("Title")),
        volume=_text(issue.get("Volume")),
        issue=_text(issue.get("Issue")),
        pages=_pages(parts.get("Pagination")),
        doi=_doi(elem.find("PubmedData/ArticleIdList"), article),
        pmid=pmid,
        keywords=_keywords(citation),
        url=f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/" if pmid else "",
        publication_type="; ".join(_texts(_grandchildren(article, "PublicationTypeList", "PublicationType"))),
        source_key=pmid,
        location=f"record {number}",
    )


def _firsts(elem):
    """Tag -> the first child of ``elem`` with that tag ({} for None)."""
    found = {}
    if elem is not None:
        for child in elem:
            if child.tag not in found:
                found[child.tag] = child
    return found


def _grandchildren(elem, tag, subtag):
    """What ``elem.findall(f"{tag}/{subtag}")`` finds, in document order."""
    for child in elem.iterchildren(tag):
        yield from child.iterchildren(subtag)


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
    if not len(elem):  # no markup inside: most fields
        text = elem.text
        return " ".join(text.split()) if text else ""
    return " ".join(_flatten(elem).split())


def _flatten(elem):
    if elem.tag.startswith(MATHML):
        # MathML is laid out one symbol per indented line: V . O 2 max -> V.O2max
        return "".join(t.strip() for t in elem.itertext())
    parts = [elem.text or ""]
    for child in elem:
        if child.tag.__class__ is not str:
            raise _UndefinedEntity(child.name)  # the only other kind of node kept: an unexpanded entity
        parts.append(_flatten(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _texts(elems):
    texts = []
    for elem in elems:
        text = _text(elem)
        if text:
            texts.append(text)
    return texts


def _unique(items):
    return list(dict.fromkeys(items))


def _abstract(abstract):
    if abstract is None:
        return ""
    sections = []
    for part in abstract.iterchildren("AbstractText"):
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
    for author in author_list.iterchildren("Author"):
        if author.get("ValidYN") == "N":
            continue  # an erroneous entry PubMed keeps only for the record's history
        surname, forename, initials, collective = _name_parts(author)
        collective = _text(collective)
        surname = _text(surname)
        given = _text(forename) or _text(initials)
        if surname:
            names.append(f"{surname}, {given}" if given else surname)
        elif collective:
            names.append(collective)
    return names


def _name_parts(author):
    """The first LastName, ForeName, Initials and CollectiveName of an Author (None if absent).

    One pass comparing tags: a dict of every child (``_firsts``) cost a sixth more, a
    ``find`` per part twice as much, over the six authors of an average record.
    """
    surname = forename = initials = collective = None
    for child in author:
        tag = child.tag
        if tag == "LastName":
            surname = child if surname is None else surname
        elif tag == "ForeName":
            forename = child if forename is None else forename
        elif tag == "Initials":
            initials = child if initials is None else initials
        elif tag == "CollectiveName":
            collective = child if collective is None else collective
    return surname, forename, initials, collective


def _year(date):
    if date is None:
        return None
    parts = _firsts(date)
    for text in (_own_text(parts.get("Year")), _own_text(parts.get("MedlineDate"))):
        match = YEAR.search(text or "")
        if match:
            return int(match.group(1))
    return None


def _own_text(elem):
    """What ``findtext`` gives: the element's own text, "" when it has none, None without it."""
    return None if elem is None else elem.text or ""


def _pages(pagination):
    if pagination is None:
        return ""
    parts = _firsts(pagination)
    medline = _text(parts.get("MedlinePgn"))
    if medline:
        return medline
    start, end = _text(parts.get("StartPage")), _text(parts.get("EndPage"))
    return f"{start}-{end}" if start and end else start


def _doi(id_list, article):
    # PubmedData's own ArticleIdList: the ReferenceList holds other ArticleIdLists (the cited works).
    if id_list is not None:
        for article_id in id_list.iterchildren("ArticleId"):
            if article_id.get("IdType") == "doi" and _text(article_id):
                return _text(article_id)
    for location in article.iterchildren("ELocationID"):
        if location.get("EIdType") == "doi" and _text(location):
            return _text(location)
    return ""


def _keywords(citation):
    keywords = _texts(_grandchildren(citation, "KeywordList", "Keyword"))
    mesh = _texts(_MESH_DESCRIPTORS(citation))
    return _unique(keywords + mesh)
