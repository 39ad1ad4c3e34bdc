"""The search log as CSV: every PubMed search, file import and counted source of a review, for
PRISMA-S reporting (database, platform, source type, date searched, query, limits, figures).

Other apps add rows through ``register_rows`` (review never imports them): screening adds the
closures of a stage on the stopping rule, and their reopenings, in its apps.ready.
"""

import csv
import io
from datetime import UTC

from review.models import Search
from review.spreadsheet import safe_row

COLUMNS = [
    ("run_at", "Date run (UTC)"),
    ("source", "Database / source"),
    ("platform", "Platform / interface"),
    ("source_type", "Source type"),
    ("searched_on", "Date searched"),
    ("kind", "Kind"),
    ("query", "Query"),
    ("query_translation", "Query translation"),
    ("limits", "Limits and restrictions"),
    ("mindate", "Date from"),
    ("maxdate", "Date to"),
    ("filename", "File name"),
    ("file_format", "File format"),
    ("run_by", "Run by"),
    ("hits", "Hits"),
    ("fetched", "Records fetched"),
    ("added", "Records added"),
    ("duplicates", "Duplicates"),
    ("skipped", "Already in review"),
    ("notes", "Notes"),
]


# Callables (review) -> [dict]: each dict has "when" (an aware datetime) and any of COLUMNS' keys.
_ROW_SOURCES = []


def register_rows(source):
    """Add ``source``'s rows to every review's search log (once, however often it is registered)."""
    if source not in _ROW_SOURCES:
        _ROW_SOURCES.append(source)
    return source


def search_log_rows(review):
    """One dict per search or import (and per row a registered source adds), oldest first, keyed
    as in ``COLUMNS``."""
    rows = []
    for search in Search.objects.filter(review=review).select_related("run_by", "undone_by").order_by("run_at", "pk"):
        rows.append({**search_row(search), "_when": search.run_at})
    rows.extend(_registered_rows(review))
    # Stable: searches keep their order among themselves, and come first at the same instant.
    rows.sort(key=lambda row: row["_when"])
    for row in rows:
        del row["_when"]
    return rows


def search_row(search):
    """One search, import or count as a search-log row keyed as in ``COLUMNS``."""
    counted = search.kind == Search.Kind.COUNT
    return {
        "run_at": search.run_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "source": search.source,
        "platform": search.platform,
        "source_type": search.get_source_type_display(),
        "searched_on": search.searched_on.isoformat() if search.searched_on else "",
        "kind": search.get_kind_display(),
        "query": search.query,
        "query_translation": search.query_translation,
        "limits": search.limits,
        "mindate": search.mindate,
        "maxdate": search.maxdate,
        "filename": search.filename,
        "file_format": search.file_format,
        "run_by": search.run_by.get_username() if search.run_by else "",
        # Hits are unknown for a file import, and a counted source has nothing fetched or
        # added: left blank rather than 0.
        "hits": "" if search.hits is None else search.hits,
        "fetched": "" if counted else search.fetched,
        "added": "" if counted else search.added,
        "duplicates": "" if counted else search.duplicates,
        "skipped": "" if counted else search.skipped,
        "notes": " ".join(search.log_notes()),
    }


def _registered_rows(review):
    rows = []
    for source in _ROW_SOURCES:
        for extra in source(review):
            when = extra["when"]
            row = {key: "" for key, _ in COLUMNS}
            row.update({key: value for key, value in extra.items() if key in row})
            row.update(run_at=when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"), _when=when)
            rows.append(row)
    return rows


def registered_rows(review):
    """The search log's rows other apps add (not searches or imports), oldest first, keyed as in
    ``COLUMNS``: the searches page lists them below its table, as the CSV does among its rows."""
    rows = sorted(_registered_rows(review), key=lambda row: row["_when"])
    for row in rows:
        del row["_when"]
    return rows


def search_log_csv(review) -> str:
    """Every search and import of ``review`` as CSV text with a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([header for _, header in COLUMNS])
    for row in search_log_rows(review):
        writer.writerow(safe_row(row[key] for key, _ in COLUMNS))
    return out.getvalue()
