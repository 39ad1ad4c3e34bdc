"""Storing articles in a review: deduplication, bulk inserts, one transaction per import.

The one workflow that writes what the pure readers produce: ``import_file`` reads an export
file through ``review.importers``, ``run_search`` runs a PubMed search through the client in
``review.pubmed``; both store with ``import_articles``.
"""

import contextlib
import gc
import logging
import os
import pickle
import sqlite3
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection, models, transaction
from django.db.models import F, Func, Q, Value
from django.db.models.functions import JSONObject
from django.utils import timezone
from rapidfuzz import fuzz, process

from review import dedup, limits, pubmed, sources
from review.article import ImportFileError
from review.importers import HEAD, MAX_WARNINGS, read_articles, sniff
from review.importers.process import ParsedInProcess
from review.links import web_url
from review.models import Event, Record, Search, Stage
from review.signals import announce_records_added
from review.sources import SourceDetails

CHUNK = 2000

logger = logging.getLogger(__name__)


@dataclass
class ImportResult:
    search: Search
    added: int = 0
    duplicates: int = 0
    skipped: int = 0
    # Records with nothing to screen (no title, abstract, DOI or PMID), left out.
    empty: int = 0
    reasons: dict = field(default_factory=lambda: defaultdict(int))
    # The PMIDs a PubMed search skipped, by where the review already had them: "search", "file".
    skipped_pmids: dict = field(default_factory=lambda: defaultdict(list))
    # What the importer read but could not use ("record 3: '10 15' is not a year").
    warnings: list = field(default_factory=list)

    @property
    def unique(self):
        return self.added - self.duplicates

    def summary(self):
        parts = [
            f"{self.added} records added",
            f"{self.duplicates} duplicates linked",
            f"{self.skipped} already in the review skipped",
        ]
        if self.empty:
            parts.append(f"{self.empty} empty records left out")
        if self.warnings:
            parts.append(f"{len(self.warnings)} warnings")
        return f"{self.search.source}: " + ", ".join(parts)


class Original:
    """A canonical record in the index: its pk, or, until its chunk is saved, its unsaved row
    (``_record_row``)."""

    __slots__ = ("pk", "record")

    def __init__(self, pk=None, record=None):
        self.pk = pk
        self.record = record

    def saved(self):
        # Once saved only the pk is kept, so a big import does not hold every record in memory.
        self.pk, self.record = self.record["id"], None


class DuplicateIndex:
    """In-memory keys of a review's canonical records, for one import's worth of lookups."""

    def __init__(self):
        self.by_pmid = {}
        self.by_doi = {}
        self.by_title = defaultdict(list)
        # block -> ([title_norm, ...], [(original, cand), ...]) for fuzzy title matching
        self.by_block = defaultdict(lambda: ([], []))
        # The same, of the records without a DOI only. A candidate with a DOI reaches the title
        # checks only when no record in the index has its DOI, so every record with a DOI differs
        # from it (``dedup.DIFFERENT_DOI``): it is compared with the records without one. Without
        # this, a title many records share (one in a synthetic file, "Poster Presentations" in a
        # real one) made each lookup walk all of them: quadratic in the import's size.
        self.by_title_without_doi = defaultdict(list)
        self.by_block_without_doi = defaultdict(lambda: ([], []))

    @staticmethod
    def block_key(cand, year):
        # Fuzzy matching compares titles within a block only. Without an author to block on,
        # the title's first word stands in, or a file with neither author nor year would
        # compare every record with every other.
        return (cand["author"][:4] or "t:" + cand["title_norm"][:6], year)

    def add(self, original, cand):
        if cand["pmid"]:
            self.by_pmid.setdefault(cand["pmid"], original)
        if cand["doi_norm"]:
            self.by_doi.setdefault(cand["doi_norm"], original)
        if cand["title_norm"]:
            key = self.block_key(cand, cand["year"])
            lists = [(self.by_title, self.by_block)]
            if not cand["doi_norm"]:
                lists.append((self.by_title_without_doi, self.by_block_without_doi))
            entry = (original, cand)  # one tuple in every list: fewer objects for the collector to walk
            for by_title, by_block in lists:
                by_title[cand["title_norm"]].append(entry)
                titles, entries = by_block[key]
                titles.append(cand["title_norm"])
                entries.append(entry)

    @classmethod
    def for_review(cls, review):
        index = cls()
        fields = ("pmid", "doi_norm", "title_norm", "year", "authors", "journal", "volume", "issue", "pages")
        rows = Record.objects.for_review(review).unique().values_list("pk", *fields).order_by("pk")
        for pk, *values in rows.iterator(chunk_size=5000):
            index.add(Original(pk=pk), dedup.candidate(**dict(zip(fields, values))))
        return index

    def find(self, cand):
        """Return (Original, reason) of the record this candidate duplicates, or (None, '')."""
        if cand["pmid"] and cand["pmid"] in self.by_pmid:
            return self.by_pmid[cand["pmid"]], "pmid"
        if cand["doi_norm"] and cand["doi_norm"] in self.by_doi:
            return self.by_doi[cand["doi_norm"]], "doi"
        if not cand["title_norm"]:
            return None, ""
        # Its DOI is in no record of the index (else it was found above): see __init__.
        by_title, by_block = (
            (self.by_title_without_doi, self.by_block_without_doi)
            if cand["doi_norm"]
            else (self.by_title, self.by_block)
        )
        for original, other in by_title.get(cand["title_norm"], ()):
            if dedup.same_work(cand, other):
                return original, "title"
        for year in self._years(cand):
            block = by_block.get(self.block_key(cand, year))
            if not block:
                continue
            titles, entries = block
            # rapidfuzz scores the whole block in C; only near-identical titles get the full check.
            close = process.extract(
                cand["title_norm"], titles, scorer=fuzz.ratio, score_cutoff=dedup.TITLE_THRESHOLD, limit=None
            )
            for _, _, position in sorted(close, key=lambda hit: hit[2]):
                original, other = entries[position]
                if dedup.same_work(cand, other):
                    return original, "title_fuzzy"
        return None, ""

    @staticmethod
    def _years(cand):
        """The year blocks a candidate is compared with: one year either side, and up to
        ONLINE_FIRST_SLACK years when a journal can tell an online-first record from a new report."""
        year = cand["year"]
        if year is None:
            return (None,)
        offsets = _ONLINE_FIRST_OFFSETS if cand["journal"] and cand["author"] else _YEAR_OFFSETS
        return [year + offset for offset in offsets]


