"""Recording screening decisions and keeping each record's reconciled outcome up to date.

Views, management commands and background jobs all call these functions. Decisions are
append-only: a changed vote adds a row and marks the old one superseded.
"""

from collections import defaultdict

from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from review.models import Event, Record, Review, Stage
from screening import stages
from screening.models import Choice, Claim, Decision, Resolution
from screening.stages import OUTCOME_FIELD

STAGE_CHOICES = {
    Stage.TITLE_ABSTRACT: {Choice.INCLUDE, Choice.EXCLUDE, Choice.MAYBE},
    Stage.FULL_TEXT: {Choice.INCLUDE, Choice.EXCLUDE, Choice.NOT_RETRIEVED},
}


class DecisionError(ValueError):
    """A decision that cannot be recorded; the message says why."""


def validate(*, record, stage, decision, reason):
    if stage not in OUTCOME_FIELD:
        raise DecisionError(f"Unknown stage {stage!r}: use title_abstract or full_text.")
    if decision not in STAGE_CHOICES[stage]:
        allowed = ", ".join(sorted(STAGE_CHOICES[stage]))
        raise DecisionError(f"{decision!r} is not a {Stage(stage).label} decision (use {allowed}).")
    if stages.needs_reason(stage, decision) and not (reason or "").strip():
        raise DecisionError("A full-text exclusion needs a reason.")
    if record.duplicate_of_id:
        raise DecisionError(
            f"Record {record.pk} is a duplicate of record {record.duplicate_of_id}; screen the original."
        )


class RecordFull(DecisionError):
    """The record already has every vote its stage needs, and none of them is this reviewer's."""


class NotInConflict(DecisionError):
    """A resolution meant for an open conflict, on a record that is no longer one."""


def lock_records(record_ids):
    """Lock the records' rows, in pk order so that two transactions never wait on each other.

    Everything that reads a record's votes and then writes them, or its outcome, holds this
    lock: under READ COMMITTED two such transactions would otherwise each miss the other's
    write. (SQLite has no row locks: there BEGIN IMMEDIATE takes the database's write lock.)
    """
    return list(
        Record.objects.filter(pk__in=record_ids).order_by("pk").select_for_update().values_list("pk", flat=True)
    )


