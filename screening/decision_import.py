"""Loading decisions made elsewhere (a spreadsheet, another tool) into a review.

Every row is validated first; the file is written in one transaction or not at all.
"""

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from review import dedup, limits
from review.models import Membership, Record, Role, Stage
from screening import stages
from screening.decisions import STAGE_CHOICES, DecisionError, record_decisions
from screening.models import Decision

KEY_COLUMNS = ("pmid", "doi", "title")
REASON_MAX_LENGTH = Decision._meta.get_field("reason").max_length
MAX_ERRORS_SHOWN = 20


class DecisionImportError(ValueError):
    def __init__(self, filename, errors):
        self.errors = errors
        shown = "\n".join(errors[:MAX_ERRORS_SHOWN])
        more = f"\n... and {len(errors) - MAX_ERRORS_SHOWN} more" if len(errors) > MAX_ERRORS_SHOWN else ""
        super().__init__(f"{filename}: nothing was imported, {len(errors)} problem(s):\n{shown}{more}")


@dataclass
class DecisionImportResult:
    decisions: int = 0
    by_stage: dict = field(default_factory=lambda: defaultdict(int))
    users_created: list = field(default_factory=list)
    members_added: list = field(default_factory=list)

    def summary(self):
        stages = ", ".join(f"{n} {Stage(s).label.lower()}" for s, n in sorted(self.by_stage.items()))
        text = f"{self.decisions} decisions imported ({stages or 'none'})"
        if self.users_created:
            text += f"; reviewer accounts created: {', '.join(self.users_created)}"
        return text


@dataclass
class _Row:
    line: int
    record_id: int
    reviewer: str
    stage: str
    decision: str
    reason: str
    note: str
    at: datetime | None


def _lookups(review):
    """Key → set of canonical record ids (a duplicate's key points at its original)."""
    by = {k: defaultdict(set) for k in KEY_COLUMNS}
    rows = Record.objects.for_review(review).values_list("pk", "duplicate_of_id", "pmid", "doi_norm", "title_norm")
    for pk, dup_of, pmid, doi_norm, title_norm in rows.iterator(chunk_size=5000):
        canonical = dup_of or pk
        if pmid:
            by["pmid"][pmid].add(canonical)
        if doi_norm:
            by["doi"][doi_norm].add(canonical)
        if title_norm:
            by["title"][title_norm].add(canonical)
    return by


_NORMALISE = {"pmid": dedup.normalise_pmid, "doi": dedup.normalise_doi, "title": dedup.normalise_title}


def _parse_time(value):
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, timezone.utc)


def read_rows(review, text, filename):
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise DecisionImportError(filename, ["the file is empty"])
    reader.fieldnames = [(f or "").strip().lower() for f in reader.fieldnames]
    missing = [c for c in ("reviewer", "stage", "decision") if c not in reader.fieldnames]
    if missing or not any(k in reader.fieldnames for k in KEY_COLUMNS):
        need = missing + ([] if any(k in reader.fieldnames for k in KEY_COLUMNS) else ["pmid, doi or title"])
        raise DecisionImportError(filename, [f"line 1: missing column(s): {', '.join(need)}"])
    lookups = _lookups(review)
    rows, errors = [], []
    for line, raw in enumerate(reader, start=2):
        values = {k: (v or "").strip() for k, v in raw.items() if k}
        key = next((k for k in KEY_COLUMNS if values.get(k)), None)
        problems = []
        if key is None:
            problems.append("no pmid, doi or title to match a record")
        else:
            matches = lookups[key].get(_NORMALISE[key](values[key]), set())
            if not matches:
                problems.append(f"{key} {values[key]!r} matches no record of this review")
            elif len(matches) > 1:
                problems.append(f"{key} {values[key]!r} matches {len(matches)} records (ids {sorted(matches)[:5]})")
        stage, decision = values.get("stage", "").lower(), values.get("decision", "").lower()
        if stage not in STAGE_CHOICES:
            problems.append(f"stage {stage!r} is not title_abstract or full_text")
        elif decision not in STAGE_CHOICES[stage]:
            problems.append(
                f"decision {decision!r} is not allowed at {stage} ({', '.join(sorted(STAGE_CHOICES[stage]))})"
            )
        elif stages.needs_reason(stage, decision) and not values.get("reason"):
            problems.append("a full-text exclusion needs a reason")
        if not values.get("reviewer"):
            problems.append("no reviewer")
        for column, most in (("reason", REASON_MAX_LENGTH), ("note", limits.DECISION_NOTE)):
            if len(values.get(column, "")) > most:
                problems.append(f"the {column} has {len(values[column]):,} characters; the limit is {most:,}")
        try:
            at = _parse_time(values.get("date") or values.get("time") or "")
        except ValueError:
            problems.append(f"date {values.get('date') or values.get('time')!r} is not an ISO date/time")
            at = None
        if problems:
            errors.append(f"line {line}: " + "; ".join(problems))
            continue
        rows.append(
            _Row(
                line,
                next(iter(matches)),
                values["reviewer"],
                stage,
                decision,
                values.get("reason", ""),
                values.get("note", ""),
                at,
            )
        )
    if errors:
        raise DecisionImportError(filename, errors)
    return rows


