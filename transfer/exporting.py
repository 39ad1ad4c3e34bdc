"""Write a whole review to a review file (transfer/fileformat.py), streaming row by row."""

import datetime
import hashlib
import json
import zipfile
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from transfer.fileformat import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    SECTIONS,
    SIEVE_VERSION,
    USER_FIELDS,
    USERS,
    section_fields,
)

CHUNK = 2000


class _Encoder(DjangoJSONEncoder):
    # DjangoJSONEncoder cuts times to milliseconds; the file keeps them whole (the audit trail's order).
    def default(self, o):
        if isinstance(o, datetime.datetime | datetime.time):
            return o.isoformat()
        return super().default(o)


@dataclass
class ExportResult:
    counts: dict = field(default_factory=dict)


def _is_user_fk(f):
    return f.is_relation and f.related_model is get_user_model()


def _user_ids(review):
    """Every account any row of the review refers to."""
    ids = set()
    for section in SECTIONS:
        model = section.model_class()
        rows = model.objects.filter(**{section.scope: review.pk})
        for f in section_fields(model):
            if _is_user_fk(f):
                ids.update(rows.exclude(**{f"{f.attname}__isnull": True}).values_list(f.attname, flat=True).distinct())
    return ids


def _write_lines(archive, name, lines):
    """Write ``lines`` (dicts) to ``name`` in the archive; returns (row count, sha256)."""
    digest, count = hashlib.sha256(), 0
    buffer = []
    with archive.open(name, "w", force_zip64=True) as out:
        for row in lines:
            line = (json.dumps(row, cls=_Encoder, ensure_ascii=False) + "\n").encode()
            digest.update(line)
            buffer.append(line)
            count += 1
            if len(buffer) >= CHUNK:
                out.write(b"".join(buffer))
                buffer.clear()
        out.write(b"".join(buffer))
    return count, digest.hexdigest()


def _rows(section, review, usernames):
    model = section.model_class()
    fields = section_fields(model)
    user_fks = {f.attname for f in fields if _is_user_fk(f)}
    names = ["pk"] + [f.attname for f in fields]
    keys = ["id"] + [f.name for f in fields]
    query = model.objects.filter(**{section.scope: review.pk}).order_by("pk").values_list(*names)
    for values in query.iterator(chunk_size=CHUNK):
        row = {}
        for key, name, value in zip(keys, names, values):
            row[key] = usernames[value] if name in user_fks and value is not None else value
        yield row


def _snapshot(outermost):
    # One consistent picture of the review while others keep screening (SQLite's read
    # transaction is a snapshot already). Only the transaction's first statement may set it: inside
    # a caller's transaction, the caller chose.
    if outermost and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


def export_review(*, review, out, progress=None):
    """Write ``review`` to ``out`` (a path or a writable binary file) as a review file."""
    result = ExportResult()
    outermost = not connection.in_atomic_block
    with transaction.atomic(), zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        _snapshot(outermost)
        users = get_user_model().objects.filter(pk__in=_user_ids(review)).order_by("pk")
        usernames = dict(users.values_list("pk", "username"))
        sections = {}
        count, digest = _write_lines(archive, f"{USERS}.jsonl", users.values(*USER_FIELDS).iterator())
        sections[USERS] = {"rows": count, "sha256": digest}
        for section in SECTIONS:
            count, digest = _write_lines(archive, section.filename, _rows(section, review, usernames))
            sections[section.name] = {"rows": count, "sha256": digest}
            if progress:
                progress(section.name, count)
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "sieve_version": SIEVE_VERSION,
            "created": timezone.now().isoformat(),
            "review": review.slug,
            "time_zone": settings.TIME_ZONE,
            "sections": sections,
        }
        archive.writestr(MANIFEST, json.dumps(manifest, indent=2))
    result.counts = {name: s["rows"] for name, s in sections.items()}
    return result
