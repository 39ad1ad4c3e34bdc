"""PRISMA 2020 flow-diagram counts, read from the records' reconciled outcomes.

Only final (reconciled) outcomes count: a record whose reviewers disagree and nobody resolved it
yet is a conflict, and stays out of every box until it is resolved. Duplicates are counted once,
in "Duplicate records removed", and never again further down.

A stage closed on the stopping rule (screening/closing.py): at title/abstract the records it left
unscreened are "Records marked as ineligible by automation tools", removed before screening (so
"Records screened" does not count them); at full text they are counted as assessed and excluded
under closing.FULL_TEXT_REASON. Either way a footnote names the method, target and confidence.
"""

import csv
import io
from dataclasses import dataclass, field

from django.db.models import Count, Min, Q

from review.models import Record, Stage
from review.spreadsheet import safe_row
from screening import closing, stages

OUTCOME = Record.Outcome

# The nine figures the flow diagram reports, in the order it reports them (also the JSON keys).
JSON_KEYS = (
    "records_identified",
    "duplicates_removed",
    "records_excluded_automation",
    "records_screened",
    "records_excluded",
    "reports_sought",
    "reports_not_retrieved",
    "reports_assessed",
    "reports_excluded",
    "studies_included",
    "footnotes",
)

NO_REASON = "Reason not recorded"


@dataclass
class PrismaCounts:
    records_identified: dict[str, int] = field(default_factory=dict)
    duplicates_removed: int = 0
    # Left unscreened when title/abstract screening was closed on the stopping rule.
    records_excluded_automation: int = 0
    records_screened: int = 0
    records_excluded: int = 0
    reports_sought: int = 0
    reports_not_retrieved: int = 0
    reports_assessed: int = 0
    reports_excluded: dict[str, int] = field(default_factory=dict)
    studies_included: int = 0
    # Of reports_assessed and reports_excluded: left unassessed when full-text screening was closed
    # on the stopping rule (reason closing.FULL_TEXT_REASON).
    reports_closed_by_rule: int = 0
    # What the diagram's readers must be told beside it (a closure on the stopping rule).
    footnotes: list[str] = field(default_factory=list)
    # Work still open, for the page beside the diagram; none of it appears in the diagram.
    awaiting_screening: int = 0
    screening_conflicts: int = 0
    undecided_maybe: int = 0
    awaiting_full_text: int = 0
    full_text_conflicts: int = 0

    @property
    def total_identified(self):
        return sum(self.records_identified.values())

    @property
    def total_reports_excluded(self):
        return sum(self.reports_excluded.values())

    @property
    def is_complete(self):
        """True when no record is waiting for a decision or a resolution at either stage."""
        return not (
            self.awaiting_screening
            or self.screening_conflicts
            or self.undecided_maybe
            or self.awaiting_full_text
            or self.full_text_conflicts
        )


def sought_records(review):
    """Unique records sent on to full-text retrieval (the 'Reports sought' box): those taking part
    in full-text screening, by the one rule in screening.stages."""
    return stages.in_stage(review, Stage.FULL_TEXT)


def included_records(review):
    """Unique records included after full-text screening (the 'Studies included' box)."""
    return sought_records(review).filter(ft_outcome=OUTCOME.INCLUDE)