def _nearest_first(slack):
    """0, -1, 1, -2, 2, ... up to ``slack``: a candidate's year blocks, its own year first and the
    earlier of two equally near years before the later (computed once, not sorted per record)."""
    return tuple(sorted(range(-slack, slack + 1), key=abs))


_YEAR_OFFSETS = _nearest_first(dedup.YEAR_SLACK)
_ONLINE_FIRST_OFFSETS = _nearest_first(dedup.ONLINE_FIRST_SLACK)


def _candidate(row):
    return dedup.candidate(
        pmid=row["pmid"],
        doi_norm=row["doi_norm"],
        title_norm=row["title_norm"],
        year=row["year"],
        authors=row["authors"],
        journal=row["journal"],
        volume=row["volume"],
        issue=row["issue"],
        pages=row["pages"],
    )


def _record_fields():
    return [f for f in Record._meta.concrete_fields if not f.primary_key]


def _blank_row():
    """Every column of a new Record (by attname) with the model's defaults, as Record() sets them."""
    return {f.attname: f.get_default() for f in _record_fields()}


def _record_row(article, search, blank=None):
    """The column values (by attname) of the staged Record ``article`` becomes under ``search``.

    A dict rather than a Record instance: building 100,000 model instances took a sixth of an
    import's time, and ``_insert`` writes the values as they are.
    """
    row = (blank or _blank_row()).copy()
    row.update(
        review_id=search.review_id,
        search_id=search.pk,
        source=search.source,
        source_key=article.source_key[:200],
        pmid=dedup.normalise_pmid(article.pmid),
        pmcid=(article.pmcid or "").strip().upper()[:20],
        doi=(article.doi or "").strip()[:300],
        title=article.title or "",
        abstract=article.abstract or "",
        authors=list(article.authors or []),
        year=article.year if article.year and 0 < article.year < 3000 else None,
        journal=(article.journal or "")[:500],
        volume=(article.volume or "")[:50],
        issue=(article.issue or "")[:50],
        pages=(article.pages or "")[:50],
        keywords=list(article.keywords or []),
        url=web_url(article.url)[:1000],
        publication_type=(article.publication_type or "")[:200],
        doi_norm=dedup.normalise_doi(article.doi),
        title_norm=dedup.normalise_title(article.title),
        staged=True,
    )
    return row


