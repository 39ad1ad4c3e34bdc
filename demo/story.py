"""The screening story of the ptsd-trajectories review: who voted how, so every page has content.

The votes follow the review authors' own labels (label_included), with the disagreements,
resolutions, lone votes and unread full texts a real team would leave behind.
"""

import itertools
import re
from datetime import timedelta

from django.utils import timezone

from demo.dataset import DemoDataError
from review.dedup import normalise_title
from review.models import Stage
from screening.decisions import record_decisions, resolve, validate
from screening.models import Choice, Decision

SCREEN_FIRST = 400  # records alice and bob screened in file order
CAROL_BATCH = 60  # the next records, screened by carol alone so far
PLAUSIBLE_EXTRAS = 8  # unlabelled records that look relevant enough to pass title/abstract
FT_PENDING = 6  # TA-included records nobody has read in full yet

_TRAJECTORY = re.compile(r"trajector|growth mixture|latent class|latent growth")
_PTSD = re.compile(r"ptsd|posttraumatic|post-traumatic|traumatic stress")
_REVIEW = re.compile(r"\breview\b|meta-analy|commentary|editorial|\bmethods?\b")
_LONGITUDINAL = re.compile(r"longitudinal|prospective|follow-up|followed|months|waves?\b|years after")


def ta_reason(row):
    """An exclusion reason read off the title and abstract, as a quick screener would give it."""
    text = row.text
    if _REVIEW.search(row.title.lower()):
        return "Review, methods paper or commentary"
    if not _PTSD.search(text):
        return "Not PTSD symptoms"
    if not _LONGITUDINAL.search(text):
        return "Fewer than three measurement waves"
    return "No latent trajectory analysis"


def plausible(row):
    """Unlabelled records a careful screener would still send to full text."""
    return not row.included and bool(_TRAJECTORY.search(row.text) and _PTSD.search(row.text))


def aligned(search, rows, path):
    """The records ``search`` imported, checked to be the file's rows in the file's order."""
    records = list(search.records.order_by("pk").only("pk", "title_norm", "duplicate_of_id"))
    if len(records) != len(rows):
        raise DemoDataError(f"{path}: {len(rows)} rows but the import stored {len(records)} records.")
    for n, (record, row) in enumerate(zip(records, rows), start=2):
        if record.title_norm != normalise_title(row.title):
            raise DemoDataError(f"{path}, line {n}: the record's title does not match the file's row.")
    return records


def cast_votes(review, stage, votes):
    """Store the demo votes in bulk, checked as record_decision checks them one at a time.

    ``votes`` holds (record, reviewer, decision, reason, at).
    """
    decisions = []
    for record, reviewer, decision, reason, at in votes:
        validate(record=record, stage=stage, decision=decision, reason=reason)
        decisions.append(Decision(record=record, reviewer=reviewer, decision=decision, reason=reason, created_at=at))
    record_decisions(review, stage, decisions)


def screen_trajectories(review, rows, records, users):
    """Decisions that leave every page with something to show; returns the included (record, row)s.

    alice and bob (dual screening) have screened the first SCREEN_FIRST records in file order
    plus every record the review's authors included (as prioritised screening brings relevant
    records forward): the labelled ones and a few plausible extras go on to full text, the
    rest are excluded with a reason; a few disagreements stay open as conflicts, some resolved.
    carol has screened the next CAROL_BATCH alone (each waits for a second vote). At full text
    the labelled records are included, the extras excluded with reasons, one report is not
    retrieved, one disagreement is open and FT_PENDING are still unread.
    """
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    start = timezone.now() - timedelta(days=14)
    clock = (start + timedelta(seconds=45 * i) for i in itertools.count())
    pairs = [(rec, row) for rec, row in zip(records, rows) if rec.duplicate_of_id is None]
    first = pairs[:SCREEN_FIRST]
    seen = {rec.pk for rec, _ in first}
    screened = first + [(rec, row) for rec, row in pairs if row.included and rec.pk not in seen]
    extras = set(sorted(rec.pk for rec, row in first if plausible(row))[:PLAUSIBLE_EXTRAS])
    votes = []

    def vote(record, reviewer, decision, reason=""):
        votes.append((record, reviewer, decision, reason, next(clock)))

    conflicts = []
    for n, (rec, row) in enumerate(screened):
        if row.included or rec.pk in extras:
            vote(rec, alice, Choice.INCLUDE)
            vote(rec, bob, Choice.MAYBE if n % 7 == 3 else Choice.INCLUDE)
        elif n % 45 == 17:
            vote(rec, alice, Choice.EXCLUDE, ta_reason(row))
            vote(rec, bob, Choice.INCLUDE)
            conflicts.append(rec)
        else:
            vote(rec, alice, Choice.EXCLUDE, ta_reason(row))
            vote(rec, bob, Choice.EXCLUDE, ta_reason(row))
    screened_pks = {rec.pk for rec, _ in screened}
    for rec, row in [p for p in pairs if p[0].pk not in screened_pks][:CAROL_BATCH]:
        vote(rec, carol, Choice.EXCLUDE, ta_reason(row))
    cast_votes(review, Stage.TITLE_ABSTRACT, votes)
    for rec in conflicts[::2]:
        resolve(
            record=rec,
            stage=Stage.TITLE_ABSTRACT,
            decision=Choice.EXCLUDE,
            user=alice,
            note="Agreed at the weekly meeting.",
        )

    votes = []
    to_read = [(rec, row) for rec, row in screened if row.included or rec.pk in extras]
    to_read = to_read[: len(to_read) - FT_PENDING]
    labelled = [(rec, row) for rec, row in to_read if row.included]
    not_retrieved = labelled[len(labelled) // 2][0].pk
    ft_conflict = next(rec.pk for rec, row in to_read if not row.included)
    for rec, row in to_read:
        if rec.pk == not_retrieved:
            vote(rec, alice, Choice.NOT_RETRIEVED)
            vote(rec, bob, Choice.NOT_RETRIEVED)
        elif row.included:
            vote(rec, alice, Choice.INCLUDE)
            vote(rec, bob, Choice.INCLUDE)
        else:
            vote(rec, alice, Choice.EXCLUDE, ta_reason(row))
            vote(rec, bob, *((Choice.INCLUDE,) if rec.pk == ft_conflict else (Choice.EXCLUDE, ta_reason(row))))
    cast_votes(review, Stage.FULL_TEXT, votes)
    return [(rec, row) for rec, row in labelled if rec.pk != not_retrieved]
