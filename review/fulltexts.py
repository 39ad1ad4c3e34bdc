"""Full texts: a record's PDF, attached by hand, in bulk, or fetched from PubMed Central.

The one home of what a full text is: ``check_pdf`` says whether bytes are an acceptable PDF,
``attach`` and ``remove`` change a record's PDF (audited as FULLTEXT events, old files removed
once the change is committed), ``match_files`` pairs uploaded files with records by PMID, PMCID,
DOI or the record's file name, and ``find_open_access`` asks PubMed Central (through
review.pubmed, the only module that talks to NCBI). Files live in STORAGES["fulltexts"] under
names made here, never the uploader's; the views serve them after checking membership.
"""

import contextlib
import hashlib
import logging
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePath

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.db import transaction
from django.utils import timezone

from review import pubmed
from review.models import Event, FullText, Record, fulltext_name

log = logging.getLogger(__name__)

PDF_MAGIC = pubmed.PDF_MAGIC
SAFE_CHARS = re.compile(r"[^A-Za-z0-9._ -]+")
DIGITS = re.compile(r"^\d{1,9}$")
PMCID = re.compile(r"^pmc(\d{1,12})$", re.IGNORECASE)
# A DOI in a file name: "/" cannot be in one, so tools write "_" (or keep ":" etc.).
DOI_SEPARATORS = re.compile(r"[/_:;]")
NO_OPEN_ACCESS = "no open-access copy found"


class FullTextError(Exception):
    """A PDF that cannot be taken, in words for the user."""


def max_size():
    return int(getattr(settings, "SIEVE_MAX_PDF_SIZE", 50 * 1024 * 1024))


def _megabytes(size):
    return f"{size / (1024 * 1024):.0f} MB"


def check_pdf(name, data):
    """Raise FullTextError unless ``data`` (bytes) is a PDF within the size limit."""
    if not data:
        raise FullTextError(f"{name}: the file is empty.")
    if len(data) > max_size():
        raise FullTextError(f"{name}: the file is larger than the {_megabytes(max_size())} allowed for a PDF.")
    if not data.startswith(PDF_MAGIC):
        raise FullTextError(f"{name}: not a PDF (a PDF file starts with “%PDF-”).")


def read_upload(upload):
    """The bytes of an UploadedFile, refusing it as soon as it is larger than the limit."""
    if upload.size is not None and upload.size > max_size():
        raise FullTextError(f"{upload.name}: the file is larger than the {_megabytes(max_size())} allowed for a PDF.")
    data = upload.read(max_size() + 1)
    check_pdf(upload.name, data)
    return data


def safe_filename(name, record):
    """The name a PDF is offered under: the uploaded name's letters, digits and a few marks only."""
    stem = SAFE_CHARS.sub("_", PurePath(str(name or "").replace("\\", "/")).stem).strip(" ._-")[:100]
    return f"{stem or f'record-{record.pk}'}.pdf"


def fulltext_of(record):
    """The record's FullText row, or None."""
    return FullText.objects.filter(record=record).first()


def _locked(record):
    FullText.objects.get_or_create(record=record)
    return FullText.objects.select_for_update().get(record=record)


def _delete_file_later(name):
    if name:
        storage = FullText._meta.get_field("file").storage
        transaction.on_commit(lambda: storage.delete(name))


def attach(record, data, *, filename, user=None, source=FullText.Source.UPLOAD, pmcid=""):
    """Store ``data`` (checked PDF bytes) as ``record``'s full text, replacing any it had; one
    FULLTEXT event says what happened. Returns the FullText."""
    check_pdf(filename, data)
    digest = hashlib.sha256(data).hexdigest()
    shown = safe_filename(filename, record)
    saved = None
    try:
        with transaction.atomic():
            fulltext = _locked(record)
            old = fulltext.file.name if fulltext.file else ""
            fulltext.file.save("upload.pdf", ContentFile(data), save=False)
            saved = fulltext.file.name
            fulltext.filename = shown
            fulltext.size = len(data)
            fulltext.sha256 = digest
            fulltext.source = source
            fulltext.added_by = user if user and user.is_authenticated else None
            fulltext.added_at = timezone.now()
            if pmcid:
                fulltext.oa_pmcid = pmcid
            fulltext.save()
            Event.objects.create(
                review_id=record.review_id,
                record=record,
                actor=fulltext.added_by,
                kind=Event.Kind.FULLTEXT,
                detail={
                    "action": "replaced" if old else "added",
                    "filename": shown,
                    "size": len(data),
                    "sha256": digest,
                    "source": source,
                    **({"pmcid": pmcid} if pmcid else {}),
                },
            )
            _delete_file_later(old)
    except BaseException:
        if saved:
            FullText._meta.get_field("file").storage.delete(saved)
        raise
    return fulltext


