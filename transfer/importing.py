"""Read a review file (transfer/fileformat.py) into a new review: all of it, or nothing.

The file is read section by section, line by line, and written in bulk inserts, each batch in a
short transaction of its own, so others keep working (and logging in) during a long import, even on
SQLite; ids are remapped (only the maps of rows others refer to are kept in memory). Until the end
the new review is *staged* (``Review.staged_at``): no manager lists it, and its memberships are
written only by the one short transaction that makes it visible (``_Loader.land``). A file that is
damaged, forged or from an unknown format raises TransferError naming the section and line, and
what was staged is removed (``review.removal.discard_staged_review``); an import whose process was
killed is removed by the next import once it has written nothing for SIEVE_IMPORT_STALE_SECONDS
(or at once by its job's re-run), so its slug is not left taken.

People are matched to this server's accounts (see ``match_users``): by email address, then by
username; anyone not found gets a new inactive account without a password, which an
administrator activates (or merges) later.
"""

import hashlib
import json
import logging
import sqlite3
import zipfile
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from django.apps import apps as django_apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import DEFAULT_DB_ALIAS, DatabaseError, IntegrityError, connection, connections, models, transaction
from django.utils import timezone

from review import fulltexts
from review.models import Event, FullText, Membership, Record, Review, Role
from review.removal import DISCARDING, discard_staged_review
from transfer.fileformat import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    SECTIONS,
    USER_FIELDS,
    USERS,
    fulltext_member,
    section_fields,
    section_file,
    upgrade_row,
)

BATCH = 1000  # rows per INSERT (fewer when a row has many columns: see _Table.batch)
# Full texts are written once this many bytes of PDFs were stored since the last write, so a
# live import keeps saying it is alive (``touch``) while it copies gigabytes of PDFs.
PDF_BYTES_PER_BATCH = 64 * 1024 * 1024
PROGRESS_EVERY = 5000  # rows between two progress calls
# The longest row read (a record with a long abstract is a few tens of kB): a forged file with one
# endless line is refused without reading it into memory.
MAX_ROW = 16 * 1024 * 1024

log = logging.getLogger(__name__)


class TransferError(Exception):
    """A review file that cannot be imported; nothing was written."""


@dataclass
class ImportResult:
    review: Review
    counts: dict = field(default_factory=dict)
    users_matched_by_email: list = field(default_factory=list)
    users_matched_by_username: list = field(default_factory=list)
    users_created: list = field(default_factory=list)


