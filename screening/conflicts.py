"""The conflicts queue: records whose reviewers disagree at a stage, and the ones already resolved.

Only the owner and designated resolvers read these (they see every vote); the views check that.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Exists, OuterRef, Q, Subquery

from review.models import Record, Stage
from screening import stages
from screening.models import Decision, Resolution
from screening.stages import OUTCOME_FIELD

Outcome = Record.Outcome


@dataclass
class ConflictRow:
    record: Record
    votes: list = field(default_factory=list)  # current Decisions at the stage, oldest first
    resolution: Resolution | None = None


def _current_resolutions(stage):
    return Resolution.objects.filter(record=OuterRef("pk"), stage=stage, is_current=True)


def open_conflicts(review, stage):
    """Records of ``review`` taking part in ``stage`` whose votes disagree and nobody resolved yet."""
    return stages.in_stage(review, stage).filter(**{OUTCOME_FIELD[stage]: Outcome.CONFLICT}).order_by("pk")


def resolved_conflicts(review, stage):
    """Records with a resolution at ``stage``, the latest resolved first."""
    latest = _current_resolutions(stage).values("created_at")[:1]
    return (
        stages.in_stage(review, stage)
        .filter(Exists(_current_resolutions(stage)))
        .annotate(resolved_at=Subquery(latest))
        .order_by("-resolved_at", "-pk")
    )


def open_counts(review):
    """{stage: number of open conflicts} for both stages, in one query."""
    counts = Record.objects.for_review(review).aggregate(
        **{
            stage.value: Count(
                "pk", filter=stages.in_stage_q(review, stage) & Q(**{OUTCOME_FIELD[stage]: Outcome.CONFLICT})
            )
            for stage in Stage
        }
    )
    return {Stage(stage): n for stage, n in counts.items()}


def rows(records, stage):
    """A ConflictRow per record (in the order given) with its current votes and resolution: two queries."""
    records = list(records)
    ids = [r.pk for r in records]
    votes = defaultdict(list)
    for vote in (
        Decision.objects.filter(record_id__in=ids, stage=stage, is_current=True)
        .select_related("reviewer")
        .order_by("created_at", "pk")
    ):
        votes[vote.record_id].append(vote)
    resolutions = {
        r.record_id: r
        for r in Resolution.objects.filter(record_id__in=ids, stage=stage, is_current=True).select_related(
            "resolved_by"
        )
    }
    return [ConflictRow(record=r, votes=votes[r.pk], resolution=resolutions.get(r.pk)) for r in records]
