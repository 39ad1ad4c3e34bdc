"""Spreadsheets of references: CSV/TSV (comma, semicolon, tab, pipe) and .xlsx.

Columns are found by name in any case and spelling the usual exporters use (Scopus, Embase,
PubMed, Web of Science tab-delimited, ASReview/SYNERGY, EndNote/Zotero tables).
"""

import csv
import re
from collections.abc import Callable, Iterable, Iterator

from review.article import Article, ImportFileError
from review.importers import fields, identifiers

# Normalised header (lower case, letters and digits only) -> Article field, best name first.
COLUMNS = {
    "title": ["title", "articletitle", "documenttitle", "primarytitle", "ti", "t1"],
    "abstract": ["abstract", "abstractnote", "notesabstract", "ab", "n2"],
    "authors": ["authors", "author", "authornames", "firstauthors", "au", "authorfullnames", "af", "a1"],
    "year": ["year", "publicationyear", "pubyear", "py", "yr", "publicationdate", "date"],
    "journal": [
        "journal",
        "journaltitle",
        "sourcetitle",
        "publicationtitle",
        "journalbook",
        "journalname",
        "secondarytitle",
        "so",
        "t2",
        "jf",
        "jo",
        "source",
    ],
    "doi": ["doi", "di"],
    "pmid": ["pmid", "pubmedid", "pm"],
    "pmcid": ["pmcid", "pmc", "pubmedcentralid"],
    # Free text that may name the identifiers: Zotero's "Extra" ("PMID: 123"), notes.
    "notes": ["extra", "notes", "note", "n1"],
    "keywords": ["keywords", "authorkeywords", "keyword", "kw", "de"],
    "url": ["url", "link", "ur", "openurllink", "externalurl", "dimensionsurl"],
    "volume": ["volume", "vl"],
    "issue": ["issue", "number", "is", "issuenumber"],
    "pages": ["pages", "pagerange", "pagination"],
    "start_page": ["startpage", "pagestart", "bp", "sp"],
    "end_page": ["endpage", "pageend", "ep"],
    "publication_type": ["documenttype", "publicationtype", "typeofreference", "dt", "pt", "type"],
    # Web of Science's id is UT; its ID column is Keywords Plus, so UT comes before ID.
    "source_key": [
        "recordid",
        "ut",
        "uniquewosid",
        "utuniquewosid",
        "id",
        "accessionnumber",
        "eid",
        "lensid",
        "publicationid",
    ],
}
# Embase's "Source" cell: "Endoscopic Ultrasound (2014) 3:3 (152-160). Date of Publication: 2014".
_CITATION = re.compile(
    r"^(?P<journal>.+?) \((?P<year>\d{4})\)(?: (?P<volume>[^:\s(]+)(?::(?P<issue>[^\s(]+))?)?(?: \((?P<pages>[^)]+)\))?"
)
DELIMITERS = [",", ";", "\t", "|"]
_PREAMBLE = re.compile(r'^\ufeff?"?About the data:', re.I)


def key(header) -> str:
    return re.sub(r"[^a-z0-9]", "", str(header or "").lower())


def columns(header: list[str]) -> dict[str, int]:
    """Article field -> column index for the columns of ``header`` we recognise."""
    positions = {}
    keys = [key(h) for h in header]
    for field, names in COLUMNS.items():
        for name in names:
            if name in keys:
                positions[field] = keys.index(name)
                break
    return positions


def find_delimiter(head: str) -> str | None:
    """The delimiter whose reading of the first line gives a title column (Sniffer's guess first)."""
    first = head.split("\n", 1)[0]
    try:
        guess = [csv.Sniffer().sniff(first, delimiters="".join(DELIMITERS)).delimiter]
    except csv.Error:
        guess = []
    for delimiter in guess + DELIMITERS:
        header = next(csv.reader([first], delimiter=delimiter), [])
        if len(header) > 1 and "title" in columns(header):
            return delimiter
    return None


def looks_tabular(head: str) -> bool:
    """Whether ``head`` reads as a table with a header row (to say 'no title column' rather
    than 'unknown format')."""
    lines = head.splitlines()[:2]
    for delimiter in DELIMITERS:
        rows = list(csv.reader(lines, delimiter=delimiter))
        named = [h for h in rows[0] if h.strip()] if rows else []
        header_like = len(named) >= 2 and len(named) >= len(rows[0]) - 1 and all(len(h) <= 100 for h in named)
        if header_like and (len(rows) == 1 or len(rows[1]) == len(rows[0])):
            return True
    return False