def remove(record, *, user=None):
    """Remove ``record``'s PDF (audited); False when it had none."""
    with transaction.atomic():
        fulltext = FullText.objects.select_for_update().filter(record=record).first()
        if fulltext is None or not fulltext.file:
            return False
        old = fulltext.file.name
        Event.objects.create(
            review_id=record.review_id,
            record=record,
            actor=user if user and user.is_authenticated else None,
            kind=Event.Kind.FULLTEXT,
            detail={"action": "removed", "filename": fulltext.filename, "sha256": fulltext.sha256},
        )
        fulltext.file = ""
        fulltext.filename = ""
        fulltext.size = 0
        fulltext.sha256 = ""
        fulltext.source = FullText.Source.NONE
        fulltext.save()
        _delete_file_later(old)
    return True


def describe(detail):
    """One line for a FULLTEXT event (screening's audit trail shows it)."""
    action = detail.get("action", "")
    if action == "open_access":
        return detail.get("summary", "")
    how = " from PubMed Central" if detail.get("source") == FullText.Source.PMC else ""
    return f"PDF {action}{how}: {detail.get('filename', '')}".strip()


# --- Bulk upload -------------------------------------------------------------------------------


@dataclass
class Match:
    name: str  # the file's name as uploaded (or inside the zip)
    record: Record | None = None
    how: str = ""  # "PMID", "DOI", ...
    problem: str = ""  # why it was not attached
    read: object = field(default=None, repr=False)  # () -> the checked PDF's bytes (FullTextError)


def _doi_key(text):
    return DOI_SEPARATORS.sub("_", text.strip().lower())


def _file_key(text):
    return SAFE_CHARS.sub("", text).lower()


def _refused(error):
    def read():
        raise error

    return read


def expand_uploads(uploads, stack):
    """(name, read) for each file among ``uploads`` (UploadedFiles; a .zip is opened, kept open
    by ``stack``, an ExitStack, and each file in it listed); ``read()`` returns the checked PDF's
    bytes or raises FullTextError. Files are read only when attached: one PDF in memory at a time."""
    items = []
    for upload in uploads:
        if upload.name.lower().endswith(".zip"):
            items.extend(_zip_members(upload, stack))
        else:
            items.append((upload.name, lambda upload=upload: read_upload(upload)))
    return items


def _zip_members(upload, stack):
    try:
        archive = stack.enter_context(zipfile.ZipFile(upload))
    except (zipfile.BadZipFile, OSError) as error:
        return [(upload.name, _refused(FullTextError(f"{upload.name}: not a readable zip archive ({error}).")))]
    items = []
    for info in archive.infolist():
        name = PurePath(info.filename).name
        if info.is_dir() or info.filename.startswith("__MACOSX/") or name.startswith("."):
            continue
        items.append((name, lambda info=info, name=name: _zip_member(archive, info, name)))
    return items


def _zip_member(archive, info, name):
    if info.file_size > max_size():
        raise FullTextError(f"{name}: the file is larger than the {_megabytes(max_size())} allowed for a PDF.")
    try:
        with archive.open(info) as member:
            data = member.read(max_size() + 1)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as error:
        raise FullTextError(f"{name}: cannot be read from the zip ({error}).") from None
    check_pdf(name, data)
    return data


def match_files(review, items):
    """A Match for each (name, read) of ``items``: the one record of ``review`` (not a duplicate)
    the file name names by PMID, PMCID, DOI or as the record's file name (its source key). No
    match, or more than one, is reported, never guessed; two files naming the same record are
    both refused."""
    records = list(
        Record.objects.filter(review=review, duplicate_of__isnull=True).only(
            "pk", "review_id", "pmid", "pmcid", "doi", "source_key"
        )
    )
    by = {"PMID": {}, "PMCID": {}, "DOI": {}, "file name": {}}
    for record in records:
        if record.pmid:
            by["PMID"].setdefault(record.pmid.strip(), []).append(record)
        if record.pmcid:
            by["PMCID"].setdefault(record.pmcid.strip().upper().removeprefix("PMC"), []).append(record)
        if record.doi:
            by["DOI"].setdefault(_doi_key(record.doi), []).append(record)
        if record.source_key:
            by["file name"].setdefault(_file_key(record.source_key), []).append(record)
    matches = []
    for name, read in items:
        match = Match(name=name, read=read)
        matches.append(match)
        stem = PurePath(name).stem.strip()
        if DIGITS.match(stem):
            how, found = "PMID", by["PMID"].get(stem, [])
        elif PMCID.match(stem):
            how, found = "PMCID", by["PMCID"].get(PMCID.match(stem).group(1), [])
        elif stem.lower().startswith("10."):
            how, found = "DOI", by["DOI"].get(_doi_key(stem), [])
        else:
            how, found = "file name", by["file name"].get(_file_key(stem), [])
        match.how = how
        if not found:
            match.problem = f"no record of this review has the {how} “{stem}”"
        elif len(found) > 1:
            ids = ", ".join(f"#{r.pk}" for r in found[:5])
            match.problem = f"ambiguous: records {ids} all have the {how} “{stem}”; upload it on the record's page"
        else:
            match.record = found[0]
    named = {}
    for match in matches:
        if match.record:
            named.setdefault(match.record.pk, []).append(match)
    for same in named.values():
        if len(same) > 1:
            for match in same:
                others = ", ".join(m.name for m in same if m is not match)
                match.problem = f"record #{match.record.pk} is also named by {others}; upload one on its page"
                match.record = None
    return matches


