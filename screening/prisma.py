"""PRISMA 2020 flow-diagram counts, read from the records' reconciled outcomes.

Only final (reconciled) outcomes count: a record whose reviewers disagree and nobody resolved it
yet is a conflict, and stays out of every decided box until it is resolved. Duplicates are counted
once, in "Duplicate records removed", and never again further down.

Columns. Records come from searches (review.models.Search) of three types. Databases and registers
share PRISMA's main column, each listed apart ("Databases (n)", "Registers (n)"). Other methods
(websites, organisations, citation searching) have their own column, drawn only when such a source
exists. In Sieve every imported record is screened alike, whatever its source, so an other-method
record flows by its own outcomes: PRISMA's other column has no screening boxes, so its records
that are duplicates, excluded at title/abstract, left by a closure, or still open are reported
together as "Records not sought for retrieval", and those that pass title/abstract are its
"Reports sought for retrieval", assessed at full text like any other. A search that was only
counted (Search.Kind.COUNT: hits, no records) is identified and goes no further: in the other
column it is one more "not sought" line, in the main column its hits are "Records removed for
other reasons" (counted, not imported into Sieve).

Open work. Until screening is finished, records and reports still waiting for a decision are
counted in boxes of their own ("Not yet screened", "Not yet assessed"), so every box's sum holds
in every output, and the outputs say the screening is still open.

A stage closed on the stopping rule (screening/closing.py): at title/abstract the records it left
unscreened are "Records marked as ineligible by automation tools", removed before screening (so
"Records screened" does not count them); at full text they are counted as assessed and excluded
under closing.FULL_TEXT_REASON. Either way a footnote names the method, target and confidence.
"""

import csv
import io
from dataclasses import dataclass, field

from django.db.models import Count, Min, Q

from review.models import Record, Search, Stage
from review.spreadsheet import safe_row
from screening import closing, stages

OUTCOME = Record.Outcome
SOURCE = Search.SourceType

# The JSON's keys, in the order the diagram reads them.
JSON_KEYS = (
    "screening_open",
    "open_note",
    "databases",
    "registers",
    "records_identified",
    "records_identified_total",
    "duplicates_removed",
    "records_excluded_automation",
    "records_removed_other",
    "records_screened",
    "records_not_yet_screened",
    "records_excluded",
    "reports_sought",
    "reports_not_retrieved",
    "reports_not_yet_assessed",
    "reports_assessed",
    "reports_excluded",
    "reports_included",
    "other_methods",
    "studies_included",
    "open_work",
    "source_notes",
    "footnotes",
)

NO_REASON = "Reason not recorded"
UNNAMED = "Unnamed source"


@dataclass
class OtherMethods:
    """The "Identification of new studies via other methods" column."""

    identified: dict[str, int] = field(default_factory=dict)  # source -> records (imported or counted)
    counted: int = 0  # hits of searches only counted, never imported
    duplicates: int = 0
    excluded_automation: int = 0
    excluded_screening: int = 0  # excluded at title/abstract screening
    not_yet_screened: int = 0  # waiting for a title/abstract decision or a resolution
    reports_sought: int = 0
    reports_not_retrieved: int = 0
    reports_not_yet_assessed: int = 0
    reports_assessed: int = 0
    reports_excluded: dict[str, int] = field(default_factory=dict)
    studies_included: int = 0

    @property
    def total_identified(self):
        return sum(self.identified.values())

    @property
    def not_sought(self):
        """Why identified records were not sought for retrieval (label -> n), in diagram order."""
        return {
            "Duplicates of records already identified": self.duplicates,
            "Marked as ineligible by automation tools": self.excluded_automation,
            "Excluded at title/abstract screening": self.excluded_screening,
            "Not yet screened (screening still open)": self.not_yet_screened,
            "Counted only, not imported": self.counted,
        }

    def to_json(self):
        return {
            "identified": dict(self.identified),
            "records_identified": self.total_identified,
            "not_sought": dict(self.not_sought),
            "reports_sought": self.reports_sought,
            "reports_not_retrieved": self.reports_not_retrieved,
            "reports_not_yet_assessed": self.reports_not_yet_assessed,
            "reports_assessed": self.reports_assessed,
            "reports_excluded": dict(self.reports_excluded),
            "studies_included": self.studies_included,
        }


