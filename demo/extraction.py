"""The demo's extraction table: four fields, with values read off the included studies' abstracts."""

import re

from screening.extraction import save_values
from screening.models import ExtractionField

EXTRACTED = 12  # included studies with extraction values
DEMO_NOTE = " (demo values: read off the abstract by a pattern; check them)"
EXTRACTION_FIELDS = [
    ("Country", ExtractionField.Kind.TEXT, "", "Where the sample was recruited" + DEMO_NOTE),
    ("Sample size", ExtractionField.Kind.NUMBER, "", "Participants analysed at baseline" + DEMO_NOTE),
    (
        "Design",
        ExtractionField.Kind.CHOICE,
        "Prospective cohort\nLongitudinal cohort\nRandomised trial (secondary analysis)\nOther",
        "How the sample was followed" + DEMO_NOTE,
    ),
    ("Trauma type", ExtractionField.Kind.TEXT, "", "The index event" + DEMO_NOTE),
]

# Extraction values are read off the abstract by simple patterns, so the demo invents no data;
# the fields' help text tells users these are a first pass to check.
_SAMPLE = re.compile(
    r"\b(?:n\s*=\s*)?(\d{2,3}(?:,\d{3})+|\d{2,6})\s+(?:[a-z-]+\s+){0,3}?"
    r"(?:participants|patients|adults|survivors|children|adolescents|soldiers|veterans|individuals|women|"
    r"men|victims|subjects|youth|residents|workers|responders|mothers|parents|marines)\b",
    re.IGNORECASE,
)
_N_EQUALS = re.compile(r"\bN\s*=\s*(\d{1,3}(?:,\d{3})+|\d{2,6})\b")
COUNTRIES = {
    "United States": ("u.s.", "united states", "hurricane katrina", "world trade center", "new york"),
    "Denmark": ("danish", "denmark"),
    "Netherlands": ("dutch", "netherlands"),
    "Israel": ("israel",),
    "Palestine": ("palestin",),
    "Norway": ("norway", "norwegian"),
    "Australia": ("australia",),
    "China": ("china", "chinese", "wenchuan"),
    "Germany": ("german",),
    "Sweden": ("swed",),
}
TRAUMA = {
    "Military deployment": ("soldier", "military", "deploy", "veteran", "marines"),
    "War": ("war on", "after major war", "armed conflict", "political violence"),
    "Natural disaster": ("hurricane", "earthquake", "tsunami", "flood", "wildfire"),
    "Terrorist attack": ("world trade center", "terrorist", "9/11"),
    "Injury": ("injur", "burn", "accident", "whiplash"),
    "Sexual assault": ("sexual assault", "rape"),
    "Serious illness": ("cancer", "intensive care"),
    "Mass shooting": ("shooting",),
}


def _only_match(text, table):
    # A value only when the abstract points one way: two countries or two kinds of event
    # (a comparison sample, a passing mention) leave the field for the reviewer.
    names = [name for name, words in table.items() if any(w in text for w in words)]
    return names[0] if len(names) == 1 else ""


def extracted_values(row):
    """Field name -> value for the fields a pattern finds in ``row``'s abstract."""
    text = row.text
    values = {"Country": _only_match(text, COUNTRIES), "Trauma type": _only_match(text, TRAUMA)}
    found = _N_EQUALS.search(row.abstract) or _SAMPLE.search(row.abstract)
    values["Sample size"] = found.group(1).replace(",", "") if found else ""
    if "randomi" in text:
        values["Design"] = "Randomised trial (secondary analysis)"
    elif "prospective" in text:
        values["Design"] = "Prospective cohort"
    elif "longitudinal" in text:
        values["Design"] = "Longitudinal cohort"
    else:
        values["Design"] = ""
    return {name: value for name, value in values.items() if value}


def ensure_extraction_fields(review):
    fields = {}
    for position, (name, kind, choices, help_text) in enumerate(EXTRACTION_FIELDS):
        fields[name], _ = ExtractionField.objects.get_or_create(
            review=review,
            name=name,
            defaults={"kind": kind, "choices": choices, "help_text": help_text, "position": position},
        )
    return fields


def extract_some(review, included, user):
    ensure_extraction_fields(review)
    return sum(len(save_values(rec, extracted_values(row), user)) for rec, row in included[:EXTRACTED])
