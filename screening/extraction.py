"""The data-extraction table: one row per included study, one column per extraction field.

The web page shows it as a django-tables2 table; ``export`` and ``manage.py export_extraction``
write the same rows as CSV or XLSX (through tablib).
"""

import io
import math
import string
from typing import ClassVar

import django_tables2 as tables
import openpyxl
import tablib
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from review.models import Event, Record
from review.spreadsheet import safe_row
from screening.models import ExtractionField, ExtractionValue
from screening.prisma import included_records as _included

# Fixed columns: (row key, header).
BASE_COLUMNS = [
    ("study_id", "Study ID"),
    ("first_author", "First author"),
    ("year", "Year"),
    ("title", "Title"),
    ("pmid", "PMID"),
    ("doi", "DOI"),
]
YES, NO = "yes", "no"
YES_WORDS = {"yes", "y", "true", "1"}
NO_WORDS = {"no", "n", "false", "0"}
FORMATS = ("csv", "xlsx")


def field_key(field):
    return f"field_{field.pk}"


def included_records(review):
    """Unique records included at full text (reconciled outcome), in study-label order."""
    return _included(review).order_by("year", "pk")


def extraction_columns(review, fields=None):
    """(row key, header) for every column of the table: the fixed ones, then one per field."""
    fields = list(review.extraction_fields.all()) if fields is None else fields
    return BASE_COLUMNS + [(field_key(f), f.name) for f in fields]


