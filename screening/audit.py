"""The audit trail read back: a record's history and the whole trail as CSV.

Events are append-only (review.models.Event refuses updates and deletes). Whoever reads them
sees other reviewers' votes only as screening.visibility allows (which is why this reading lives in
screening: review never imports it).
"""

import json
from datetime import UTC

from django.db.models import Q

from review import fulltexts
from review.models import Event, Stage
from review.spreadsheet import csv_chunks
from screening.models import Choice
from screening.visibility import visible_events

STAGES = dict(Stage.choices)
CHOICES = dict(Choice.choices)
CSV_COLUMNS = ["time", "actor", "kind", "record id", "record title", "stage", "decision", "reason", "note", "details"]
# A vote's (or resolution's) fields have their own columns; any other detail goes to "details"
# (a merge's "reason" is dedup's, not an exclusion reason).
VOTE_KINDS = {Event.Kind.DECISION, Event.Kind.RESOLUTION}
VOTE_FIELDS = ("decision", "reason", "note")


def record_history(record, membership):
    """Every event ``membership`` may see about ``record``, oldest first.

    Besides the record's own events, that is merges of other records into it and merges
    undone from it, which are logged on the duplicate.
    """
    about = Q(record=record) | Q(
        Q(detail__duplicate_of=record.pk) | Q(detail__was_duplicate_of=record.pk),
        kind__in=[Event.Kind.MERGE, Event.Kind.UNMERGE],
        review_id=record.review_id,
    )
    events = Event.objects.filter(about).select_related("actor").order_by("created_at", "pk")
    return visible_events(events, membership)


def describe_event(event, record=None):
    """One line saying what an audit event did; ``record`` is the record whose history is shown."""
    d = event.detail or {}
    kind = event.kind
    other = f"#{event.record_id} " if record is not None and event.record_id != record.pk else ""
    if kind == Event.Kind.MERGE:
        how = "automatically" if d.get("automatic") else "by hand"
        return f"{other}as a duplicate of #{d.get('duplicate_of')} ({d.get('reason', '')}, {how})"
    if kind == Event.Kind.UNMERGE:
        return f"{other}(was a duplicate of #{d.get('was_duplicate_of')})"
    if kind in (Event.Kind.DECISION, Event.Kind.RESOLUTION):
        stage = STAGES.get(d.get("stage"), d.get("stage", ""))
        decision = CHOICES.get(d.get("decision"), d.get("decision", ""))
        reason = f" — {d['reason']}" if d.get("reason") else ""
        note = f" (note: {d['note']})" if d.get("note") else ""
        return f"{stage}: {decision}{reason}{note}"
    if kind == Event.Kind.TAG:
        if "renamed" in d:
            return f"“{d['renamed']}” renamed “{d.get('to', '')}”"
        for action in ("added", "removed", "deleted"):
            if action in d:
                return f"“{d[action]}” {action}"
    if kind == Event.Kind.NOTE:
        return d.get("text", "")
    if kind == Event.Kind.EXTRACTION:
        return describe_extraction(d)
    if kind == Event.Kind.BLINDING:
        return STAGES.get(d.get("stage"), d.get("stage", ""))
    if kind == Event.Kind.CLOSURE:
        return describe_closure(d)
    if kind == Event.Kind.UNDO:
        return describe_undo(d)
    if kind == Event.Kind.FULLTEXT:
        return fulltexts.describe(d)
    if kind == Event.Kind.ASSIGNMENT:
        done = "no longer assigned to" if d.get("removed") else "assigned to"
        return f"{STAGES.get(d.get('stage'), d.get('stage', ''))}: {done} {d.get('reviewer', '')}"
    return ""


def describe_undo(d):
    """One line for an undone import or search (review/removal.py)."""
    what = d.get("filename") or d.get("query") or ""
    line = f"{d.get('source', '')}{f' ({what})' if what else ''}: {d.get('records', 0)} records removed"
    if d.get("restored"):
        line += f", {d['restored']} duplicates of them screened again as originals"
    return line


def describe_closure(d):
    """One line for a stage closed on the stopping rule, or reopened."""
    stage = STAGES.get(d.get("stage"), d.get("stage", ""))
    if d.get("action") == "reopened":
        n = d.get("records_returned", 0)
        return f"{stage} screening reopened: {n} record{'s' if n != 1 else ''} returned to screening"
    n = d.get("records_marked", 0)
    target, confidence = d.get("recall_target"), d.get("confidence")
    rule = f" (recall target {target:.0%}, {confidence:.0%} confidence)" if target and confidence else ""
    return (
        f"{stage} screening closed on the stopping rule{rule}: "
        f"{n} record{'s' if n != 1 else ''} marked ineligible by automation tools"
    )


def describe_extraction(d):
    """One line for an extraction event: a value changed, or a field created, changed or deleted."""
    field = f"“{d.get('field', '')}”"
    action = d.get("action")
    if action == "value":
        because = f" ({d['because']})" if d.get("because") else ""
        return f"{field}: {d.get('old') or '(empty)'} → {d.get('new') or '(empty)'}{because}"
    if action == "field created":
        return f"field {field} created ({d.get('kind', '')})"
    if action == "field changed":
        changes = "; ".join(f"{name} {old!r} → {new!r}" for name, (old, new) in sorted(d.get("changes", {}).items()))
        return f"field {field} changed: {changes}"
    if action == "field deleted":
        n = len(d.get("values", []))
        return f"field {field} deleted with its {n} value{'s' if n != 1 else ''}"
    return ""


def audit_rows(review, membership):
    """One list per event of ``review`` that ``membership`` may see, in CSV_COLUMNS order."""
    events = Event.objects.filter(review=review).select_related("actor", "record").order_by("created_at", "pk")
    for event in visible_events(events, membership).iterator(chunk_size=2000):
        details = dict(event.detail or {})
        stage = details.pop("stage", "")
        vote = [details.pop(key, "") if event.kind in VOTE_KINDS else "" for key in VOTE_FIELDS]
        yield [
            event.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            event.actor.get_username() if event.actor else "",
            event.kind,
            event.record_id or "",
            event.record.title if event.record else "",
            stage,
            *vote,
            json.dumps(details, ensure_ascii=False, sort_keys=True),
        ]


def audit_csv_chunks(review, membership, rows_per_chunk=1000):
    """The whole trail of ``review`` as CSV text (times in UTC), as ``membership`` may see it,
    in pieces for a streamed download."""
    return csv_chunks(CSV_COLUMNS, audit_rows(review, membership), rows_per_chunk)