def record_decision(*, record, reviewer, stage, decision, reason="", note="", at=None, check_stage=True, review=None):
    """Store ``reviewer``'s vote, superseding their previous one, and refresh the outcome.

    Raises RecordFull when others have already cast every vote the record needs. The same vote
    sent twice (a double click, two tabs) is stored once: the second call returns the first.
    ``review``: the record's review, when the caller has read it already.
    """
    validate(record=record, stage=stage, decision=decision, reason=reason)
    reason, note = (reason or "").strip(), (note or "").strip()
    if review is None or review.pk != record.review_id:
        review = Review.objects.get(pk=record.review_id)
    with transaction.atomic():
        # Read the votes only under the record's lock: the check below and the insert are one step.
        try:
            locked = (
                Record.objects.select_for_update()
                .only("pk", "review_id", "ta_outcome", "ft_outcome", "ft_reason")
                .get(pk=record.pk)
            )
        except Record.DoesNotExist:
            # Its import was undone between the page showing it and the vote.
            raise DecisionError("This record is no longer in the review: its import was undone.") from None
        # Read after the lock, in a statement of its own: under READ COMMITTED a subquery of the
        # locking statement would see the database as it was before the wait (a closure of the
        # stage, a resolution committed meanwhile), not as it is once the lock is held.
        resolution = Resolution.objects.filter(record=OuterRef("pk"), stage=stage, is_current=True)
        taking_part, resolved, resolved_reason = (
            Record.objects.filter(pk=record.pk)
            .annotate(
                taking_part=Exists(stages.in_stage(review, stage).filter(pk=OuterRef("pk"))),
                resolved=Subquery(resolution.values("decision")[:1]),
                resolved_reason=Subquery(resolution.values("reason")[:1]),
            )
            .values_list("taking_part", "resolved", "resolved_reason")
            .get()
        )
        if check_stage and not taking_part:
            raise DecisionError(stages.not_in_stage_message(review, stage, {record.pk}))
        history = list(
            Decision.objects.filter(record=record, stage=stage)
            .order_by("created_at", "pk")
            .values_list("pk", "reviewer_id", "decision", "reason", "is_current", "note", "created_at")
        )
        votes = [vote for vote in history if vote[4]]
        mine = next((vote for vote in votes if vote[1] == reviewer.pk), None)
        if mine is None and len(votes) >= review.reviewers_needed(stage):
            raise RecordFull(f"Record #{record.pk} already has all the votes it needs at this stage.")
        # The vote is in: the record no longer needs to be held for this reviewer.
        Claim.objects.filter(record=record, reviewer=reviewer, stage=stage).delete()
        if mine is not None and (mine[2], mine[3], mine[5]) == (decision, reason, note):
            return Decision.objects.get(pk=mine[0])
        if mine is not None:
            Decision.objects.filter(pk=mine[0]).update(is_current=False)
        made = Decision.objects.create(
            record=record,
            reviewer=reviewer,
            stage=stage,
            decision=decision,
            reason=reason,
            note=note,
            created_at=at or timezone.now(),
        )
        Event.objects.create(
            review_id=record.review_id,
            record=record,
            actor=reviewer,
            kind=Event.Kind.DECISION,
            detail={"stage": stage, "decision": decision, "reason": made.reason, "note": made.note},
        )
        # The outcome from the history just read and this vote (what refresh_outcomes would read
        # again), under the lock already held.
        superseded = mine and mine[0]
        history.append((made.pk, reviewer.pk, decision, reason, True, note, made.created_at))
        # In the order settled_outcomes reads them: by time of the vote (a back-dated one too).
        history = [
            (pk, who, choice, why, current and pk != superseded)
            for pk, who, choice, why, current, _, _ in sorted(history, key=lambda vote: (vote[6], vote[0]))
        ]
        resolution = (resolved, resolved_reason) if resolved else None
        rules = {"needed": review.reviewers_needed(stage), "maybe_counts_as_include": review.maybe_counts_as_include}
        _write_outcomes(review, stage, [locked], {locked.pk: settled_outcome(history, resolution=resolution, **rules)})
    return made


def record_decisions(review, stage, decisions, *, extra_detail=None):
    """Store many votes at once (imports, the demo): what record_decision writes, in bulk.

    ``decisions`` are unsaved Decision objects for ``stage``; each reviewer's earlier current
    vote on the record is superseded, as is an earlier one in the same list. One audit event
    per vote, then one outcome refresh per 500 records.
    """
    if not decisions:
        return decisions
    ids = sorted({d.record_id for d in decisions})
    last = {(d.record_id, d.reviewer_id): i for i, d in enumerate(decisions)}
    for i, d in enumerate(decisions):
        d.stage = stage
        d.is_current = last[(d.record_id, d.reviewer_id)] == i
    with transaction.atomic():
        lock_records(ids)
        if outside := stages.check_in_stage(review, stage, ids):
            raise DecisionError(stages.not_in_stage_message(review, stage, outside))
        # Counted under the records' locks, like record_decision's check: a vote cast on screen a
        # moment ago is seen here, and one cast after waits and sees these.
        if over := _over_voted(review, stage, decisions):
            raise RecordFull(_over_voted_message(review, stage, over))
        Decision.objects.filter(
            record_id__in=ids, reviewer_id__in={d.reviewer_id for d in decisions}, stage=stage, is_current=True
        ).update(is_current=False)
        Decision.objects.bulk_create(decisions, batch_size=500)
        Event.objects.bulk_create(
            [
                Event(
                    review=review,
                    record_id=d.record_id,
                    actor_id=d.reviewer_id,
                    kind=Event.Kind.DECISION,
                    created_at=d.created_at,
                    detail={
                        "stage": stage,
                        "decision": d.decision,
                        "reason": d.reason,
                        "note": d.note,
                        **(extra_detail or {}),
                    },
                )
                for d in decisions
            ],
            batch_size=500,
        )
        for start in range(0, len(ids), 500):
            refresh_outcomes(review, ids[start : start + 500], stage)
    return decisions


