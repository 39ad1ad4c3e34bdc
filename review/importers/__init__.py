"""File imports, the pure part: tell a file's format from its content and read it record by record.

Nothing here touches the database. ``review.importing.import_file`` (what the upload view and
``manage.py import_records`` call) opens the file, calls ``sniff`` and ``read_articles`` here and
stores the articles in one transaction.
"""

import codecs
import csv
import io
import re
import zipfile
from dataclasses import dataclass

from review import limits
from review.article import ImportFileError
from review.importers import bibtex, cochrane, endnote_xml, medline, pubmed_xml, ris, sources, tabular, wos

HEAD = 64 * 1024
MAX_WARNINGS = 20
LABELS = {
    "pubmed_xml": "PubMed XML",
    "medline": "MEDLINE",
    "ris": "RIS",
    "csv": "CSV",
    "tsv": "TSV",
    "xlsx": "Excel workbook",
    "bibtex": "BibTeX",
    "endnote_xml": "EndNote XML",
    "wos": "Web of Science plain text",
    "cochrane": "Cochrane CENTRAL export",
}
_XML_PROLOGUE = re.compile(r"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>", re.S)
_XML_ROOT = re.compile(r"\s*<([A-Za-z_][\w:.-]*)")
# NCBI's error documents go to the PubMed XML parser too: it quotes NCBI's message.
_PUBMED_ROOTS = {
    "PubmedArticleSet",
    "PubmedArticle",
    "PubmedBookArticleSet",
    "PubmedBookArticle",
    "eFetchResult",
    "ERROR",
}
_OTHER_XML = {
    "pmc-articleset": "PMC full-text XML (efetch from db=pmc), not PubMed records; export the articles from "
    "PubMed (Save > Format: PubMed, or efetch db=pubmed retmode=xml) and import that file",
    "article": "a JATS full-text article, not PubMed records; import a PubMed XML or MEDLINE export instead",
    "eSearchResult": "an E-utilities search result, which lists PMIDs but holds no records",
    "eInfoResult": "an E-utilities database description, which holds no records",
    "ePostResult": "an E-utilities post result, which holds no records",
}
_MEDLINE_START = re.compile(r"\A\s*PMID- ?\d", re.M)
_RIS_TY = re.compile(r"^TY  -", re.M)
_WOS_PLAIN = re.compile(r"\A\s*(?:FN (?:Clarivate|Thomson)|PT [A-Z]\s*\n(?:AU|AF|TI) )")
_COCHRANE = re.compile(r"^Record #1 of \d+\s*\n(?:[A-Z][A-Z0-9]{1,3}:.*\n)*?ID: CN-\d+", re.M)
_BIBTEX = re.compile(r"^\s*@\s*[A-Za-z]+\s*[({]\s*[^\s,=]*\s*,", re.M)
_ENDNOTE_DATABASE = re.compile(r"<remote-database-(?:name|provider)>(?:<style[^>]*>)?([^<]+)<")


@dataclass
class Sniffed:
    """What the first bytes of a file say about it."""

    format: str
    encoding: str = "utf-8"
    delimiter: str = ","
    database: str = ""  # the database the file shows it came from ("APA PsycInfo", "MEDLINE")
    platform: str = ""  # the platform it was searched on ("Ovid", "EBSCOhost", "Lens")
    skip_lines: int = 0  # lines before a table's header (Dimensions' "About the data" line)

    @property
    def label(self):
        return LABELS[self.format]

    @property
    def source(self):
        """The one-line source name ('APA PsycInfo (Ovid)'), or '' when the file names none."""
        return sources.label(self.database, self.platform)


