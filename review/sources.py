"""A source as the user describes it (PRISMA-S items 1-3, 8, 9, 13): which database or register,
on which platform, searched when, with which query and which limits.

Pure: the import form, ``import_records``, ``count_records`` and the search-log editing all
check what was typed here, and ``review.importing`` fills what was left blank from the file.
"""

import re
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timedelta, timezone

# As Search.SourceType (review.models); kept here so that this module needs no database.
DATABASE, REGISTER, OTHER = "database", "register", "other"
SOURCE_TYPES = (DATABASE, REGISTER, OTHER)
# Bounds of the Search columns these go to (source and platform are CharFields).
MAX_LENGTHS = {"database": 200, "platform": 100, "query": 100_000, "limits": 20_000}
# Records a counted source (citation searching...) can have identified; a bound on typing slips.
MAX_COUNT = 10_000_000
LABELS = {
    "database": "database / source",
    "platform": "platform / interface",
    "source_type": "source type",
    "searched_on": "search date",
    "query": "query",
    "limits": "limits and restrictions",
    # The Search columns' names, for messages about edits.
    "source": "database / source",
    "hits": "number of records",
}
# Trial registers PRISMA 2020 counts apart from databases, when the user does not say.
_REGISTERS = re.compile(
    r"clinicaltrials\.gov|\bictrp\b|international clinical trials registry|\beu ?ctr\b|"
    r"clinicaltrialsregister\.eu|\bctis\b|\bisrctn\b|\banzctr\b|\bchictr\b|\bdrks\b|\bctri\b|trials? regist",
    re.I,
)


@dataclass(frozen=True)
class SourceDetails:
    """What the user typed about a source; blank fields are filled from the file, if it shows them."""

    database: str = ""
    platform: str = ""
    source_type: str = ""
    searched_on: date | None = None
    query: str = ""
    limits: str = ""

    def checked(self, today=None):
        """A copy with surrounding blanks stripped and LF line ends; ValueError naming the field when a value is
        too long, the source type unknown or the search date in the future."""
        stripped = {f.name: _strip(getattr(self, f.name)) for f in fields(self)}
        for name, limit in MAX_LENGTHS.items():
            if len(stripped[name]) > limit:
                raise ValueError(
                    f"The {LABELS[name]} is {len(stripped[name]):,} characters long; at most {limit:,} are kept."
                )
        if stripped["source_type"] and stripped["source_type"] not in SOURCE_TYPES:
            raise ValueError(f"{stripped['source_type']!r} is not a source type: use one of {', '.join(SOURCE_TYPES)}.")
        check_search_date(stripped["searched_on"], today)
        return replace(self, **stripped)

    def search_fields(self, *, database="", platform="", default=""):
        """The Search columns these details give: typed values win, then what the file shows
        (``database``, ``platform``), then ``default`` for the database (the file's name)."""
        name = self.database or database or default
        return {
            "source": name[: MAX_LENGTHS["database"]],
            "platform": (self.platform or platform)[: MAX_LENGTHS["platform"]],
            "source_type": self.source_type or guess_source_type(name),
            "searched_on": self.searched_on,
            "query": self.query,
            "limits": self.limits,
        }


def guess_source_type(name):
    """REGISTER for the trial registers PRISMA 2020 lists apart (ClinicalTrials.gov, ICTRP...), else DATABASE."""
    return REGISTER if _REGISTERS.search(name or "") else DATABASE


def parse_search_date(text, today=None):
    """The date in ``text`` (YYYY-MM-DD), or None when blank; ValueError saying what is wrong."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a search date: write it as YYYY-MM-DD, e.g. 2024-03-31.") from None
    check_search_date(day, today)
    return day


def check_search_date(day, today=None):
    """ValueError when ``day`` is after ``today``: a search cannot be run in the future.

    ``today`` defaults to the latest date anywhere on Earth (UTC+14), so that nobody's own
    today is refused whatever the server's time zone.
    """
    today = today or datetime.now(timezone(timedelta(hours=14))).date()
    if day is not None and day > today:
        raise ValueError(f"The search date {day.isoformat()} is in the future (today is {today.isoformat()}).")


def _strip(value):
    # Browsers send a textarea's lines with CRLF: stored with LF, as the files' queries are.
    return value.replace("\r\n", "\n").replace("\r", "\n").strip() if isinstance(value, str) else value
