"""Storing articles in a review: deduplication, bulk inserts, one transaction per import.

The one workflow that writes what the pure readers bring: ``import_articles`` stores any
stream of Article, ``run_search`` runs a PubMed search through the client in review.pubmed.
"""

import pickle
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import islice

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from rapidfuzz import fuzz, process

from review import dedup, limits
from review.article import ImportFileError
from review.links import web_url
from review.models import Event, Record, Search, Stage
from review.signals import announce_records_added
from screening.decisions import reblind

CHUNK = 2000


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
    """A canonical record in the index: its pk, or, until its chunk is saved, the unsaved Record."""

    __slots__ = ("pk", "record")

    def __init__(self, pk=None, record=None):
        self.pk = pk
        self.record = record

    def saved(self):
        # Once saved only the pk is kept, so a big import does not hold every Record in memory.
        self.pk, self.record = self.record.pk, None


class DuplicateIndex:
    """In-memory keys of a review's canonical records, for one import's worth of lookups."""

    def __init__(self):
        self.by_pmid = {}
        self.by_doi = {}
        self.by_title = defaultdict(list)
        # block -> ([title_norm, ...], [(original, cand), ...]) for fuzzy title matching
        self.by_block = defaultdict(lambda: ([], []))

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
            self.by_title[cand["title_norm"]].append((original, cand))
            titles, entries = self.by_block[self.block_key(cand, cand["year"])]
            titles.append(cand["title_norm"])
            entries.append((original, cand))

    @classmethod
    def for_review(cls, review):
        index = cls()
        rows = (
            Record.objects.for_review(review)
            .unique()
            .values_list("pk", "pmid", "doi_norm", "title_norm", "year", "authors")
            .order_by("pk")
            .iterator(chunk_size=5000)
        )
        for pk, pmid, doi_norm, title_norm, year, authors in rows:
            index.add(Original(pk=pk), _candidate(pmid, doi_norm, title_norm, year, authors))
        return index

    def find(self, cand):
        """Return (Original, reason) of the record this candidate duplicates, or (None, '')."""
        if cand["pmid"] and cand["pmid"] in self.by_pmid:
            return self.by_pmid[cand["pmid"]], "pmid"
        if cand["doi_norm"] and cand["doi_norm"] in self.by_doi:
            return self.by_doi[cand["doi_norm"]], "doi"
        if not cand["title_norm"]:
            return None, ""
        for original, other in self.by_title.get(cand["title_norm"], ()):
            if dedup.same_work(cand, other):
                return original, "title"
        years = (None,) if cand["year"] is None else (cand["year"] - 1, cand["year"], cand["year"] + 1)
        for year in years:
            block = self.by_block.get(self.block_key(cand, year))
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


def _candidate(pmid, doi_norm, title_norm, year, authors):
    return {
        "pmid": pmid,
        "doi_norm": doi_norm,
        "title_norm": title_norm,
        "year": year,
        "author": dedup.author_key(authors),
    }


def _record_from(article, search):
    return Record(
        review=search.review,
        search=search,
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
    )


def import_articles(*, search, articles, skip_known_pmids=False, user=None):
    """Store ``articles`` (any iterable of Article) under ``search`` (an unsaved Search).

    Everything happens in one transaction: a parse error raised by the iterator half-way
    through leaves the review as it was. Duplicates are stored and linked to the record they
    duplicate, never dropped. With ``skip_known_pmids`` (re-running a PubMed search), articles
    whose PMID the same source already brought are not stored again.
    """
    review = search.review
    with transaction.atomic():
        search.save()
        result = ImportResult(search=search)
        index = DuplicateIndex.for_review(review)
        # Only a PubMed search skips PMIDs; in a file, a repeated PMID is a duplicate.
        known = _pubmed_pmids(review) if skip_known_pmids else None
        iterator = iter(articles)
        while chunk := list(islice(iterator, CHUNK)):
            _store_chunk(chunk, search, index, known, result, user)
        search.added = result.added
        search.duplicates = result.duplicates
        search.skipped = result.skipped
        search.skipped_from_files = len(result.skipped_pmids.get("file", ()))
        search.fetched = search.fetched or (result.added + result.skipped + result.empty)
        search.save(update_fields=["added", "duplicates", "skipped", "skipped_from_files", "fetched"])
        if result.unique:
            # New records to screen: a stage whose blinding the owner lifted is open again.
            reblind(review, [Stage.TITLE_ABSTRACT], reason=f"{result.unique} new records imported")
        Event.objects.create(
            review=review,
            actor=user or search.run_by,
            kind=Event.Kind.SEARCH if search.kind == Search.Kind.PUBMED else Event.Kind.IMPORT,
            detail={
                "search": search.pk,
                "source": search.source,
                "query": search.query,
                "filename": search.filename,
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
    return result


def run_search(*, review, query, mindate=None, maxdate=None, max_records=None, user=None, progress=None):
    """Search PubMed and add the records to ``review``; returns ImportResult.

    The search is logged as a Search row (query, PubMed's translation, dates, hits, fetched,
    and why fewer were fetched than found). PMIDs PubMed already brought to the review, by an
    earlier search or an imported PubMed file, are skipped (``_pubmed_pmids``); the log counts
    them by origin and the audit event lists them. ``progress(fetched, hits)`` follows the
    fetch. Raises pubmed.PubMedError; nothing is written if the search fails.
    """
    # Imported here only while review/importers/__init__.py still imports this module (the
    # client imports the parser in that package): once import_file lives here, import it above.
    from review import pubmed

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


def _store_chunk(chunk, search, index, known, result, user):
    records, added, pending = [], [], []
    for article in chunk:
        if not any((value or "").strip() for value in (article.title, article.abstract, article.doi, article.pmid)):
            result.empty += 1
            continue
        record = _record_from(article, search)
        if known is not None and record.pmid in known:
            result.skipped += 1
            result.skipped_pmids[known[record.pmid]].append(record.pmid)
            continue
        cand = _candidate(record.pmid, record.doi_norm, record.title_norm, record.year, record.authors)
        original, reason = index.find(cand)
        if original is None:
            original = Original(record=record)
            index.add(original, cand)
            added.append(original)
        else:
            record.duplicate_reason = reason
            if original.pk is not None:
                record.duplicate_of_id = original.pk
            else:  # an original from this same chunk: linked once it has a pk
                pending.append((record, original))
        records.append(record)
    Record.objects.bulk_create(records, batch_size=500)
    for original in added:
        original.saved()
    for record, original in pending:
        record.duplicate_of_id = original.pk
    if pending:
        Record.objects.bulk_update([r for r, _ in pending], ["duplicate_of"], batch_size=500)
    dups = [r for r in records if r.duplicate_reason]
    Event.objects.bulk_create(
        [
            Event(
                review=search.review,
                record=r,
                actor=user,
                kind=Event.Kind.MERGE,
                detail={"duplicate_of": r.duplicate_of_id, "reason": r.duplicate_reason, "automatic": True},
            )
            for r in dups
        ],
        batch_size=500,
    )
    result.added += len(records)
    result.duplicates += len(dups)
    for r in dups:
        result.reasons[r.duplicate_reason] += 1


@transaction.atomic
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
