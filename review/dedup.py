"""Pure functions for duplicate detection: normalised keys and similarity (no ORM here)."""

import re
import unicodedata
from urllib.parse import unquote

from rapidfuzz import fuzz

_DOI_PREFIX = re.compile(r"^(?:https?://)?(?:dx\.)?(?:doi\.org/)?(?:doi:\s*)?", re.I)
# Registrant codes are four or more digits in practice; shorter ones ("10.3") still name the same
# thing in two records of one file, so they are kept.
_DOI_SHAPE = re.compile(r"^10\.\d+(?:/\S+)?$")
_NON_WORD = re.compile(r"[^a-z0-9]+")
AUTHOR_THRESHOLD = 80
TITLE_THRESHOLD = 95


def normalise_doi(doi: str) -> str:
    """'https://doi.org/10.1000/ABC.' -> '10.1000/abc'; '' when it is not a DOI."""
    if not doi:
        return ""
    value = unquote(doi.strip())
    value = _DOI_PREFIX.sub("", value).strip().rstrip(".,;").lower()
    return value if _DOI_SHAPE.match(value) else ""


def normalise_title(title: str) -> str:
    """Lower case, accents folded, HTML tags and punctuation dropped, spaces collapsed."""
    if not title:
        return ""
    text = re.sub(r"<[^>]+>", " ", title)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = _NON_WORD.sub(" ", text).strip()
    return text[:500]


def normalise_pmid(pmid: str) -> str:
    digits = re.sub(r"\D", "", str(pmid or ""))
    return digits.lstrip("0")


def author_key(authors) -> str:
    """The first author's surname, normalised, for fuzzy comparison."""
    if not authors:
        return ""
    first = authors[0]
    surname = first.split(",")[0] if "," in first else first.rsplit(" ", 1)[0] if " " in first else first
    return normalise_title(surname)


def years_compatible(a, b) -> bool:
    """Online-first and print years often differ by one."""
    if a is None or b is None:
        return True
    return abs(int(a) - int(b)) <= 1


def same_work(a: dict, b: dict) -> bool:
    """Title+year+first-author match between two candidate dicts with keys title_norm, year,
    author, doi_norm. Equal titles with different DOIs are different reports (a conference
    abstract and the article, a letter and its correction)."""
    if a["doi_norm"] and b["doi_norm"] and a["doi_norm"] != b["doi_norm"]:
        return False
    if not a["title_norm"] or not b["title_norm"]:
        return False
    if not years_compatible(a["year"], b["year"]):
        return False
    if fuzz.ratio(a["title_norm"], b["title_norm"]) < TITLE_THRESHOLD:
        return False
    if a["author"] and b["author"]:
        return fuzz.ratio(a["author"], b["author"]) >= AUTHOR_THRESHOLD
    return True
