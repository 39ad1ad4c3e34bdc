"""Text bound for a spreadsheet (CSV downloads): typed text must never run as a formula."""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """``value``, with a leading apostrophe when it is text a spreadsheet would take for a formula
    ("=HYPERLINK(...)", "@SUM(...)"). Numbers are left alone, negative ones included."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(values):
    return [safe_cell(v) for v in values]