def bulk_attach(review, uploads, *, user):
    """Attach each of ``uploads`` (PDFs and zips of PDFs) to the record it names (match_files);
    the Matches, attached or with their problem (a file that is not an acceptable PDF says so).
    All the attachments are one transaction, written in bulk (a few queries however many files);
    each PDF is read, checked and stored in turn, so one is in memory at a time."""
    with contextlib.ExitStack() as stack:
        matches = match_files(review, expand_uploads(uploads, stack))
        wanted = [m for m in matches if m.record]
        storage = FullText._meta.get_field("file").storage
        saved = []
        actor = user if user and user.is_authenticated else None
        try:
            with transaction.atomic():
                pks = [m.record.pk for m in wanted]
                existing = {f.record_id: f for f in FullText.objects.select_for_update().filter(record_id__in=pks)}
                now = timezone.now()
                new, changed, events, old_names = [], [], [], []
                for match in wanted:
                    try:
                        data = match.read()
                    except FullTextError as error:
                        match.problem, match.record = str(error), None
                        continue
                    fulltext = existing.get(match.record.pk) or FullText(record=match.record)
                    old = fulltext.file.name if fulltext.file else ""
                    name = storage.save(fulltext_name(fulltext, ""), ContentFile(data))
                    saved.append(name)
                    fulltext.file = name
                    fulltext.filename = safe_filename(match.name, match.record)
                    fulltext.size = len(data)
                    fulltext.sha256 = hashlib.sha256(data).hexdigest()
                    fulltext.source = FullText.Source.UPLOAD
                    fulltext.added_by, fulltext.added_at = actor, now
                    (changed if fulltext.pk else new).append(fulltext)
                    old_names.append(old)
                    events.append(
                        Event(
                            review_id=review.pk,
                            record=match.record,
                            actor=actor,
                            kind=Event.Kind.FULLTEXT,
                            created_at=now,
                            detail={
                                "action": "replaced" if old else "added",
                                "filename": fulltext.filename,
                                "size": fulltext.size,
                                "sha256": fulltext.sha256,
                                "source": FullText.Source.UPLOAD,
                                "bulk": True,
                            },
                        )
                    )
                FullText.objects.bulk_create(new, batch_size=500)
                fields = ["file", "filename", "size", "sha256", "source", "added_by", "added_at"]
                FullText.objects.bulk_update(changed, fields, batch_size=500)
                Event.objects.bulk_create(events, batch_size=500)
                for old in old_names:
                    _delete_file_later(old)
        except BaseException:
            for name in saved:
                storage.delete(name)
            raise
    return matches


# --- Open access through PubMed Central --------------------------------------------------------


@dataclass
class OpenAccessResult:
    asked: int = 0  # records with a PMID asked about
    linked: int = 0  # with a PMC article
    fetched: int = 0  # PDFs stored
    without_pmid: int = 0
    notes: list = field(default_factory=list)

    def summary(self):
        return (
            f"{self.asked:,} records with a PMID or PMCID asked about: {self.linked:,} in PubMed Central, "
            f"{self.fetched:,} PDFs fetched; {self.asked - self.linked:,} with {NO_OPEN_ACCESS}"
            + (f"; {self.without_pmid:,} without a PMID or PMCID" if self.without_pmid else "")
            + "."
        )