@dataclass
class PrismaCounts:
    # The main column: databases and registers, each source by name.
    databases_identified: dict[str, int] = field(default_factory=dict)
    registers_identified: dict[str, int] = field(default_factory=dict)
    duplicates_removed: int = 0
    # Left unscreened when title/abstract screening was closed on the stopping rule.
    records_excluded_automation: int = 0
    # Hits of database or register searches that were counted but never imported.
    records_removed_other: int = 0
    records_screened: int = 0
    records_excluded: int = 0
    reports_sought: int = 0
    reports_not_retrieved: int = 0
    reports_assessed: int = 0
    reports_excluded: dict[str, int] = field(default_factory=dict)
    # Reports from databases and registers included (the other column has its own).
    reports_included: int = 0
    # Of reports_assessed and reports_excluded: left unassessed when full-text screening was closed
    # on the stopping rule (reason closing.FULL_TEXT_REASON).
    reports_closed_by_rule: int = 0
    # Main column work still open, counted apart so that every box's sum holds while screening runs:
    # records waiting for a title/abstract decision or resolution (a 'maybe' too, when it does not
    # count as include), and reports waiting for a full-text decision or resolution.
    records_not_yet_screened: int = 0
    reports_not_yet_assessed: int = 0
    other: OtherMethods | None = None
    # Beside a source's count: a search that fetched fewer records than it found.
    source_notes: dict[str, str] = field(default_factory=dict)
    # What the diagram's readers must be told beside it (a closure on the stopping rule).
    footnotes: list[str] = field(default_factory=list)
    # Work still open in the whole review (both columns), for the page and the open-work note.
    awaiting_screening: int = 0
    screening_conflicts: int = 0
    undecided_maybe: int = 0
    awaiting_full_text: int = 0
    full_text_conflicts: int = 0

    @property
    def records_identified(self):
        """Databases then registers: {source: n}."""
        return {**self.databases_identified, **self.registers_identified}

    @property
    def total_identified(self):
        return sum(self.databases_identified.values()) + sum(self.registers_identified.values())

    @property
    def total_reports_excluded(self):
        return sum(self.reports_excluded.values())

    @property
    def studies_included(self):
        """New studies included in review: from both columns."""
        return self.reports_included + (self.other.studies_included if self.other else 0)

    @property
    def is_complete(self):
        """True when no record is waiting for a decision or a resolution at either stage."""
        return not any(self.open_work.values())

    @property
    def open_work(self):
        return {
            "awaiting_screening": self.awaiting_screening,
            "screening_conflicts": self.screening_conflicts,
            "undecided_maybe": self.undecided_maybe,
            "awaiting_full_text": self.awaiting_full_text,
            "full_text_conflicts": self.full_text_conflicts,
        }

    @property
    def open_note(self):
        """The banner an open review's diagram carries (None once screening is finished)."""
        if self.is_complete:
            return None
        waiting = sum(self.open_work.values())
        return (
            f"Screening still open: {waiting:,} record{'s' if waiting != 1 else ''} await a decision or a "
            "resolution. They are counted in the “not yet screened / assessed” boxes; these figures will change."
        )


def sought_records(review):
    """Unique records sent on to full-text retrieval (the 'Reports sought' boxes): those taking part
    in full-text screening, by the one rule in screening.stages."""
    return stages.in_stage(review, Stage.FULL_TEXT)


def included_records(review):
    """Unique records included after full-text screening (the 'Studies included' box)."""
    return sought_records(review).filter(ft_outcome=OUTCOME.INCLUDE)


# Keywords that place an other-method source in the PRISMA2020 template's rows; a source that
# names neither is counted as a website (search engines, trial sites, grey-literature portals).
CITATION_WORDS = ("citation", "reference", "snowball", "cited", "backward", "forward", "hand search", "handsearch")
ORGANISATION_WORDS = ("organisation", "organization", "agency", "society", "ministry", "institute", "contacted")


