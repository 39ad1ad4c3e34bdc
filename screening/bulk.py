"""Bulk actions on the records table's selection or its whole filter: tag, exclude, assign, unassign.

Each action is the single action done many times, in one transaction, under the same locks:

- tag: review.annotations.tag_records (one TAG event per record newly tagged);
- exclude: the acting reviewer's own exclusion vote at a stage, stored by
  screening.decisions.record_decisions like a keyboard vote (history kept, one DECISION event per
  vote, outcome refreshed). It never touches another reviewer's vote: a record whose votes are all
  cast by others is left out, as the screening page would refuse it;
- assign: the owner gives records to a reviewer at a stage (screening.models.Assignment; they come
  first in that reviewer's queue), one ASSIGNMENT event per record newly assigned;
- unassign: the owner takes such assignments back (a wrong reviewer, someone who left), one
  ASSIGNMENT event per record with ``"removed": true``; the votes already cast stay.

``plan`` counts what an action would do, for the confirmation step; ``apply`` does it and returns
the same counts.
"""

from collections import defaultdict
from dataclasses import dataclass

from django.db import transaction

from review.access import SCREENING_ROLES
from review.annotations import clean_tag_name, tag_records
from review.models import Event, Membership, RecordTag, Stage
from screening import stages
from screening.decisions import lock_records, record_decisions
from screening.models import Assignment, Choice, Decision

ACTIONS = {"tag": "Tag", "exclude": "Exclude", "assign": "Assign", "unassign": "Unassign"}
CHUNK = 500
REASON_MAX_LENGTH = Decision._meta.get_field("reason").max_length


class BulkError(ValueError):
    """A bulk action that cannot be done as asked; the message says why. Nothing was changed."""


class SelectionChanged(BulkError):
    """The records selected are not as many as the confirmation said: nothing was changed."""


@dataclass(frozen=True)
class Action:
    """What to do: ``kind`` in ACTIONS and its arguments (checked by ``check``)."""

    kind: str
    tag: str = ""
    stage: str = ""
    reason: str = ""
    reviewer: object = None  # a User, for "assign" and "unassign"

    @property
    def left_out(self):
        """Why a selected record is left alone by this action (after "N are")."""
        if self.kind == "exclude":
            return (
                "not open to your vote at this stage (a duplicate, not at this stage, or with every vote it needs cast)"
            )
        if self.kind == "unassign":
            return "not assigned to them at this stage"
        return "not at this stage"

    def describe(self):
        if self.kind == "tag":
            return f"tag with “{self.tag}”"
        stage = Stage(self.stage).label.lower()
        if self.kind == "exclude":
            return f"exclude at {stage} with the reason “{self.reason}”"
        if self.kind == "unassign":
            return f"unassign from {self.reviewer.get_username()} at {stage}"
        return f"assign to {self.reviewer.get_username()} at {stage}"


@dataclass(frozen=True)
class Counts:
    """Of the ``selected`` records, how many the action changes and how many it leaves as they are."""

    selected: int
    changed: int
    unchanged: int = 0  # already tagged, already excluded by this reviewer, already (un)assigned
    left_out: int = 0  # not theirs to vote on / not in the stage

    def sentence(self, action):
        parts = [f"{self.changed} of {self.selected} record{'s' if self.selected != 1 else ''} changed"]
        if self.unchanged:
            parts.append(f"{self.unchanged} already so")
        if self.left_out:
            parts.append(f"{self.left_out} {action.left_out}")
        return "; ".join(parts)


def check(review, membership, action):
    """``action`` cleaned, or BulkError naming the problem; refuses what ``membership`` may not do."""
    if not membership.can_screen:
        raise BulkError("Viewers cannot change records.")
    if action.kind not in ACTIONS:
        raise BulkError(f"Unknown bulk action {action.kind!r}: use {', '.join(ACTIONS)}.")
    if action.kind == "tag":
        return Action("tag", tag=clean_tag_name(action.tag))
    if action.stage not in Stage.values:
        raise BulkError("Pick a stage: title/abstract or full text.")
    if action.kind == "exclude":
        reason = " ".join((action.reason or "").split())
        if not reason:
            raise BulkError("A bulk exclusion needs a reason.")
        if len(reason) > REASON_MAX_LENGTH:
            raise BulkError(f"A reason has at most {REASON_MAX_LENGTH} characters (this one has {len(reason)}).")
        return Action("exclude", stage=action.stage, reason=reason)
    if not membership.is_owner:
        raise BulkError("Only the owner assigns records to reviewers.")
    reviewer = action.reviewer
    if action.kind == "unassign":
        # Anyone who holds assignments may lose them, a member who left or became a viewer too.
        if reviewer is None:
            raise BulkError("Pick the reviewer whose assignments to take back.")
        return Action("unassign", stage=action.stage, reviewer=reviewer)
    if (
        reviewer is None
        or not Membership.objects.filter(review=review, user=reviewer, role__in=SCREENING_ROLES).exists()
    ):
        raise BulkError("Records can only be assigned to a reviewer (or the owner) of this review.")
    return Action("assign", stage=action.stage, reviewer=reviewer)


