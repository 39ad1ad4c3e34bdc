"""BibTeX (.bib) files, read with bibtexparser (2.x), one entry at a time.

The file is cut into entries at lines that start with '@', and each entry is parsed on its
own with the @string macros defined before it, so a big file is never held whole and a broken
entry is named by its key and line.
"""

import re
from collections.abc import Callable, Iterable, Iterator

from review.article import Article, ImportFileError
from review.importers import fields, identifiers

_ENTRY_START = re.compile(r"^\s*@\s*([A-Za-z]+)\s*[({]")
_AND = re.compile(r"\s+and\s+", re.I)
_BRACES = re.compile(r"[{}]")
_TYPES = {
    "article": "Journal Article",
    "book": "Book",
    "inbook": "Book Section",
    "incollection": "Book Section",
    "inproceedings": "Conference Paper",
    "conference": "Conference Paper",
    "phdthesis": "Thesis",
    "mastersthesis": "Thesis",
    "techreport": "Report",
    "misc": "Generic",
    "unpublished": "Unpublished Work",
}


def parse(lines: Iterable[str], name: str = "", warn: Callable[[str], None] | None = None) -> Iterator[Article]:
    """Yield one Article per entry (@article, @book, ...) of ``lines``."""
    try:
        import bibtexparser
        from bibtexparser.library import Library
        from bibtexparser.middlewares import LatexDecodingMiddleware
    except ImportError as exc:  # a missing dependency, not a bad file
        raise ImportFileError(f"{name}: BibTeX files need the bibtexparser package, which is not installed.") from exc
    strings, number = [], 0
    for start, chunk in _chunks(lines):
        library = Library(list(strings))
        bibtexparser.parse_string(chunk, append_middleware=[LatexDecodingMiddleware()], library=library)
        if library.failed_blocks:
            failed = library.failed_blocks[0]
            error = getattr(failed, "error", None)
            reason = getattr(error, "abort_reason", "") or getattr(error, "message", "") or str(error or "")
            detail = " ".join(reason.split()).rstrip(".") or type(error).__name__
            raise ImportFileError(f"{name}: the entry at line {start} cannot be read ({detail}).")
        strings = library.strings
        for entry in library.entries:
            number += 1
            yield _article(entry, f"entry {number} ({entry.key}, line {start})", name, warn)


def _chunks(lines):
    """(first line number, text) for each '@...' block; text before the first is a comment."""
    start, chunk = 0, None
    for n, line in enumerate(lines, 1):
        if _ENTRY_START.match(line):
            if chunk is not None:
                yield start, "".join(chunk)
            start, chunk = n, []
        if chunk is not None:
            chunk.append(line if line.endswith("\n") else line + "\n")
    if chunk is not None:
        yield start, "".join(chunk)


def _value(entry, *keys):
    for key in keys:
        field = entry.get(key)
        if field is not None and str(field.value).strip():
            return " ".join(_BRACES.sub("", str(field.value)).split())
    return ""


def _article(entry, location, name, warn):
    year_text = _value(entry, "year", "date")
    year = fields.parse_year(year_text)
    if year is None and year_text and warn:
        warn(f"{name}: {location}: '{year_text}' is not a year; the year is left empty.")
    doi = fields.clean_doi(_value(entry, "doi"))
    url = _value(entry, "url")
    eprint = _value(entry, "eprint") if _value(entry, "eprinttype", "archiveprefix").lower() == "pubmed" else ""
    carriers = [_value(entry, "note"), _value(entry, "annote"), url]
    pmid = _value(entry, "pmid") or eprint
    return Article(
        title=_value(entry, "title"),
        abstract=_value(entry, "abstract"),
        authors=[fields.person(a) for a in _AND.split(_value(entry, "author")) if a.strip()],
        year=year,
        journal=_value(entry, "journal", "journaltitle", "booktitle"),
        volume=_value(entry, "volume"),
        issue=_value(entry, "number", "issue"),
        pages=re.sub(r"\s*(?:--|[\u2013\u2014])\s*", "-", _value(entry, "pages")),  # "134--140", decoded to a dash
        doi=doi or identifiers.first_unambiguous(identifiers.dois, *carriers),
        pmid=pmid if pmid.isdigit() else identifiers.first_unambiguous(identifiers.pmids, *carriers),
        pmcid=identifiers.one(identifiers.pmcids(_value(entry, "pmcid")))
        or identifiers.first_unambiguous(identifiers.pmcids, *carriers),
        keywords=fields.split_terms(_value(entry, "keywords")),
        url=url or identifiers.doi_url(doi),
        publication_type=_TYPES.get(entry.entry_type.lower(), entry.entry_type),
        source_key=entry.key,
        location=location,
    )
