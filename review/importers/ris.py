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
_FRAME_TAGS = ("TY", "ER")


def parse(lines: Iterable[str], name: str = "", warn: Callable[[str], None] | None = None) -> Iterator[Article]:
    """Yield one Article per RIS record of ``lines`` (text lines, as from an open text file)."""
    # Link tags repeat (EndNote writes a PubMed, a PMC and a Europe PMC link as three L2 lines);
    # rispy would keep the first only.
    parser = RisParser(list_tags=[*LIST_TYPE_TAGS, "L1", "L2", "L4"])
    for number, start, record_lines in _records(lines, name):
        entry = parser.parse_lines(iter(record_lines))[0]
        yield _article(entry, f"record {number} (line {start})", name, warn)


def _records(lines, name):
    """(record number, first line number, lines) for each TY ... ER block."""
    record, start, number = None, 0, 0
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        # Only TY and ER frame a record: rispy's parse_line would say the same of them
        # ("XY  -", upper-case letters), and rispy reads each line again for its fields.
        tag = line[:2] if line[2:5] == "  -" and line[:2] in _FRAME_TAGS else None
        if record is None:
            if tag == "TY":
                number += 1
                record, start = [line], n
            continue  # blank lines, Ovid's "1." counters and its NL line after each ER
        if tag == "TY":
            raise ImportFileError(
                f"{name}: record {number} (line {start}) has no ER line: the next record starts at line {n}."
            )
        record.append(line)
        if tag == "ER":
            yield number, start, record
            record = None
    if record is not None:
        raise ImportFileError(f"{name}: record {number} (line {start}) is cut short: the file ends before its ER line.")


def _first(entry, *keys):
    for key in keys:
        value = entry.get(key)
        if isinstance(value, list):
            value = " ".join(v for v in value if v)
        if value and str(value).strip():
            return str(value).strip()
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
    doi = fields.clean_doi(_first(entry, "doi")) or identifiers.first_unambiguous(identifiers.dois, *carriers)
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
        pmid=_pmid(entry, databases) or identifiers.first_unambiguous(identifiers.pmids, *carriers),
        pmcid=identifiers.first_unambiguous(identifiers.pmcids, *carriers),
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
    labelled = [_unknown(entry, f"U{n}") for n in range(1, 6)]
    labelled += [entry.get("notes", []), [entry.get("note", "")], _unknown(entry, "M2")]
    labelled += [[entry.get("accession_number", "")]]  # Cochrane's RIS: "AN  - PUBMED 25995615"
    labelled += [[entry.get(f"custom{n}", "")] for n in range(1, 9)]
    links = [entry.get("urls", []), entry.get("file_attachments2", []), entry.get("file_attachments1", [])]
    return labelled + links + [_unknown(entry, "L3")]


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