def read_manifest(archive):
    try:
        manifest = json.loads(archive.read(MANIFEST))
    except KeyError:
        raise TransferError("This is not a Sieve review file: it has no manifest.json.") from None
    except (ValueError, zipfile.BadZipFile) as e:
        raise TransferError(f"The review file's manifest.json is damaged ({e}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise TransferError(f'This is not a Sieve review file: its manifest does not say format "{FORMAT}".')
    version = manifest.get("version")
    if not isinstance(version, int) or version < 0:
        raise TransferError(f"The review file's manifest gives no valid format version ({version!r}).")
    if version > FORMAT_VERSION:
        raise TransferError(
            f"The review file has format version {version}, newer than this Sieve reads ({FORMAT_VERSION}); "
            "update Sieve to import it."
        )
    if not isinstance(manifest.get("sections"), dict):
        raise TransferError("The review file's manifest lists no sections.")
    return manifest


class _Reader:
    """The rows of one section, checked against the manifest's count and checksum."""

    def __init__(self, archive, manifest, name, filename):
        self.archive, self.name, self.filename = archive, name, filename
        expected = manifest["sections"].get(name)
        if not isinstance(expected, dict):
            raise TransferError(f"The review file's manifest does not list the section {name!r}.")
        self.expected = expected

    def __iter__(self):
        digest, count = hashlib.sha256(), 0
        try:
            with self.archive.open(self.filename) as raw:
                while line := raw.readline(MAX_ROW + 1):
                    count += 1
                    if len(line) > MAX_ROW:
                        raise TransferError(f"{self.filename}, line {count}: the row is longer than any review holds.")
                    digest.update(line)
                    yield count, self._parse(count, line)
        except KeyError:
            raise TransferError(f"The review file has no {self.filename} (section {self.name!r}).") from None
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise TransferError(f"The review file is damaged in {self.filename}: {e}.") from None
        if count != self.expected.get("rows") or digest.hexdigest() != self.expected.get("sha256"):
            raise TransferError(
                f"Section {self.name!r} of the review file does not match its manifest (rows or checksum differ): "
                "the file was changed or cut short."
            )

    def _parse(self, n, line):
        try:
            row = json.loads(line)
        except ValueError as e:
            raise TransferError(f"{self.filename}, line {n}: not a JSON row ({e}).") from None
        if not isinstance(row, dict):
            raise TransferError(f"{self.filename}, line {n}: a row must be a JSON object.")
        return row


def _free_username(base):
    User = get_user_model()
    name, n = base, 1
    while User.objects.filter(username=name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def match_users(rows, result):
    """{username in the file: this server's user}: the account with the same email address (if
    exactly one), else the one with the same username when neither has an email address that
    differs, else a new inactive account (a suffixed username when the name is taken)."""
    User = get_user_model()
    users = {}
    for n, row in rows:
        username, email = str(row.get("username") or ""), str(row.get("email") or "")
        if not username or username in users:
            raise TransferError(f"users.jsonl, line {n}: a missing or repeated username.")
        by_email = list(User.objects.filter(email__iexact=email)[:2]) if email else []
        same_name = User.objects.filter(username=username).first()
        if len(by_email) == 1:
            users[username] = by_email[0]
            result.users_matched_by_email.append(username)
        elif same_name and not (email and same_name.email and same_name.email.lower() != email.lower()):
            users[username] = same_name
            result.users_matched_by_username.append(username)
        else:
            user = User(
                username=_free_username(username),
                email=email,
                is_active=False,
                **{k: str(row.get(k) or "") for k in USER_FIELDS if k not in ("username", "email")},
            )
            user.set_unusable_password()
            try:
                user.full_clean(exclude=["password"])
            except ValidationError as e:
                raise TransferError(f"users.jsonl, line {n}: {'; '.join(e.messages)}") from None
            user.save()
            users[username] = user
            result.users_created.append(user.username)
    return users


class _Loader:
    """Writes one review file as a staged review, batch by batch, then lands it (``land``).

    ``staged(review_pk)`` is called in the transaction that writes the review's row (a job keeps
    the id, for its re-run to remove); ``landing()`` first thing in the landing's transaction
    (a job checks there that it was not re-run meanwhile: raising stops the landing)."""

    def __init__(self, archive, manifest, *, slug, owner, result, progress=None, staged=None, landing=None):
        self.archive, self.manifest, self.version = archive, manifest, manifest["version"]
        self.slug, self.owner, self.result = slug, owner, result
        self.staged, self.landing = staged, landing
        self.user_model = get_user_model()
        self.users = {}
        self.review_pk = None  # the staged review, once its row is written
        self.stored = []  # the PDFs this import stored (removed if it fails)
        self.pdf_bytes = 0  # bytes of PDFs stored since the section's rows were last written
        self.memberships = None  # (table, rows): written by the landing (a membership grants access)
        # Rows written, of the rows the manifest announces (checked section by section as read).
        self.progress, self.done, self.reported = progress, 0, 0
        self.total = sum(
            s["rows"]
            for name, s in manifest["sections"].items()
            if name != USERS and isinstance(s, dict) and isinstance(s.get("rows"), int)
        )
        self.ids = {}  # model -> {id in the file: id here}, for the models other rows refer to
        self.referenced = {
            f.related_model
            for s in SECTIONS
            for f in section_fields(s.model_class())
            if f.is_relation and f.related_model is not get_user_model()
        }

    def rows(self, section):
        filename = section_file(self.version, section)
        name = filename.removesuffix(".jsonl")
        if self.version < FORMAT_VERSION and name not in self.manifest["sections"]:
            return  # a section added after the file's version: empty
        for n, row in _Reader(self.archive, self.manifest, name, filename):
            yield n, upgrade_row(self.version, section.name, row)

    def load(self):
        """Stage every section, then land the review (or raise, leaving what was staged)."""
        users = _Reader(self.archive, self.manifest, USERS, f"{USERS}.jsonl")
        with transaction.atomic():  # the accounts all or none (a bad users row stops the import)
            self.users = match_users(users, self.result)
        for section in SECTIONS:
            self.result.counts[section.name] = self.load_section(section)
        self.land()
        if self.progress and (self.reported != self.done or not self.done):  # not twice the same
            self.progress(self.done, self.total)

    def land(self):
        """Make the staged review visible with its members: the one short transaction at the end."""
        with transaction.atomic():
            if self.landing is not None:
                self.landing()
            # Its row's lock first: a discard (discard_staged_review) marks it while it removes it.
            landed = Review.all_objects.filter(pk=self.review_pk, staged_at__gt=DISCARDING).update(staged_at=None)
            if not landed:
                raise TransferError(_REMOVED)
            table, pending = self.memberships
            self.insert(table, pending, None)
            review = self.result.review
            review.staged_at = None
            if self.owner is not None:
                # The person importing through the web owns the copy they made.
                Membership.objects.update_or_create(review=review, user=self.owner, defaults={"role": Role.OWNER})
            # The copy's audit trail goes on from the original's: this is where it moved.
            Event.objects.create(
                review=review,
                actor=self.owner,
                kind=Event.Kind.SETTINGS,
                detail={
                    "action": "imported from a review file",
                    "from_review": str(self.manifest.get("review", "")),
                    "exported_at": str(self.manifest.get("created", "")),
                    "sieve_version": str(self.manifest.get("sieve_version", "")),
                    "format_version": self.version,
                    "accounts_created": self.result.users_created,
                },
            )

    def load_section(self, section):
        model = section.model_class()
        table = _Table(model, connections[DEFAULT_DB_ALIAS])  # the connection itself, not its proxy: read per value
        ids = self.ids.setdefault(model, {}) if model in self.referenced or model is Review else None
        pending, links, count = [], [], 0
        self.pdf_bytes = 0
        if model is Membership:
            self.memberships = (table, pending)  # held back for the landing (a few rows)
        for n, row in self.rows(section):
            where = f"{section.filename}, line {n}"
            old_id = row.pop("id", None)
            if not isinstance(old_id, int) or (ids is not None and old_id in ids):
                raise TransferError(f"{where}: a missing or repeated id.")
            unknown = row.keys() - table.by_name.keys()
            if unknown:
                raise TransferError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}.")
            if model is Review:
                if count:
                    raise TransferError("The review file must hold exactly one review (more found).")
                self.check_slug(row)
                row["staged_at"] = timezone.now()  # whatever the file says: staged
            if model is Record and row.get("duplicate_of") is not None:
                links.append((old_id, row["duplicate_of"], where))
            if model is FullText and row.get("file"):
                row["file"] = self.store_pdf(row, where)
            pending.append((old_id, self.values(table, row, where)))
            count += 1
            if (len(pending) >= table.batch or self.pdf_bytes >= PDF_BYTES_PER_BATCH) and model is not Membership:
                self.flush(table, pending, ids)
                self.pdf_bytes = 0
        if model is not Membership:
            self.flush(table, pending, ids)
        if model is Review:
            if count != 1:
                raise TransferError(f"The review file must hold exactly one review ({count} found).")
            self.result.review = Review.all_objects.filter(pk=self.review_pk).first()
            if self.result.review is None:
                raise TransferError(_REMOVED)
        if links:
            self.link_duplicates(links)
        return count

    def store_pdf(self, row, where):
        """Store the PDF of a fulltexts ``row`` under a new name (never one from the file), once
        checked (PDF, size limit, the row's SHA-256 and size); returns the stored name."""
        record = row.get("record")
        if not isinstance(record, int) or isinstance(record, bool):
            raise TransferError(f"{where}: record is missing.")
        member = fulltext_member(record)
        if row["file"] != member:
            raise TransferError(f"{where}: file must be {member!r} (the PDF of its record) or empty.")
        sha256, size = row.get("sha256"), row.get("size")
        if not isinstance(sha256, str) or not isinstance(size, int) or isinstance(size, bool):
            raise TransferError(f"{where}: a full text with a PDF needs its sha256 and size.")
        named = f"{where}: the PDF of record {record} in the file{self.record_title(record)}"
        try:
            info = self.archive.getinfo(member)
            fulltexts.check_size(member, info.file_size)  # before reading it (the zip says its size)
            with self.archive.open(info) as pdf:
                stored = fulltexts.store_checked_stream(self.review_pk, pdf, name=member, sha256=sha256, size=size)
        except KeyError:
            raise TransferError(f"{named}: the review file has no {member}.") from None
        except fulltexts.FullTextError as e:
            raise TransferError(f"{named}: {e}") from None
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise TransferError(f"{named}: the review file is damaged in {member}: {e}.") from None
        self.stored.append(stored)
        self.pdf_bytes += size
        return stored

    def record_title(self, record):
        # Only when a PDF is refused: the record's title, for the message.
        pk = self.ids.get(Record, {}).get(record)
        title = Record._base_manager.filter(pk=pk).values_list("title", flat=True).first() if pk else None
        return f" (“{title[:80]}”)" if title else ""

    def check_slug(self, row):
        row["slug"] = self.slug or row.get("slug")
        try:
            validate_slug(row["slug"] or "")
        except ValidationError:
            raise TransferError(f"The review's slug {row['slug']!r} is not a valid slug.") from None
        taken = list(Review.all_objects.filter(slug=row["slug"]).values_list("staged_at", flat=True))
        if taken and taken[0] is not None:
            raise TransferError(
                f"A review file is being imported under the slug {row['slug']!r} right now; "
                "import it under another slug, or later."
            )
        if taken:
            raise TransferError(
                f"A review with the slug {row['slug']!r} exists already here; import it under another slug."
            )

    def values(self, table, row, where):
        """The row's values for the database, in ``table.fields``' order, each checked as the model
        would check it; a field the row leaves out (a file from an older Sieve) gets its default."""
        values = []
        for f, prepare in zip(table.fields, table.prepare):
            if f.name not in row:
                if f.is_relation and not f.null:
                    raise TransferError(f"{where}: {f.name} is missing.")
                value = None if f.is_relation else f.get_default()
            elif f.is_relation:
                value = self.reference(f, row[f.name], where)
            else:
                value = table.clean(f, row[f.name], where)
            values.append(value if prepare is None or value is None else prepare(value))
        return values

    def reference(self, f, value, where):
        if value is None:
            if not f.null:
                raise TransferError(f"{where}: {f.name} is missing.")
            return None
        if f.related_model is self.user_model:
            if value not in self.users:
                raise TransferError(f"{where}: {f.name} names {value!r}, who is not in the file's users.")
            return self.users[value].pk
        if f.remote_field.model is f.model and f.model is Record:
            return None  # duplicate_of: linked once every record is in
        ids = self.ids.get(f.related_model, {})
        if value not in ids:
            raise TransferError(
                f"{where}: {f.name} refers to {f.related_model._meta.verbose_name} {value!r}, "
                "which the file does not hold (before this row)."
            )
        return ids[value]

    def flush(self, table, pending, ids):
        """Write ``pending`` in a short transaction of its own (the review's row with it, for a job
        to know: ``staged``), then report progress between transactions."""
        if not pending:
            return
        with transaction.atomic():
            self.insert(table, pending, ids)
            if table.model is Review:
                self.review_pk = next(iter(ids.values()))
                if self.staged is not None:
                    self.staged(self.review_pk)
            else:
                self.touch()
        if self.progress and self.done - self.reported >= PROGRESS_EVERY:
            self.reported = self.done
            self.progress(self.done, self.total)

    def insert(self, table, pending, ids):
        if not pending:
            return
        new_ids = table.insert([values for _, values in pending])
        if ids is not None:
            ids.update(zip((old for old, _ in pending), new_ids, strict=True))
        self.done += len(pending)
        pending.clear()

    def touch(self):
        # Still alive (an import silent for SIEVE_IMPORT_STALE_SECONDS counts as abandoned), and
        # not being removed: once a discard has marked the review, no more is written.
        if not Review.all_objects.filter(pk=self.review_pk, staged_at__gt=DISCARDING).update(staged_at=timezone.now()):
            raise TransferError(_REMOVED)

    def link_duplicates(self, links):
        # Ids only (not the records read, abstracts and all): a tenth of a big review is duplicates.
        ids = self.ids[Record]
        pairs = []
        for old_id, old, where in links:
            if old not in ids:
                raise TransferError(f"{where}: duplicate_of refers to record {old!r}, which the file does not hold.")
            pairs.append((ids[old], ids[old_id]))
        qn = connection.ops.quote_name
        sql = f"UPDATE {qn(Record._meta.db_table)} SET {qn('duplicate_of_id')} = %s WHERE {qn('id')} = %s"
        for start in range(0, len(pairs), BATCH):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(sql, pairs[start : start + BATCH])
                self.touch()


_REMOVED = (
    "The import was stopped and what it had written removed (its job was run again, or it was taken for "
    "abandoned after writing nothing for a long while); nothing of it was imported."
)


# Field classes whose checked Python value (``Field.to_python``) is what the database driver takes:
# no conversion per value. Any other field (dates, times, JSON, a subclass) goes through
# ``get_db_prep_save``, as in Django's own inserts.
_AS_IS = {
    models.AutoField,
    models.BigAutoField,
    models.BigIntegerField,
    models.BooleanField,
    models.CharField,
    models.EmailField,
    models.FloatField,
    models.ForeignKey,
    models.IntegerField,
    models.OneToOneField,
    models.PositiveBigIntegerField,
    models.PositiveIntegerField,
    models.PositiveSmallIntegerField,
    models.SlugField,
    models.SmallIntegerField,
    models.TextField,
    models.URLField,
}
# Text fields whose to_python leaves a str as it is.
_TEXT = {models.CharField, models.EmailField, models.SlugField, models.TextField, models.URLField}


class _Table:
    """How one section's rows are written: one multi-row INSERT ... RETURNING id per batch of
    rows, built once (Django's bulk_create spends most of a big import preparing each value of
    each row through the ORM; the values here are checked and converted once, up front)."""

    def __init__(self, model, connection):
        self.model, self.connection = model, connection
        self.fields = section_fields(model)
        self.by_name = {f.name: f for f in self.fields}
        self.prepare = [
            None if type(f) in _AS_IS else partial(f.get_db_prep_save, connection=connection) for f in self.fields
        ]
        self.choices = {f.name: {c for c, _ in f.flatchoices} for f in self.fields if f.choices}
        qn = connection.ops.quote_name
        columns = ", ".join(qn(f.column) for f in self.fields)
        self.head = f"INSERT INTO {qn(model._meta.db_table)} ({columns}) VALUES "
        self.row = "(" + ", ".join(["%s"] * len(self.fields)) + ")"
        self.tail = f" RETURNING {qn(model._meta.pk.column)}"
        self.batch = max(1, min(BATCH, _max_params(connection) // max(1, len(self.fields))))

    def clean(self, f, value, where):
        if value is None:
            if not f.null:
                raise TransferError(f"{where}: {f.name} may not be empty.")
            return None
        try:
            if not (type(value) is str and type(f) in _TEXT):
                value = f.to_python(value)
            if f.name in self.choices and value not in self.choices[f.name]:
                raise ValidationError(f"{value!r} is not one of its choices")
            f.run_validators(value)
        except ValidationError as e:
            raise TransferError(f"{where}: {f.name}: {'; '.join(e.messages)}") from None
        return value

    def insert(self, rows):
        """Insert ``rows`` (lists of database values); returns their new ids, in order."""
        params = [value for row in rows for value in row]
        if self.connection.vendor == "postgresql":
            return self._insert_postgresql(len(rows), params)
        sql = self.head + ", ".join([self.row] * len(rows)) + self.tail
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            # Rows come back in the order of the VALUES list, as Django's bulk_create assumes too.
            return [pk for (pk,) in cursor.fetchall()]

    def _insert_postgresql(self, n, params):
        # PostgreSQL's own $1, $2... placeholders, values sent apart from the statement (a raw
        # psycopg cursor, in the same transaction): psycopg's client-side binding would re-parse
        # each 30,000-placeholder statement (most of the import's time), and a full batch's
        # statement is the same each time, so the server prepares it once.
        import psycopg  # only on PostgreSQL (its driver)

        width = len(self.fields)
        values = ", ".join("(" + ", ".join(f"${i * width + j + 1}" for j in range(width)) + ")" for i in range(n))
        with psycopg.RawCursor(self.connection.connection) as cursor:
            cursor.execute(self.head + values + self.tail, params)
            return [pk for (pk,) in cursor.fetchall()]


def _max_params(connection):
    """The most query parameters one statement may take here."""
    if connection.vendor == "sqlite":
        try:
            return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        except AttributeError:  # Python < 3.11
            return connection.features.max_query_params
    return 65_535  # PostgreSQL's limit with server-side binding; none with client-side


def import_review(*, source, slug=None, owner=None, progress=None, staged=None, landing=None):
    """Import the review file ``source`` (a path or a readable binary file) as a new review.

    ``slug`` replaces the file's; ``owner`` (the web import's user) becomes the copy's owner.
    ``progress``, if given, is called as ``progress(rows written, rows in the file)`` every few
    thousand rows, between the import's transactions, and once at the end. ``staged`` and
    ``landing`` are a job's hooks (see ``_Loader``).
    Raises TransferError, with nothing left visible, when the file cannot be imported whole.
    """
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as e:
        raise TransferError(f"This is not a Sieve review file (not a zip archive: {e}).") from None
    with archive:
        manifest = read_manifest(archive)
        discard_abandoned_review_imports()
        result = ImportResult(review=None)
        loader = _Loader(
            archive, manifest, slug=slug, owner=owner, result=result, progress=progress, staged=staged, landing=landing
        )
        try:
            _load(loader)
        except BaseException:
            _discard_quietly(loader)
            raise
    return result


def _load(loader):
    try:
        loader.load()
    except IntegrityError as e:
        raise TransferError(f"The review file contradicts itself or this server's data: {e}") from None
    except DatabaseError as e:
        raise TransferError(f"The review could not be written, and nothing of it was kept: {e}") from None
    except (ValueError, TypeError) as e:
        raise TransferError(f"The review file holds a value of the wrong kind: {e}") from None


def _discard_quietly(loader):
    """Remove what a failed import staged (its PDFs too), and the accounts it created that nothing
    refers to."""
    try:
        if loader.review_pk is not None:
            discard_staged_import(loader.review_pk)
        # The PDFs it stored, unless the review landed after all (a failure after the landing).
        if loader.review_pk is None or not Review.all_objects.filter(pk=loader.review_pk).exists():
            fulltexts.delete_stored(loader.stored)
        _remove_unused_accounts(loader.result.users_created)
    except DatabaseError:
        # The connection itself failed: what was staged stays invisible, and the next import
        # removes it once it is stale (discard_abandoned_review_imports), PDFs and all.
        log.warning("Could not remove the staged review %s", loader.review_pk, exc_info=True)


def discard_staged_import(review_pk):
    """Remove the staged review ``review_pk`` of an import that never landed, and the PDFs stored
    for it (every one is in the review's folder of the storage, those whose rows were not written
    yet too). Returns True when the review is gone."""
    gone = discard_staged_review(review_pk)
    if gone:
        fulltexts.forget_review_files(review_pk)
    return gone


def _remove_unused_accounts(usernames):
    """Delete the inactive accounts a failed import created, unless a row anywhere (another import's
    meanwhile) refers to one: then it stays, as an inactive account without a password."""
    if not usernames:
        return
    User = get_user_model()
    pointers = [
        f
        for other in django_apps.get_models(include_auto_created=True)
        for f in other._meta.concrete_fields
        if f.many_to_one and f.remote_field.model is User
    ]
    with transaction.atomic():
        for user in User.objects.select_for_update().filter(username__in=usernames, is_active=False, last_login=None):
            if not any(f.model._base_manager.filter(**{f.attname: user.pk}).exists() for f in pointers):
                User.objects.filter(pk=user.pk).delete()


def discard_abandoned_review_imports(*, stale=None):
    """Remove the review file imports that stopped half-way: staged and silent for ``stale`` seconds
    (default: settings.SIEVE_IMPORT_STALE_SECONDS), their process killed or gone, and those a
    discard began. Returns how many were removed."""
    if stale is None:
        stale = settings.SIEVE_IMPORT_STALE_SECONDS
    cutoff = timezone.now() - timedelta(seconds=stale)
    abandoned = list(Review.all_objects.filter(staged_at__lt=cutoff).values_list("pk", flat=True))
    return sum(discard_staged_import(pk) for pk in abandoned)
