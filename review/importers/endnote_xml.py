"""EndNote XML (File > Export > XML): <xml><records><record>...</record></records></xml>.

EndNote wraps most values in <style face=... font=... size=...> elements; the text is read
whatever the wrapping. Streams with defusedxml's iterparse and clears each record once read.
"""

from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from review.article import Article, ImportFileError
from review.importers import fields, identifiers

MAX_DEPTH = 100


def parse(stream, name=""):
    """Yield one Article per <record> of ``stream``, a binary file."""
    number, depth, root = 0, 0, None
    try:
        for event, elem in iterparse(stream, events=("start", "end"), forbid_entities=True, forbid_external=True):
            if event == "start":
                depth += 1
                if root is None:
                    root = elem
                    if root.tag != "xml":
                        raise ImportFileError(f"{name}: this XML starts with <{root.tag}>, not EndNote's <xml>.")
                if depth > MAX_DEPTH:
                    raise ImportFileError(f"{name}: record {number + 1}: elements nest deeper than {MAX_DEPTH} levels.")
                continue
            depth -= 1
            if elem.tag == "record":
                number += 1
                yield _article(elem, f"record {number}")
                elem.clear()
                for parent in root.iter("records"):
                    parent.clear()
    except ParseError as exc:
        raise ImportFileError(f"{name}: record {number + 1}: the XML is broken ({exc}).") from exc
    except DefusedXmlException as exc:
        raise ImportFileError(f"{name}: the XML declares entities or external references, which are refused.") from exc


def _text(record, path):
    elem = record.find(path)
    return " ".join("".join(elem.itertext()).split()) if elem is not None else ""


def _all(record, path):
    return [t for t in (" ".join("".join(e.itertext()).split()) for e in record.findall(path)) if t]


def _article(record, location):
    doi = fields.clean_doi(_text(record, "electronic-resource-num"))
    urls = _all(record, "urls/related-urls/url") + _all(record, "urls/web-urls/url")
    carriers = [_text(record, f"custom{n}") for n in range(1, 8)] + [_text(record, "notes"), urls]
    database = (_text(record, "remote-database-provider") + " " + _text(record, "remote-database-name")).lower()
    accession = _text(record, "accession-num")
    pmid = accession if accession.isdigit() and ("nlm" in database or "pubmed" in database) else ""
    doi = doi or identifiers.first_unambiguous(identifiers.dois, *carriers)
    return Article(
        title=_text(record, "titles/title"),
        abstract=_text(record, "abstract"),
        authors=[fields.person(a) for a in _all(record, "contributors/authors/author")],
        year=fields.parse_year(_text(record, "dates/year")),
        journal=_text(record, "titles/secondary-title") or _text(record, "periodical/full-title"),
        volume=_text(record, "volume"),
        issue=_text(record, "number"),
        pages=_text(record, "pages"),
        doi=doi,
        pmid=pmid or identifiers.first_unambiguous(identifiers.pmids, *carriers),
        pmcid=identifiers.first_unambiguous(identifiers.pmcids, *carriers),
        keywords=_all(record, "keywords/keyword"),
        url=next(iter(urls), "") or identifiers.doi_url(doi),
        publication_type=(record.find("ref-type").get("name", "") if record.find("ref-type") is not None else ""),
        source_key=_text(record, "rec-number"),
        location=location,
    )
