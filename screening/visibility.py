"""Blinding: which screening votes a member of a review may see. The rule lives here and only here.

Screening is independent. Until a record is reconciled at a stage (its outcome there is neither
pending nor a conflict), a reviewer sees only their own votes on it at that stage: no other
reviewer's decision, reason or note, on any page, in any filter or export, and not even the fact
that the votes disagree. The owner and designated resolvers see every vote (they reconcile
them), and so does everyone at a stage once the owner has lifted its blinding.
"""

from django.db.models import Case, F, Q, Value, When

from review.models import Event, Record, Stage
from screening.models import Decision
from screening.stages import OUTCOME_FIELD, UNRECONCILED

Outcome = Record.Outcome
# Figures that count other reviewers' votes on unreconciled records (a disagreement changes them).
AGREEMENT_FIGURES = (
    "kappa",
    "kappa_method",
    "kappa_label",
    "kappa_records",
    "percent_agreement",
    "records_compared",
    "pairs",
)


def sees_all_votes(review, membership, stage):
    """True when ``membership`` may see every vote at ``stage``, reconciled or not."""
    return membership.resolves_conflicts or review.blinding_lifted(stage)


def blind_stages(review, membership):
    """The stages at which ``membership`` sees other reviewers' votes on reconciled records only."""
    return [stage for stage in Stage if not sees_all_votes(review, membership, stage)]


def sees_team_figures(review, membership, stage):
    """True when ``membership`` may see figures that tell a conflict from a record still waiting for
    a vote: agreement (kappa, percent agreement, per pair) and the open-conflict counts."""
    return sees_all_votes(review, membership, stage)


def shown_outcome_expression(stage, membership):
    """A database expression for the outcome at ``stage`` as ``membership`` may be told it (a
    conflict is pending to a blinded reviewer): sort and filter by this, never by the column."""
    field = OUTCOME_FIELD[Stage(stage)]
    if sees_all_votes(membership.review, membership, stage):
        return F(field)
    return Case(When(**{field: Outcome.CONFLICT}, then=Value(Outcome.PENDING)), default=F(field))


def shown_outcome_q(stage, membership, outcome):
    """A Q for the records whose outcome at ``stage``, as ``membership`` may be told it, is ``outcome``
    (the filter form of ``shown_outcome_expression``, on the indexed column)."""
    field = OUTCOME_FIELD[Stage(stage)]
    if sees_all_votes(membership.review, membership, stage):
        return Q(**{field: outcome})
    if outcome == Outcome.CONFLICT:
        return Q(pk__in=[])
    if outcome == Outcome.PENDING:
        return Q(**{f"{field}__in": UNRECONCILED})
    return Q(**{field: outcome})


def shown_stage_status(counts, membership, stage):
    """``counts`` (from screening.status.stage_status) as ``membership`` may see them.

    For a blinded member open conflicts count as pending (``conflicts_open`` is None), and the
    agreement figures are None: either would change the moment another reviewer disagreed with
    their vote.
    """
    if sees_team_figures(membership.review, membership, stage):
        return counts
    shown = {**counts, **dict.fromkeys(AGREEMENT_FIGURES)}
    shown["pending"] = counts["pending"] + counts["conflicts_open"]
    shown["conflicts_open"] = None
    return shown


def shown_open_work(counts, membership):
    """PRISMA's open work (a PrismaCounts) as ``membership`` may see it: for a blinded member the
    conflicts of a stage are counted with the records awaiting screening there."""
    shown = {
        "awaiting_screening": counts.awaiting_screening,
        "screening_conflicts": counts.screening_conflicts,
        "undecided_maybe": counts.undecided_maybe,
        "awaiting_full_text": counts.awaiting_full_text,
        "full_text_conflicts": counts.full_text_conflicts,
    }
    for awaiting, conflicts, stage in (
        ("awaiting_screening", "screening_conflicts", Stage.TITLE_ABSTRACT),
        ("awaiting_full_text", "full_text_conflicts", Stage.FULL_TEXT),
    ):
        if not sees_team_figures(membership.review, membership, stage):
            shown[awaiting] += shown.pop(conflicts)
    return shown


def is_reconciled(record, stage):
    return getattr(record, OUTCOME_FIELD[stage]) not in UNRECONCILED


def shown_outcome(record, stage, membership):
    """The outcome ``membership`` may be told: a conflict reads as pending to a blinded reviewer,
    because "they disagree" would give away the other vote."""
    outcome = Outcome(getattr(record, OUTCOME_FIELD[stage]))
    if outcome == Outcome.CONFLICT and not sees_all_votes(membership.review, membership, stage):
        return Outcome.PENDING
    return outcome


def _hidden(membership, *, stage_lookup, record_prefix, author):
    """A Q matching the votes ``membership`` may not see, or None when it sees them all."""
    stages = blind_stages(membership.review, membership)
    if not stages:
        return None
    unreconciled = Q()
    for stage in stages:
        unreconciled |= Q(**{stage_lookup: stage.value, f"{record_prefix}{OUTCOME_FIELD[stage]}__in": UNRECONCILED})
    return unreconciled & ~Q(**{author: membership.user_id})


def visible_decisions(decisions, membership):
    """``decisions`` (a Decision queryset, or a Record for all of its votes) that ``membership`` may see."""
    if isinstance(decisions, Record):
        decisions = Decision.objects.filter(record=decisions).select_related("reviewer").order_by("created_at", "pk")
    hidden = _hidden(membership, stage_lookup="stage", record_prefix="record__", author="reviewer")
    return decisions if hidden is None else decisions.exclude(hidden)


def visible_events(events, membership):
    """``events`` (an Event queryset, or a Record for its own events) that ``membership`` may see.

    A vote's event carries its decision, reason and note, so it is blinded like the vote; an
    assignment to another reviewer at a blinded stage is hidden like their hand-outs. Every other
    kind (resolutions, merges, tags, team notes, imports) is open to all members.
    """
    if isinstance(events, Record):
        events = Event.objects.filter(record=events).select_related("actor").order_by("created_at", "pk")
    hidden = _hidden(membership, stage_lookup="detail__stage", record_prefix="record__", author="actor")
    if hidden is None:
        return events
    # An assignment tells who is to vote on a record, like a hand-out (visible_handouts): at a
    # blinded stage a member sees only their own.
    blind = [stage.value for stage in blind_stages(membership.review, membership)]
    others_assignments = Q(kind=Event.Kind.ASSIGNMENT, detail__stage__in=blind) & ~Q(
        detail__reviewer_id=membership.user_id
    )
    # A decision event always has a record and a stage; the kind test keeps others out of the NULL logic.
    return events.exclude(Q(kind=Event.Kind.DECISION) & hidden).exclude(others_assignments)


def visible_handouts(handouts, membership):
    """``handouts`` (a HandOut queryset) that ``membership`` may see.

    Who was handed which record, and when, tells who is voting on it. At a stage where
    ``membership`` is blinded it sees its own hand-outs only; where it sees every vote (the owner,
    resolvers, a stage whose blinding was lifted) it sees everyone's.
    """
    stages = blind_stages(membership.review, membership)
    if not stages:
        return handouts
    return handouts.exclude(Q(stage__in=[stage.value for stage in stages]) & ~Q(reviewer=membership.user_id))
