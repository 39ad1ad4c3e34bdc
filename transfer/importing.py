"""Read a review file (transfer/fileformat.py) into a new review: all of it, or nothing.

The file is read section by section, line by line, and written in bulk inserts inside one
transaction; ids are remapped (only the maps of rows others refer to are kept in memory). A file
that is damaged, forged or from an unknown format raises TransferError naming the section and
line, and nothing is written.

People are matched to this server's accounts (see ``match_users``): by email address, then by
username; anyone not found gets a new inactive account without a password, which an
administrator activates (or merges) later.
"""

import hashlib
import json
import sqlite3
import zipfile
from dataclasses import dataclass, field
from functools import partial

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import DEFAULT_DB_ALIAS, DatabaseError, IntegrityError, connection, connections, models, transaction

from review.models import Event, Membership, Record, Review, Role
from transfer.fileformat import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    SECTIONS,
    USER_FIELDS,
    USERS,
    section_fields,
    section_file,
    upgrade_row,
)

BATCH = 1000  # rows per INSERT (fewer when a row has many columns: see _Table.batch)
PROGRESS_EVERY = 5000  # rows between two progress calls
# The longest row read (a record with a long abstract is a few tens of kB): a forged file with one
# endless line is refused without reading it into memory.
MAX_ROW = 16 * 1024 * 1024


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
    def __init__(self, archive, manifest, *, slug, owner, result, progress=None):
        self.archive, self.manifest, self.version = archive, manifest, manifest["version"]
        self.slug, self.owner, self.result = slug, owner, result
        self.user_model = get_user_model()
        self.users = {}
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
        users = _Reader(self.archive, self.manifest, USERS, f"{USERS}.jsonl")
        self.users = match_users(users, self.result)
        for section in SECTIONS:
            self.result.counts[section.name] = self.load_section(section)
        if self.progress and (self.reported != self.done or not self.done):  # not twice the same
            self.progress(self.done, self.total)
        if self.owner is not None:
            # The person importing through the web owns the copy they made.
            Membership.objects.update_or_create(
                review=self.result.review, user=self.owner, defaults={"role": Role.OWNER}
            )
        # The copy's audit trail goes on from the original's: this is where it moved.
        Event.objects.create(
            review=self.result.review,
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
        for n, row in self.rows(section):
            where = f"{section.filename}, line {n}"
            old_id = row.pop("id", None)
            if not isinstance(old_id, int) or (ids is not None and old_id in ids):
                raise TransferError(f"{where}: a missing or repeated id.")
            unknown = row.keys() - table.by_name.keys()
            if unknown:
                raise TransferError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}.")
            if model is Review:
                self.check_slug(row)
            if model is Record and row.get("duplicate_of") is not None:
                links.append((old_id, row["duplicate_of"], where))
            pending.append((old_id, self.values(table, row, where)))
            count += 1
            if len(pending) >= table.batch:
                self.flush(table, pending, ids)
        self.flush(table, pending, ids)
        if model is Review:
            if count != 1:
                raise TransferError(f"The review file must hold exactly one review ({count} found).")
            self.result.review = Review.objects.get(pk=next(iter(self.ids[Review].values())))
        if links:
            self.link_duplicates(links)
        return count

    def check_slug(self, row):
        row["slug"] = self.slug or row.get("slug")
        try:
            validate_slug(row["slug"] or "")
        except ValidationError:
            raise TransferError(f"The review's slug {row['slug']!r} is not a valid slug.") from None
        if Review.objects.filter(slug=row["slug"]).exists():
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
        if not pending:
            return
        new_ids = table.insert([values for _, values in pending])
        if ids is not None:
            ids.update(zip((old for old, _ in pending), new_ids, strict=True))
        self.done += len(pending)
        pending.clear()
        if self.progress and self.done - self.reported >= PROGRESS_EVERY:
            self.reported = self.done
            self.progress(self.done, self.total)

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
        with connection.cursor() as cursor:
            for start in range(0, len(pairs), BATCH):
                cursor.executemany(sql, pairs[start : start + BATCH])


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


def import_review(*, source, slug=None, owner=None, progress=None):
    """Import the review file ``source`` (a path or a readable binary file) as a new review.

    ``slug`` replaces the file's; ``owner`` (the web import's user) becomes the copy's owner.
    ``progress``, if given, is called as ``progress(rows written, rows in the file)`` every few
    thousand rows and once at the end (the rows are written inside the import's transaction: a
    job's progress is best written on another connection, or after).
    Raises TransferError, with nothing written, when the file cannot be imported whole.
    """
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as e:
        raise TransferError(f"This is not a Sieve review file (not a zip archive: {e}).") from None
    with archive:
        manifest = read_manifest(archive)
        result = ImportResult(review=None)
        try:
            with transaction.atomic():
                _Loader(archive, manifest, slug=slug, owner=owner, result=result, progress=progress).load()
        except IntegrityError as e:
            raise TransferError(f"The review file contradicts itself or this server's data: {e}") from None
        except DatabaseError as e:
            raise TransferError(f"The review could not be written, and nothing of it was: {e}") from None
        except (ValueError, TypeError) as e:
            raise TransferError(f"The review file holds a value of the wrong kind: {e}") from None
    return result
