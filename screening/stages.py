"""The screening rules: which records take part in each stage, and how a vote counts.

Each rule lives here and only here; the queue, decisions, PRISMA, the dashboard, the tables and
filters, the conflicts queue and extraction all call these (what a blinded reviewer sees is the
other rule set, in ``screening/visibility.py``).

- A record takes part in title/abstract screening when it is not a duplicate, and no open closure
  of the stage on the stopping rule (screening/closing.py) marked it ineligible by automation.
- It goes on to full text when its reconciled title/abstract outcome is an include, or a "maybe"
  in a review where maybe counts as include (a conflict resolved as "maybe" included). With that
  setting off, a reconciled "maybe" waits for someone to decide: it is neither excluded nor sent on.
- At full text the same holds: a record an open full-text closure left unassessed takes no part.
- A full-text exclusion needs a reason.
"""

from django.db.models import Q

from review.models import Record, Stage
from screening.models import Choice, ClosedRecord

Outcome = Record.Outcome
# Each stage's reconciled outcome, kept up to date by screening.decisions.refresh_outcomes.
OUTCOME_FIELD = {Stage.TITLE_ABSTRACT: "ta_outcome", Stage.FULL_TEXT: "ft_outcome"}
# Not decided yet at a stage: waiting for votes, or the votes disagree and nobody resolved them.
UNRECONCILED = (Outcome.PENDING, Outcome.CONFLICT)


def decided_q(stage, prefix=""):
    """A Q for records whose outcome at ``stage`` is reconciled (neither pending nor a conflict)."""
    return ~Q(**{f"{prefix}{OUTCOME_FIELD[Stage(stage)]}__in": UNRECONCILED})


def counts_as(decision, *, maybe_counts_as_include):
    """The side a vote is on when votes are compared: "maybe" sides with include if the review says so."""
    if decision == Choice.MAYBE and maybe_counts_as_include:
        return Choice.INCLUDE
    return decision


def passing_outcomes(review):
    """The reconciled title/abstract outcomes that send a record on to full text."""
    if review.maybe_counts_as_include:
        return [Outcome.INCLUDE, Outcome.MAYBE]
    return [Outcome.INCLUDE]


def passes_title_abstract_q(review, prefix=""):
    """A Q for records that go on to full text; ``prefix`` reaches the record ("record__")."""
    return Q(**{f"{prefix}ta_outcome__in": passing_outcomes(review)})


def passes_title_abstract(record, review):
    """The same rule for one record in hand."""
    return record.ta_outcome in passing_outcomes(review)


def closed_records(review, stage):
    """Ids (a subquery) of the records an open closure of ``stage`` left unscreened."""
    return ClosedRecord.objects.filter(
        closure__review=review, closure__stage=Stage(stage), closure__reopened_at__isnull=True
    ).values("record_id")


def in_stage_q(review, stage, prefix=""):
    """A Q for the records of ``review`` taking part in ``stage`` (the caller limits to the review)."""
    q = Q(**{f"{prefix}duplicate_of__isnull": True})
    if Stage(stage) == Stage.FULL_TEXT:
        q &= passes_title_abstract_q(review, prefix)
    return q & ~Q(**{f"{prefix}pk__in": closed_records(review, stage)})


def in_stage(review, stage):
    """Records of ``review`` taking part in ``stage``: unique records, and at full text those sent on."""
    return Record.objects.for_review(review).filter(in_stage_q(review, stage))


def check_in_stage(review, stage, record_ids):
    """The ids among ``record_ids`` that do not take part in ``stage`` (empty when all do)."""
    record_ids = set(record_ids)
    taking_part = set(in_stage(review, stage).filter(pk__in=record_ids).values_list("pk", flat=True))
    return record_ids - taking_part


def not_in_stage_message(review, stage, record_ids):
    """Why records cannot be voted on at ``stage``: named by number, with the rule that keeps them out."""
    ids = ", ".join(f"#{pk}" for pk in sorted(record_ids))
    closed = set(closed_records(review, stage).filter(record_id__in=record_ids).values_list("record_id", flat=True))
    if closed:
        which = ", ".join(f"#{pk}" for pk in sorted(closed))
        return (
            f"{Stage(stage).label} screening was closed on the stopping rule's recommendation and record {which} "
            "was marked ineligible by automation tools; the owner can reopen the stage to screen it."
        )
    if Stage(stage) == Stage.FULL_TEXT:
        maybe = " (or marked maybe: in this review maybe counts as include)" if review.maybe_counts_as_include else ""
        return f"Only records included at title/abstract{maybe} go on to full-text screening; record {ids} is not one."
    return f"Record {ids} is a duplicate: screen the original."


def needs_reason(stage, decision):
    """A full-text exclusion needs a reason (PRISMA reports full-text exclusions by reason)."""
    return Stage(stage) == Stage.FULL_TEXT and decision == Choice.EXCLUDE
