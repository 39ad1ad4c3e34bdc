"""Text bound for a spreadsheet (CSV downloads): typed text must never run as a formula."""

import csv
import io

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """``value``, with a leading apostrophe when it is text a spreadsheet would take for a formula
    ("=HYPERLINK(...)", "@SUM(...)"). Numbers are left alone, negative ones included."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(values):
    return [safe_cell(v) for v in values]


def csv_chunks(header, rows, rows_per_chunk=1000):
    """``header`` and ``rows`` as spreadsheet-safe CSV text, in pieces of ``rows_per_chunk`` rows
    for a streamed download or a file (the rows are read lazily)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for n, row in enumerate(rows, start=1):
        writer.writerow(safe_row(row))
        if n % rows_per_chunk == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()
