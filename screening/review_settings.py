"""Changing a review's settings: the rules by which votes combine into outcomes recompute them.

A review's title and settings are review fields, but reviewers per record and whether "maybe"
counts as include decide every record's screening outcome: changing one recomputes the outcomes
from the votes cast (screening.decisions), and the owner first sees which records would move.
"""

import copy
import dataclasses

from django.db import transaction

from review.models import Event, Record, Review, Stage
from review.reviews import check_settings
from screening.decisions import lock_records, refresh_outcomes, settled_outcomes
from screening.models import Decision
from screening.stages import OUTCOME_FIELD

# Settings that decide how votes combine into an outcome: changing one recomputes outcomes.
OUTCOME_SETTINGS = {"title_abstract_reviewers", "full_text_reviewers", "maybe_counts_as_include"}


@dataclasses.dataclass
class SettingsPreview:
    """What saving new settings would do: the changed fields ({name: (old, new)}) and, per stage,
    the records whose outcome would move from one value to another ({stage: {(old, new): [ids]}})."""

    changed: dict = dataclasses.field(default_factory=dict)
    outcomes: dict = dataclasses.field(default_factory=dict)
    recomputes: bool = False
    has_votes: bool = False

    @property
    def needs_confirmation(self):
        """Outcome rules change on a review that has votes: the owner should see what moves first."""
        return self.recomputes and self.has_votes

    def transitions(self):
        """(stage label, old label, new label, how many) per outcome transition, for a page."""
        return [
            (Stage(stage).label, _outcome_label(old), _outcome_label(new), len(pks))
            for stage, moves in self.outcomes.items()
            for (old, new), pks in sorted(moves.items())
        ]


def _outcome_label(value):
    return Record.Outcome(value).label


def _clean_update(review, fields):
    """Check ``fields`` (title and settings) and return {name: (old, new)} for those that change."""
    if "title" in fields:
        fields["title"] = (fields["title"] or "").strip()
        if not fields["title"]:
            raise ValueError("A review needs a title.")
    check_settings({k: v for k, v in fields.items() if k != "title"})
    for name, value in fields.items():
        if isinstance(value, str):
            # Browsers send a textarea's line breaks as CRLF: an unedited text is not a change.
            fields[name] = value.replace("\r\n", "\n")
    return {
        name: (getattr(review, name), value) for name, value in sorted(fields.items()) if getattr(review, name) != value
    }


def _stored_outcomes(review, stage):
    field_name = OUTCOME_FIELD[stage]
    return dict(Record.objects.for_review(review).values_list("pk", field_name))


def _moves(before, after):
    """{(old, new): [record ids]} for the records whose outcome differs between two snapshots."""
    moves = {}
    for pk, old in before.items():
        new = after.get(pk, old)
        if new != old:
            moves.setdefault((old, new), []).append(pk)
    return moves


def preview_update(review, **fields) -> SettingsPreview:
    """What ``update_review(review, **fields)`` would change, without writing anything: the
    changed fields, and per stage how many records' outcomes would move from which to which."""
    changed = _clean_update(review, dict(fields))
    preview = SettingsPreview(changed=changed, recomputes=bool(OUTCOME_SETTINGS.intersection(changed)))
    if not preview.recomputes:
        return preview
    preview.has_votes = Decision.objects.filter(record__review=review).exists()
    proposed = copy.copy(review)
    for name, (_, new) in changed.items():
        setattr(proposed, name, new)
    for stage in Stage:
        before = _stored_outcomes(review, stage)
        # By the same rule as refresh_outcomes, under the proposed settings.
        settled = settled_outcomes(proposed, Record.objects.for_review(review).values("pk"), stage)
        after = {pk: settled[pk][0] for pk in before}
        moves = _moves(before, after)
        if moves:
            preview.outcomes[stage.value] = moves
    return preview


def update_review(review, *, user, **fields) -> Review:
    """Change a review's title and settings, logging the old and new value of each changed field.

    Changing how many reviewers screen each record (or whether maybe counts as include)
    recomputes every record's outcome from the votes already cast; the event then also lists,
    per stage, which records' outcomes moved from which to which. ``preview_update`` says the
    same beforehand without writing.
    """
    with transaction.atomic():
        review.refresh_from_db()
        records_locked = bool(OUTCOME_SETTINGS.intersection(_clean_update(review, dict(fields))))
        if records_locked:
            # The records before the review row: the order a vote takes them in (no deadlock).
            lock_records(Record.objects.for_review(review).values("pk"))
        # One settings change at a time: the outcomes logged are the ones this change moved.
        Review.objects.select_for_update().filter(pk=review.pk).values("pk").get()
        review.refresh_from_db()
        changed = _clean_update(review, fields)
        if not changed:
            return review
        recomputes = OUTCOME_SETTINGS.intersection(changed)
        if recomputes and not records_locked:
            # Another owner changed the same settings a moment ago: taking the records' locks now,
            # after the review's, could deadlock with a vote. Nothing is written.
            raise ValueError(
                "Another owner changed this review's screening settings while you were saving. "
                "Reload the settings page, check them, and save again."
            )
        before = {stage: _stored_outcomes(review, stage) for stage in Stage} if recomputes else {}
        for name, (_, new) in changed.items():
            setattr(review, name, new)
        review.save(update_fields=list(changed))
        detail = {
            "changed": list(changed),
            "old": {name: old for name, (old, _) in changed.items()},
            "new": {name: new for name, (_, new) in changed.items()},
        }
        if recomputes:
            records = Record.objects.for_review(review).values("pk")
            outcomes = {}
            for stage in Stage:
                refresh_outcomes(review, records, stage)
                moves = _moves(before[stage], _stored_outcomes(review, stage))
                if moves:
                    outcomes[stage.value] = [
                        {"from": old, "to": new, "count": len(pks), "records": sorted(pks)}
                        for (old, new), pks in sorted(moves.items())
                    ]
            detail["outcomes"] = outcomes
        Event.objects.create(review=review, actor=user, kind=Event.Kind.SETTINGS, detail=detail)
    return review
