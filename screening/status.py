"""A review's screening status in numbers: counts, conflicts and agreement per stage."""

from collections import defaultdict

from django.db.models import Count, Q

from review.models import Record, Stage
from screening import stages
from screening.agreement import agreement
from screening.models import Decision, Resolution
from screening.stages import OUTCOME_FIELD

Outcome = Record.Outcome


def team_counts(stage):
    """The aggregates behind every "N of M records decided" at ``stage``, over the stage's records
    (``stages.in_stage``): ``total`` taking part, ``decided`` reconciled (neither pending nor an
    open conflict: a record one reviewer of two has voted on is not decided yet). The dashboard,
    the screening page and the stopping panel all count with these, so their figures agree.
    """
    return {"total": Count("pk"), "decided": Count("pk", filter=stages.decided_q(stage))}


def stage_votes(review, stage):
    """{record_id: {reviewer username: category}} from current votes on the stage's records."""
    qs = Decision.objects.filter(
        stages.in_stage_q(review, stage, prefix="record__"), record__review=review, stage=stage, is_current=True
    )
    votes = defaultdict(dict)
    for record_id, username, decision in qs.values_list("record_id", "reviewer__username", "decision").iterator():
        votes[record_id][username] = stages.counts_as(decision, maybe_counts_as_include=review.maybe_counts_as_include)
    return votes


def stage_status(review, stage):
    field = OUTCOME_FIELD[stage]
    records = stages.in_stage(review, stage)
    # At title/abstract "included" means sent on to full text (a maybe too, where maybe counts as
    # include); "maybe" counts only the maybes that wait for a decision.
    if stage == Stage.TITLE_ABSTRACT:
        included = stages.passes_title_abstract_q(review)
    else:
        included = Q(**{field: Outcome.INCLUDE})
    counts = records.aggregate(
        **team_counts(stage),
        pending=Count("pk", filter=Q(**{field: Outcome.PENDING})),
        included=Count("pk", filter=included),
        excluded=Count("pk", filter=Q(**{field: Outcome.EXCLUDE})),
        maybe=Count("pk", filter=Q(**{field: Outcome.MAYBE}) & ~included),
        not_retrieved=Count("pk", filter=Q(**{field: Outcome.NOT_RETRIEVED})),
        conflicts_open=Count("pk", filter=Q(**{field: Outcome.CONFLICT})),
    )
    counts["eligible"], counts["screened"] = counts.pop("total"), counts.pop("decided")
    counts["conflicts_resolved"] = Resolution.objects.filter(record__in=records, stage=stage, is_current=True).count()
    counts.update(agreement(stage_votes(review, stage)))
    if stage == Stage.TITLE_ABSTRACT:
        counts.pop("not_retrieved")
    return counts


def review_status(review):
    totals = Record.objects.for_review(review).aggregate(
        records=Count("pk"), duplicates=Count("pk", filter=Q(duplicate_of__isnull=False))
    )
    return {
        "review": review.slug,
        "records": totals["records"],
        "duplicates": totals["duplicates"],
        "unique": totals["records"] - totals["duplicates"],
        Stage.TITLE_ABSTRACT.value: stage_status(review, Stage.TITLE_ABSTRACT),
        Stage.FULL_TEXT.value: stage_status(review, Stage.FULL_TEXT),
    }
