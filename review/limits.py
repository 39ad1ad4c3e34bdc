"""How much text one field may hold: imported records, uploads and what people type.

The model fields holding long text are TextFields and JSON lists with no length of their own,
so these caps are what keeps a 50 MB "abstract" out of the database. They are far above any
real record (PubMed's longest abstracts are about 20,000 characters; collaboration papers list
a few thousand authors). Short metadata (journal, volume, pages, DOI, URL...) is stored in
CharFields and cut to their column width by ``review.importing``; the caps for those here only
refuse what is no metadata at all (a whole abstract pasted into the journal column).
"""

from review.article import ImportFileError

MB = 1024 * 1024
DEFAULT_MAX_UPLOAD_MB = 200

# Imported records: Article field -> most characters (lists: per item).
ARTICLE_TEXT = {
    "title": 5_000,
    "abstract": 100_000,
    "journal": 5_000,
    "volume": 1_000,
    "issue": 1_000,
    "pages": 1_000,
    "doi": 1_000,
    "pmid": 1_000,
    "url": 10_000,
    "publication_type": 5_000,
    "source_key": 1_000,
}
# Article list field -> (most items, most characters per item).
ARTICLE_LISTS = {
    "authors": (20_000, 1_000),
    "keywords": (5_000, 1_000),
}

# What people type (forms check these; the model fields are TextFields without a length).
REVIEW_TEXT = 20_000  # question, criteria, exclusion reasons, highlight keywords
PUBMED_QUERY = 20_000
DECISION_NOTE = 5_000
EXTRACTION_VALUE = 20_000
EXTRACTION_CHOICES = 10_000


def cap_text_fields(form, caps):
    """Give the fields of ``form`` named in ``caps`` (name -> most characters) a length check and
    a maxlength attribute, as a CharField(max_length=...) has (for ModelForms over TextFields)."""
    # Django is imported here, not at the top: the importers, and so their parser process
    # (review.importers.process), import this module and need no Django.
    from django.core.validators import MaxLengthValidator

    for name, most in caps.items():
        field = form.fields.get(name)
        if field is not None:
            field.validators.append(MaxLengthValidator(most))
            field.widget.attrs["maxlength"] = str(most)


def check_article(article, name):
    """Raise ImportFileError naming the file (``name``), the record and the field when a field of
    ``article`` is over its cap."""
    for field, most in ARTICLE_TEXT.items():
        value = getattr(article, field) or ""
        if len(value) > most:
            _refuse(name, article, f"the {_label(field)} has {len(value):,} characters; the limit is {most:,}")
    for field, (most_items, most_chars) in ARTICLE_LISTS.items():
        items = getattr(article, field) or []
        if len(items) > most_items:
            _refuse(name, article, f"it lists {len(items):,} {_label(field)}; the limit is {most_items:,}")
        if not items or max(map(len, items)) <= most_chars:
            continue  # every item within its cap: the usual case, checked in C
        for position, item in enumerate(items, 1):
            if len(item) > most_chars:
                _refuse(
                    name,
                    article,
                    f"{_label(field)} {position} has {len(item):,} characters; the limit is {most_chars:,}",
                )


def _label(field):
    return field.replace("_", " ")


def _refuse(name, article, problem):
    where = article.location or "a record"
    ident = f" (PMID {article.pmid})" if article.pmid else ""
    raise ImportFileError(f"{name}: {where}{ident}: {problem}. Nothing was imported.")


# --- Uploads ---------------------------------------------------------------------------------


def max_upload_size():
    """The largest file accepted, in bytes (setting MAX_UPLOAD_SIZE, from SIEVE_MAX_UPLOAD_MB)."""
    from django.conf import settings

    return getattr(settings, "MAX_UPLOAD_SIZE", DEFAULT_MAX_UPLOAD_MB * MB)


def megabytes(size):
    text = f"{size / MB:,.1f}"
    return text.removesuffix(".0")


def too_large_message(size, limit=None, name=""):
    """'report.ris: the file is 250 MB; the limit is 200 MB (SIEVE_MAX_UPLOAD_MB).'"""
    limit = max_upload_size() if limit is None else limit
    prefix = f"{name}: the file" if name else "The file"
    if size is None:
        return f"{prefix} is more than {megabytes(limit)} MB, the limit (SIEVE_MAX_UPLOAD_MB)."
    shown, most = f"{megabytes(size)} MB", f"{megabytes(limit)} MB"
    if shown == most:  # just over: rounding would make both read the same
        shown, most = f"{size:,} bytes", f"{most} ({limit:,} bytes)"
    return f"{prefix} is {shown}; the limit is {most} (SIEVE_MAX_UPLOAD_MB)."
