"""A dual-screened kratom review for the team-screening tests (blinding, conflicts, audit trail).

alice owns it; bob and carol screen each record independently at both stages. Carol's votes on
the records bob must not learn about carry distinctive notes and reasons.
"""

from dataclasses import dataclass

from review.models import Record, Stage
from screening.decisions import record_decision
from tests.screening.test_queue import import_ris, unique_pks

TA, FT = Stage.TITLE_ABSTRACT, Stage.FULL_TEXT
SECRET_NOTE = "carol-secret-note-xyz"
SECRET_REASON = "carol-secret-reason-xyz"
OPEN_NOTE = "carol-agreed-note"


@dataclass
class Team:
    conflict: Record  # TA: bob include, carol exclude with the secrets -> conflict
    pending: Record  # TA: carol exclude with the secrets, bob not yet -> pending
    agreed: Record  # TA: both exclude, carol's note OPEN_NOTE -> reconciled exclude
    ft_conflict: Record  # TA: both include; FT: bob include, carol exclude with the secrets -> FT conflict
    included: Record  # TA and FT: both include -> included study


def vote(record, user, decision, stage=TA, reason="", note=""):
    record_decision(record=record, reviewer=user, stage=stage, decision=decision, reason=reason, note=note)
    record.refresh_from_db()


def make_team(review, bob, carol):
    review.title_abstract_reviewers = 2
    review.full_text_reviewers = 2
    review.save()
    import_ris(review, "baseline_endnote.ris", "EndNote")
    conflict, pending, agreed, ft_conflict, included = (Record.objects.get(pk=pk) for pk in unique_pks(review)[:5])
    vote(conflict, bob, "include")
    vote(conflict, carol, "exclude", reason=SECRET_REASON, note=SECRET_NOTE)
    vote(pending, carol, "exclude", reason=SECRET_REASON, note=SECRET_NOTE)
    vote(agreed, bob, "exclude")
    vote(agreed, carol, "exclude", note=OPEN_NOTE)
    for record in (ft_conflict, included):
        vote(record, bob, "include")
        vote(record, carol, "include")
    vote(ft_conflict, bob, "include", FT)
    vote(ft_conflict, carol, "exclude", FT, reason=SECRET_REASON, note=SECRET_NOTE)
    vote(included, bob, "include", FT)
    vote(included, carol, "include", FT)
    return Team(conflict, pending, agreed, ft_conflict, included)
