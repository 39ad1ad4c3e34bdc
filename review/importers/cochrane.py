"""Cochrane Library exports of CENTRAL records, plain-text form ("Record #1 of 12", "ID: CN-...").

Each record starts with a "Record #n of N" line, then one "TAG: value" line per field (AU and
KY may repeat); a blank line ends it. Cochrane's RIS form goes to the RIS reader instead.
Read line by line, one record at a time; "of N" lets a file cut short be told from a whole one.
"""

import re
from collections.abc import Callable, Iterable, Iterator

from review.article import Article, ImportFileError
from review.importers import fields, identifiers

RECORD = re.compile(r"^Record #(\d+) of (\d+)\s*$")
_FIELD = re.compile(r"^([A-Z][A-Z0-9]{1,3}):\s?(.*)$")


def parse(lines: Iterable[str], name: str = "", warn: Callable[[str], None] | None = None) -> Iterator[Article]:
    """Yield one Article per "Record #n of N" block of ``lines``."""
    record, number, start, total, tag = None, 0, 0, None, None
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\r\n").lstrip("\ufeff")
        header = RECORD.match(line)
        if header:
            if record is not None:
                yield _article(record, f"record {number} (line {start})", name, warn)
            number += 1
            if int(header.group(1)) != number:
                raise ImportFileError(
                    f"{name}: line {n} starts record #{header.group(1)}, but record #{number} was expected."
                )
            record, start, total, tag = {}, n, int(header.group(2)), None
            continue
        if record is None:
            continue  # the search's name, date and strategy come before the first record
        match = _FIELD.match(line)
        if match:
            tag = match.group(1)
            record.setdefault(tag, []).append(match.group(2).strip())
        elif line.strip() and tag:
            record[tag][-1] += " " + line.strip()  # an abstract that runs over several lines
        elif line.strip():
            raise ImportFileError(
                f"{name}: record {number} (line {start}): line {n} is not a 'TAG: value' field: {line.strip()[:60]!r}"
            )
    if record is not None:
        yield _article(record, f"record {number} (line {start})", name, warn)
    if total is not None and number != total:
        raise ImportFileError(f"{name}: the file holds {number} of the {total} records it announces: it is cut short.")


def _text(record, tag):
    return " ".join(" ".join(record.get(tag, [])).split())


def _article(record, location, name, warn):
    year_text = _text(record, "YR")
    year = fields.parse_year(year_text)
    if year is None and year_text and warn:
        warn(f"{name}: {location}: '{year_text}' is not a year; the year is left empty.")
    doi = fields.clean_doi(_text(record, "DOI"))
    url = _text(record, "US")
    keywords = [k.strip() for v in record.get("KY", []) for k in v.split(";") if k.strip()]
    return Article(
        title=_text(record, "TI"),
        abstract=_text(record, "AB"),
        authors=[fields.person(a) for v in record.get("AU", []) for a in v.split(";") if a.strip()],
        year=year,
        journal=_text(record, "SO"),
        volume=_text(record, "VL"),
        issue=_text(record, "NO"),
        pages=_text(record, "PG"),
        doi=doi,
        # "PM: PUBMED 31234567"; "XR: EMBASE 123" names other databases' ids, never PubMed's.
        pmid=identifiers.one(identifiers.pmids(_text(record, "PM"))),
        keywords=keywords,
        url=url or identifiers.doi_url(doi),
        publication_type=_text(record, "PT"),
        source_key=_text(record, "ID"),
        location=location,
    )