def _ids(records):
    return sorted(records.values_list("pk", flat=True))


def plan(review, membership, records, action):
    """Counts for the confirmation step: what ``apply`` would do now (nothing is written)."""
    action = check(review, membership, action)
    if action.kind == "tag":
        selected = records.count()
        had = RecordTag.objects.filter(
            tag__review=review, tag__name__iexact=action.tag, record__in=records.values("pk")
        ).count()
        return Counts(selected, selected - had, unchanged=had)
    return _run(review, membership.user, _ids(records), action, write=False)


def apply(review, membership, records, action, *, expected=None):
    """Do ``action`` on ``records`` (a Record queryset of ``review``), atomically.

    ``expected``: the number of records the confirmation named; BulkError (nothing changed) when
    the selection has a different number now (records imported, decided or merged meanwhile).
    """
    action = check(review, membership, action)
    ids = _ids(records)
    if expected is not None and expected != len(ids):
        raise SelectionChanged(
            f"The selection changed since you confirmed it: it now holds {len(ids)} records, not {expected}. "
            "Nothing was changed; confirm again."
        )
    if not ids:
        raise BulkError("No records are selected.")
    return _run(review, membership.user, ids, action, write=True)


def _run(review, user, ids, action, *, write):
    if action.kind == "tag":
        _, added = tag_records(review, ids, action.tag, user=user)
        return Counts(len(ids), added, unchanged=len(ids) - added)
    totals = defaultdict(int)
    with transaction.atomic():
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            if write:
                # The lock every vote and outcome write holds (screening.decisions), in pk order.
                lock_records(chunk)
            step = {"exclude": _exclude, "assign": _assign, "unassign": _unassign}[action.kind]
            for key, n in step(review, user, chunk, action, write).items():
                totals[key] += n
    return Counts(len(ids), totals["changed"], totals["unchanged"], totals["left_out"])


def _exclude(review, user, ids, action, write):
    stage = Stage(action.stage)
    taking_part = set(stages.in_stage(review, stage).filter(pk__in=ids).values_list("pk", flat=True))
    votes = defaultdict(dict)
    for record_id, reviewer_id, decision, reason in Decision.objects.filter(
        record_id__in=taking_part, stage=stage, is_current=True
    ).values_list("record_id", "reviewer_id", "decision", "reason"):
        votes[record_id][reviewer_id] = (decision, reason)
    needed = review.reviewers_needed(stage)
    counts = {"changed": 0, "unchanged": 0, "left_out": len(ids) - len(taking_part)}
    to_vote = []
    for pk in sorted(taking_part):
        mine = votes[pk].get(user.pk)
        if mine == (Choice.EXCLUDE, action.reason):
            counts["unchanged"] += 1
        elif mine is None and len(votes[pk]) >= needed:
            counts["left_out"] += 1  # every vote it needs is someone else's: never overwritten
        else:
            to_vote.append(pk)
    counts["changed"] = len(to_vote)
    if write and to_vote:
        record_decisions(
            review,
            stage,
            [Decision(record_id=pk, reviewer=user, decision=Choice.EXCLUDE, reason=action.reason) for pk in to_vote],
            extra_detail={"bulk": True},
        )
    return counts


def _assign(review, user, ids, action, write):
    stage = Stage(action.stage)
    taking_part = set(stages.in_stage(review, stage).filter(pk__in=ids).values_list("pk", flat=True))
    reviewer = action.reviewer
    had = set(
        Assignment.objects.filter(record_id__in=taking_part, reviewer=reviewer, stage=stage).values_list(
            "record_id", flat=True
        )
    )
    new = sorted(taking_part - had)
    if write and new:
        Assignment.objects.bulk_create(
            [Assignment(record_id=pk, reviewer=reviewer, stage=stage, assigned_by=user) for pk in new]
        )
        _log_assignments(review, user, new, stage, reviewer)
    return {"changed": len(new), "unchanged": len(had), "left_out": len(ids) - len(taking_part)}


def _unassign(review, user, ids, action, write):
    stage = Stage(action.stage)
    reviewer = action.reviewer
    held = Assignment.objects.filter(record__review=review, record_id__in=ids, reviewer=reviewer, stage=stage)
    gone = sorted(held.values_list("record_id", flat=True))
    if write and gone:
        held.delete()
        _log_assignments(review, user, gone, stage, reviewer, removed=True)
    return {"changed": len(gone), "left_out": len(ids) - len(gone)}


def _log_assignments(review, user, record_ids, stage, reviewer, *, removed=False):
    """One ASSIGNMENT event per record; visibility.visible_events hides it by its detail's
    ``stage`` and ``reviewer_id`` from members blinded at that stage."""
    detail = {"stage": stage.value, "reviewer": reviewer.get_username(), "reviewer_id": reviewer.pk}
    if removed:
        detail["removed"] = True
    Event.objects.bulk_create(
        [Event(review=review, record_id=pk, actor=user, kind=Event.Kind.ASSIGNMENT, detail=detail) for pk in record_ids]
    )