def other_method_kind(source):
    """Which of the template's other-method rows a source belongs to: websites, organisations or citations."""
    name = source.casefold()
    if any(w in name for w in CITATION_WORDS):
        return "citations"
    if any(w in name for w in ORGANISATION_WORDS):
        return "organisations"
    return "websites"


def _aggregates(review):
    """The per-record counts, one Count per box, to be grouped by the search's source type."""
    sought = stages.passes_title_abstract_q(review)
    unique = Q(duplicate_of__isnull=True)
    # With maybe_counts_as_include off, a final 'maybe' is neither excluded nor sent on: it waits
    # for someone to decide, so it is not counted as screened either (the boxes must add up).
    decided = Q(ta_outcome=OUTCOME.EXCLUDE) | sought
    # Records an open closure left unscreened: out of the stage, counted in their own boxes.
    ta_closed = Q(pk__in=stages.closed_records(review, Stage.TITLE_ABSTRACT))
    ft_closed = Q(pk__in=stages.closed_records(review, Stage.FULL_TEXT))
    return dict(
        duplicates=Count("pk", filter=~unique),
        screened=Count("pk", filter=unique & decided),
        excluded=Count("pk", filter=unique & Q(ta_outcome=OUTCOME.EXCLUDE)),
        ta_closed=Count("pk", filter=unique & ta_closed),
        awaiting=Count("pk", filter=unique & Q(ta_outcome=OUTCOME.PENDING) & ~ta_closed),
        ta_conflicts=Count("pk", filter=unique & Q(ta_outcome=OUTCOME.CONFLICT)),
        maybe=Count("pk", filter=unique & Q(ta_outcome=OUTCOME.MAYBE) & ~sought),
        sought=Count("pk", filter=unique & sought),
        not_retrieved=Count("pk", filter=unique & Q(ft_outcome=OUTCOME.NOT_RETRIEVED) & sought),
        assessed=Count("pk", filter=unique & Q(ft_outcome__in=[OUTCOME.INCLUDE, OUTCOME.EXCLUDE]) & sought),
        ft_closed=Count("pk", filter=unique & sought & ft_closed),
        included=Count("pk", filter=unique & Q(ft_outcome=OUTCOME.INCLUDE) & sought),
        ft_awaiting=Count("pk", filter=unique & Q(ft_outcome=OUTCOME.PENDING) & sought & ~ft_closed),
        ft_conflicts=Count("pk", filter=unique & Q(ft_outcome=OUTCOME.CONFLICT) & sought),
    )


def _column(source_type):
    return "other" if source_type == SOURCE.OTHER else "main"


def _source_note(searches):
    """ "n of N found; limited to ..." for a source whose searches fetched fewer records than they found."""
    short = [s for s in searches if s["hits"] is not None and s["fetched"] < s["hits"]]
    if not short:
        return None
    fetched = sum(s["fetched"] for s in short)
    hits = sum(s["hits"] for s in short)
    reasons = "; ".join(dict.fromkeys(s["stopped_reason"].strip() for s in short if s["stopped_reason"].strip()))
    limits = "; ".join(dict.fromkeys(s["limits"].strip() for s in short if s["limits"].strip()))
    why = reasons or (f"limited to {limits}" if limits else "not all records fetched")
    return f"{fetched:,} of {hits:,} found; {why}"