def import_articles(*, search, articles, skip_known_pmids=False, user=None):
    """Store ``articles`` (any iterable of Article) under ``search`` (an unsaved Search).

    The records are written in chunks, each in a short transaction of its own, so other
    reviewers keep screening (and logging in) during a long import, even on SQLite. Until the
    end they are *staged*: neither they nor the search show anywhere (``Record.objects`` and
    ``Search.objects`` leave them out); one short transaction makes them visible at the end.
    A parse error raised by the iterator half-way through removes what was staged, and leaves
    the review as it was; an import whose process was killed is removed by the next import
    into the review once it has written nothing for ``SIEVE_IMPORT_STALE_SECONDS``
    (``discard_abandoned_imports``), so running it again never doubles a record.
    Duplicates are stored and linked to the record they duplicate, never dropped. With
    ``skip_known_pmids`` (re-running a PubMed search), articles whose PMID the same source
    already brought are not stored again.
    """
    with _collector_spared():
        return _import_articles(search, articles, skip_known_pmids, user)


@contextlib.contextmanager
def _collector_spared():
    """Keep the garbage collector's full collections off the objects that were there before the
    import (Django's, the worker's: some 145,000), by ``gc.freeze()``, undone at the end.

    A 100,000-record import ran about 13 full collections, each walking all of them (2.7 s of
    CPU). Left alone when something else already froze objects: unfreezing would undo its freeze.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _import_articles(search, articles, skip_known_pmids, user):
    review = search.review
    discard_abandoned_imports(review=review)
    search.staged_at = timezone.now()
    search.save()
    result = ImportResult(search=search)
    try:
        index = DuplicateIndex.for_review(review)
        # Only a PubMed search skips PMIDs; in a file, a repeated PMID is a duplicate.
        known = _pubmed_pmids(review) if skip_known_pmids else None
        iterator = iter(articles)
        # The next chunk is read (parsed, fetched) outside any transaction: the write lock is
        # held for the writing only.
        while chunk := list(islice(iterator, CHUNK)):
            with transaction.atomic():
                _store_chunk(chunk, search, index, known, result)
                Search.all_objects.filter(pk=search.pk).update(staged_at=timezone.now())
        with transaction.atomic():
            _land(search, result, user)
    except BaseException:
        _discard_quietly(search)
        raise
    return result


def _land(search, result, user):
    """Make a staged import visible, with its audit events: the one short transaction at the end."""
    review = search.review
    # On PostgreSQL this UPDATE also fills the records table's word index, which holds landed rows
    # only (review/0020): each record's words are taken here, once, not at its COPY too.
    Record.all_objects.filter(search=search, staged=True).update(staged=False)
    search.staged_at = None
    search.added = result.added
    search.duplicates = result.duplicates
    search.skipped = result.skipped
    search.skipped_from_files = len(result.skipped_pmids.get("file", ()))
    search.fetched = search.fetched or (result.added + result.skipped + result.empty)
    search.save(update_fields=["staged_at", "added", "duplicates", "skipped", "skipped_from_files", "fetched"])
    # Each automatic link's audit event is written now, not with its chunk: an import that never
    # lands leaves no trace in the audit trail either.
    _merge_events(search, user)
    if result.unique:
        # New records to screen: a stage whose blinding the owner lifted is open again.
        review.reblind([Stage.TITLE_ABSTRACT], reason=f"{result.unique} new records imported")
    Event.objects.create(
        review=review,
        actor=user or search.run_by,
        kind=Event.Kind.SEARCH if search.kind == Search.Kind.PUBMED else Event.Kind.IMPORT,
        detail={
            **_event_detail(search),
            "added": result.added,
            "duplicates": result.duplicates,
            "skipped": result.skipped,
            "empty": result.empty,
            **({"skipped_pmids": dict(result.skipped_pmids)} if result.skipped_pmids else {}),
        },
    )
    if result.unique:
        # Screening builds the ranking features now, in the background, not at the first retrain.
        announce_records_added(review=review, search=search, added=result.unique)


def _merge_events(search, user):
    """The MERGE event of each record ``search`` brought that was linked as a duplicate, written by
    the database in one INSERT ... SELECT, in the records' order.

    The same rows ``Event.objects.bulk_create`` wrote from one Event per link, whose Python
    instances were a quarter of a big import's importing-process CPU (55,000 links in a
    100,000-record RIS file). The detail is built by the database: ``{"duplicate_of": pk,
    "reason": text, "automatic": true}``.
    """
    # SQLite's JSON_OBJECT takes a bare 1 for the number 1: true must come from JSON('true').
    true = Value(True) if connection.vendor != "sqlite" else Func(Value("true"), function="JSON")
    columns = {
        "review_id": Value(search.review_id),
        "record_id": F("pk"),
        "actor_id": Value(user.pk if user is not None else None, output_field=models.IntegerField()),
        "kind": Value(Event.Kind.MERGE.value),
        "detail": JSONObject(duplicate_of=F("duplicate_of_id"), reason=F("duplicate_reason"), automatic=true),
        "created_at": Value(timezone.now(), output_field=models.DateTimeField()),
    }
    # Each column an alias of its own, annotated and selected in the INSERT's order.
    aliases = {f"event_{name}": expression for name, expression in columns.items()}
    links = (
        Record.objects.filter(search=search, duplicate_of__isnull=False)
        .order_by("pk")
        .annotate(**aliases)
        .values_list(*aliases)
    )
    select, params = links.query.sql_with_params()
    quote = connection.ops.quote_name
    fields = ", ".join(quote(Event._meta.get_field(name.removesuffix("_id")).column) for name in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {quote(Event._meta.db_table)} ({fields}) {select}", params)


def discard_staged(search):
    """Remove an import that never landed: its staged records, in short transactions, then the
    search itself. Does nothing to a search that has landed."""
    staged = Record.all_objects.filter(search_id=search.pk, staged=True)
    # Links inside the import would make each delete touch the rows of the next.
    staged.filter(duplicate_of__isnull=False).update(duplicate_of=None)
    while pks := list(staged.order_by("pk").values_list("pk", flat=True)[:CHUNK]):
        with transaction.atomic():
            Record.all_objects.filter(pk__in=pks).delete()
    Search.all_objects.filter(pk=search.pk, staged_at__isnull=False).delete()


def discard_abandoned_imports(*, review=None, stale=None):
    """Remove the imports (of ``review``, or of every review) that stopped half-way: staged and
    silent for ``stale`` seconds (default: settings.SIEVE_IMPORT_STALE_SECONDS), their process
    killed or gone. Returns how many were removed."""
    if stale is None:
        stale = settings.SIEVE_IMPORT_STALE_SECONDS
    searches = Search.all_objects.filter(staged_at__lt=timezone.now() - timedelta(seconds=stale))
    if review is not None:
        searches = searches.filter(review=review)
    abandoned = list(searches)
    for search in abandoned:
        discard_staged(search)
    return len(abandoned)


def _discard_quietly(search):
    try:
        discard_staged(search)
    except DatabaseError:
        # The connection itself failed (or an outer transaction is broken, and rolls all of it
        # back): what was staged stays invisible until discard_abandoned_imports removes it.
        logger.warning("Could not remove the staged records of search %s", search.pk, exc_info=True)


def run_search(*, review, query, mindate=None, maxdate=None, max_records=None, user=None, progress=None):
    """Search PubMed and add the records to ``review``; returns ImportResult.

    The search is logged as a Search row (query, PubMed's translation, dates, hits, fetched,
    and why fewer were fetched than found). PMIDs PubMed already brought to the review, by an
    earlier search or an imported PubMed file, are skipped (``_pubmed_pmids``); the log counts
    them by origin and the audit event lists them. ``progress(fetched, hits)`` follows the
    fetch. Raises pubmed.PubMedError; nothing is written if the search fails.
    """
    found = pubmed.search(query, mindate=mindate, maxdate=maxdate, max_records=max_records)
    with _Spool() as spool:
        # The records are fetched before the transaction opens: a search takes minutes at
        # NCBI's pace, and the write lock (all of it, on SQLite) is held for the writing only.
        for batch in found.batches(progress=progress):
            for article in batch:
                try:
                    limits.check_article(article, "PubMed")
                except ImportFileError as exc:
                    raise pubmed.PubMedError(str(exc)) from None
            spool.write(batch)
        log = Search(
            review=review,
            kind=Search.Kind.PUBMED,
            source="PubMed",
            source_type=Search.SourceType.DATABASE,
            platform="PubMed",
            searched_on=timezone.localdate(),
            query=found.query,
            query_translation=found.query_translation,
            mindate=found.mindate,
            maxdate=found.maxdate,
            run_by=user,
            hits=found.count,
            fetched=found.fetched,
            stopped_reason=found.stopped_reason(),
        )
        result = import_articles(search=log, articles=spool.articles(), skip_known_pmids=True, user=user)
    # PubMed's own ("PhraseNotFound: ...") and the client's ("PubMed's count changed ...").
    result.warnings.extend(found.warnings)
    return result


class _Spool:
    """Batches of Article kept in a temporary file, so a search of 100,000 records holds one
    batch in memory at a time, however long the fetch."""

    def __enter__(self):
        self.file = tempfile.TemporaryFile()
        return self

    def __exit__(self, *exc):
        self.file.close()

    def write(self, batch):
        pickle.dump(batch, self.file, protocol=pickle.HIGHEST_PROTOCOL)

    def articles(self):
        self.file.seek(0)
        while True:
            try:
                batch = pickle.load(self.file)
            except EOFError:
                return
            yield from batch


def _pubmed_pmids(review):
    """PMID -> "search" or "file": the PMIDs PubMed already brought to ``review``, through a
    PubMed search or an imported PubMed file (a search run again, or run after the team imported
    PubMed's own export, adds only what is new). PMIDs from other databases are not among them:
    those records are kept and linked as duplicates, so each database's count stays whole."""
    from_pubmed = Q(source__iexact="PubMed") | Q(search__platform__iexact="PubMed")
    rows = (
        Record.objects.for_review(review)
        .filter(from_pubmed)
        .exclude(pmid="")
        .values_list("pmid", "search__kind")
        .iterator(chunk_size=5000)
    )
    known = {}
    for pmid, kind in rows:
        if kind == Search.Kind.PUBMED or pmid not in known:
            known[pmid] = "search" if kind == Search.Kind.PUBMED else "file"
    return known


def _store_chunk(chunk, search, index, known, result):
    rows, added, pending = [], [], []
    blank = _blank_row()
    for article in chunk:
        if not any((value or "").strip() for value in (article.title, article.abstract, article.doi, article.pmid)):
            result.empty += 1
            continue
        row = _record_row(article, search, blank)
        if known is not None and row["pmid"] in known:
            result.skipped += 1
            result.skipped_pmids[known[row["pmid"]]].append(row["pmid"])
            continue
        cand = _candidate(row)
        original, reason = index.find(cand)
        if original is None:
            original = Original(record=row)
            index.add(original, cand)
            added.append(original)
        else:
            row["duplicate_reason"] = reason
            result.duplicates += 1
            result.reasons[reason] += 1
            if original.pk is not None:
                row["duplicate_of_id"] = original.pk
            else:  # an original from this same chunk: linked once it has a pk
                pending.append((row, original))
        rows.append(row)
    _insert(rows)
    for original in added:
        original.saved()
    if pending:
        links = [Record(pk=row["id"], duplicate_of_id=original.pk) for row, original in pending]
        Record.all_objects.bulk_update(links, ["duplicate_of"], batch_size=500)
    result.added += len(rows)


def _insert(rows):
    """INSERT ``rows`` (from ``_record_row``) in as few multi-row statements as the database
    takes, setting each one's "id".

    What bulk_create does, without model instances nor its per-field preparation of every value
    in Python (a third of an import's writing time at 100,000 records); the values are the
    model's own.
    """
    fields = _record_fields()
    _write(rows, _values(rows, fields), fields)


def _values(rows, fields):
    """Each row's values in the order of ``fields``, adapted as the database takes them."""
    ops = connection.ops
    created_at = ops.adapt_datetimefield_value(timezone.now())
    names = [f.attname for f in fields]
    json_fields = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    values = []
    for row in rows:
        row["created_at"] = created_at
        line = [row[name] for name in names]
        for i in json_fields:
            line[i] = ops.adapt_json_value(line[i], None)
        values.append(line)
    return values


def _write(rows, values, fields):
    """Write the ``values`` of ``rows`` (from ``_values``) and set each row's "id": by COPY on
    PostgreSQL, by multi-row INSERTs elsewhere. bench/write_floor.py times this alone."""
    if connection.vendor == "postgresql":
        _copy(rows, values, fields)
        return
    quote = connection.ops.quote_name
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    head = f"INSERT INTO {quote(Record._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) VALUES "
    with connection.cursor() as cursor:
        per = max(1, _max_params() // len(fields))
        for start in range(0, len(values), per):
            batch = values[start : start + per]
            cursor.execute(
                head + ", ".join([placeholders] * len(batch)) + f" RETURNING {quote(Record._meta.pk.column)}",
                [value for line in batch for value in line],
            )
            # Both databases return the rows in the order of the VALUES (bulk_create relies on it too).
            for row, (pk,) in zip(rows[start : start + per], cursor.fetchall(), strict=True):
                row["id"] = pk


def _copy(rows, values, fields):
    """PostgreSQL: the rows go in by COPY, their ids drawn from the table's sequence first.

    psycopg parses a multi-row INSERT's placeholders in Python, one statement at a time (it caches
    only statements of up to 50 parameters): a fifth of an import's time on PostgreSQL. COPY
    sends the values as they are. The ids are taken in ascending order, so the records keep the
    file's order, as with INSERT.
    """
    table, pk, quote = Record._meta.db_table, Record._meta.pk.column, connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)", [table, pk, len(rows)]
        )
        ids = sorted(value for (value,) in cursor.fetchall())
        columns = ", ".join(quote(column) for column in [pk, *(f.column for f in fields)])
        with cursor.cursor.copy(f"COPY {quote(table)} ({columns}) FROM STDIN") as copy:
            for pk_value, line in zip(ids, values, strict=True):
                copy.write_row([pk_value, *line])
    for row, pk_value in zip(rows, ids, strict=True):
        row["id"] = pk_value