def _over_voted(review, stage, decisions):
    """{record id: votes it would have} for the records that ``decisions`` would take past the
    number of votes the stage needs (a reviewer's new vote replaces their current one)."""
    needed = review.reviewers_needed(stage)
    voters = defaultdict(set)
    for record_id, reviewer_id in Decision.objects.filter(
        record_id__in={d.record_id for d in decisions}, stage=stage, is_current=True
    ).values_list("record_id", "reviewer_id"):
        voters[record_id].add(reviewer_id)
    for d in decisions:
        voters[d.record_id].add(d.reviewer_id)
    return {pk: len(who) for pk, who in sorted(voters.items()) if len(who) > needed}


def _over_voted_message(review, stage, over):
    needed = review.reviewers_needed(stage)
    shown = ", ".join(f"#{pk} ({n} votes)" for pk, n in list(over.items())[:20])
    more = f" and {len(over) - 20} more" if len(over) > 20 else ""
    return (
        f"{Stage(stage).label} screening takes {needed} vote{'s' if needed != 1 else ''} per record; "
        f"with these votes {len(over)} record{'s' if len(over) != 1 else ''} would have more: {shown}{more}. "
        "Nothing was stored. Raise the number of reviewers per record first, or leave those votes out."
    )


def resolve(*, record, stage, decision, user, reason="", note="", only_if_conflict=False):
    """The owner's (or third reviewer's) final decision on a record at a stage.

    With ``only_if_conflict`` (resolving from the open conflicts), raises NotInConflict when the
    record is no longer an open conflict: another resolver got there first, or the votes changed.
    """
    validate(record=record, stage=stage, decision=decision, reason=reason)
    with transaction.atomic():
        locked = Record.objects.select_for_update().only("pk", OUTCOME_FIELD[stage]).get(pk=record.pk)
        if only_if_conflict and getattr(locked, OUTCOME_FIELD[stage]) != Record.Outcome.CONFLICT:
            raise NotInConflict(f"Record #{record.pk} is no longer an open conflict; see the resolved tab.")
        Resolution.objects.filter(record=record, stage=stage, is_current=True).update(is_current=False)
        made = Resolution.objects.create(
            record=record,
            stage=stage,
            decision=decision,
            reason=(reason or "").strip(),
            note=(note or "").strip(),
            resolved_by=user,
        )
        Event.objects.create(
            review_id=record.review_id,
            record=record,
            actor=user,
            kind=Event.Kind.RESOLUTION,
            detail={"stage": stage, "decision": decision, "reason": made.reason, "note": made.note},
        )
        refresh_outcomes(Review.objects.get(pk=record.review_id), [record.pk], stage)
    return made


def outcome_of(votes, *, needed, maybe_counts_as_include=True, resolution=None):
    """The reconciled outcome of one record at one stage.

    ``votes`` is a list of (decision, reason). Returns (outcome, reason): '' while fewer than
    ``needed`` reviewers voted, 'conflict' when they disagree and nobody resolved it.
    """
    if resolution is not None:
        return resolution
    if not votes or len(votes) < needed:
        return "", ""

    sides = {stages.counts_as(d, maybe_counts_as_include=maybe_counts_as_include) for d, _ in votes}
    if len(sides) > 1:
        return Record.Outcome.CONFLICT, ""
    (outcome,) = sides
    reasons = [r for d, r in votes if r]
    return outcome, reasons[0] if outcome == Choice.EXCLUDE and reasons else ""


def settled_outcome(history, *, needed, maybe_counts_as_include=True, resolution=None):
    """The reconciled outcome of one record at one stage, from its whole vote history.

    ``history`` is every vote cast on the record at the stage, superseded ones included: (pk,
    reviewer id, decision, reason, is_current), by time of the vote. As outcome_of, except that once the
    record's votes have disagreed with all of them in, it stays a conflict until someone resolves
    it: a reviewer who changed their vote to agree would otherwise settle it, and a blinded
    reviewer could change a vote to learn whether the other one was cast, and which way.
    """
    rules = {"needed": needed, "maybe_counts_as_include": maybe_counts_as_include}
    current = [(decision, reason) for _, _, decision, reason, is_current in history if is_current]
    outcome = outcome_of(current, resolution=resolution, **rules)
    if resolution is not None or outcome[0] in stages.UNRECONCILED:
        return outcome
    cast = {}
    # In the order cast (pk): a changed vote is always stored after the vote it supersedes.
    for _, reviewer, decision, reason, _ in sorted(history):
        cast[reviewer] = (decision, reason)
        if outcome_of(list(cast.values()), **rules)[0] == Record.Outcome.CONFLICT:
            return Record.Outcome.CONFLICT, ""
    return outcome


