"""The one shape every source of records produces: PubMed, MEDLINE, RIS, CSV, Web of Science."""

from dataclasses import dataclass, field


@dataclass
class Article:
    title: str = ""
    abstract: str = ""
    authors: list[str] = field(default_factory=list)  # "Surname, Given" where the source allows
    year: int | None = None
    journal: str = ""
    volume: str = ""
    issue: str = ""
    pages: str = ""
    doi: str = ""
    pmid: str = ""
    pmcid: str = ""  # "PMC1234567"
    keywords: list[str] = field(default_factory=list)
    url: str = ""
    publication_type: str = ""
    source_key: str = ""  # the record's own id in its file (RIS ID, CSV record_id, ...)
    # Where in the file it came from, for error messages ("record 12", "line 340").
    location: str = ""


class ImportFileError(Exception):
    """A file that cannot be imported. The message names the file and the record or line."""
