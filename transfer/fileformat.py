"""The review file: what it holds, in which order, and how an older file is brought up to date.

A review file is a zip archive (docs/review-file-format.md) holding ``manifest.json`` and one
JSON-lines file per section below, one row per line. Rows name their fields as the models do;
a reference to another row of the file is that row's id in the file (remapped on import), and a
reference to a person is their username (the ``users`` section describes each one).
"""

from dataclasses import dataclass

from django.apps import apps

FORMAT = "sieve-review"
FORMAT_VERSION = 3
# Bumped by hand when a release changes what the file holds (the manifest records it).
SIEVE_VERSION = "0.9"
MANIFEST = "manifest.json"
USERS = "users"
# The person fields a users row carries (the rest of an account stays on its server).
USER_FIELDS = ("username", "email", "first_name", "last_name")
# The folder of the archive holding the full texts' PDFs (version 3): one member per full text,
# named by its record's id in the file. A fulltexts row's ``file`` names its member, or is empty.
FULLTEXTS_FOLDER = "fulltexts"


def fulltext_member(record_id):
    """The archive member holding the PDF of the record whose id in the file is ``record_id``."""
    return f"{FULLTEXTS_FOLDER}/{record_id}.pdf"


@dataclass(frozen=True)
class Section:
    name: str  # the file inside the archive is f"{name}.jsonl"
    model: str  # app_label.ModelName
    scope: str  # the lookup from the model to the review's primary key

    @property
    def filename(self):
        return f"{self.name}.jsonl"

    def model_class(self):
        return apps.get_model(self.model)


# In dependency order: a row refers only to rows of earlier sections (and, for a record's
# duplicate_of, to other records: linked after the whole section is in).
SECTIONS = (
    Section("review", "review.Review", "pk"),
    Section("memberships", "review.Membership", "review"),
    Section("searches", "review.Search", "review"),
    Section("records", "review.Record", "review"),
    Section("tags", "review.Tag", "review"),
    Section("record_tags", "review.RecordTag", "record__review"),
    Section("record_notes", "review.RecordNote", "record__review"),
    Section("events", "review.Event", "review"),
    Section("decisions", "screening.Decision", "record__review"),
    Section("resolutions", "screening.Resolution", "record__review"),
    Section("extraction_fields", "screening.ExtractionField", "review"),
    Section("extraction_values", "screening.ExtractionValue", "record__review"),
    Section("ranking_runs", "screening.RankingRun", "review"),
    Section("record_scores", "screening.RecordScore", "run__review"),
    Section("order_preferences", "screening.OrderPreference", "review"),
    Section("handouts", "screening.HandOut", "record__review"),
    Section("stopping_settings", "screening.StoppingSettings", "review"),
    Section("random_samples", "screening.RandomSample", "review"),
    Section("sample_records", "screening.SampleRecord", "sample__review"),
    Section("stage_closures", "screening.StageClosure", "review"),
    Section("closed_records", "screening.ClosedRecord", "closure__review"),
    Section("assignments", "screening.Assignment", "record__review"),
    Section("fulltexts", "review.FullText", "record__review"),
)

# Models of the project's apps the file does not carry, and why. tests/transfer pins that every
# model is in SECTIONS or here, so a new model cannot be forgotten silently.
NOT_TRANSFERRED = {
    "review.Invitation": "an invitation's link is a secret of the server that sent it; the events keep its history",
    "screening.Claim": "a claim holds a record for a reviewer for minutes; it expires anyway",
    "django_tasks_database.DBTaskResult": "background jobs belong to the server that ran them",
    "review.RateLimitSlot": "the server-wide NCBI request spacing; not part of any review",
    "review.Job": "background jobs belong to the server that ran them (the search log keeps what they did)",
}


def section_fields(model):
    """The concrete fields a section's rows carry: every column but the primary key."""
    return [f for f in model._meta.concrete_fields if not f.primary_key]


# Upgrades: UPGRADES[n] turns a version-n row into a version n+1 row. A field a newer Sieve added
# needs no upgrade (a row without it gets the field's default); a renamed section or field, or a
# value whose shape changed, does.
def _v0_to_v1(section, row):
    # The draft format (version 0) named the tags section "labels" and stored a record's authors
    # as one "; "-separated string; version 1 keeps the list the model holds.
    if section == "records" and isinstance(row.get("authors"), str):
        row["authors"] = [a.strip() for a in row["authors"].split(";") if a.strip()]
    return row


def _v1_to_v2(section, row):
    # Version 2 added the assignments section (a version-1 file has none); rows are unchanged.
    return row


def _v2_to_v3(section, row):
    # Version 3 added the fulltexts section and its PDFs (a version-2 file has none); rows are unchanged.
    return row


UPGRADES = {0: _v0_to_v1, 1: _v1_to_v2, 2: _v2_to_v3}
SECTION_RENAMES = {0: {"labels": "tags"}}


def upgrade_row(version, section, row):
    """``row`` of ``section`` as a file of the current version would hold it."""
    for v in range(version, FORMAT_VERSION):
        row = UPGRADES[v](section, row)
    return row


def section_file(version, section):
    """The name ``section`` had in a file of ``version``."""
    name = section.name
    for v in range(FORMAT_VERSION - 1, version - 1, -1):
        old = {new: old for old, new in SECTION_RENAMES.get(v, {}).items()}
        name = old.get(name, name)
    return f"{name}.jsonl"