def _max_params():
    if connection.vendor == "sqlite":
        # Python's sqlite3 reports the library's own limit (32,766 since SQLite 3.32).
        return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return connection.features.max_query_params or 65535


def import_file(*, review, path=None, fileobj=None, filename="", source=None, details=None, user=None, progress=None):
    """Import one export file (a path, or an open binary file such as an upload) into ``review``.

    The format is told from the content. ``details`` (a sources.SourceDetails) holds what the
    user typed about the source: the database, platform, search date, query, limits and source
    type; ``source`` is a shorthand for the database alone. What was left blank comes from the
    file where it shows it (the database, else the file's name; the platform). Returns an
    ImportResult whose ``warnings`` list what was read but not understood (a year like '10 15').
    Raises ImportFileError, naming the file and the record or line, and stores nothing, when the
    file cannot be imported; ValueError when the details do not pass SourceDetails.checked.
    ``progress(parsed)`` is called with the number of records read so far, every PARSED_EVERY.
    A big file at ``path`` is parsed in a second process (``_reading``), with the same outcome.
    """
    if path is None and fileobj is None:
        raise ValueError("import_file needs a path or a fileobj")
    details = (details or SourceDetails(database=source or "")).checked()
    name = Path(filename or (str(path) if path is not None else getattr(fileobj, "name", "")) or "uploaded file").name
    with _binary(path, fileobj, name) as stream:
        sniffed = sniff(stream, name)
        warnings = []
        shown = details.search_fields(
            # The importers tell the database and platform apart once they can; until then
            # ``source`` holds what the file names ("PsycINFO (Ovid)").
            database=getattr(sniffed, "database", "") or sniffed.source,
            platform=getattr(sniffed, "platform", ""),
            default=name,
        )
        search = Search(
            review=review,
            kind=Search.Kind.FILE,
            filename=name[:300],
            file_format=sniffed.label,
            run_by=user,
            **shown,
        )
        with _reading(path, stream, sniffed, name, warnings.append) as articles:
            if progress is not None:
                articles = _counted(articles, progress)
            result = import_articles(search=search, articles=articles, user=user)
    if len(warnings) > MAX_WARNINGS:
        warnings[MAX_WARNINGS:] = [f"{name}: {len(warnings) - MAX_WARNINGS} more warnings like these."]
    result.warnings.extend(warnings)
    return result