def sniff(stream, name) -> Sniffed:
    """Tell the format from the first bytes of ``stream`` (a seekable binary file, left at 0)."""
    head = stream.read(HEAD)
    stream.seek(0)
    if not head.strip():
        raise ImportFileError(f"{name}: the file is empty.")
    if head.startswith(b"PK\x03\x04"):
        return _sniff_zip(stream, name)
    for magic, what in (
        (b"\xd0\xcf\x11\xe0", "an old Excel .xls workbook: save it as .xlsx or CSV"),
        (b"\x1f\x8b", "a gzip archive: unpack it first"),
        (b"%PDF", "a PDF document"),
    ):
        if head.startswith(magic):
            raise ImportFileError(f"{name}: this is {what}, not a reference export.")
    encoding = _encoding(head, name)
    text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    if text.lstrip().startswith("<"):
        return _sniff_xml(text, name)
    if _MEDLINE_START.match(text):
        return Sniffed("medline", encoding, database="PubMed", platform="PubMed")
    if _RIS_TY.search(text):
        database, platform = sources.ris_source(text)
        return Sniffed("ris", encoding, database=database, platform=platform)
    if _WOS_PLAIN.match(text):
        return Sniffed("wos", encoding, database="Web of Science", platform="Web of Science")
    if _COCHRANE.search(text):
        return Sniffed("cochrane", encoding, database=sources.CENTRAL, platform="Cochrane Library")
    if _BIBTEX.search(text):
        return Sniffed("bibtex", encoding)
    skip = tabular.preamble_lines(text)
    table = text.split("\n", skip)[-1] if skip else text
    delimiter = tabular.find_delimiter(table)
    if delimiter:
        header = next(csv.reader([table.split("\n", 1)[0]], delimiter=delimiter))
        kind = "tsv" if delimiter == "\t" else "csv"
        database, platform = sources.table_source({tabular.key(h) for h in header})
        return Sniffed(kind, encoding, delimiter, database=database, platform=platform, skip_lines=skip)
    first = text.split("\n", 1)[0]
    if tabular.looks_tabular(text):
        raise ImportFileError(
            f"{name}: line 1: this table has no title column (columns found: {first.strip()[:200]}). "
            "Name the column holding the titles 'Title'."
        )
    raise ImportFileError(
        f"{name}: the format is not recognised (line 1: {first.strip()[:60]!r}). Supported: PubMed XML, "
        "MEDLINE (.nbib/.txt), RIS, BibTeX, EndNote XML, Web of Science plain text, Cochrane CENTRAL text, CSV/TSV and "
        ".xlsx with a title column."
    )


def _encoding(head, name):
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    unbommed = _utf16_without_bom(head)
    if unbommed:
        return unbommed
    controls = sum(1 for b in head if b < 32 and b not in b"\t\n\r\f\x1a")
    if b"\x00" in head or controls > len(head) // 100:
        offset = next(i for i, b in enumerate(head) if b < 32 and b not in b"\t\n\r\f\x1a")
        raise ImportFileError(
            f"{name}: this looks like a binary file, not a text export (byte {head[offset]:#04x} at offset {offset})."
        )
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        head.decode("cp1252")  # EndNote and Excel on Windows
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def _utf16_without_bom(head):
    """'utf-16-le' or 'utf-16-be' for UTF-16 text without a byte-order mark (Web of Science and
    some Windows tools write it): mostly-Latin text in UTF-16 has a NUL in every other byte."""
    sample = head[: len(head) - len(head) % 2][:4096]
    if len(sample) < 8:
        return ""
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > len(odd) * 0.9 and even.count(0) < len(even) * 0.1:
        return "utf-16-le"
    if even.count(0) > len(even) * 0.9 and odd.count(0) < len(odd) * 0.1:
        return "utf-16-be"
    return ""