def _study_ids(records):
    """'Surname Year' labels, with a/b/c suffixes where two studies would share one."""
    labels = [r.study_id for r in records]
    seen, counts = {}, {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    result = []
    for label in labels:
        if counts[label] == 1:
            result.append(label)
            continue
        i = seen[label] = seen.get(label, -1) + 1
        result.append(f"{label}{_suffix(i)}")
    return result


def _suffix(i):
    letters = string.ascii_lowercase
    return letters[i] if i < 26 else _suffix(i // 26 - 1) + letters[i % 26]


def extraction_rows(review, fields=None):
    """One dict per included study keyed as in ``extraction_columns`` (plus ``record_id``).

    Two queries whatever the size: the records, and every extracted value for them.
    """
    fields = list(review.extraction_fields.all()) if fields is None else fields
    records = list(included_records(review))
    values = {
        (record_id, field_id): value
        for record_id, field_id, value in ExtractionValue.objects.filter(
            record__in=[r.pk for r in records], field__in=[f.pk for f in fields]
        ).values_list("record_id", "field_id", "value")
    }
    rows = []
    for record, study_id in zip(records, _study_ids(records)):
        row = {
            "record_id": record.pk,
            "study_id": study_id,
            "first_author": record.first_author,
            "year": record.year,
            "title": record.title,
            "pmid": record.pmid,
            "doi": record.doi,
        }
        for f in fields:
            row[field_key(f)] = values.get((record.pk, f.pk), "")
        rows.append(row)
    return rows


class ExtractionTable(tables.Table):
    study_id = tables.Column(verbose_name="Study ID")
    first_author = tables.Column(verbose_name="First author")
    year = tables.Column(verbose_name="Year")
    title = tables.Column(verbose_name="Title")
    pmid = tables.Column(verbose_name="PMID", linkify=lambda value: f"https://pubmed.ncbi.nlm.nih.gov/{value}/")
    doi = tables.Column(verbose_name="DOI", linkify=lambda value: f"https://doi.org/{value}")

    class Meta:
        attrs: ClassVar = {"class": "table table-sm extraction"}
        empty_text = "No study has been included at full text yet."
        orderable = True


def build_table(review, request=None, per_page=50):
    """The extraction table for a page; with ``request``, sorting and pagination follow its query string."""
    fields = list(review.extraction_fields.all())
    extra = [(field_key(f), tables.Column(verbose_name=f.name, default="")) for f in fields]
    table = ExtractionTable(extraction_rows(review, fields), extra_columns=extra)
    if request is not None:
        tables.RequestConfig(request, paginate={"per_page": per_page}).configure(table)
    return table


def _number(text):
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def dataset(review):
    """The table as a tablib Dataset (numbers as numbers, so spreadsheets can compute with them)."""
    fields = list(review.extraction_fields.all())
    columns = extraction_columns(review, fields)
    numeric = {field_key(f) for f in fields if f.kind == ExtractionField.Kind.NUMBER}
    data = tablib.Dataset(headers=[header for _, header in columns], title="Extraction")
    for row in extraction_rows(review, fields):
        out = []
        for key, _ in columns:
            value = row[key]
            if key in numeric and value != "":
                value = _number(value)
            out.append("" if value is None else value)
        data.append(out)
    return data


def export(review, fmt) -> bytes:
    """The extraction table as CSV (UTF-8) or XLSX bytes."""
    if fmt not in FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}: use csv or xlsx.")
    data = dataset(review)
    if fmt == "csv":
        return _csv_without_formulas(data).export("csv").encode("utf-8")
    return _as_text_not_formulas(data.export("xlsx"))


def _csv_without_formulas(data):
    # Numbers are stored as numbers in the dataset, so only typed text gets the apostrophe.
    # The header row too: field names are typed by people ("=SUM(...)" as a field name).
    safe = tablib.Dataset(headers=safe_row(data.headers), title=data.title)
    for row in data:
        safe.append(safe_row(row))
    return safe


def _as_text_not_formulas(xlsx):
    # openpyxl stores any text starting with "=" as a formula; an extracted note or a title must
    # never run as one in the reviewer's spreadsheet (and tablib's escape would cut the "=").
    book = openpyxl.load_workbook(io.BytesIO(xlsx))
    cells = [c for row in book.active.iter_rows() for c in row if c.data_type == "f"]
    if not cells:
        return xlsx
    for cell in cells:
        cell.data_type = "s"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _clean(field, raw):
    """The stored form of ``raw`` for ``field``, or a ValidationError naming the field."""
    text = "" if raw is None else str(raw).strip()
    if text == "":
        return ""
    kind = field.kind
    if kind == ExtractionField.Kind.NUMBER:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise ValidationError(f"{field.name}: {text!r} is not a number.")
        return text
    if kind == ExtractionField.Kind.CHOICE:
        options = field.choices_list()
        for option in options:
            if option.casefold() == text.casefold():
                return option
        raise ValidationError(f"{field.name}: {text!r} is not one of the options ({', '.join(options)}).")
    if kind == ExtractionField.Kind.YESNO:
        word = text.casefold()
        if word in YES_WORDS:
            return YES
        if word in NO_WORDS:
            return NO
        raise ValidationError(f"{field.name}: {text!r} is not yes or no.")
    return text


def save_values(record, field_values: dict, user, *, seen=None):
    """Validate and store extracted values for one record.

    ``field_values`` maps ExtractionField objects (or their pk or name) to the entered text. All
    values are checked first; any bad one raises ValidationError (a dict keyed by field name)
    and nothing is written. A blank value removes what was stored. Returns the fields changed.

    ``seen`` ({ExtractionField: text}) is what the editor's form showed when it was opened. A
    field left as it was seen is not written (a colleague may have changed it since); a field
    changed by the editor *and* by someone else since it was seen is refused (ValidationError
    naming who changed it to what), so that nobody's change is overwritten unseen.
    """
    fields = list(ExtractionField.objects.filter(review_id=record.review_id))
    by_pk = {f.pk: f for f in fields}
    by_name = {f.name: f for f in fields}
    cleaned, errors = {}, {}
    for key, raw in field_values.items():
        if isinstance(key, ExtractionField):
            field = by_pk.get(key.pk)
            name = key.name
        else:
            field = by_pk.get(key) if isinstance(key, int) else by_name.get(key)
            name = str(key)
        if field is None:
            errors[name] = [f"{name}: no such extraction field in this review."]
            continue
        try:
            cleaned[field] = _clean(field, raw)
        except ValidationError as exc:
            errors[field.name] = exc.messages
    if errors:
        raise ValidationError(errors)

    changed, events = [], []
    with transaction.atomic():
        # Under the record's lock: the old value each event records is the one this write replaces,
        # also when two people enter a cell's first value at once (there is no row to lock yet).
        Record.objects.select_for_update().filter(pk=record.pk).values("pk").get()
        now = timezone.now()
        existing = {
            v.field_id: v
            for v in ExtractionValue.objects.select_for_update().filter(record=record, field__in=list(cleaned))
        }
        seen = {f.pk: v for f, v in (seen or {}).items()}
        conflicts = {}
        for field, value in list(cleaned.items()):
            current = existing.get(field.pk)
            if field.pk not in seen:
                continue
            stored = current.value if current is not None else ""
            if _same(value, seen[field.pk]):
                del cleaned[field]  # left as it was shown: keep whatever is stored now
            elif not _same(stored, seen[field.pk]) and not _same(stored, value):
                conflicts[field.name] = [_changed_meanwhile(field, current)]
        if conflicts:
            raise ValidationError(conflicts)
        for field, value in cleaned.items():
            current = existing.get(field.pk)
            old = current.value if current is not None else ""
            if value == old:
                continue
            if value == "":
                current.delete()
            elif current is None:
                ExtractionValue.objects.create(record=record, field=field, value=value, updated_by=user, updated_at=now)
            else:
                current.value, current.updated_by, current.updated_at = value, user, now
                current.save(update_fields=["value", "updated_by", "updated_at"])
            changed.append(field)
            events.append(_value_event(record.review_id, record.pk, field, old, value, user, now))
        Event.objects.bulk_create(events)
    return changed


def _same(a, b):
    # A browser sends line breaks back as CRLF whatever was stored.
    return a.replace("\r\n", "\n").strip() == b.replace("\r\n", "\n").strip()


def _changed_meanwhile(field, current):
    who = current.updated_by.get_username() if current is not None and current.updated_by else "Someone"
    now = f"to {current.value!r}" if current is not None else "(cleared it)"
    return (
        f"{field.name}: {who} changed this {now} while you were editing, so your value was not saved. "
        "The form now starts from their value: save again to replace it."
    )


def _value_event(review_id, record_id, field, old, new, user, at, **extra):
    return Event(
        review_id=review_id,
        record_id=record_id,
        actor=user,
        kind=Event.Kind.EXTRACTION,
        created_at=at,
        detail={"action": "value", "field": field.name, "field_id": field.pk, "old": old, "new": new, **extra},
    )


def value_history(record):
    """Every logged change of ``record``'s extracted values, newest first (events with ``actor``)."""
    return (
        Event.objects.filter(record=record, kind=Event.Kind.EXTRACTION, detail__action="value")
        .select_related("actor")
        .order_by("-created_at", "-pk")
    )


# What the audit trail says about a field, besides its values.
FIELD_SETTINGS = ("name", "kind", "choices", "help_text")


def save_field(form, *, user):
    """Save a valid ExtractionFieldForm (a new field or a changed one) and log what changed:
    every changed setting with its old and new value."""
    with transaction.atomic():
        before = None
        if form.instance.pk:
            before = ExtractionField.objects.select_for_update().filter(pk=form.instance.pk).values(*FIELD_SETTINGS)
            before = before.first()
        field = form.save()
        after = {name: getattr(field, name) for name in FIELD_SETTINGS}
        if before is None:
            detail = {"action": "field created", "field": field.name, "field_id": field.pk, **after}
        else:
            changes = {name: [before[name], after[name]] for name in FIELD_SETTINGS if before[name] != after[name]}
            if not changes:
                return field
            detail = {"action": "field changed", "field": field.name, "field_id": field.pk, "changes": changes}
        Event.objects.create(review_id=field.review_id, actor=user, kind=Event.Kind.EXTRACTION, detail=detail)
    return field


def delete_field(field, *, user):
    """Delete ``field`` and every value entered for it. The audit trail keeps them: one event for
    the field (its settings and every deleted value) and one per value on the record's history."""
    now = timezone.now()
    with transaction.atomic():
        field = ExtractionField.objects.select_for_update().get(pk=field.pk)
        values = list(
            ExtractionValue.objects.select_for_update()
            .filter(field=field)
            .order_by("record_id")
            .values_list("record_id", "value")
        )
        settings = {name: getattr(field, name) for name in FIELD_SETTINGS}
        events = [
            Event(
                review_id=field.review_id,
                actor=user,
                kind=Event.Kind.EXTRACTION,
                created_at=now,
                detail={
                    "action": "field deleted",
                    "field": field.name,
                    "field_id": field.pk,
                    **settings,
                    "values": [{"record": record_id, "value": value} for record_id, value in values],
                },
            )
        ]
        events += [
            _value_event(field.review_id, record_id, field, value, "", user, now, because="field deleted")
            for record_id, value in values
        ]
        Event.objects.bulk_create(events)
        field.delete()
    return len(values)
