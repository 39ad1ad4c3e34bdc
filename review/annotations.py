"""Tags and notes on records.

Both are shared with the whole team and never blinded (a note on a decision is the blinded
kind). Every change goes into the audit trail as an Event: TAG with ``{"added": name}``,
``{"removed": name}``, ``{"renamed": old, "to": new}`` or ``{"deleted": name}``; NOTE with
``{"text": text, "note_id": pk}``.
"""

from django.db import IntegrityError, transaction

from review.models import Event, RecordNote, RecordTag, Tag

TAG_MAX_LENGTH = Tag._meta.get_field("name").max_length
NOTE_MAX_LENGTH = 5000


class AnnotationError(ValueError):
    """A tag or note that cannot be saved; the message says why."""


def clean_tag_name(name):
    """``name`` trimmed, inner runs of whitespace made single spaces; AnnotationError if unusable."""
    name = " ".join((name or "").split())
    if not name:
        raise AnnotationError("A tag needs a name.")
    if len(name) > TAG_MAX_LENGTH:
        raise AnnotationError(f"A tag name has at most {TAG_MAX_LENGTH} characters (this one has {len(name)}).")
    return name


def _find_tag(review, name):
    # Case-insensitive: "Animal study" reuses an existing "animal study" rather than adding a twin.
    return Tag.objects.filter(review=review, name__iexact=name).order_by("pk").first()


def _tag_event(tag, user, detail, record=None):
    return Event(review_id=tag.review_id, record=record, actor=user, kind=Event.Kind.TAG, detail=detail)


def add_tag(record, name, *, user):
    """Put the tag called ``name`` on ``record``, creating it in the review if it is new.

    An existing tag whose name differs only in case is reused. Returns the Tag; logs an event
    only when the record did not have the tag yet.
    """
    name = clean_tag_name(name)
    with transaction.atomic():
        tag = _locked_tag_named(record.review_id, name)
        _, created = RecordTag.objects.get_or_create(record=record, tag=tag, defaults={"added_by": user})
        if created:
            _tag_event(tag, user, {"added": tag.name}, record).save()
    return tag


def _lock_tags(*tags):
    """{pk: tag read again} for those of ``tags`` that still exist, their rows locked in pk order.

    Adding, renaming (merging) and deleting a tag all hold its lock: a link is never made to a
    tag that a merge or a delete is taking away at the same moment (its foreign key would fail).
    """
    pks = sorted({t.pk for t in tags if t is not None})
    return {t.pk: t for t in Tag.objects.select_for_update().filter(pk__in=pks).order_by("pk")}


def _locked_tag_named(review_id, name):
    """The review's tag called ``name`` (any case), made if missing, locked until the transaction ends."""
    for _ in range(3):
        tag = _find_tag(review_id, name)
        if tag is None:
            try:
                with transaction.atomic():
                    tag = Tag.objects.create(review_id=review_id, name=name)
            except IntegrityError:  # somebody created it a moment ago
                continue
        tag = _lock_tags(tag).get(tag.pk)
        # Gone or renamed while we waited for the lock (merged into another, deleted): look again.
        if tag is not None and tag.name.casefold() == name.casefold():
            return tag
    raise AnnotationError(f"The tag {name!r} was being renamed or deleted at the same moment; try again.")


def remove_tag(record, tag, *, user):
    """Take ``tag`` off ``record`` (the tag stays in the review). Returns whether it was there."""
    if tag.review_id != record.review_id:
        raise AnnotationError(f"Tag {tag.name!r} belongs to another review.")
    with transaction.atomic():
        deleted, _ = RecordTag.objects.filter(record=record, tag=tag).delete()
        if deleted:
            _tag_event(tag, user, {"removed": tag.name}, record).save()
    return bool(deleted)