def compute(review) -> PrismaCounts:
    """Count every box of the PRISMA 2020 diagram for ``review`` in four aggregate queries."""
    records = Record.objects.for_review(review)
    identified = {SOURCE.DATABASE: {}, SOURCE.REGISTER: {}, SOURCE.OTHER: {}}
    for row in (
        records.values("search__source_type", "source").annotate(n=Count("pk"), first=Min("pk")).order_by("first")
    ):
        bucket = identified[row["search__source_type"]]
        name = row["source"] or UNNAMED
        bucket[name] = bucket.get(name, 0) + row["n"]
    searches = list(
        Search.objects.filter(review=review)
        .active()
        .values("kind", "source", "source_type", "hits", "fetched", "limits", "stopped_reason")
    )
    counted = {"main": 0, "other": 0}
    notes = {}
    for search in searches:
        if search["kind"] == Search.Kind.COUNT and search["hits"]:
            bucket = identified[search["source_type"]]
            name = search["source"] or UNNAMED
            bucket[name] = bucket.get(name, 0) + search["hits"]
            counted[_column(search["source_type"])] += search["hits"]
    for name in {s["source"] or UNNAMED for s in searches if s["kind"] != Search.Kind.COUNT}:
        note = _source_note(
            [s for s in searches if (s["source"] or UNNAMED) == name and s["kind"] != Search.Kind.COUNT]
        )
        if note:
            notes[name] = note

    zero = dict.fromkeys(_aggregates(review), 0)
    totals = {"main": dict(zero), "other": dict(zero)}
    for row in records.values("search__source_type").annotate(**_aggregates(review)).order_by():
        column = totals[_column(row.pop("search__source_type"))]
        for key, value in row.items():
            column[key] += value
    reasons = {"main": {}, "other": {}}
    for row in (
        sought_records(review)
        .filter(ft_outcome=OUTCOME.EXCLUDE)
        .values("search__source_type", "ft_reason")
        .annotate(n=Count("pk"))
        .order_by("-n", "ft_reason")
    ):
        column = reasons[_column(row["search__source_type"])]
        reason = row["ft_reason"].strip() or NO_REASON
        column[reason] = column.get(reason, 0) + row["n"]
    for key in ("main", "other"):
        if totals[key]["ft_closed"]:
            column = reasons[key]
            column[closing.FULL_TEXT_REASON] = column.get(closing.FULL_TEXT_REASON, 0) + totals[key]["ft_closed"]

    main, oth = totals["main"], totals["other"]
    marked = {s: main[k] + oth[k] for s, k in ((Stage.TITLE_ABSTRACT, "ta_closed"), (Stage.FULL_TEXT, "ft_closed"))}
    # One more query only where a closure on the stopping rule left records in the diagram.
    closures = closing.open_closures(review) if any(marked.values()) else {}
    other = None
    if identified[SOURCE.OTHER]:
        other = OtherMethods(
            identified=identified[SOURCE.OTHER],
            counted=counted["other"],
            duplicates=oth["duplicates"],
            excluded_automation=oth["ta_closed"],
            excluded_screening=oth["excluded"],
            not_yet_screened=oth["awaiting"] + oth["ta_conflicts"] + oth["maybe"],
            reports_sought=oth["sought"],
            reports_not_retrieved=oth["not_retrieved"],
            reports_not_yet_assessed=oth["ft_awaiting"] + oth["ft_conflicts"],
            reports_assessed=oth["assessed"] + oth["ft_closed"],
            reports_excluded=reasons["other"],
            studies_included=oth["included"],
        )
    return PrismaCounts(
        databases_identified=identified[SOURCE.DATABASE],
        registers_identified=identified[SOURCE.REGISTER],
        duplicates_removed=main["duplicates"],
        records_excluded_automation=main["ta_closed"],
        records_removed_other=counted["main"],
        records_screened=main["screened"],
        records_excluded=main["excluded"],
        reports_sought=main["sought"],
        reports_not_retrieved=main["not_retrieved"],
        reports_assessed=main["assessed"] + main["ft_closed"],
        reports_excluded=reasons["main"],
        reports_included=main["included"],
        reports_closed_by_rule=main["ft_closed"],
        records_not_yet_screened=main["awaiting"] + main["ta_conflicts"] + main["maybe"],
        reports_not_yet_assessed=main["ft_awaiting"] + main["ft_conflicts"],
        other=other,
        source_notes=notes,
        footnotes=[closing.prisma_footnote(closures[s], marked[s]) for s in Stage if s in closures and marked[s]],
        awaiting_screening=main["awaiting"] + oth["awaiting"],
        screening_conflicts=main["ta_conflicts"] + oth["ta_conflicts"],
        undecided_maybe=main["maybe"] + oth["maybe"],
        awaiting_full_text=main["ft_awaiting"] + oth["ft_awaiting"],
        full_text_conflicts=main["ft_conflicts"] + oth["ft_conflicts"],
    )