@contextlib.contextmanager
def _reading(path, stream, sniffed, name, warn):
    """The articles of ``stream``: read in a second process when the file is on disk and at least
    SIEVE_IMPORT_PARSE_PROCESS_BYTES big (the parse then runs beside the dedup and the writes),
    else here. Either way the same articles, warnings and errors."""
    threshold = settings.SIEVE_IMPORT_PARSE_PROCESS_BYTES
    if path is None or threshold is None or os.fstat(stream.fileno()).st_size < threshold:
        yield read_articles(stream, sniffed, name, warn)
        return
    with ParsedInProcess(path, sniffed, name, warn) as articles:
        yield articles


PARSED_EVERY = 500


def _counted(articles, progress):
    parsed = 0
    for parsed, article in enumerate(articles, 1):  # noqa: B007 (the count is read after the loop)
        if parsed % PARSED_EVERY == 0:
            progress(parsed)
        yield article
    progress(parsed)


def record_count(*, review, count, details, user=None):
    """Log ``count`` records identified by a source that was counted, not imported (citation
    searching, websites, organisations...): a Search of kind COUNT with ``hits`` = count and no
    records, and its audit event. ``details`` is a sources.SourceDetails naming the source; the
    source type defaults to "other methods" (a register when the name is one). ValueError when
    the count or the details are not acceptable. Returns the Search.
    """
    details = details.checked()
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"The number of records must be a whole number, 0 or more (got {count!r}).")
    if count > sources.MAX_COUNT:
        raise ValueError(
            f"{count:,} records is more than a source can have identified (at most {sources.MAX_COUNT:,})."
        )
    if not details.database:
        raise ValueError("Name the source the records were identified by (e.g. 'Citation searching').")
    shown = details.search_fields()
    if not details.source_type:
        shown["source_type"] = sources.REGISTER if shown["source_type"] == sources.REGISTER else sources.OTHER
    with transaction.atomic():
        search = Search.objects.create(review=review, kind=Search.Kind.COUNT, hits=count, run_by=user, **shown)
        Event.objects.create(
            review=review, actor=user, kind=Event.Kind.IMPORT, detail={**_event_detail(search), "counted": count}
        )
    return search