def add_note(record, text, *, user):
    """Add a note for the whole team to ``record``. Returns the RecordNote."""
    text = (text or "").strip()
    if not text:
        raise AnnotationError("A note needs some text.")
    if len(text) > NOTE_MAX_LENGTH:
        raise AnnotationError(f"A note has at most {NOTE_MAX_LENGTH} characters (this one has {len(text)}).")
    with transaction.atomic():
        note = RecordNote.objects.create(record=record, author=user, text=text)
        Event.objects.create(
            review_id=record.review_id,
            record=record,
            actor=user,
            kind=Event.Kind.NOTE,
            detail={"text": text, "note_id": note.pk},
        )
    return note


def rename_tag(tag, name, *, user):
    """Rename ``tag``; a name another tag already has (in any case) merges the two into that one.

    Returns the tag that carries the name afterwards.
    """
    name = clean_tag_name(name)
    with transaction.atomic():
        for _ in range(3):
            other = Tag.objects.filter(review_id=tag.review_id, name__iexact=name).exclude(pk=tag.pk).first()
            locked = _lock_tags(tag, other)
            if tag.pk not in locked:
                raise AnnotationError(f"The tag {tag.name!r} was deleted or merged a moment ago.")
            tag = locked[tag.pk]
            if other is not None:
                other = locked.get(other.pk)
                if other is None or other.name.casefold() != name.casefold():
                    continue  # renamed or deleted while we waited: look again
                return _merge_tag(tag, other, user)
            old = tag.name
            if old == name:
                return tag
            try:
                with transaction.atomic():
                    tag.name = name
                    tag.save(update_fields=["name"])
            except IntegrityError:  # another tag took the name a moment ago: merge into it instead
                tag.name = old
                continue
            _tag_event(tag, user, {"renamed": old, "to": name}).save()
            return tag
    raise AnnotationError(f"The tags were changing while {tag.name!r} was renamed; try again.")


def _merge_tag(tag, other, user):
    # Records with both keep one link; the others move over, then the old tag goes. Both tags are
    # locked, so no link to either is being added meanwhile.
    moving = RecordTag.objects.filter(tag=tag).exclude(record__record_tags__tag=other)
    moved = moving.update(tag=other)
    tag.delete()
    _tag_event(other, user, {"renamed": tag.name, "to": other.name, "merged": True, "records": moved}).save()
    return other


def delete_tag(tag, *, user):
    """Delete ``tag`` from the review and every record; each record's history says it was removed."""
    with transaction.atomic():
        if not _lock_tags(tag):
            return 0  # deleted or merged a moment ago
        record_ids = list(RecordTag.objects.filter(tag=tag).values_list("record_id", flat=True))
        Event.objects.bulk_create(
            [
                Event(
                    review_id=tag.review_id,
                    record_id=pk,
                    actor=user,
                    kind=Event.Kind.TAG,
                    detail={"removed": tag.name, "tag_deleted": True},
                )
                for pk in record_ids
            ],
            batch_size=1000,
        )
        _tag_event(tag, user, {"deleted": tag.name, "records": len(record_ids)}).save()
        tag.delete()
    return len(record_ids)


def tag_records(review, record_ids, name, *, user, batch=1000):
    """Put the tag called ``name`` on each of ``record_ids`` (records of ``review``), as add_tag does
    one at a time: the tag made if new, one audit event per record that did not have it yet.

    Returns (tag, number of records newly tagged). Atomic; the tag's row is locked throughout.
    """
    name = clean_tag_name(name)
    record_ids = sorted(set(record_ids))
    added = 0
    with transaction.atomic():
        tag = _locked_tag_named(review.pk, name)
        for start in range(0, len(record_ids), batch):
            chunk = record_ids[start : start + batch]
            had = set(RecordTag.objects.filter(tag=tag, record_id__in=chunk).values_list("record_id", flat=True))
            new = [pk for pk in chunk if pk not in had]
            RecordTag.objects.bulk_create([RecordTag(record_id=pk, tag=tag, added_by=user) for pk in new])
            Event.objects.bulk_create(
                [
                    Event(
                        review_id=review.pk, record_id=pk, actor=user, kind=Event.Kind.TAG, detail={"added": tag.name}
                    )
                    for pk in new
                ]
            )
            added += len(new)
    return tag, added