def _merged(*counts):
    merged = {}
    for part in counts:
        for name, n in part.items():
            merged[name] = merged.get(name, 0) + n
    return merged


def to_json(counts: PrismaCounts) -> dict:
    """The diagram's figures as a JSON-ready dict with exactly the keys in ``JSON_KEYS``.

    Every box's sum holds in it, open or finished (tests/screening/test_prisma.py checks them):
    records_identified_total = sum(records_identified) = sum(databases) + sum(registers)
    = duplicates_removed + records_excluded_automation + records_removed_other
    + records_screened + records_not_yet_screened; records_screened = records_excluded +
    reports_sought; reports_sought = reports_not_retrieved + reports_not_yet_assessed +
    reports_assessed; reports_assessed = sum(reports_excluded) + reports_included;
    studies_included = reports_included + other_methods.studies_included; and in other_methods,
    records_identified = sum(not_sought) + reports_sought, then as above.
    """
    return {
        "screening_open": not counts.is_complete,
        "open_note": counts.open_note,
        "databases": dict(counts.databases_identified),
        "registers": dict(counts.registers_identified),
        # {source: n} for databases and registers together, as before registers were told apart.
        "records_identified": _merged(counts.databases_identified, counts.registers_identified),
        "records_identified_total": counts.total_identified,
        "duplicates_removed": counts.duplicates_removed,
        "records_excluded_automation": counts.records_excluded_automation,
        "records_removed_other": counts.records_removed_other,
        "records_screened": counts.records_screened,
        "records_not_yet_screened": counts.records_not_yet_screened,
        "records_excluded": counts.records_excluded,
        "reports_sought": counts.reports_sought,
        "reports_not_retrieved": counts.reports_not_retrieved,
        "reports_not_yet_assessed": counts.reports_not_yet_assessed,
        "reports_assessed": counts.reports_assessed,
        "reports_excluded": dict(counts.reports_excluded),
        "reports_included": counts.reports_included,
        "other_methods": counts.other.to_json() if counts.other else None,
        "studies_included": counts.studies_included,
        # Conflicts are not told apart from records awaiting a vote: any member may download this.
        "open_work": {
            "awaiting_title_abstract": counts.awaiting_screening + counts.screening_conflicts + counts.undecided_maybe,
            "awaiting_full_text": counts.awaiting_full_text + counts.full_text_conflicts,
        },
        "source_notes": dict(counts.source_notes),
        "footnotes": list(counts.footnotes),
    }


def _list_item(name):
    # The R package splits the list on "; " and each item on its last ",": keep both out of names.
    return " ".join(name.replace(";", " ").replace(",", " ").split())


def _reason_list(items):
    return "; ".join(f"{_list_item(name)}, {n}" for name, n in items.items())