def compute(review) -> PrismaCounts:
    """Count every box of the PRISMA 2020 diagram for ``review`` in three aggregate queries."""
    records = Record.objects.for_review(review)
    identified = {
        row["source"] or "Unnamed source": row["n"]
        for row in records.values("source").annotate(n=Count("pk"), first=Min("pk")).order_by("first")
    }
    sought = stages.passes_title_abstract_q(review)
    # With maybe_counts_as_include off, a final 'maybe' is neither excluded nor sent on: it waits
    # for someone to decide, so it is not counted as screened either (the boxes must add up).
    decided = Q(ta_outcome=OUTCOME.EXCLUDE) | sought
    # Records an open closure left unscreened: out of the stage, counted in their own boxes.
    ta_closed = Q(pk__in=stages.closed_records(review, Stage.TITLE_ABSTRACT))
    ft_closed = Q(pk__in=stages.closed_records(review, Stage.FULL_TEXT))
    totals = records.aggregate(
        duplicates=Count("pk", filter=Q(duplicate_of__isnull=False)),
        screened=Count("pk", filter=Q(duplicate_of__isnull=True) & decided),
        excluded=Count("pk", filter=Q(duplicate_of__isnull=True, ta_outcome=OUTCOME.EXCLUDE)),
        ta_closed=Count("pk", filter=Q(duplicate_of__isnull=True) & ta_closed),
        awaiting=Count("pk", filter=Q(duplicate_of__isnull=True, ta_outcome=OUTCOME.PENDING) & ~ta_closed),
        ta_conflicts=Count("pk", filter=Q(duplicate_of__isnull=True, ta_outcome=OUTCOME.CONFLICT)),
        maybe=Count("pk", filter=Q(duplicate_of__isnull=True, ta_outcome=OUTCOME.MAYBE) & ~sought),
        sought=Count("pk", filter=Q(duplicate_of__isnull=True) & sought),
        not_retrieved=Count("pk", filter=Q(duplicate_of__isnull=True, ft_outcome=OUTCOME.NOT_RETRIEVED) & sought),
        assessed=Count(
            "pk",
            filter=Q(duplicate_of__isnull=True, ft_outcome__in=[OUTCOME.INCLUDE, OUTCOME.EXCLUDE]) & sought,
        ),
        ft_closed=Count("pk", filter=Q(duplicate_of__isnull=True) & sought & ft_closed),
        included=Count("pk", filter=Q(duplicate_of__isnull=True, ft_outcome=OUTCOME.INCLUDE) & sought),
        ft_awaiting=Count("pk", filter=Q(duplicate_of__isnull=True, ft_outcome=OUTCOME.PENDING) & sought & ~ft_closed),
        ft_conflicts=Count("pk", filter=Q(duplicate_of__isnull=True, ft_outcome=OUTCOME.CONFLICT) & sought),
    )
    reasons = {}
    for row in (
        sought_records(review)
        .filter(ft_outcome=OUTCOME.EXCLUDE)
        .values("ft_reason")
        .annotate(n=Count("pk"))
        .order_by("-n", "ft_reason")
    ):
        reason = row["ft_reason"].strip() or NO_REASON
        reasons[reason] = reasons.get(reason, 0) + row["n"]
    if totals["ft_closed"]:
        reasons[closing.FULL_TEXT_REASON] = reasons.get(closing.FULL_TEXT_REASON, 0) + totals["ft_closed"]
    marked = {Stage.TITLE_ABSTRACT: totals["ta_closed"], Stage.FULL_TEXT: totals["ft_closed"]}
    # One more query only where a closure on the stopping rule left records in the diagram.
    closures = closing.open_closures(review) if any(marked.values()) else {}
    return PrismaCounts(
        records_identified=identified,
        duplicates_removed=totals["duplicates"],
        records_excluded_automation=totals["ta_closed"],
        records_screened=totals["screened"],
        records_excluded=totals["excluded"],
        reports_sought=totals["sought"],
        reports_not_retrieved=totals["not_retrieved"],
        reports_assessed=totals["assessed"] + totals["ft_closed"],
        reports_excluded=reasons,
        studies_included=totals["included"],
        reports_closed_by_rule=totals["ft_closed"],
        footnotes=[closing.prisma_footnote(closures[s], marked[s]) for s in Stage if s in closures and marked[s]],
        awaiting_screening=totals["awaiting"],
        screening_conflicts=totals["ta_conflicts"],
        undecided_maybe=totals["maybe"],
        awaiting_full_text=totals["ft_awaiting"],
        full_text_conflicts=totals["ft_conflicts"],
    )


def to_json(counts: PrismaCounts) -> dict:
    """The diagram's figures as a JSON-ready dict with exactly the keys in ``JSON_KEYS``."""
    data = {key: getattr(counts, key) for key in JSON_KEYS}
    data["records_identified"] = dict(counts.records_identified)
    data["reports_excluded"] = dict(counts.reports_excluded)
    data["footnotes"] = list(counts.footnotes)
    return data


def _list_item(name):
    # The R package splits the list on "; " and each item on its last ",": keep both out of names.
    return " ".join(name.replace(";", " ").replace(",", " ").split())


def _reason_list(items):
    return "; ".join(f"{_list_item(name)}, {n}" for name, n in items.items())


