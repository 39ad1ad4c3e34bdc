"""RIS files (EndNote, Zotero, Mendeley, Embase, Scopus, Ovid, ProQuest, Web of Science, Citavi, Rayyan).

rispy reads each record; this module frames the records itself so that a big file is read one
record at a time and a record cut short (no ER line) is reported with its line number instead of
being dropped without a word, as rispy would.
"""

import re
from collections.abc import Callable, Iterable, Iterator

from rispy import RisParser
from rispy.config import LIST_TYPE_TAGS, TYPE_OF_REFERENCE_MAPPING

from review.article import Article, ImportFileError
from review.importers import fields, identifiers

_DIGITS = re.compile(r"^\d{1,9}$")


def parse(lines: Iterable[str], name: str = "", warn: Callable[[str], None] | None = None) -> Iterator[Article]:
    """Yield one Article per RIS record of ``lines`` (text lines, as from an open text file)."""
    # Link tags repeat (EndNote writes a PubMed, a PMC and a Europe PMC link as three L2 lines);
    # rispy would keep the first only.
    parser = RisParser(list_tags=[*LIST_TYPE_TAGS, "L1", "L2", "L4"])
    for number, start, entry in _entries(lines, name, parser):
        yield _article(entry, f"record {number} (line {start})", name, warn)


def _entries(lines, name, parser):
    """(record number, first line number, rispy's dict of the record) for each TY ... ER block.

    rispy's own loop (``parse_lines``) drops a record cut short and keeps no line numbers, so this
    one frames the records and hands each line to rispy's ``parse_line`` and ``_add_tag`` in
    ``parse_lines``' order: the same dict ``parse_lines`` makes of the record's lines, in one pass
    over the file (framing the records first and calling ``parse_lines`` on each read every line
    twice). ``_add_tag`` is rispy's internal; rispy is pinned and
    ``tests/review/test_pinned_articles.py`` pins every fixture's output.
    """
    parse_line, add_tag, first_key = parser.parse_line, parser._add_tag, parser.mapping[parser.START_TAG]
    record, start, number, last_tag = None, 0, 0, None
    for n, line in enumerate(lines, 1):
        # parse_line strips the content (line ends included); only "XY  -" lines have a tag.
        tag, content = parse_line(line)
        if record is None:
            if tag == "TY":
                number += 1
                record, start, last_tag = {first_key: content}, n, None
            continue  # blank lines, Ovid's "1." counters and its NL line after each ER
        if tag is None:
            add_tag(record, last_tag, content, extend_multiline=True)  # a value's continuation line
        elif tag == "ER":
            yield number, start, record
            record = None
        elif tag == "TY":
            raise ImportFileError(
                f"{name}: record {number} (line {start}) has no ER line: the next record starts at line {n}."
            )
        else:
            add_tag(record, tag, content)
            last_tag = tag
    if record is not None:
        raise ImportFileError(f"{name}: record {number} (line {start}) is cut short: the file ends before its ER line.")


def _first(entry, *keys):
    for key in keys:
        value = entry.get(key)
        if not value:
            continue
        if isinstance(value, list):
            value = " ".join(v for v in value if v)
        value = str(value).strip()
        if value:
            return value
    return ""


def _unknown(entry, tag):
    return [v for v in entry.get("unknown_tag", {}).get(tag, []) if v]


def _article(entry, location, name, warn):
    databases = " ".join(
        v for v in (entry.get("name_of_database"), entry.get("database_provider")) if isinstance(v, str)
    ).lower()
    # AU and A1 both name the authors; an export that writes both repeats them.
    authors = [fields.person(a) for a in entry.get("authors", []) if a.strip()]
    authors += [a for a in (fields.person(a) for a in entry.get("first_authors", []) if a.strip()) if a not in authors]
    year_text = _first(entry, "year")
    year = fields.parse_year(year_text)
    if year is None:
        year = fields.parse_year(_first(entry, "publication_year")) or fields.parse_year(_first(entry, "date"))
    if year is None and year_text and warn:
        warn(f"{name}: {location}: '{year_text}' is not a year; the year is left empty.")
    carriers = _carriers(entry)
    doi = fields.clean_doi(_first(entry, "doi")) or carriers.first(identifiers.dois)
    url = next(iter(entry.get("urls", []) + entry.get("file_attachments2", [])), "") or identifiers.doi_url(doi)
    kind = _first(entry, "type_of_reference")
    return Article(
        title=_first(entry, "title", "primary_title", "translated_title", "short_title"),
        abstract=_first(entry, "abstract", "notes_abstract"),
        authors=authors,
        year=year,
        journal=_first(
            entry, "alternate_title3", "secondary_title", "journal_name", "alternate_title1", "alternate_title2"
        ),
        volume=_first(entry, "volume"),
        issue=_first(entry, "number"),
        pages=fields.pages(_first(entry, "start_page"), _first(entry, "end_page")),
        doi=doi,
        pmid=_pmid(entry, databases) or carriers.first(identifiers.pmids),
        pmcid=carriers.first(identifiers.pmcids),
        keywords=[k.strip() for k in entry.get("keywords", []) if k and k.strip()],
        url=url,
        publication_type=TYPE_OF_REFERENCE_MAPPING.get(kind, kind),
        source_key=_first(entry, "id", "accession_number"),
        location=location,
    )


def _carriers(entry):
    """The fields that may name the record's PMID, PMC ID or DOI, labelled ones before links.

    Dimensions writes "U1  - 35957633 [PMID]" and "U2  - PMC9361234 [PMCID]"; notes say "PMID: 123";
    links may be PubMed, PMC, doi.org or Ovid/EBSCOhost MEDLINE pages.
    """
    unknown, get = entry.get("unknown_tag") or {}, entry.get
    return identifiers.Carriers(
        *(unknown.get(f"U{n}") for n in range(1, 6)),
        get("notes"),
        get("note"),
        unknown.get("M2"),
        get("accession_number"),  # Cochrane's RIS: "AN  - PUBMED 25995615"
        *(get(f"custom{n}") for n in range(1, 9)),
        get("urls"),  # links last
        get("file_attachments2"),
        get("file_attachments1"),
        unknown.get("L3"),
    )


def _pmid(entry, databases):
    """Each database hides the PubMed ID in its own bare-number tag."""
    candidates = _unknown(entry, "PM")  # Web of Science
    if "nlm" in databases or "pubmed" in databases:
        candidates.append(entry.get("accession_number", ""))  # EndNote's PubMed import
    if "embase" in databases:
        candidates.append(entry.get("custom5", ""))
    if "scopus" in databases:
        candidates.append(entry.get("custom2", ""))
    for value in candidates:
        if value and _DIGITS.match(str(value).strip()):
            return str(value).strip()
    return ""
