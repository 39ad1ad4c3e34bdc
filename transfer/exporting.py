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

from review.models import FullText
from transfer.fileformat import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    SECTIONS,
    SIEVE_VERSION,
    USER_FIELDS,
    USERS,
    fulltext_member,
    section_fields,
)

CHUNK = 2000
COPY_CHUNK = 1024 * 1024  # a PDF is copied into the archive a megabyte at a time
PROGRESS_EVERY = 5000  # rows between two progress calls


class _Encoder(DjangoJSONEncoder):
    # DjangoJSONEncoder cuts times to milliseconds; the file keeps them whole (the audit trail's order).
    def default(self, o):
        if isinstance(o, datetime.datetime | datetime.time):
            return o.isoformat()
        return super().default(o)


class ExportError(Exception):
    """A review that cannot be written whole (a full text missing from the storage), in words."""


@dataclass
class ExportResult:
    counts: dict = field(default_factory=dict)
    pdfs: int = 0  # full texts' PDFs written
    pdf_bytes: int = 0


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


def _write_lines(archive, name, lines, written=None):
    """Write ``lines`` (dicts) to ``name`` in the archive; returns (row count, sha256).
    ``written(n)`` is told of every chunk of ``n`` rows written."""
    digest, count = hashlib.sha256(), 0
    encode = _Encoder(ensure_ascii=False).encode  # one encoder for every row
    buffer = []
    with archive.open(name, "w", force_zip64=True) as out:
        for row in lines:
            line = (encode(row) + "\n").encode()
            digest.update(line)
            buffer.append(line)
            count += 1
            if len(buffer) >= CHUNK:
                out.write(b"".join(buffer))
                if written:
                    written(len(buffer))
                buffer.clear()
        out.write(b"".join(buffer))
        if written:
            written(len(buffer))
    return count, digest.hexdigest()


class _Progress:
    """Calls ``progress(rows written, rows to write)`` every few thousand rows, and at the end."""

    def __init__(self, progress, total):
        self.progress, self.total, self.done, self.reported = progress, total, 0, 0

    def __call__(self, n):
        self.done += n
        if self.progress and self.done - self.reported >= PROGRESS_EVERY:
            self.reported = self.done
            self.progress(self.done, self.total)

    def finish(self):
        if self.progress and (self.reported != self.done or not self.done):  # not twice the same
            self.progress(self.done, max(self.total, self.done))


def _rows(section, review, usernames, pdfs):
    """The section's rows. A full text's ``file`` (its name in this server's storage) becomes the
    archive member its PDF is written to; the PDFs to write are appended to ``pdfs``."""
    model = section.model_class()
    fields = section_fields(model)
    user_fks = {f.attname for f in fields if _is_user_fk(f)}
    names = ["pk"] + [f.attname for f in fields]
    keys = ["id"] + [f.name for f in fields]
    query = _scoped(section, review).order_by("pk").values_list(*names)
    for values in query.iterator(chunk_size=CHUNK):
        row = {}
        for key, name, value in zip(keys, names, values):
            row[key] = usernames[value] if name in user_fks and value is not None else value
        if model is FullText and row["file"]:
            pdfs.append((row["record"], row["file"], row["sha256"], row["filename"]))
            row["file"] = fulltext_member(row["record"])
        yield row


def _write_pdfs(archive, pdfs, result):
    """Copy each full text's PDF from the storage into the archive (stored as is: a PDF is
    compressed already), a chunk at a time, checking it is the file its row describes."""
    storage = FullText._meta.get_field("file").storage
    for record_id, stored, sha256, filename in pdfs:
        member = zipfile.ZipInfo(fulltext_member(record_id), date_time=timezone.now().timetuple()[:6])
        member.compress_type = zipfile.ZIP_STORED
        digest = hashlib.sha256()
        try:
            with storage.open(stored, "rb") as pdf, archive.open(member, "w", force_zip64=True) as out:
                while chunk := pdf.read(COPY_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    result.pdf_bytes += len(chunk)
        except FileNotFoundError:
            raise ExportError(
                f"The PDF of record #{record_id} ({filename}) is missing from the server's storage: if it was "
                "replaced or removed while the export ran, export again; else attach it again or remove it on "
                "the record's page, then export again."
            ) from None
        if digest.hexdigest() != sha256:
            raise ExportError(
                f"The PDF of record #{record_id} ({filename}) in the server's storage is not the one attached "
                "(its SHA-256 differs): attach it again or remove it on the record's page, then export again."
            )
        result.pdfs += 1


def _snapshot(outermost):
    # One consistent picture of the review while others keep screening (SQLite's read
    # transaction is a snapshot already). Only the transaction's first statement may set it: inside
    # a caller's transaction, the caller chose.
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        if outermost:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        # Every row is read: plan the (server-side) cursors for all of them, not the first tenth
        # (whose index-by-index plans made a 20,000-record export take 43 s).
        cursor.execute("SET LOCAL cursor_tuple_fraction = 1")


def _scoped(section, review):
    return section.model_class().objects.filter(**{section.scope: review.pk})


def export_review(*, review, out, progress=None):
    """Write ``review`` to ``out`` (a path or a writable binary file) as a review file.

    ``progress``, if given, is called as ``progress(rows written, rows to write)`` every few
    thousand rows and once at the end.
    """
    result = ExportResult()
    outermost = not connection.in_atomic_block
    with transaction.atomic(), zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        _snapshot(outermost)
        users = get_user_model().objects.filter(pk__in=_user_ids(review)).order_by("pk")
        usernames = dict(users.values_list("pk", "username"))
        # Counted in the same snapshot as the rows are read: the total is exact.
        written = _Progress(progress, sum(_scoped(section, review).count() for section in SECTIONS) if progress else 0)
        sections, pdfs = {}, []
        count, digest = _write_lines(archive, f"{USERS}.jsonl", users.values(*USER_FIELDS).iterator())
        sections[USERS] = {"rows": count, "sha256": digest}
        for section in SECTIONS:
            count, digest = _write_lines(archive, section.filename, _rows(section, review, usernames, pdfs), written)
            sections[section.name] = {"rows": count, "sha256": digest}
        # After the rows (a zip writes one member at a time); one PDF in memory a chunk at a time.
        _write_pdfs(archive, pdfs, result)
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
    written.finish()
    result.counts = {name: s["rows"] for name, s in sections.items()}
    return result
