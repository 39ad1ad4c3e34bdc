"""Field clean-up shared by the file importers: years, people's names, DOIs, pages.

Export tools disagree on every one of these ("2014//", "Liu R.", "http://dx.doi.org/10...",
"['Marx, Karl', 'Lindgren, Astrid']"); the importers turn them into what Article expects.
"""

import ast
import re
from urllib.parse import unquote

_NO_PAGES = re.compile(r"^(?:no[- ]?specified|no pagination|n/?a)$", re.I)
_YEAR = re.compile(r"(?<!\d)(1[0-9]{3}|20[0-9]{2}|2100)(?!\d)")
# RIS dates are "YYYY/MM/DD/other": EBSCOhost writes "2007/08//2014 Sep", where the part after
# the third slash is the issue's own date (the first is the date the database took the record).
_RIS_DATE_OTHER = re.compile(r"^\s*\d{4}/[^/]*/[^/]*/(.+)$")
_DOI_IN_TEXT = re.compile(r"(?:doi(?:\.org)?[/:=]\s*|^)(10\.\d{4,9}/[^\s&\"'<>]+)", re.I)
_DOI_URL_PREFIX = re.compile(r"^(?:https?://)?(?:dx\.)?(?:doi\.org/)?(?:doi:\s*)?", re.I)
# "R.", "DG", "D.G.", "J.-P.", "Jr": the initials that follow a surname in "Liu R." or "Kimura M".
_INITIALS = re.compile(r"^(?:[A-Z]\.?-?){1,4}$")
# Lower-case words that belong to the surname in "Rens van de Schoot".
_PARTICLES = {
    "van",
    "von",
    "de",
    "der",
    "den",
    "del",
    "della",
    "di",
    "da",
    "du",
    "dos",
    "das",
    "la",
    "le",
    "ten",
    "ter",
}
# Words that mark a group author, whose name must not be turned around.
_GROUP_WORDS = re.compile(
    r"\b(group|organi[sz]ation|consortium|collaborat\w*|committee|society|association|investigators|study|"
    r"team|network|council|institute|university|of|for|and|the)\b",
    re.I,
)


def parse_year(value) -> int | None:
    """The first plausible four-digit year in ``value`` ('2014//', '2019/06//undefined', '2002.0'),
    or the year of the free-text part of an RIS date that has one ('2007/08//2014 Sep' -> 2014)."""
    if value is None:
        return None
    if isinstance(value, int | float):
        value = str(int(value))
    value = str(value)
    compound = _RIS_DATE_OTHER.match(value)
    match = (compound and _YEAR.search(compound.group(1))) or _YEAR.search(value)
    return int(match.group(1)) if match else None


def clean_doi(value: str) -> str:
    """'http://dx.doi.org/10.1002/cpp.2398' -> '10.1002/cpp.2398' (case kept; dedup normalises)."""
    value = unquote((value or "").strip())
    return _DOI_URL_PREFIX.sub("", value).strip().rstrip(".,;")


def find_doi(*texts) -> str:
    """A DOI named inside free text or a link (an OpenURL's 'id=doi:10...', a doi.org URL)."""
    for text in texts:
        for item in text if isinstance(text, list | tuple) else [text]:
            if not item:
                continue
            match = _DOI_IN_TEXT.search(unquote(str(item)))
            if match:
                return match.group(1).rstrip(".,;)")
    return ""


def person(name: str) -> str:
    """One author as 'Surname, Given': 'Liu R.' -> 'Liu, R.'; 'Edmund C. Baracat' -> 'Baracat, Edmund C.'.

    Names that already hold a comma and group authors are kept as written.
    """
    name = " ".join(str(name).split()).strip(" ;,")
    if not name or "," in name:
        return name
    parts = name.split(" ")
    if len(parts) == 1 or len(parts) > 5 or _GROUP_WORDS.search(name):
        return name
    if _INITIALS.match(parts[-1]) and not _INITIALS.match(parts[0]):
        return f"{' '.join(parts[:-1])}, {parts[-1]}"
    start = len(parts) - 1
    while start > 1 and parts[start - 1].lower() in _PARTICLES:
        start -= 1
    return f"{' '.join(parts[start:])}, {' '.join(parts[:start])}"


def split_people(value) -> list[str]:
    """An author cell as a list: "['Marx, Karl', 'Lindgren, Astrid']", 'Liu R., Adler D.G.',
    'Baracat EC; Barbosa IC', or already a list."""
    if not value:
        return []
    if isinstance(value, list | tuple):
        items = list(value)
    else:
        text = str(value).strip()
        items = None
        if text.startswith("[") and text.endswith("]"):
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                parsed = None
            if isinstance(parsed, list):
                items = [str(i) for i in parsed]
        if items is None:
            if ";" in text:
                items = text.split(";")
            elif "," in text:
                parts = [p.strip() for p in text.split(",")]
                # "Liu R., Adler D.G." is a list; "Marx, Karl" is one person.
                items = parts if all(" " in p for p in parts if p) else [text]
            else:
                items = [text]
    return [p for p in (person(i) for i in items) if p]


def split_terms(value) -> list[str]:
    if not value:
        return []
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = ast.literal_eval(text)
            if isinstance(parsed, list):
                return [str(v).strip() for v in parsed if str(v).strip()]
        except (ValueError, SyntaxError):
            pass
    separator = ";" if ";" in text else ","
    return [t.strip() for t in text.split(separator) if t.strip()]


def pages(start: str, end: str = "") -> str:
    start, end = (start or "").strip(), (end or "").strip()
    value = f"{start}-{end}" if start and end and "-" not in start else start or end
    # Ovid writes "SP - No" and "EP - Specified".
    return "" if _NO_PAGES.match(value) else value
