"""PubMed's MEDLINE format (.nbib, .txt: "PMID- 12345"), read with Bio.Medline."""

import re
from collections.abc import Callable, Iterable, Iterator

from Bio import Medline

from review.article import Article, ImportFileError
from review.importers import fields

_FIELD_LINE = re.compile(r"^[A-Z][A-Z0-9]{0,3} *- ")
_ID_SUFFIX = re.compile(r"^(.*?)\s*\[(\w+)\]\s*$")


def parse(lines: Iterable[str], name: str = "", warn: Callable[[str], None] | None = None) -> Iterator[Article]:
    """Yield one Article per MEDLINE record of ``lines`` (text lines, as from an open text file)."""
    for number, record in enumerate(Medline.parse(_checked(lines, name)), 1):
        yield _article(record, f"record {number} (PMID {record.get('PMID', 'missing')})")


def _checked(lines, name):
    # Bio.Medline takes any line as a field; a line that is neither a field nor a continuation
    # means the file is damaged (or not MEDLINE), and the reader should hear where.
    for n, line in enumerate(lines, 1):
        if line.strip() and not line.startswith("      ") and not _FIELD_LINE.match(line):
            raise ImportFileError(f"{name}: line {n} is not a MEDLINE field line: {line.strip()[:60]!r}")
        yield line if line.endswith("\n") else line + "\n"


def _text(record, key):
    value = record.get(key, "")
    if isinstance(value, list):
        value = " ".join(value)
    return " ".join(value.split())


def _ids(record, kind):
    for key in ("LID", "AID"):
        values = record.get(key, [])
        for value in [values] if isinstance(values, str) else values:
            match = _ID_SUFFIX.match(value)
            if match and match.group(2) == kind:
                return match.group(1)
    return ""


def _article(record, location):
    authors = record.get("FAU") or record.get("AU") or []
    types = record.get("PT", [])
    return Article(
        title=_text(record, "TI") or _text(record, "BTI"),
        abstract=_text(record, "AB"),
        authors=[fields.person(a) for a in authors if a.strip()],
        year=fields.parse_year(record.get("DP")),
        journal=_text(record, "JT") or _text(record, "TA"),
        volume=_text(record, "VI"),
        issue=_text(record, "IP"),
        pages=_text(record, "PG"),
        doi=_ids(record, "doi"),
        pmid=_text(record, "PMID"),
        pmcid=_text(record, "PMC") or _ids(record, "pmc"),
        keywords=list(record.get("OT", [])) + list(record.get("MH", [])),
        publication_type=types[0] if types else "",
        source_key=_text(record, "PMID"),
        location=location,
    )
