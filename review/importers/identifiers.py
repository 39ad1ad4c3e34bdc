"""PubMed IDs, PMC IDs and DOIs found in the fields that carry them in each export.

Databases put a record's identifiers in different places: Dimensions writes ``35957633 [PMID]``
in a user field, Ovid puts MEDLINE's accession number (the PMID) in its links (``...&D=medp&
AN=39012781``), EndNote and Zotero keep PubMed's page as the record's URL. A field gives an
identifier only when it names exactly one: a note that cites two PMIDs gives none, so a
reference list pasted into a note never becomes the record's own PMID.
"""

import re
from urllib.parse import parse_qs, unquote, urlsplit

from review.importers import fields

_PMID_PATTERNS = [
    re.compile(r"(?<![\w/.])(\d{1,9})\s*\[(?:PMID|pubmed)\]", re.I),  # Dimensions, MEDLINE's AID
    # Notes ("PMID: 123"), CINAHL ("PMID: NLM23803397"), Cochrane's "PM: PUBMED 123", OpenURLs' "pmid=123".
    re.compile(r"\b(?:PMID|PubMed\s*ID|PUBMED)\s*[:=]?\s*(?:NLM)?(\d{1,9})\b", re.I),
    re.compile(r"pubmed\.ncbi\.nlm\.nih\.gov/(\d{1,9})\b", re.I),
    re.compile(r"ncbi\.nlm\.nih\.gov/(?:entrez/query\.fcgi\?.*?list_uids=|pubmed/?(?:\?term=)?)(\d{1,9})\b", re.I),
    re.compile(r"europepmc\.org/(?:abstract|article)/MED/(\d{1,9})\b", re.I),
]
_PMCID_PATTERNS = [
    re.compile(r"(?<![A-Za-z0-9])(PMC\d{4,9})(?!\d)"),
    re.compile(r"(?<![\w/.])(\d{4,9})\s*\[PMC(?:ID)?\]", re.I),
]
_OVID_HOST = re.compile(r"ovid(?:sp)?\.", re.I)
# Ovid's MEDLINE segments (Ovid MEDLINE(R) ALL, Epub Ahead of Print and In-Process, daily
# updates, the 1946- file): their accession number is the PMID. Embase's and PsycInfo's are not.
_OVID_MEDLINE = re.compile(r"^(?:med[a-z]*|prem|mesz|ppez)\d*$", re.I)
# EBSCOhost's MEDLINE databases, whose AN is the PMID as well.
_EBSCO_MEDLINE = {"cmedm", "mdc", "mnh"}


def pmids(text: str) -> set[str]:
    """Every PubMed ID that ``text`` (a note, a link, a user field) names in a recognisable way."""
    if not text:
        return set()
    text = str(text)
    lowered = text.lower()
    if not _may_name_pmid(lowered):  # most fields name none: skip the regexes
        return set()
    found = {m.group(1) for p in _PMID_PATTERNS for m in p.finditer(text)}
    if "an=" in lowered:
        found |= set(_medline_accessions(text))
    return {p.lstrip("0") for p in found if p.strip("0")}


def pmcids(text: str) -> set[str]:
    """Every PMC ID (as 'PMC1234567') that ``text`` names."""
    if not text or not _may_name_pmcid(str(text).lower()):
        return set()
    found = set()
    for pattern in _PMCID_PATTERNS:
        for match in pattern.finditer(str(text)):
            value = match.group(1).upper()
            found.add(value if value.startswith("PMC") else f"PMC{value}")
    return found


def dois(text: str) -> set[str]:
    """Every DOI that ``text`` names (a doi.org link, 'doi:10...', a bare '10....')."""
    if not text:
        return set()
    found = {}
    if not _may_name_doi(str(text)):
        return set()
    for word in str(text).split():
        doi = fields.find_doi(word)
        if doi:
            found.setdefault(doi.lower(), doi)  # case kept; '10.1/A' and '10.1/a' are one DOI
    return set(found.values())


def _may_name_pmid(lowered):
    # Substring searches are cheaper than a regex alternation over a whole record's links.
    return "pmid" in lowered or "pubmed" in lowered or "ncbi" in lowered or "/med/" in lowered or "an=" in lowered


def _may_name_pmcid(lowered):
    return "pmc" in lowered


def _may_name_doi(lowered):
    return "10." in lowered


def _medline_accessions(text):
    """PMIDs in Ovid and EBSCOhost links whose database is a MEDLINE one."""
    # Overlapping matches: a proxy link holds Ovid's own link unencoded ("...?qurl=http://ovidsp...").
    for url in re.findall(r"(?=(https?://\S+))", text):
        parts = urlsplit(url)
        query = {k.lower(): v for k, v in parse_qs(parts.query + "&" + parts.fragment).items()}
        accession = [a for a in query.get("an", []) if a.isdigit()]
        if not accession:
            continue
        database = (query.get("d") or query.get("db") or [""])[0]
        host = parts.netloc.lower()
        if (_OVID_HOST.search(host) and _OVID_MEDLINE.match(database)) or (
            "ebscohost" in host and database.lower() in _EBSCO_MEDLINE
        ):
            yield accession[0]


def one(values: set[str]) -> str:
    """The value when there is exactly one, else '' (two different ones are no answer)."""
    return next(iter(values)) if len(values) == 1 else ""


def first_unambiguous(finder, *texts) -> str:
    """The identifier of the first field (in the order given) that names exactly one.

    Each text is one field; a list is one field with several values (an RIS tag that repeats).
    """
    return Carriers(*texts).first(finder)


class Carriers:
    """The fields of one record that may name its identifiers, best carrier first, read once for
    all three searches (issue 9: the RIS reader looked at every field three times)."""

    def __init__(self, *texts):
        self.fields = []
        for text in texts:
            if not text:
                continue
            values = [_plain(value) for value in (text if isinstance(text, list | tuple) else [text]) if value]
            if values:
                self.fields.append(values)
        # Each finder's own first check, made once on all the fields joined: a hint that no field
        # holds is not in their join either (a newline is in no hint), so most records are done
        # with one substring search instead of a finder call for every value.
        self._lowered = "\n".join(value for values in self.fields for value in values).lower()

    def first(self, finder) -> str:
        """What first_unambiguous says: the identifier of the first field that names exactly one."""
        may_name = _MAY_NAME.get(finder)
        if may_name is not None and not may_name(self._lowered):
            return ""
        for values in self.fields:
            found = set()
            for value in values:
                found |= finder(value)
            if found:
                value = one(found)
                if value:
                    return value
        return ""


def _plain(value):
    value = str(value)
    return unquote(value) if "%" in value else value


_MAY_NAME = {pmids: _may_name_pmid, pmcids: _may_name_pmcid, dois: _may_name_doi}


def find(*texts) -> tuple[str, str, str]:
    """(pmid, pmcid, doi) taken from ``texts``, each a field, best carrier first."""
    return (
        first_unambiguous(pmids, *texts),
        first_unambiguous(pmcids, *texts),
        first_unambiguous(dois, *texts),
    )


def doi_url(doi: str) -> str:
    return f"https://doi.org/{doi}" if doi else ""
