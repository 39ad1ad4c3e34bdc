"""Taking data out of a review: undoing one import (or search), and deleting a whole review.

Review never imports screening, so this module finds the rows that hang on a record or a review
generically, through the models' foreign keys: any row that points at a record is the team's work
(a decision, a resolution, an extraction value, a tag, a note...) and stops an undo, unless its app
registered the model as ``disposable`` (a claim, a rank: rebuilt on their own). Other apps may also
register ``on_review_deleted`` callbacks to drop what they keep outside the database (caches).

Deleting is done with one DELETE per table (no per-row signals, no rows loaded), children before
parents, in one transaction: fast at 100,000 records, and nothing half-deleted. The records are
locked before anything goes, so on PostgreSQL their own DELETE may skip the database's per-row
foreign-key checks (a lookup per record in each of the dozen tables pointing at records: a minute
at 100,000 records, against about a second without).
"""

import logging
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from django.apps import apps
from django.db import DatabaseError, connections, models, transaction
from django.db.models import Q
from django.utils import timezone

from review.models import Event, Record, Review, Search, Stage

log = logging.getLogger(__name__)

# The staged_at of a staged review being discarded (discard_staged_review): older than any import.
DISCARDING = datetime(1970, 1, 1, tzinfo=UTC)

_DISPOSABLE = set()  # models whose rows on a record may go with it (apps register them)
_ON_REVIEW_DELETED = []  # callables (review_pk) run after a review's deletion commits


class RemovalRefused(ValueError):
    """An undo or a deletion that may not happen; the message says why."""


def register_disposable(*model_labels):
    """Rows of these models ("app_label.Model") pointing at a record do not stop an undo of its
    import: they go with the record."""
    _DISPOSABLE.update(label.lower() for label in model_labels)


def on_review_deleted(callback):
    """Call ``callback(review_pk)`` after each review deletion commits (once however often registered)."""
    if callback not in _ON_REVIEW_DELETED:
        _ON_REVIEW_DELETED.append(callback)
    return callback


# The foreign-key graph -----------------------------------------------------------------------


def _pointers_to(model):
    """Every concrete foreign key (or one-to-one) of any installed model that points at ``model``."""
    found = []
    for other in apps.get_models(include_auto_created=True):
        for f in other._meta.concrete_fields:
            if (f.many_to_one or f.one_to_one) and f.remote_field.model is model and f.model is other:
                found.append(f)
    return found


def _purge(model, ids, *, locked=False):
    """Delete the rows of ``model`` whose pk is in ``ids`` (a values_list queryset, evaluated in
    the database), and first every row pointing at them: one statement per table.

    ``locked``: the caller holds these rows' locks (FOR UPDATE, taken before this), so no other
    transaction can make a row point at them until the commit; every row that pointed at them is
    deleted first, so PostgreSQL's per-row foreign-key checks of the last DELETE (one lookup per
    deleted row in each table pointing at ``model``: most of a big deletion's time) are skipped
    where the database allows it (see ``_foreign_key_checks_skipped``).
    """
    _clear_pointers(model, ids, seen={model})
    rows = model._base_manager.filter(pk__in=ids)
    if locked and connections[rows.db].vendor == "postgresql" and not _pointed_at_from_elsewhere(model, ids):
        with _foreign_key_checks_skipped(rows.db):
            _raw_delete(rows)
    else:
        _raw_delete(rows)


def _clear_pointers(model, ids, seen):
    for f in _pointers_to(model):
        child = f.model
        # The base manager: staged rows (an import still being written) go too.
        rows = child._base_manager.filter(**{f"{f.name}__in": ids})
        if child is model:
            continue  # the same table (Record.duplicate_of): its rows go in the same statement
        if f.remote_field.on_delete is models.DO_NOTHING:
            continue
        if f.remote_field.on_delete is models.SET_NULL:
            rows.update(**{f.name: None})
            continue
        if child not in seen:
            _clear_pointers(child, rows.values("pk"), seen | {child})
        _raw_delete(rows)


