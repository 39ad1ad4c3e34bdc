"""Records out: a review's records as RIS, CSV or XLSX, optionally with Sieve's decisions.

The management command ``export_records`` and the records table's Download button both call
``export``; what a file holds follows what its reader may see (screening/visibility.py): a blinded
reviewer's file carries their own votes and the reconciled outcomes only, as on every page.

RIS is written by rispy in the tags EndNote, Zotero and Mendeley read (see tests/screening/
test_records_out.py, which reads the files back with rispy and with Sieve's own importer): TY, TI,
AU per author, PY, T2 (the journal, where EndNote and Zotero
write it), VL, IS, SP/EP, DO, AN with DP "NLM" for the PMID (as
EndNote's PubMed export writes it), C2 for the PMCID, AB, KW, UR. Decisions, on request, are N1
notes and one LB label.

Records are read in chunks of CHUNK by record number, with a fixed number of queries per chunk,
so a 100,000-record review streams in bounded memory and queries.

The table's Download streams a set of at most ``inline_limit()`` records at once; a bigger one is
written by the worker (screening/tasks.py ``export_records_file``) through the same ``filtered``
and ``export``, with the starter's membership as it is when the job runs.
"""

import io
import tempfile
from collections import defaultdict
from collections.abc import Iterator

import openpyxl
import rispy
from django.conf import settings
from django.db.models import Q
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from rispy import RisWriter
from rispy.config import TYPE_OF_REFERENCE_MAPPING

from review.models import Record, Stage
from review.spreadsheet import csv_chunks
from screening import stages, visibility
from screening.filters import RecordFilter
from screening.models import Decision, Resolution

CHUNK = 2000
FORMATS = {
    "ris": "application/x-research-info-systems; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
OUTCOMES = ("all", "included", "excluded")
# The stage names people type (the command's --stage) and the stages they mean.
STAGE_NAMES = {
    "ta": Stage.TITLE_ABSTRACT,
    "title_abstract": Stage.TITLE_ABSTRACT,
    "ft": Stage.FULL_TEXT,
    "full_text": Stage.FULL_TEXT,
}
STAGE_SHORT = {Stage.TITLE_ABSTRACT: "TA", Stage.FULL_TEXT: "FT"}
# Reference types back from the words the importers store (review/importers/ris.py).
REFERENCE_TYPE = {name: code for code, name in TYPE_OF_REFERENCE_MAPPING.items()}
FIELDS = (
    "pk",
    "review_id",
    "title",
    "abstract",
    "authors",
    "year",
    "journal",
    "volume",
    "issue",
    "pages",
    "doi",
    "pmid",
    "pmcid",
    "keywords",
    "url",
    "publication_type",
    "duplicate_of_id",
    "ta_outcome",
    "ft_outcome",
    "ft_reason",
)
COLUMNS = (
    "Sieve ID",
    "Type",
    "Title",
    "Authors",
    "Year",
    "Journal",
    "Volume",
    "Issue",
    "Pages",
    "DOI",
    "PMID",
    "PMCID",
    "Abstract",
    "Keywords",
    "URL",
)
DECISION_COLUMNS = ("Status", "TA outcome", "FT outcome", "FT exclusion reason", "TA votes", "FT votes")


class ExportError(ValueError):
    """An export that cannot be made as asked; the message says why."""


def inline_limit():
    """The most records the table's Download streams in the request (SIEVE_RECORDS_EXPORT_INLINE,
    default 2,000); a bigger set is exported by the worker."""
    return int(getattr(settings, "SIEVE_RECORDS_EXPORT_INLINE", None) or 2000)


def is_big(records):
    """True when ``records`` holds more than inline_limit() records (one query, counting no further)."""
    limit = inline_limit()
    return records.order_by()[: limit + 1].count() > limit


def filtered(review, query, *, user, membership):
    """The records of ``review`` the records table's filter ``query`` (a QueryDict) selects for
    ``user``; ExportError naming each invalid filter."""
    filters = RecordFilter(
        query or None,
        queryset=Record.objects.for_review(review),
        review=review,
        user=user,
        membership=membership,
    )
    if filters.is_bound and not filters.is_valid():
        errors = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in filters.form.errors.items())
        raise ExportError(f"These filters are not valid: {errors}")
    return filters.qs


def stage_named(name):
    try:
        return STAGE_NAMES[name]
    except KeyError:
        raise ExportError(f"Unknown stage {name!r}: use {', '.join(STAGE_NAMES)}.") from None


