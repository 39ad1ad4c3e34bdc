"""Lifting blinding: the owner lets every member see all votes at a finished stage.

What a blinded member sees is screening/visibility.py; blinding comes back by itself when the
stage opens again (``Review.reblind``).
"""

from django.db import transaction
from django.db.models import Count, Q

from review.models import Event, Record, Review, Stage
from screening import stages
from screening.stages import OUTCOME_FIELD


def stage_blockers(review, stage):
    """Why ``stage`` is not done yet (pending records, open conflicts), as a message; '' when done."""
    field = OUTCOME_FIELD[stage]
    counts = stages.in_stage(review, stage).aggregate(
        eligible=Count("pk"),
        pending=Count("pk", filter=Q(**{field: Record.Outcome.PENDING})),
        conflicts_open=Count("pk", filter=Q(**{field: Record.Outcome.CONFLICT})),
    )
    if not counts["eligible"]:
        return f"No record has reached {Stage(stage).label.lower()} screening yet."
    left = []
    if counts["pending"]:
        left.append(f"{counts['pending']} record{'s' if counts['pending'] != 1 else ''} still pending")
    if counts["conflicts_open"]:
        n = counts["conflicts_open"]
        left.append(f"{n} open conflict{'s' if n != 1 else ''}")
    return " and ".join(left)


def lift_blinding(review, *, stage, by) -> Review:
    """Let every member see all votes at ``stage``: only once the stage is done (nothing pending,
    no open conflict). Raises ValueError saying what is left otherwise."""
    stage = Stage(stage)
    field = Review.blinding_field(stage)
    with transaction.atomic():
        Review.objects.select_for_update().filter(pk=review.pk).values("pk").get()
        review.refresh_from_db()
        if getattr(review, field):
            return review
        blockers = stage_blockers(review, stage)
        if blockers:
            raise ValueError(f"{stage.label} screening is not done: {blockers}. Blinding stays until it is.")
        setattr(review, field, True)
        review.save(update_fields=[field])
        Event.objects.create(review=review, actor=by, kind=Event.Kind.BLINDING, detail={"stage": stage.value})
    return review