def settled_outcomes(review, records, stage):
    """{record id: (outcome, reason)} at ``stage`` for ``records`` (ids or a queryset of them),
    by settled_outcome under ``review``'s rules (reviewers per record, maybe counts as include)."""
    history = defaultdict(list)
    for rid, *vote in (
        Decision.objects.filter(record_id__in=records, stage=stage)
        .order_by("created_at", "pk")
        .values_list("record_id", "pk", "reviewer_id", "decision", "reason", "is_current")
    ):
        history[rid].append(tuple(vote))
    resolutions = {
        rid: (decision, reason)
        for rid, decision, reason in Resolution.objects.filter(
            record_id__in=records, stage=stage, is_current=True
        ).values_list("record_id", "decision", "reason")
    }
    ids = records if isinstance(records, (list, tuple, set)) else records.values_list("pk", flat=True)
    return {
        rid: settled_outcome(
            history.get(rid, []),
            needed=review.reviewers_needed(stage),
            maybe_counts_as_include=review.maybe_counts_as_include,
            resolution=resolutions.get(rid),
        )
        for rid in ids
    }


def refresh_outcomes(review, record_ids, stage):
    """Recompute the stored outcome of ``record_ids`` at ``stage`` from their votes (settled_outcome).

    The records are locked first (in pk order), so the votes read are the latest committed ones
    and no vote can slip in between the read and the write of the outcome.
    """
    with transaction.atomic():
        # ``record_ids`` may be a subquery (a whole review): kept as one, never a list of every id.
        lock_records(record_ids)
        return _refresh_outcomes(review, record_ids, stage)


def _refresh_outcomes(review, record_ids, stage):
    outcomes = settled_outcomes(review, record_ids, stage)
    records = list(Record.objects.filter(pk__in=record_ids).only("pk", "ta_outcome", "ft_outcome", "ft_reason"))
    return _write_outcomes(review, stage, records, outcomes)


def _write_outcomes(review, stage, records, outcomes):
    """Store ``outcomes`` ({record id: (outcome, reason)} at ``stage``) on ``records`` (read with
    their stored outcome, under their row locks) where they changed; re-blind a reopened stage.
    The one place that writes a stored outcome."""
    changed = []
    for record in records:
        outcome, reason = outcomes[record.pk]
        if stage == Stage.FULL_TEXT:
            if (record.ft_outcome, record.ft_reason) != (outcome, reason):
                record.ft_outcome, record.ft_reason = outcome, reason
                changed.append(record)
        elif record.ta_outcome != outcome:
            record.ta_outcome = outcome
            changed.append(record)
    if changed:
        fields = ["ft_outcome", "ft_reason"] if stage == Stage.FULL_TEXT else ["ta_outcome"]
        Record.objects.bulk_update(changed, fields, batch_size=500)
        _reblind_if_reopened(review, stage, changed)
    return len(changed)


def _reblind_if_reopened(review, stage, changed):
    """A lifted blinding covers a finished stage: once a record there is open again (a changed
    vote, a new include reaching full text), the stage is blinded again."""
    reopened = set()
    if any(getattr(r, OUTCOME_FIELD[stage]) in stages.UNRECONCILED for r in changed):
        reopened.add(stage)
    if stage == Stage.TITLE_ABSTRACT and any(
        stages.passes_title_abstract(r, review) and r.ft_outcome in stages.UNRECONCILED for r in changed
    ):
        reopened.add(Stage.FULL_TEXT)
    review.reblind(reopened, reason="a record at this stage is open again")