def select(review, *, outcome="all", at=()):
    """The records of ``review`` whose reconciled outcome at any of the stages ``at`` is
    ``outcome`` ("included", "excluded" or "all"); duplicates only with "all".

    ``at`` defaults to full text for "included" (the included studies) and to both stages for
    "excluded" (excluded at either).
    """
    if outcome not in OUTCOMES:
        raise ExportError(f"Unknown outcome {outcome!r}: use {', '.join(OUTCOMES)}.")
    records = Record.objects.for_review(review)
    if outcome == "all":
        return records
    at = [Stage(s) for s in at] or ([Stage.FULL_TEXT] if outcome == "included" else list(Stage))
    wanted = Q(pk__in=[])
    for stage in at:
        field = stages.OUTCOME_FIELD[stage]
        if outcome == "excluded":
            wanted |= Q(**{field: Record.Outcome.EXCLUDE})
        elif stage == Stage.TITLE_ABSTRACT:
            wanted |= stages.passes_title_abstract_q(review)
        else:
            wanted |= Q(**{field: Record.Outcome.INCLUDE})
    return records.unique().filter(wanted)


def export(review, records, fmt, *, membership=None, with_decisions=False, progress=None) -> Iterator[bytes]:
    """``records`` (a Record queryset of ``review``) as ``fmt`` ("ris", "csv" or "xlsx"), in pieces.

    ``membership``: whose view of the votes the file shows (None: every vote, for the command
    run by whoever holds the database). ``with_decisions``: add the outcomes and the votes.
    ``progress``: called as ``progress(done, total)`` with the records read so far, chunk by chunk
    (one more query, the count).
    """
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format {fmt!r}: use {', '.join(FORMATS)}.")
    rows = _rows(review, records, membership, with_decisions, progress)
    if fmt == "ris":
        return _ris(rows)
    header = list(COLUMNS) + (list(DECISION_COLUMNS) if with_decisions else [])
    table = (_table_row(row, with_decisions) for row in rows)
    if fmt == "csv":
        return (text.encode("utf-8") for text in csv_chunks(header, table))
    return _xlsx(header, table)


def _chunks(records):
    """``records`` in pk order, CHUNK at a time (keyset: each chunk one indexed query)."""
    records = records.order_by("pk").only(*FIELDS)
    last = 0
    while True:
        chunk = list(records.filter(pk__gt=last)[:CHUNK])
        if not chunk:
            return
        yield chunk
        last = chunk[-1].pk


class _Row:
    """One record and, when asked, what its reader may know of its screening."""

    __slots__ = ("record", "outcomes", "votes", "status")

    def __init__(self, record):
        self.record, self.outcomes, self.votes, self.status = record, {}, {}, ""


def _rows(review, records, membership, with_decisions, progress=None):
    if progress is not None:
        total, done = records.order_by().count(), 0
        progress(done, total)
    for chunk in _chunks(records):
        rows = [_Row(r) for r in chunk]
        if with_decisions:
            _add_decisions(review, rows, membership)
        yield from rows
        if progress is not None:
            done += len(rows)
            progress(done, max(total, done))


def _add_decisions(review, rows, membership):
    ids = [row.record.pk for row in rows]
    decisions = Decision.objects.filter(record_id__in=ids, is_current=True)
    if membership is not None:
        decisions = visibility.visible_decisions(decisions, membership)
    votes = defaultdict(list)
    for record_id, stage, who, decision, reason, note in decisions.order_by("created_at", "pk").values_list(
        "record_id", "stage", "reviewer__username", "decision", "reason", "note"
    ):
        votes[record_id, stage].append(_vote_text(f"vote by {who}", decision, reason, note))
    # A resolution ends a conflict: the record is reconciled, and every member may see it.
    for record_id, stage, who, decision, reason, note in (
        Resolution.objects.filter(record_id__in=ids, is_current=True)
        .order_by("created_at", "pk")
        .values_list("record_id", "stage", "resolved_by__username", "decision", "reason", "note")
    ):
        votes[record_id, stage].append(_vote_text(f"resolved by {who}", decision, reason, note))
    for row in rows:
        record = row.record
        for stage in Stage:
            row.outcomes[stage] = _shown_outcome(review, record, stage, membership)
            row.votes[stage] = votes.get((record.pk, stage.value), [])
        row.status = _status(record, row.outcomes)


def _vote_text(who, decision, reason, note):
    text = f"{who}: {decision}"
    if reason:
        text += f" ({reason})"
    if note:
        text += f"; note: {note}"
    return text


def _shown_outcome(review, record, stage, membership):
    """The outcome label the reader may be told ('' at full text for a record that never got there)."""
    if stage == Stage.FULL_TEXT and not (stages.passes_title_abstract(record, review) or record.ft_outcome):
        return ""
    if membership is None:
        outcome = Record.Outcome(getattr(record, stages.OUTCOME_FIELD[stage]))
    else:
        outcome = visibility.shown_outcome(record, stage, membership)
    return outcome.label