# The PRISMA2020 R package's template, inst/extdata/PRISMA.csv in github.com/prisma-flowdiagram/
# PRISMA2020, as its current PRISMA_data() (R/PRISMA_data.R) reads it: the rows of the package's
# 0.0.3 CSV plus the meta-analysis rows total_studies_ma and total_reports_ma (node23, box17) that
# PRISMA_data() has required since (without them it stops with "object 'total_studies_ma_text' not
# found"). Every column but n is the template's own text, row for row, in its order; "" where the
# template leaves a cell empty (organisation_results' node).
PRISMA2020_COLUMNS = ("data", "node", "box", "description", "boxtext", "tooltips", "url", "n")
NA = "NA"
# fmt: off
PRISMA2020_TEMPLATE = (
    (NA, "node4", "prevstud", "Grey title box; Previous studies", "Previous studies",
     "Grey title box; Previous studies", "prevstud.html"),
    ("previous_studies", "node5", "box1", "Studies included in previous version of review",
     "Studies included in previous version of review", "Studies included in previous version of review",
     "previous_studies.html"),
    ("previous_reports", NA, "box1", "Reports of studies included in previous version of review",
     "Reports of studies included in previous version of review", NA, "previous_reports.html"),
    (NA, "node6", "newstud", "Yellow title box; Identification of new studies via databases and registers",
     "Identification of new studies via databases and registers",
     "Yellow title box; Identification of new studies via databases and registers", "newstud.html"),
    ("database_results", "node7", "box2", "Records identified from: Databases", "Databases",
     "Records identified from: Databases and Registers", "database_results.html"),
    ("database_specific_results", NA, "box2", "Records identified from: specific databases",
     "Specific Databases", NA, "database_results.html"),
    ("register_results", NA, "box2", "Records identified from: Registers", "Registers", NA, NA),
    ("register_specific_results", NA, "box2", "Records identified from: specific registers",
     "Specific Registers", NA, "database_results.html"),
    (NA, "node16", "othstud", "Grey title box; Identification of new studies via other methods",
     "Identification of new studies via other methods",
     "Grey title box; Identification of new studies via other methods", "othstud.html"),
    ("website_results", "node17", "box11", "Records identified from: Websites", "Websites",
     "Records identified from: Websites, Organisations and Citation Searching", "website_results.html"),
    ("organisation_results", "", "box11", "Records identified from: Organisations", "Organisations", NA, NA),
    ("citations_results", NA, "box11", "Records identified from: Citation searching", "Citation searching",
     NA, NA),
    ("duplicates", "node8", "box3", "Duplicate records", "Duplicate records", "Duplicate records",
     "duplicates.html"),
    ("excluded_automatic", NA, "box3", "Records marked as ineligible by automation tools",
     "Records marked as ineligible by automation tools", NA, NA),
    ("excluded_other", NA, "box3", "Records removed for other reasons", "Records removed for other reasons",
     NA, NA),
    ("records_screened", "node9", "box4", "Records screened (databases and registers)", "Records screened",
     "Records screened (databases and registers)", "records_screened.html"),
    ("records_excluded", "node10", "box5", "Records excluded (databases and registers)", "Records excluded",
     "Records excluded (databases and registers)", "records_excluded.html"),
    ("dbr_sought_reports", "node11", "box6", "Reports sought for retrieval (databases and registers)",
     "Reports sought for retrieval", "Reports sought for retrieval (databases and registers)",
     "dbr_sought_reports.html"),
    ("dbr_notretrieved_reports", "node12", "box7", "Reports not retrieved (databases and registers)",
     "Reports not retrieved", "Reports not retrieved (databases and registers)",
     "dbr_notretrieved_reports.html"),
    ("other_sought_reports", "node18", "box12", "Reports sought for retrieval (other)",
     "Reports sought for retrieval", "Reports sought for retrieval (other)", "other_sought_reports.html"),
    ("other_notretrieved_reports", "node19", "box13", "Reports not retrieved (other)", "Reports not retrieved",
     "Reports not retrieved (other)", "other_notretrieved_reports.html"),
    ("dbr_assessed", "node13", "box8", "Reports assessed for eligibility (databases and registers)",
     "Reports assessed for eligibility", "Reports assessed for eligibility (databases and registers)",
     "dbr_assessed.html"),
    ("dbr_excluded", "node14", "box9",
     ("Reports excluded (databases and registers): [separate reasons and numbers using ; e.g. "
      "Reason1, xxx; Reason2, xxx; Reason3, xxx]"),
     "Reports excluded", "Reports excluded (databases and registers)", "dbrexcludedrecords.html"),
    ("other_assessed", "node20", "box14", "Reports assessed for eligibility (other)",
     "Reports assessed for eligibility", "Reports assessed for eligibility (other)", "other_assessed.html"),
    ("other_excluded", "node21", "box15",
     ("Reports excluded (other): [separate reasons and numbers using ; e.g. Reason1, xxx; Reason2, xxx; "
      "Reason3, xxx]"),
     "Reports excluded", "Reports excluded (other)", "other_excluded.html"),
    ("new_studies", "node15", "box10", "New studies included in review", "New studies included in review",
     "New studies included in review", "new_studies.html"),
    ("new_reports", NA, "box10", "Reports of new included studies", "Reports of new included studies", NA, NA),
    ("total_studies", "node22", "box16", "Total studies included in review", "Total studies included in review",
     "Total studies included in review", "total_studies.html"),
    ("total_reports", NA, "box16", "Reports of total included studies", "Reports of total included studies",
     NA, NA),
    ("identification", "node1", "identification", "Blue identification box", "Identification",
     "Blue identification box", "identification.html"),
    ("screening", "node2", "screening", "Blue screening box", "Screening", "Blue screening box",
     "screening.html"),
    ("included", "node3", "included", "Blue included box", "Included", "Blue included box", "included.html"),
    ("total_studies_ma", "node23", "box17", "Total studies included in meta-analysis",
     "Total studies included in meta-analysis", "Total studies included in meta-analysis",
     "total_studies_meta_analysis.html"),
    ("total_reports_ma", NA, "box17", "Reports of total included studies in meta-analysis",
     "Reports of total included studies in meta-analysis", NA, NA),
)
# fmt: on