def preamble_lines(head: str) -> int:
    """How many lines come before the header row: Dimensions' CSV starts with one line about
    the export ("About the data: Exported on Aug 12, 2022. Criteria: ...")."""
    return 1 if _PREAMBLE.match(head) else 0


def parse_csv(
    lines: Iterable[str], name: str = "", delimiter: str = ",", warn: Callable | None = None, skip_lines: int = 0
) -> Iterator[Article]:
    """Yield one Article per data row of a delimited text file (after ``skip_lines`` lines)."""
    lines = iter(lines)
    for _ in range(skip_lines):
        next(lines, None)
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    try:
        header = next(reader)
        yield from _rows(((skip_lines + reader.line_num, row) for row in reader), header, name, warn)
    except csv.Error as exc:
        raise ImportFileError(f"{name}: line {skip_lines + reader.line_num}: {exc}.") from exc
    except StopIteration:
        return


def parse_xlsx(stream, name: str = "", warn: Callable | None = None) -> Iterator[Article]:
    """Yield one Article per row of the first sheet of an .xlsx workbook (read-only, row by row)."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(stream, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError and XML errors alike
        raise ImportFileError(f"{name}: not a readable .xlsx workbook ({exc}).") from exc
    try:
        rows = first_sheet(book).iter_rows(values_only=True)
        header = ["" if v is None else str(v) for v in next(rows, [])]
        cells = ((n, ["" if v is None else str(v) for v in row]) for n, row in enumerate(rows, 2))
        yield from _rows(cells, header, name, warn, unit="row")
    finally:
        book.close()


def first_sheet(book):
    """The first worksheet of a read-only workbook, its size read from the rows themselves.

    In read-only mode openpyxl trusts the sheet's <dimension> element, which the program that
    wrote the file may have left stale ("A1:J10" over 1,000 rows): iterating would stop at row
    10 without a word. reset_dimensions() makes it read every row there is.
    """
    sheet = book.worksheets[0]
    sheet.reset_dimensions()
    return sheet


def _rows(rows, header, name, warn, unit="line"):
    where = columns(header)
    if "title" not in where:
        raise ImportFileError(
            f"{name}: {unit} 1: no title column (columns found: {', '.join(h for h in header if h) or 'none'})."
        )
    width = len(header)
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > width and any(cell.strip() for cell in row[width:]):
            raise ImportFileError(
                f"{name}: {unit} {line} has {len(row)} fields but the header has {width} (a stray delimiter or quote?)."
            )
        yield _article(row, where, header, name, f"{unit} {line}", warn)


def _article(row, where, header, name, location, warn):
    def cell(field):
        index = where.get(field)
        return row[index].strip() if index is not None and index < len(row) else ""

    journal, year_text = cell("journal"), cell("year")
    volume, issue, pages = cell("volume"), cell("issue"), cell("pages")
    citation = None
    if "journal" in where and key(header[where["journal"]]) == "source":
        citation = _CITATION.match(journal)
    if citation:
        journal = citation["journal"]
        year_text = year_text or citation["year"]
        volume = volume or citation["volume"] or ""
        issue = issue or citation["issue"] or ""
        pages = pages or citation["pages"] or ""
    year = fields.parse_year(year_text)
    if year is None and year_text and warn:
        warn(f"{name}: {location}: '{year_text}' is not a year; the year is left empty.")
    carriers = [cell("notes"), cell("url")]
    doi = fields.clean_doi(cell("doi")) or identifiers.first_unambiguous(identifiers.dois, *carriers)
    return Article(
        title=cell("title"),
        abstract=cell("abstract"),
        authors=fields.split_people(cell("authors")),
        year=year,
        journal=journal,
        volume=volume,
        issue=issue,
        pages=pages or fields.pages(cell("start_page"), cell("end_page")),
        doi=doi,
        pmid=_pmid(cell("pmid")) or identifiers.first_unambiguous(identifiers.pmids, *carriers),
        pmcid=identifiers.one(identifiers.pmcids(cell("pmcid")))
        or identifiers.first_unambiguous(identifiers.pmcids, *carriers),
        keywords=fields.split_terms(cell("keywords")),
        url=cell("url") if cell("url").startswith("http") else identifiers.doi_url(doi),
        publication_type=cell("publication_type"),
        source_key=cell("source_key"),
        location=location,
    )


def _pmid(value):
    value = re.sub(r"\.0$", "", value)  # spreadsheets turn 31690499 into 31690499.0
    return value if value.isdigit() else ""