def _pointed_at_from_elsewhere(model, ids):
    """Whether a row of ``model`` outside ``ids`` points at one inside (a self-reference such as
    Record.duplicate_of across the set's edge): then the database's own check must stay on."""
    for f in _pointers_to(model):
        if f.model is model and model._base_manager.filter(**{f"{f.name}__in": ids}).exclude(pk__in=ids).exists():
            return True
    return False


# Turns off PostgreSQL's foreign-key triggers (they are "origin" triggers) for this transaction.
# Allowed to superusers and, from PostgreSQL 15, to a role granted it:
#     GRANT SET ON PARAMETER session_replication_role TO sieve;
_SKIP_CHECKS = "SET LOCAL session_replication_role = replica"
_RESTORE_CHECKS = "SET LOCAL session_replication_role = origin"


@contextmanager
def _foreign_key_checks_skipped(using):
    """Run the statements inside without PostgreSQL's foreign-key triggers when the database role
    may (else with them: correct, only slower). Only for a DELETE whose rows the caller has locked
    and whose pointing rows are gone (``_purge``)."""
    connection = connections[using]
    try:
        with (
            transaction.atomic(using=using),
            connection.cursor() as cursor,
        ):  # a savepoint: a refusal leaves the transaction usable
            cursor.execute(_SKIP_CHECKS)
    except DatabaseError as e:
        log.info("Deleting with PostgreSQL's foreign-key checks (the role may not skip them: %s)", e)
        yield
        return
    yield
    # Not reached when the body failed: then the transaction (or savepoint) rolls back, and the
    # setting with it.
    with connection.cursor() as cursor:
        cursor.execute(_RESTORE_CHECKS)


def _raw_delete(queryset):
    # One DELETE statement: no instances loaded, no signals, no Collector (which would load every
    # record of a 100,000-record review to cascade by hand).
    return queryset._raw_delete(queryset.db)


# Undoing an import ---------------------------------------------------------------------------


@dataclass
class UndoPlan:
    """What undoing ``search`` would do, and why it may not."""

    search: Search
    records: int = 0
    duplicates: int = 0  # of ``records``, those that were duplicates of another record
    relinked: int = 0  # records of other imports linked to this one's, moved to another twin
    restored: int = 0  # records of other imports that become originals again
    work: dict = field(default_factory=dict)  # "decisions" -> records of this import (or twins) having them
    reason: str = ""  # why it is refused ("" when allowed)

    @property
    def allowed(self):
        return not self.reason


def plan_undo(search):
    """What undoing ``search`` would remove and change (read without locks: for the confirmation page)."""
    return _plan(search, *_links(search))


def _links(search):
    """(pks of the search's records, {pk: duplicate_of} for them, {twin pk: new duplicate_of}).

    A twin is a record of another import linked as a duplicate of one of this import's records. It
    is moved to the original that record led to, when that stays; otherwise the oldest twin of the
    group becomes the original again and the others are linked to it.
    """
    own = dict(Record.objects.filter(search=search).values_list("pk", "duplicate_of"))
    twins = defaultdict(list)
    for pk, target in _twins(search).values_list("pk", "duplicate_of"):
        twins[target].append(pk)
    moves = {}
    for target, group in twins.items():
        survivor, seen = own[target], {target}
        while survivor in own and survivor not in seen:  # a chain through this import's records
            seen.add(survivor)
            survivor = own[survivor]
        group.sort()
        if survivor is None or survivor in own:
            survivor = group.pop(0)
            moves[survivor] = None
        moves.update(dict.fromkeys(group, survivor))
    return set(own), own, moves


def _twins(search):
    return Record.objects.filter(duplicate_of__in=_own(search)).exclude(search=search)


def _own(search):
    return Record.objects.filter(search=search).values("pk")


def _touched(search):
    """The search's records and their twins: the rows an undo deletes or changes."""
    return Record.objects.filter(Q(search=search) | Q(duplicate_of__in=_own(search)))


