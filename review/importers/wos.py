"""Web of Science plain text ("FN Clarivate Analytics Web of Science", "PT J", ..., "ER", "EF").

Each field is a two-character tag, a space and a value; a value that goes on takes the next
lines indented by three spaces (one author, one address or one more piece of the title per
line). Records end with ER, the file with EF. Read line by line, one record at a time.
"""

import re
from collections.abc import Callable, Iterable, Iterator

from review.article import Article, ImportFileError
from review.importers import fields, identifiers

_FIELD = re.compile(r"^([A-Z][A-Z0-9]) (.*)$")


def parse(lines: Iterable[str], name: str = "", warn: Callable[[str], None] | None = None) -> Iterator[Article]:
    """Yield one Article per PT ... ER record of ``lines``."""
    record, start, number, tag = None, 0, 0, None
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\r\n").lstrip("\ufeff")
        if record is None:
            if line.startswith("PT "):
                number += 1
                record, start, tag = {}, n, None
            elif line.strip() and not line.startswith(("FN ", "VR ", "EF")):
                raise ImportFileError(
                    f"{name}: line {n} is outside any record (records start with 'PT'): {line.strip()[:60]!r}"
                )
            else:
                continue
        if line.rstrip() == "ER":
            yield _article(record, f"record {number} (line {start})", name, warn)
            record = None
            continue
        match = _FIELD.match(line)
        if match:
            tag = match.group(1)
            record.setdefault(tag, []).append(match.group(2).strip())
        elif line.startswith("   ") and tag:
            record[tag].append(line.strip())
        elif line.strip():
            raise ImportFileError(
                f"{name}: record {number} (line {start}): line {n} is neither a field nor a continuation: "
                f"{line.strip()[:60]!r}"
            )
    if record is not None:
        raise ImportFileError(f"{name}: record {number} (line {start}) is cut short: the file ends before its ER line.")


def _text(record, tag):
    return " ".join(" ".join(record.get(tag, [])).split())


def _terms(record, tag):
    return [t.strip() for t in _text(record, tag).split(";") if t.strip()]


def _article(record, location, name, warn):
    year_text = _text(record, "PY") or _text(record, "EA")
    year = fields.parse_year(year_text)
    if year is None and year_text and warn:
        warn(f"{name}: {location}: '{year_text}' is not a year; the year is left empty.")
    doi = fields.clean_doi(_text(record, "DI"))
    pmid = _text(record, "PM")
    return Article(
        title=_text(record, "TI"),
        abstract=_text(record, "AB"),
        authors=[fields.person(a) for a in (record.get("AF") or record.get("AU") or []) if a.strip()],
        year=year,
        journal=_text(record, "SO"),
        volume=_text(record, "VL"),
        issue=_text(record, "IS"),
        pages=fields.pages(_text(record, "BP"), _text(record, "EP")) or _text(record, "AR"),
        doi=doi,
        pmid=pmid if pmid.isdigit() else "",
        pmcid=identifiers.one(identifiers.pmcids(_text(record, "PMCID"))),
        keywords=_terms(record, "DE") + _terms(record, "ID"),
        url=identifiers.doi_url(doi),
        publication_type=_text(record, "DT"),
        source_key=_text(record, "UT"),
        location=location,
    )