# What may be edited after the fact, in the order the audit event lists it.
EDITABLE = ("source", "platform", "source_type", "searched_on", "query", "limits", "hits")
PUBMED_FIXED = ("source", "platform", "source_type", "searched_on", "query")


def edit_search(*, search, details, user, count=None):
    """Correct what was typed (or read from the file) about a search, import or count after the
    fact: the owner's fix of a misspelt database or a forgotten search date. ``count`` is a
    counted source's number of records. Of a PubMed search Sieve ran, only the limits can be
    described: its database, query, date and platform are what Sieve sent (and re-runs skip the
    PMIDs it brought by its database's name). The records carry the new database name. Audited
    with the old and new values; returns the names of the fields changed (none: nothing written).
    """
    details = details.checked()
    with transaction.atomic():
        search = Search.objects.select_for_update().get(pk=search.pk)
        wanted = details.search_fields(database=search.source)
        if search.kind == Search.Kind.PUBMED:
            # What Sieve itself sent to PubMed, and when, is a record, not a description.
            wanted.update({name: getattr(search, name) for name in PUBMED_FIXED})
        if not details.source_type:
            wanted["source_type"] = search.source_type
        if search.kind == Search.Kind.COUNT and count is not None:
            if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= sources.MAX_COUNT:
                raise ValueError(f"The number of records must be a whole number from 0 to {sources.MAX_COUNT:,}.")
            wanted["hits"] = count
        changes = {
            name: (getattr(search, name), wanted[name])
            for name in EDITABLE
            if name in wanted and getattr(search, name) != wanted[name]
        }
        if not changes:
            return []
        for name, (_, new) in changes.items():
            setattr(search, name, new)
        search.save(update_fields=list(changes))
        if "source" in changes:
            Record.objects.filter(search=search).update(source=search.source)
        Event.objects.create(
            review=search.review,
            actor=user,
            kind=Event.Kind.SEARCH if search.kind == Search.Kind.PUBMED else Event.Kind.IMPORT,
            detail={
                "search": search.pk,
                "edited": {name: [_jsonable(old), _jsonable(new)] for name, (old, new) in changes.items()},
            },
        )
    return list(changes)