def _plan(search, pks, own, moves):
    plan = UndoPlan(
        search=search,
        records=len(pks),
        duplicates=sum(1 for target in own.values() if target is not None),
        relinked=sum(1 for target in moves.values() if target is not None),
        restored=sum(1 for target in moves.values() if target is None),
    )
    # Twins that stay duplicates are checked too (a rare case: only when this import's record was
    # itself linked onwards), which keeps the check one query per table however big the import.
    plan.work = _work_on(_touched(search).values("pk")) if pks or moves else {}
    if search.undone_at:
        plan.reason = f"This {search.get_kind_display().lower()} was already undone on {search.undone_at:%Y-%m-%d}."
    elif plan.work:
        found = ", ".join(f"{n:,} with {what}" for what, n in plan.work.items())
        plan.reason = (
            f"Records of this {search.get_kind_display().lower()} (or records of other imports that would "
            f"become originals again) have been worked on: {found}. Undo is only possible before anyone "
            "screens, tags, annotates or extracts them."
        )
    return plan


def _work_on(pks):
    """{what: how many of the records ``pks`` (a subquery) have it}: the team's work an undo would lose."""
    work = {}
    screened = Record.objects.filter(pk__in=pks).exclude(ta_outcome="", ft_outcome="").count()
    if screened:
        work["a screening outcome"] = screened
    for f in _pointers_to(Record):
        if f.model in (Record, Event) or f.model._meta.label_lower in _DISPOSABLE:
            continue
        n = f.model._default_manager.filter(**{f"{f.name}__in": pks}).values(f.attname).distinct().count()
        if n:
            work[str(f.model._meta.verbose_name_plural)] = n
    return work


def undo_import(search, *, user):
    """Remove ``search``'s records and their duplicate links; keep the search, marked undone.

    Raises RemovalRefused (saying why) when it was undone already or its records (or records that
    would become originals again) have decisions, outcomes, tags, notes, extraction values or any
    other work on them. The check and the deletion hold the records' row locks (the lock a decision
    takes first), so a vote cast at the same moment either lands before and refuses the undo, or
    waits and finds its record gone.
    """
    with transaction.atomic():
        search = Search.objects.select_for_update().get(pk=search.pk)
        _lock(search)
        # Read under the locks: a merge or an import may have linked records meanwhile.
        pks, own, moves = _links(search)
        plan = _plan(search, pks, own, moves)
        if not plan.allowed:
            raise RemovalRefused(plan.reason)
        _relink(moves)
        # The audit trail keeps the events about these records (merges): detached, never deleted.
        Event.objects.filter(record__in=_own(search)).update(record=None)
        _purge(Record, _own(search), locked=True)  # locked by _lock above
        Search.objects.filter(pk=search.pk).update(undone_at=timezone.now(), undone_by=user, undone_records=len(pks))
        search.refresh_from_db()
        Event.objects.create(
            review_id=search.review_id,
            actor=user,
            kind=Event.Kind.UNDO,
            detail={
                "search": search.pk,
                "kind": search.kind,
                "source": search.source,
                "filename": search.filename,
                "query": search.query,
                "records": plan.records,
                "duplicates": plan.duplicates,
                "relinked": plan.relinked,
                "restored": plan.restored,
            },
        )
        if plan.restored:
            # Records that were duplicates are to be screened again: the stage is open once more.
            Review.objects.get(pk=search.review_id).reblind([Stage.TITLE_ABSTRACT], reason="import undone")
    return plan


def _lock(search):
    # One statement in pk order, like screening's lock_records, so two lockers never wait on each other.
    list(_touched(search).select_for_update().order_by("pk").values_list("pk", flat=True))


def _relink(moves):
    by_target = defaultdict(list)
    for pk, target in moves.items():
        by_target[target].append(pk)
    for target, group in by_target.items():
        changes = {"duplicate_of": target}
        if target is None:
            changes["duplicate_reason"] = ""
        for start in range(0, len(group), 5000):  # within SQLite's limit on query parameters
            Record.objects.filter(pk__in=group[start : start + 5000]).update(**changes)