def find_open_access(review, record_ids, *, user=None, progress=None):
    """Ask PubMed Central about the records ``record_ids`` of ``review`` that have a PMID (or a
    known PMCID) and no PDF: link each to its PMC article (one elink per ELINK_BATCH PMIDs), fetch the PDF PMC's OA
    service offers, and keep on each record's FullText what was found (PMC article, or why
    none). Raises pubmed.PubMedError when PubMed cannot be asked at all."""
    records = list(
        Record.objects.filter(review=review, pk__in=list(record_ids), duplicate_of__isnull=True)
        .exclude(fulltext__file__gt="")
        .order_by("pk")
        .only("pk", "review_id", "pmid", "pmcid")
    )
    result = OpenAccessResult()
    known = {r.pk: r.pmcid.strip().upper() for r in records if pubmed.PMCID.match(r.pmcid.strip().upper())}
    # A record whose PMCID is known (imported) goes straight to PMC's OA service; elink is asked
    # about the others with a PMID.
    asked = [r for r in records if r.pk in known or r.pmid.strip().isdigit()]
    result.without_pmid = len(records) - len(asked)
    result.asked = len(asked)
    total = len(asked) * 2
    if progress:
        progress(0, total)
    to_link = [r.pmid for r in asked if r.pk not in known]
    links = pubmed.pmc_links(to_link, progress=progress and (lambda d, t: progress(d, total))) if to_link else {}
    now = timezone.now()
    done = len(asked)
    for record in asked:
        pmcid = known.get(record.pk) or links.get(record.pmid.strip(), "")
        note = "" if pmcid else NO_OPEN_ACCESS
        if pmcid:
            result.linked += 1
            try:
                pdf = pubmed.pmc_pdf(pmcid, max_size=max_size())
            except pubmed.PubMedError as error:
                pdf = pubmed.PmcPdf(pmcid, note=str(error)[:300])
            if pdf.content:
                attach(record, pdf.content, filename=f"{pmcid}.pdf", user=user, source=FullText.Source.PMC, pmcid=pmcid)
                result.fetched += 1
            else:
                note = pdf.note
                result.notes.append(f"#{record.pk} ({pmcid}): {pdf.note}")
            if not record.pmcid:
                Record.objects.filter(pk=record.pk, pmcid="").update(pmcid=pmcid)
        FullText.objects.update_or_create(
            record=record, defaults={"oa_checked_at": now, "oa_pmcid": pmcid, "oa_note": note[:300]}
        )
        done += 1
        if progress:
            progress(done, total)
    Event.objects.create(
        review=review,
        actor=user if user and user.is_authenticated else None,
        kind=Event.Kind.FULLTEXT,
        detail={"action": "open_access", "summary": result.summary()},
    )
    return result


def forget_review_files(review_pk):
    """Remove a deleted review's PDFs from the storage (its folder: every name starts with its pk).
    Called once the deletion commits (review.removal deletes rows without per-row signals)."""
    storage = FullText._meta.get_field("file").storage
    folder = str(review_pk)
    try:
        names = storage.listdir(folder)[1]
    except (FileNotFoundError, NotImplementedError):
        return
    for name in names:
        storage.delete(f"{folder}/{name}")


# --- PDFs from elsewhere (a review file) --------------------------------------------------------

COPY_CHUNK = 1024 * 1024
SPOOL = 1024 * 1024  # a PDF larger than this waits on disk, not in memory, until it is checked


def check_size(name, size):
    """Raise FullTextError if ``size`` bytes are over the size limit for a PDF."""
    if size > max_size():
        raise FullTextError(f"{name}: the file is larger than the {_megabytes(max_size())} allowed for a PDF.")


def store_checked_stream(review_pk, stream, *, name, sha256, size=None):
    """Store the PDF read from ``stream`` (a binary file) for review ``review_pk`` under a new
    name of the server's (the review's folder, a random name), once it is checked as ``check_pdf``
    checks an upload and found to have the SHA-256 ``sha256`` (and ``size`` bytes, if given).
    Read in chunks (spooled to a temporary file), so nothing that fails a check is stored.
    Returns the stored name; raises FullTextError, in words naming ``name``."""
    digest, total = hashlib.sha256(), 0
    with tempfile.SpooledTemporaryFile(max_size=SPOOL) as spool:
        while chunk := stream.read(COPY_CHUNK):
            if not total and not chunk.startswith(PDF_MAGIC[: len(chunk)]):
                raise FullTextError(f"{name}: not a PDF (a PDF file starts with “%PDF-”).")
            total += len(chunk)
            check_size(name, total)
            digest.update(chunk)
            spool.write(chunk)
        if not total:
            raise FullTextError(f"{name}: the file is empty.")
        if total < len(PDF_MAGIC):
            raise FullTextError(f"{name}: not a PDF (a PDF file starts with “%PDF-”).")
        if digest.hexdigest() != sha256:
            raise FullTextError(f"{name}: the PDF's SHA-256 is not the one its record gives (the file was changed).")
        if size is not None and total != size:
            raise FullTextError(f"{name}: the PDF has {total:,} bytes, not the {size:,} its record gives.")
        spool.seek(0)
        storage = FullText._meta.get_field("file").storage
        new = fulltext_name(FullText(record=Record(review_id=review_pk)), "")
        return storage.save(new, File(spool, name=new))


def delete_stored(names):
    """Remove the stored PDFs ``names`` (a failed review-file import's), those that exist."""
    storage = FullText._meta.get_field("file").storage
    for stored in names:
        try:
            storage.delete(stored)
        except OSError:
            log.warning("Could not remove the stored PDF %s", stored, exc_info=True)