def _sniff_zip(stream, name):
    try:
        names = zipfile.ZipFile(stream).namelist()
    except zipfile.BadZipFile as exc:
        raise ImportFileError(f"{name}: a damaged ZIP or .xlsx file ({exc}).") from exc
    finally:
        stream.seek(0)
    if "xl/workbook.xml" not in names:
        raise ImportFileError(f"{name}: this is a ZIP archive, not a reference export: unpack it first.")
    header = []
    try:
        from openpyxl import load_workbook

        book = load_workbook(stream, read_only=True, data_only=True)
        header = ["" if v is None else str(v) for v in next(tabular.first_sheet(book).iter_rows(values_only=True), [])]
        book.close()
    except Exception as exc:  # openpyxl raises zipfile, KeyError and XML errors alike
        raise ImportFileError(f"{name}: not a readable .xlsx workbook ({exc}).") from exc
    finally:
        stream.seek(0)
    if "title" not in tabular.columns(header):
        raise ImportFileError(
            f"{name}: row 1 of the first sheet has no title column (columns found: {', '.join(header) or 'none'})."
        )
    database, platform = sources.table_source({tabular.key(h) for h in header})
    return Sniffed("xlsx", database=database, platform=platform)


def _sniff_xml(text, name):
    match = _XML_ROOT.match(_XML_PROLOGUE.sub("", text))
    root = match.group(1) if match else ""
    if root in _PUBMED_ROOTS:
        return Sniffed("pubmed_xml", database="PubMed", platform="PubMed")
    if root == "xml" and re.search(r"<records\b", text):
        names = _ENDNOTE_DATABASE.findall(text)
        database = next((d for d in map(sources.named_database, names) if d), "")
        return Sniffed("endnote_xml", database=database, platform=sources.platform_of(*names))
    if root in _OTHER_XML:
        raise ImportFileError(f"{name}: this is {_OTHER_XML[root]}.")
    raise ImportFileError(
        f"{name}: XML with root element <{root or '?'}> is not a supported format (PubMed XML starts with "
        "<PubmedArticleSet>)."
    )


def read_articles(stream, sniffed, name, warn=None):
    """The Article iterator for a sniffed binary ``stream``; parse errors surface as ImportFileError."""
    if sniffed.format == "pubmed_xml":
        articles = pubmed_xml.parse(stream, name=name)
    elif sniffed.format == "endnote_xml":
        articles = endnote_xml.parse(stream, name=name)
    elif sniffed.format == "xlsx":
        articles = tabular.parse_xlsx(stream, name, warn=warn)
    else:
        lines = _lines(stream, sniffed.encoding, name)
        if sniffed.format == "medline":
            articles = medline.parse(lines, name, warn=warn)
        elif sniffed.format == "ris":
            articles = ris.parse(lines, name, warn=warn)
        elif sniffed.format in _TEXT_PARSERS:
            articles = _TEXT_PARSERS[sniffed.format](lines, name, warn=warn)
        else:
            articles = tabular.parse_csv(
                lines, name, delimiter=sniffed.delimiter, warn=warn, skip_lines=sniffed.skip_lines
            )
    return _checked(articles, name, warn)


_TEXT_PARSERS = {"wos": wos.parse, "cochrane": cochrane.parse, "bibtex": bibtex.parse}


def _lines(stream, encoding, name):
    """Decoded lines, one at a time, with the line number in any decoding error."""
    if encoding.startswith("utf-16"):
        yield from io.TextIOWrapper(stream, encoding=encoding, newline="")
        return
    for n, raw in enumerate(stream, 1):
        try:
            yield raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                f"{name}: line {n} is not {encoding} text (byte {raw[exc.start]:#04x} at column {exc.start + 1}); "
                "save the file as UTF-8 and import it again."
            ) from exc


def _checked(articles, name, warn):
    """Pass the articles on, refusing fields over their caps, turning library errors into
    ImportFileError and noting repeated ids."""
    seen, repeats, first_repeat = set(), 0, ""
    try:
        for article in articles:
            limits.check_article(article, name)
            if article.source_key:
                if article.source_key in seen:
                    repeats += 1
                    first_repeat = first_repeat or f"'{article.source_key}' again at {article.location}"
                seen.add(article.source_key)
            yield article
    except (csv.Error, UnicodeError, SyntaxError) as exc:  # SyntaxError covers XML parse errors
        raise ImportFileError(f"{name}: {exc}") from exc
    if repeats and warn:
        warn(
            f"{name}: {repeats} records repeat an id used earlier in the file ({first_repeat}); "
            "ids are kept as they are."
        )
