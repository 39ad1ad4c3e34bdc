"""The hand-out log: every record handed to a reviewer, in which order, and in ranked order the
model version, the record's rank and its score then (screening/queue.py records them), so that a
review's methods can say what the model showed whom. A read-only report, streamed as CSV."""

from datetime import UTC

from review.spreadsheet import csv_chunks
from screening.models import HandOut
from screening.visibility import visible_handouts

CSV_COLUMNS = [
    "handed_at_utc",
    "record_id",
    "pmid",
    "doi",
    "title",
    "reviewer",
    "stage",
    "order",
    "model_version",
    "rank",
    "score",
]
_FIELDS = (
    "handed_at",
    "record_id",
    "record__pmid",
    "record__doi",
    "record__title",
    "reviewer__username",
    "stage",
    "order",
    "model_version",
    "rank",
    "score",
)


def handout_rows(review, membership=None):
    """One list per hand-out of ``review`` in CSV_COLUMNS order, oldest first: those ``membership``
    may see, or all of them with no membership (the command line, run by whoever holds the database).
    One query, read in chunks."""
    handouts = HandOut.objects.filter(record__review=review)
    if membership is not None:
        handouts = visible_handouts(handouts, membership)
    rows = handouts.order_by("handed_at", "pk").values_list(*_FIELDS)
    for handed_at, *rest, score in rows.iterator(chunk_size=2000):
        yield [
            handed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
            *("" if value is None else value for value in rest),
            "" if score is None else repr(score),
        ]


def handout_csv_chunks(review, membership=None, rows_per_chunk=1000):
    """The hand-out log as CSV text, in pieces for a streamed download or a file."""
    return csv_chunks(CSV_COLUMNS, handout_rows(review, membership), rows_per_chunk)