def import_decisions(*, review, path=None, text=None, filename="", user=None):
    """Validate every row of a decisions CSV, then write them all (or nothing)."""
    filename = filename or str(path or "decisions.csv")
    if text is None:
        try:
            with open(path, encoding="utf-8-sig", newline="") as fh:
                text = fh.read()
        except UnicodeDecodeError as exc:
            raise DecisionImportError(filename, [f"not UTF-8 text ({exc.reason} at byte {exc.start})"]) from exc
    rows = read_rows(review, text.lstrip("\ufeff"), filename)
    result = DecisionImportResult()
    with transaction.atomic():
        reviewers = _reviewers(review, {r.reviewer for r in rows}, result)
        # Title/abstract first, so full-text rows can be checked against the reconciled outcome.
        for stage in (Stage.TITLE_ABSTRACT, Stage.FULL_TEXT):
            stage_rows = [r for r in rows if r.stage == stage]
            if not stage_rows:
                continue
            if stage == Stage.FULL_TEXT:
                outside = stages.check_in_stage(review, stage, {r.record_id for r in stage_rows})
                closed = set(stages.closed_records(review, stage).values_list("record_id", flat=True)) & outside
                bad = [
                    f"line {r.line}: "
                    + (
                        stages.not_in_stage_message(review, stage, {r.record_id})
                        if r.record_id in closed
                        else f"record {r.record_id} is not included at title/abstract, so it has no full-text decision"
                    )
                    for r in stage_rows
                    if r.record_id in outside
                ]
                if bad:
                    raise DecisionImportError(filename, bad)
            try:
                _write_stage(review, stage, stage_rows, reviewers, user)
            except DecisionError as exc:  # e.g. a record that would get more votes than it needs
                raise DecisionImportError(filename, [str(exc)]) from exc
            result.decisions += len(stage_rows)
            result.by_stage[stage] += len(stage_rows)
    return result


def _reviewers(review, usernames, result):
    User = get_user_model()
    users = {u.username: u for u in User.objects.filter(username__in=usernames)}
    for name in sorted(usernames - users.keys()):
        user = User(username=name)
        user.set_unusable_password()
        user.save()
        users[name] = user
        result.users_created.append(name)
    members = set(Membership.objects.filter(review=review, user__in=users.values()).values_list("user_id", flat=True))
    new = [Membership(review=review, user=u, role=Role.REVIEWER) for u in users.values() if u.pk not in members]
    Membership.objects.bulk_create(new)
    result.members_added = [m.user.username for m in new]
    return users


def _write_stage(review, stage, rows, reviewers, actor):
    now = timezone.now()
    decisions = [
        Decision(
            record_id=r.record_id,
            reviewer=reviewers[r.reviewer],
            decision=r.decision,
            reason=r.reason,
            note=r.note,
            created_at=r.at or now,
        )
        for r in rows
    ]
    record_decisions(
        review, stage, decisions, extra_detail={"imported": True, "imported_by": actor.username if actor else None}
    )
