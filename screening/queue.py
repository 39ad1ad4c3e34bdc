"""Who screens what next.

Every view that needs "the next record for this reviewer" comes here, so that ranking
(prioritised screening) and row locking for dual screening can be added in one place.
"""

from django.db.models import Case, Count, Exists, IntegerField, Max, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce

from review.models import Record, Stage
from screening.models import Decision


def eligible(review, stage):
    """Records that take part in ``stage``: unique records, and at full text only TA includes."""
    records = Record.objects.for_review(review).unique()
    if stage == Stage.FULL_TEXT:
        records = records.filter(ta_outcome=Record.Outcome.INCLUDE)
    return records


def _current_votes(stage):
    return Decision.objects.filter(record=OuterRef("pk"), stage=stage, is_current=True)


def _vote_count(stage):
    counted = _current_votes(stage).order_by().values("record").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def _still_open(stage, needed):
    """A Q for records that have fewer than ``needed`` current votes."""
    if needed <= 1:
        # The common case (single screening) needs no per-row count.
        return ~Exists(_current_votes(stage))
    return Q(votes__lt=needed)


def _order(records):
    # The one place that decides screening order; a ranking module will replace this.
    return records.order_by("pk")


def pending(review, user, stage):
    """Records that still need ``user``'s vote at ``stage``, in screening order."""
    needed = review.reviewers_needed(stage)
    records = eligible(review, stage).exclude(Exists(_current_votes(stage).filter(reviewer=user)))
    if needed > 1:
        records = records.annotate(votes=_vote_count(stage))
    return _order(records.filter(_still_open(stage, needed)))


def next_record(review, user, stage):
    """The next record ``user`` should screen at ``stage``, or None when nothing is left."""
    return pending(review, user, stage).first()


def progress(review, user, stage):
    """Counts for the progress bar, in two aggregate queries.

    mine_done: records at this stage with a current vote by ``user``; mine_total: that plus the
    records still waiting for their vote; team_done: records with all the votes they need;
    total: records taking part in the stage.
    """
    needed = max(review.reviewers_needed(stage), 1)
    total = eligible(review, stage).count()
    # Driven from the votes (far fewer rows than records early on), grouped per record.
    record_filter = {"record__review": review, "record__duplicate_of__isnull": True}
    if stage == Stage.FULL_TEXT:
        record_filter["record__ta_outcome"] = Record.Outcome.INCLUDE
    per_record = (
        Decision.objects.filter(stage=stage, is_current=True, **record_filter)
        .values("record")
        .annotate(votes=Count("pk"), mine=Max(Case(When(reviewer=user, then=1), default=0)))
    )
    counts = per_record.aggregate(
        mine_done=Count("record", filter=Q(mine=1)),
        team_done=Count("record", filter=Q(votes__gte=needed)),
        full_without_me=Count("record", filter=Q(votes__gte=needed, mine=0)),
    )
    counts = {key: value or 0 for key, value in counts.items()}
    counts["total"] = total
    counts["mine_left"] = total - counts["mine_done"] - counts["full_without_me"]
    mine_total = counts["mine_done"] + counts["mine_left"]
    return {
        "mine_done": counts["mine_done"],
        "mine_total": mine_total,
        "team_done": counts["team_done"],
        "total": counts["total"],
        "mine_left": counts["mine_left"],
        "team_left": counts["total"] - counts["team_done"],
        "percent": round(100 * counts["mine_done"] / mine_total) if mine_total else 100,
        "team_percent": round(100 * counts["team_done"] / counts["total"]) if counts["total"] else 100,
    }


def my_decisions(review, user, stage):
    """``user``'s current votes at ``stage``, newest first (for going back and changing one)."""
    return (
        Decision.objects.filter(record__review=review, reviewer=user, stage=stage, is_current=True)
        .select_related("record")
        .order_by("-created_at", "-pk")
    )


def previous_decision(review, user, stage, *, before=None):
    """``user``'s current vote made just before ``before`` (a Decision), or their latest one."""
    decisions = my_decisions(review, user, stage)
    if before is not None:
        decisions = decisions.filter(
            Q(created_at__lt=before.created_at) | Q(created_at=before.created_at, pk__lt=before.pk)
        )
    return decisions.first()