def _status(record, outcomes):
    """One line for the record's place in the review (the RIS label)."""
    if record.duplicate_of_id:
        return f"Duplicate of Sieve record {record.duplicate_of_id}"
    ta, ft = outcomes[Stage.TITLE_ABSTRACT], outcomes[Stage.FULL_TEXT]
    if ft:
        if ft == Record.Outcome.EXCLUDE.label:
            return f"Excluded at full text: {record.ft_reason}" if record.ft_reason else "Excluded at full text"
        if ft == Record.Outcome.INCLUDE.label:
            return "Included"
        return f"Full text: {ft}"
    return f"Title/abstract: {ta}"


def _one_line(value):
    # A RIS value is one line; a CSV cell may hold line breaks but nobody wants them in a title.
    # Only line breaks and control characters go (every kind str.splitlines knows, and those XML
    # refuses too); other spacing is the record's own.
    return ILLEGAL_CHARACTERS_RE.sub(" ", " ".join(str(value).splitlines())).strip() if value else ""


def _split_pages(pages):
    start, sep, end = (pages or "").partition("-")
    return start.strip(), end.strip() if sep else ""


def _ris_entry(row):
    r = row.record
    entry = {"type_of_reference": REFERENCE_TYPE.get(r.publication_type, "JOUR")}
    start, end = _split_pages(r.pages)
    fields = (
        ("title", _one_line(r.title)),
        ("authors", [_one_line(a) for a in r.authors if _one_line(a)]),
        ("year", r.year or ""),
        ("secondary_title", _one_line(r.journal)),
        ("volume", _one_line(r.volume)),
        ("number", _one_line(r.issue)),
        ("start_page", start),
        ("end_page", end),
        ("doi", _one_line(r.doi)),
        ("accession_number", r.pmid),
        # EndNote's PubMed records say where their accession number comes from; Sieve's importer
        # reads AN as the PMID under it (review/importers/ris.py).
        ("database_provider", "NLM" if r.pmid else ""),
        ("custom2", r.pmcid),
        ("abstract", _one_line(r.abstract)),
        ("keywords", [_one_line(k) for k in r.keywords if _one_line(k)]),
        ("urls", [r.url] if r.url else []),
    )
    entry.update((key, value) for key, value in fields if value)
    if row.status:
        entry["label"] = _one_line(row.status)
        notes = [f"Sieve: {row.status}"]
        for stage in Stage:
            if row.outcomes[stage]:
                notes.append(f"Sieve {stage.label.lower()}: {row.outcomes[stage]}")
            notes += [f"Sieve {stage.label.lower()} {v}" for v in row.votes[stage]]
        entry["notes"] = [_one_line(n) for n in notes]
    return entry


class _Writer(RisWriter):
    def set_header(self, count):
        # rispy numbers records ("1.") like Ovid; EndNote and Zotero files start at TY.
        return ""


def _ris(rows):
    batch = []
    for row in rows:
        batch.append(_ris_entry(row))
        if len(batch) == CHUNK:
            yield _dump(batch)
            batch = []
    if batch:
        yield _dump(batch)


def _dump(entries):
    return rispy.dumps(entries, implementation=_Writer).encode("utf-8")


def _table_row(row, with_decisions):
    r = row.record
    values = [
        r.pk,
        r.publication_type,
        r.title,
        "; ".join(r.authors),
        r.year if r.year is not None else "",
        r.journal,
        r.volume,
        r.issue,
        r.pages,
        r.doi,
        r.pmid,
        r.pmcid,
        r.abstract,
        "; ".join(r.keywords),
        r.url,
    ]
    if with_decisions:
        ta, ft = Stage.TITLE_ABSTRACT, Stage.FULL_TEXT
        reason = r.ft_reason if row.outcomes[ft] == Record.Outcome.EXCLUDE.label else ""
        values += [row.status, row.outcomes[ta], row.outcomes[ft], reason, " | ".join(row.votes[ta])]
        values.append(" | ".join(row.votes[ft]))
    return values


def _xlsx(header, table):
    """The rows as one XLSX sheet, written by openpyxl's write-only workbook (row by row, to a
    temporary file), then handed out in pieces."""
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Records")
    sheet.append([_text_cell(sheet, h) for h in header])
    for values in table:
        sheet.append([_text_cell(sheet, v) for v in values])
    with tempfile.TemporaryFile() as fh:
        book.save(fh)
        fh.seek(0)
        while piece := fh.read(io.DEFAULT_BUFFER_SIZE * 16):
            yield piece


def _text_cell(sheet, value):
    if not isinstance(value, str):
        return value
    # XML 1.0 has no control characters (vertical tabs, form feeds from PDF-extracted abstracts):
    # openpyxl refuses them, so they become spaces, as line breaks do in RIS.
    value = ILLEGAL_CHARACTERS_RE.sub(" ", value)
    # openpyxl takes any text starting with "=" for a formula; a title must stay text. ("+", "-",
    # "@" are formulas only when typed into Excel: in a file, a string cell is a string.)
    if value.startswith("="):
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"
        return cell
    return value