# Deleting a review ---------------------------------------------------------------------------


def delete_review(review, *, confirmation):
    """Delete ``review`` and everything in it (records, searches, decisions, the audit trail...),
    in one transaction. ``confirmation`` must be the review's slug or title, as typed."""
    check_confirmation(review, confirmation)
    counts = review_counts(review)
    with transaction.atomic():
        # Every record's lock (staged ones too), then the review's: the order every writer takes
        # them in (a vote locks its record, then touches the review), so a vote, tag or note being
        # added finishes first, or waits and then finds its record gone.
        records = Record._base_manager.filter(review_id=review.pk)
        _lock_records(records)
        Review.objects.select_for_update().filter(pk=review.pk).values_list("pk", flat=True).get()
        # Records an import made visible in between: no more can come now (a row pointing at the
        # review waits for its lock, and then fails). The records go first, then the rest.
        _lock_records(records)
        _purge(Record, records.values("pk"), locked=True)
        _purge(Review, Review.objects.filter(pk=review.pk).values("pk"))
        transaction.on_commit(partial(_after_delete, review.pk))
    return counts


def discard_staged_review(review_pk, *, chunk=2000):
    """Remove a review file import that never landed (transfer/importing.py): the staged review
    ``review_pk`` and every row written under it. The records go ``chunk`` at a time, each chunk
    with the rows on it in a short transaction of its own (others keep writing, even on SQLite),
    then the review with the rest. Each transaction first checks, under the review row's lock,
    that it is still staged: a review that landed meanwhile is left alone. Returns True when the
    review is gone."""
    staged = Review.all_objects.filter(pk=review_pk, staged_at__isnull=False)
    records = Record._base_manager.filter(review_id=review_pk)
    with transaction.atomic():
        if not _still_staged(staged):
            return False
        # Marked as going: its import, should its process still be alive, can no longer land it
        # nor write another chunk (transfer/importing.py checks the mark).
        staged.update(staged_at=DISCARDING)
        # Links inside the review would make each chunk's delete touch the rows of the next.
        records.filter(duplicate_of__isnull=False).update(duplicate_of=None)
    while pks := list(records.order_by("pk").values_list("pk", flat=True)[:chunk]):
        with transaction.atomic():
            if not _still_staged(staged):
                return False
            _purge(Record, Record._base_manager.filter(pk__in=pks).values("pk"))
    with transaction.atomic():
        if not _still_staged(staged):
            return False
        _purge(Review, staged.values("pk"))
    return True


def _still_staged(staged):
    # The lock the landing's UPDATE of the review row waits for (and, on SQLite, the write lock).
    return staged.select_for_update().values_list("pk", flat=True).first() is not None


def _lock_records(records):
    # One statement in pk order, like screening's lock_records, so two lockers never wait on each other.
    list(records.select_for_update().order_by("pk").values_list("pk", flat=True))


def check_confirmation(review, confirmation):
    """Raise RemovalRefused unless ``confirmation`` is the review's slug or title, as typed."""
    if (confirmation or "").strip() not in (review.slug, review.title.strip()):
        raise RemovalRefused(
            f"The confirmation did not match: type the review's short name “{review.slug}” to delete it."
        )


def review_counts(review):
    """How many records, searches, members and audit events ``review`` holds (for the confirmation)."""
    return {
        "records": Record.objects.filter(review=review).count(),
        "searches": Search.objects.filter(review=review).count(),
        "members": review.memberships.count(),
        "events": Event.objects.filter(review=review).count(),
    }


def _after_delete(review_pk):
    for callback in _ON_REVIEW_DELETED:
        try:
            callback(review_pk)
        except Exception:  # the review is gone whatever a cleanup does
            log.exception("Cleaning up after deleting review %s failed", review_pk)