def _jsonable(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def _event_detail(search):
    """What an import's (or a count's) audit event says about its source."""
    return {
        "search": search.pk,
        "source": search.source,
        "source_type": search.source_type,
        "platform": search.platform,
        "searched_on": search.searched_on.isoformat() if search.searched_on else "",
        "query": search.query,
        "limits": search.limits,
        "filename": search.filename,
    }


@contextlib.contextmanager
def _binary(path, fileobj, name):
    limit = limits.max_upload_size()
    if path is not None:
        try:
            stream = open(path, "rb")  # noqa: SIM115 (closed by the with below, after the error check)
        except OSError as exc:
            raise ImportFileError(f"{name}: cannot be opened ({exc.strerror}).") from exc
        with stream:
            _check_size(os.fstat(stream.fileno()).st_size, limit, name)
            yield stream
        return
    stream = getattr(fileobj, "file", fileobj)  # Django's UploadedFile wraps the real file
    if isinstance(stream.read(0), str):
        raise ValueError("import_file needs a file opened in binary mode")
    if stream.seekable():
        _check_size(stream.seek(0, os.SEEK_END), limit, name)
        stream.seek(0)
        yield stream
        return
    # Sniffing reads the start twice, so a pipe is spooled first (to disk once it is large),
    # and no further than the size limit.
    with tempfile.SpooledTemporaryFile(max_size=HEAD * 16) as spool:
        copied = 0
        while chunk := stream.read(min(1024 * 1024, limit + 1 - copied)):
            spool.write(chunk)
            copied += len(chunk)
            if copied > limit:
                raise ImportFileError(limits.too_large_message(None, limit, name))
        spool.seek(0)
        yield spool


def _check_size(size, limit, name):
    if size > limit:
        raise ImportFileError(limits.too_large_message(size, limit, name))


def unmerge(record, *, user):
    """Undo a duplicate link: the record becomes a unique record and is never re-linked."""
    # Read the link under a row lock: a merge running at the same time may have just changed it.
    _lock(record)
    previous = record.duplicate_of_id
    if previous is None:
        return record
    record.duplicate_of = None
    record.duplicate_reason = ""
    record.not_duplicate = True
    record.save(update_fields=["duplicate_of", "duplicate_reason", "not_duplicate"])
    Event.objects.create(
        review=record.review, record=record, actor=user, kind=Event.Kind.UNMERGE, detail={"was_duplicate_of": previous}
    )
    return record


def _lock(*records):
    """Lock ``records``' rows in pk order (so two merges never wait on each other in a circle) and
    read them again: the caller's copies may be stale."""
    _lock_pks(r.pk for r in records)
    for r in records:
        r.refresh_from_db()


def _lock_pks(pks):
    list(Record.objects.select_for_update().filter(pk__in=list(pks)).order_by("pk").values("pk"))


def _links_of(pks, record, limit=50):
    """The pks a merge of ``record`` touches beyond ``pks``: where the duplicate links from ``pks``
    lead (followed to the end), and the records linked to ``record`` (they are moved over)."""
    found = set(Record.objects.filter(duplicate_of=record).values_list("pk", flat=True))
    frontier = set(pks)
    while frontier and len(found) < limit:
        ahead = set(
            Record.objects.filter(pk__in=frontier, duplicate_of__isnull=False).values_list("duplicate_of", flat=True)
        )
        frontier = ahead - found - set(pks)
        found |= ahead
    return found - set(pks)


@transaction.atomic
def merge(record, *, into, user):
    """Mark ``record`` as a duplicate of ``into`` by hand (the reviewer saw what dedup missed).

    The link goes to ``into``'s original when ``into`` is itself a duplicate. Raises ValueError
    when that original is ``record`` itself (``into`` is already a duplicate of ``record``): the
    link would make a record a duplicate of itself.
    """
    if into.review_id != record.review_id or into.pk == record.pk:
        raise ValueError("A record can only be merged into another record of the same review.")
    # Every row this merge reads or writes (both records, the original ``into`` leads to, the
    # records linked to ``record``) is locked in one pk-ordered statement, then read again: a merge
    # the other way round (B into A while A goes into B) waits, then sees this one's link and is
    # refused, and two merges reaching each other's records queue instead of deadlocking.
    wanted = {record.pk, into.pk}
    for _ in range(5):
        wanted |= _links_of(wanted, record)
        _lock_pks(wanted)
        record.refresh_from_db()
        into.refresh_from_db()
        missing = _links_of(wanted, record) - wanted
        if not missing:
            break
        wanted |= missing  # the links moved while we waited: lock the new rows too
    target, seen = into, {into.pk}
    while target.duplicate_of_id is not None:
        if target.duplicate_of_id == record.pk:
            raise ValueError(
                f"Record #{record.pk} cannot be merged into #{into.pk}: #{into.pk} is already marked as a "
                f"duplicate of #{record.pk}, so #{record.pk} would become a duplicate of itself. "
                f"To keep #{into.pk} instead, undo that link first (on record #{into.pk}), then merge again."
            )
        if target.duplicate_of_id in seen:
            raise ValueError(f"Record #{into.pk} is in a circle of duplicate links; undo one of them first.")
        seen.add(target.duplicate_of_id)
        target = Record.objects.get(pk=target.duplicate_of_id)
    record.duplicate_of = target
    record.duplicate_reason = "manual"
    record.not_duplicate = False
    record.save(update_fields=["duplicate_of", "duplicate_reason", "not_duplicate"])
    # Anything that pointed at the record now points at the surviving original.
    Record.objects.filter(duplicate_of=record).update(duplicate_of=target)
    Event.objects.create(
        review=record.review,
        record=record,
        actor=user,
        kind=Event.Kind.MERGE,
        detail={"duplicate_of": target.pk, "reason": "manual", "automatic": False},
    )
    return record
