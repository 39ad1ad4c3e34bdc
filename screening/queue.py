"""Who screens what next.

Every view that needs "the next record for this reviewer" comes here, so that ranking
(prioritised screening) and row locking for dual screening can be added in one place.
"""

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Value
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
    """Counts for the progress bar, in one aggregate query.

    mine_done: records at this stage with a current vote by ``user``; mine_total: that plus the
    records still waiting for their vote; team_done: records with all the votes they need;
    total: records taking part in the stage.
    """
    needed = max(review.reviewers_needed(stage), 1)
    mine = Exists(_current_votes(stage).filter(reviewer=user))
    if needed == 1:
        # Single screening: "has a vote" is all we need, and EXISTS is cheaper than a count.
        records = eligible(review, stage).annotate(mine=mine, done=Exists(_current_votes(stage)))
        done = Q(done=True)
    else:
        records = eligible(review, stage).annotate(mine=mine, votes=_vote_count(stage))
        done = Q(votes__gte=needed)
    counts = records.aggregate(
        total=Count("pk"),
        mine_done=Count("pk", filter=Q(mine=True)),
        mine_left=Count("pk", filter=Q(mine=False) & ~done),
        team_done=Count("pk", filter=done),
    )
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