def prisma2020_values(counts: PrismaCounts) -> dict:
    """The ``n`` of each template row, by its ``data`` name (rows not named here get 0).

    "NA" where Sieve has nothing to report, which the package reads as "leave the box out": no
    previous version of the review, no other-methods column when no such source exists, and the
    meta-analysis box (Sieve does not record which studies a meta-analysis used). Counts of the
    other column by kind: other_method_kind() places each source.
    """
    other = counts.other
    values = {
        "previous_studies": NA,
        "previous_reports": NA,
        "database_results": sum(counts.databases_identified.values()),
        "database_specific_results": _reason_list(counts.databases_identified) or "0",
        "register_results": sum(counts.registers_identified.values()),
        "register_specific_results": _reason_list(counts.registers_identified) or "0",
        "duplicates": counts.duplicates_removed,
        "excluded_automatic": counts.records_excluded_automation,
        "excluded_other": counts.records_removed_other,
        "records_screened": counts.records_screened,
        "records_excluded": counts.records_excluded,
        "dbr_sought_reports": counts.reports_sought,
        "dbr_notretrieved_reports": counts.reports_not_retrieved,
        "dbr_assessed": counts.reports_assessed,
        "dbr_excluded": _reason_list(counts.reports_excluded) or "0",
        "new_studies": counts.studies_included,
        "new_reports": counts.studies_included,
        "total_studies": counts.studies_included,
        "total_reports": counts.studies_included,
        "total_studies_ma": NA,
        "total_reports_ma": NA,
    }
    if other is None:
        for key in ("website_results", "organisation_results", "citations_results"):
            values[key] = NA
        return values
    by_kind = {"websites": 0, "organisations": 0, "citations": 0}
    for source, k in other.identified.items():
        by_kind[other_method_kind(source)] += k
    values.update(
        website_results=by_kind["websites"],
        organisation_results=by_kind["organisations"],
        citations_results=by_kind["citations"],
        other_sought_reports=other.reports_sought,
        other_notretrieved_reports=other.reports_not_retrieved,
        other_assessed=other.reports_assessed,
        other_excluded=_reason_list(other.reports_excluded) or "0",
    )
    return values


def prisma2020_rows(counts: PrismaCounts):
    """Rows of the PRISMA2020 R package / Shiny app template, each (data, node, box, description,
    boxtext, tooltips, url, n). The CSV has no place for footnotes or the open-screening note: the
    diagram's own downloads carry them."""
    values = prisma2020_values(counts)
    return [(*row, values.get(row[0], 0)) for row in PRISMA2020_TEMPLATE]


def to_prisma2020_csv(counts: PrismaCounts) -> str:
    """The counts as the CSV that the PRISMA2020 R package and its Shiny app read."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PRISMA2020_COLUMNS)
    # Source names and exclusion reasons are typed by people; counts stay numbers.
    writer.writerows(safe_row(row) for row in prisma2020_rows(counts))
    return out.getvalue()