def prisma2020_rows(counts: PrismaCounts):
    """Rows of the PRISMA2020 R package / Shiny app template (inst/extdata/PRISMA.csv).

    Each row is (data, node, box, description, boxtext, tooltips, url, n). The package finds rows
    by their ``data`` value; rows for boxes with no figure (title and side boxes) have data "NA".
    Boxes this tool does not track (previous studies, other methods) get n = 0. The CSV has no
    place for footnotes: the diagram's own downloads carry them.
    """
    dbr_excluded = _reason_list(counts.reports_excluded) or "0"
    databases = _reason_list(counts.records_identified) or "0"
    na = "NA"
    # fmt: off
    return [
        # data, node, box, description, boxtext, tooltips, url, n
        (na, "node4", "prevstud", "Grey title box; Previous studies", "Previous studies",
         "Grey title box; Previous studies", "prevstud.html", 0),
        ("previous_studies", "node5", "box1", "Studies included in previous version of review",
         "Studies included in previous version of review", "Studies included in previous version of review",
         "previous_studies.html", 0),
        ("previous_reports", na, "box1", "Reports of studies included in previous version of review",
         "Reports of studies included in previous version of review", na, "previous_reports.html", 0),
        (na, "node6", "newstud", "Yellow title box; Identification of new studies via databases and registers",
         "Identification of new studies via databases and registers",
         "Yellow title box; Identification of new studies via databases and registers", "newstud.html", 0),
        ("database_results", "node7", "box2", "Records identified from: Databases", "Databases",
         "Records identified from: Databases and Registers", "database_results.html", counts.total_identified),
        ("database_specific_results", na, "box2", "Records identified from: specific databases",
         "Specific Databases", na, "database_results.html", databases),
        ("register_results", na, "box2", "Records identified from: Registers", "Registers", na, na, 0),
        ("register_specific_results", na, "box2", "Records identified from: specific registers",
         "Specific Registers", na, "database_results.html", "0"),
        (na, "node16", "othstud", "Grey title box; Identification of new studies via other methods",
         "Identification of new studies via other methods",
         "Grey title box; Identification of new studies via other methods", "othstud.html", 0),
        ("website_results", "node17", "box11", "Records identified from: Websites", "Websites",
         "Records identified from: Websites, Organisations and Citation Searching", "website_results.html", 0),
        ("organisation_results", na, "box11", "Records identified from: Organisations", "Organisations", na, na, 0),
        ("citations_results", na, "box11", "Records identified from: Citation searching", "Citation searching",
         na, na, 0),
        ("duplicates", "node8", "box3", "Duplicate records", "Duplicate records", "Duplicate records",
         "duplicates.html", counts.duplicates_removed),
        ("excluded_automatic", na, "box3", "Records marked as ineligible by automation tools",
         "Records marked as ineligible by automation tools", na, na, counts.records_excluded_automation),
        ("excluded_other", na, "box3", "Records removed for other reasons", "Records removed for other reasons",
         na, na, 0),
        ("records_screened", "node9", "box4", "Records screened (databases and registers)", "Records screened",
         "Records screened (databases and registers)", "records_screened.html", counts.records_screened),
        ("records_excluded", "node10", "box5", "Records excluded (databases and registers)", "Records excluded",
         "Records excluded (databases and registers)", "records_excluded.html", counts.records_excluded),
        ("dbr_sought_reports", "node11", "box6", "Reports sought for retrieval (databases and registers)",
         "Reports sought for retrieval", "Reports sought for retrieval (databases and registers)",
         "dbr_sought_reports.html", counts.reports_sought),
        ("dbr_notretrieved_reports", "node12", "box7", "Reports not retrieved (databases and registers)",
         "Reports not retrieved", "Reports not retrieved (databases and registers)",
         "dbr_notretrieved_reports.html", counts.reports_not_retrieved),
        ("other_sought_reports", "node18", "box12", "Reports sought for retrieval (other)",
         "Reports sought for retrieval", "Reports sought for retrieval (other)", "other_sought_reports.html", 0),
        ("other_notretrieved_reports", "node19", "box13", "Reports not retrieved (other)", "Reports not retrieved",
         "Reports not retrieved (other)", "other_notretrieved_reports.html", 0),
        ("dbr_assessed", "node13", "box8", "Reports assessed for eligibility (databases and registers)",
         "Reports assessed for eligibility", "Reports assessed for eligibility (databases and registers)",
         "dbr_assessed.html", counts.reports_assessed),
        ("dbr_excluded", "node14", "box9",
         ("Reports excluded (databases and registers): [separate reasons and numbers using ; e.g. "
          "Reason1, xxx; Reason2, xxx; Reason3, xxx]"),
         "Reports excluded", "Reports excluded (databases and registers)", "dbrexcludedrecords.html", dbr_excluded),
        ("other_assessed", "node20", "box14", "Reports assessed for eligibility (other)",
         "Reports assessed for eligibility", "Reports assessed for eligibility (other)", "other_assessed.html", 0),
        ("other_excluded", "node21", "box15",
         ("Reports excluded (other): [separate reasons and numbers using ; e.g. Reason1, xxx; Reason2, xxx; "
          "Reason3, xxx]"),
         "Reports excluded", "Reports excluded (other)", "other_excluded.html", "0"),
        ("new_studies", "node15", "box10", "New studies included in review", "New studies included in review",
         "New studies included in review", "new_studies.html", counts.studies_included),
        ("new_reports", na, "box10", "Reports of new included studies", "Reports of new included studies", na, na,
         counts.studies_included),
        ("total_studies", "node22", "box16", "Total studies included in review", "Total studies included in review",
         "Total studies included in review", "total_studies.html", counts.studies_included),
        ("total_reports", na, "box16", "Reports of total included studies", "Reports of total included studies",
         na, na, counts.studies_included),
        ("identification", "node1", "identification", "Blue identification box", "Identification",
         "Blue identification box", "identification.html", 0),
        ("screening", "node2", "screening", "Blue screening box", "Screening", "Blue screening box",
         "screening.html", 0),
        ("included", "node3", "included", "Blue included box", "Included", "Blue included box", "included.html", 0),
    ]
    # fmt: on


PRISMA2020_COLUMNS = ("data", "node", "box", "description", "boxtext", "tooltips", "url", "n")


def to_prisma2020_csv(counts: PrismaCounts) -> str:
    """The counts as the CSV that the PRISMA2020 R package and its Shiny app read."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PRISMA2020_COLUMNS)
    # Source names and exclusion reasons are typed by people; counts stay numbers.
    writer.writerows(safe_row(row) for row in prisma2020_rows(counts))
    return out.getvalue()
