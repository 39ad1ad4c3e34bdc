import inspect
from dataclasses import dataclass

import django_tables2 as tables
from django.core.paginator import Paginator
from django.db.models import BooleanField, ExpressionWrapper, Prefetch, Q
from django.db.models.functions import Left
from django.urls import reverse
from django.utils.formats import localize
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django_tables2.paginators import LazyPaginator

from review.models import TITLE_SORT_PREFIX, Record, Stage, Tag
from screening import stages, textsearch, visibility

# The columns the table shows; views load only these (abstracts stay in the database).
RECORD_COLUMNS = (
    "pk",
    "review_id",
    "title",
    "authors",
    "year",
    "journal",
    "source",
    "ta_outcome",
    "ft_outcome",
    "duplicate_of_id",
)


def _outcome(value, label):
    return format_html('<span class="outcome outcome-{}">{}</span>', value or "pending", label)


# A record a closure on the stopping rule left unscreened (screening/closing.py).
AUTOMATION_LABEL = "Ineligible (automation)"


def _closed(review, stage):
    return ExpressionWrapper(Q(pk__in=stages.closed_records(review, stage)), output_field=BooleanField())


class RecordTable(tables.Table):
    id = tables.Column("#", accessor="pk", order_by="pk")
    # Every sort ends on the record number: equal values keep one order on every database, whatever
    # rows an update moved (PostgreSQL returns ties in storage order, which a vote changes).
    # By the indexed first characters of the title, then the rest (review.models.TITLE_SORT_PREFIX).
    title = tables.Column(attrs={"td": {"class": "title"}}, order_by=("title_key", "title", "pk"))
    first_author = tables.Column("First author", accessor="authors", orderable=False)
    year = tables.Column(order_by=("year", "pk"))
    journal = tables.Column(order_by=("journal", "pk"))
    source = tables.Column(order_by=("source", "pk"))
    # Sorted by the outcome as the reader may see it (a conflict sorts as pending to a blinded reviewer).
    ta_outcome = tables.Column("TA", empty_values=(), order_by=("ta_shown", "pk"))
    ft_outcome = tables.Column("FT", empty_values=(), order_by=("ft_shown", "pk"))
    tags = tables.Column("Tags", accessor="pk", orderable=False, attrs={"td": {"class": "tags"}})
    duplicate = tables.Column("Duplicate", accessor="duplicate_of_id", order_by=("duplicate_of", "pk"))

    class Meta:
        model = Record
        fields = ()
        sequence = (
            "id",
            "title",
            "first_author",
            "year",
            "journal",
            "source",
            "ta_outcome",
            "ft_outcome",
            "tags",
            "duplicate",
        )
        # django-tables2's own template, with the rows from body_rows().
        template_name = "screening/_records_table.html"
        attrs = {"class": "table records"}
        order_by = "id"
        empty_text = "No records match these filters."

    def __init__(self, data, *args, review, membership, highlight=None, **kwargs):
        # The outcomes as ``membership`` may see them (screening/visibility.py), shown and sorted on.
        data = data.annotate(
            ta_shown=visibility.shown_outcome_expression(Stage.TITLE_ABSTRACT, membership),
            ft_shown=visibility.shown_outcome_expression(Stage.FULL_TEXT, membership),
            ta_closed=_closed(review, Stage.TITLE_ABSTRACT),
            ft_closed=_closed(review, Stage.FULL_TEXT),
        ).alias(title_key=Left("title", TITLE_SORT_PREFIX))
        # The Tags column: one query per page rather than one per row.
        data = data.prefetch_related(Prefetch("tags", queryset=Tag.objects.only("pk", "name")))
        super().__init__(data, *args, **kwargs)
        self.review = review
        # The text search's tree (screening/textsearch.py): its words are marked in the titles.
        self.highlight = highlight

    def body_rows(self):
        """The page's rows as HTML: the same as django-tables2's template makes of them (a test pins
        it), without its template lookups and signature inspection for each of the 500 cells, which
        took most of the page's time. Every accessor here is one attribute of the record."""
        columns = [
            (
                bound.attrs["td"].as_html(),
                bound.accessor,
                bound.column.empty_values,
                bound.default,
                self._renderer(bound),
            )
            for bound in self.columns
        ]
        rows = []
        for row in self.paginated_rows:
            record = row.record
            cells = []
            for attrs, accessor, empty_values, default, render in columns:
                value = getattr(record, accessor)
                if value in empty_values:
                    value = default
                elif render is not None:
                    value = render(record, value)
                cells.append(format_html("<td {}>{}</td>", attrs, localize(value)))
            rows.append(
                format_html("<tr {}>{}</tr>", row.attrs.as_html(), format_html_join("", "{}", ((c,) for c in cells)))
            )
        return rows

    def _renderer(self, bound):
        """The column's render_<name> method as a function of (record, value), or None."""
        method = getattr(self, f"render_{bound.name}", None)
        if method is None:
            return None
        wanted = inspect.signature(method).parameters
        return lambda record, value: method(**{k: v for k, v in (("record", record), ("value", value)) if k in wanted})

    def render_title(self, record, value):
        title = textsearch.highlight(value, self.highlight) if self.highlight is not None else value
        return format_html('<a href="{}">{}</a>', reverse("review:record", args=[self.review.slug, record.pk]), title)

    def render_first_author(self, record):
        return record.first_author

    def render_ta_outcome(self, record):
        if record.ta_closed:
            return _outcome("automation", AUTOMATION_LABEL)
        return _outcome(record.ta_shown, Record.Outcome(record.ta_shown).label)

    def render_ft_outcome(self, record):
        if not (stages.passes_title_abstract(record, self.review) or record.ft_outcome):
            return ""
        if record.ft_closed:
            return _outcome("automation", AUTOMATION_LABEL)
        return _outcome(record.ft_shown, Record.Outcome(record.ft_shown).label)

    @cached_property
    def _records_url(self):
        return reverse("screening:records", args=[self.review.slug])

    def render_tags(self, record):
        return format_html_join(
            " ",
            '<a class="chip chip-only" href="{}?tag={}">{}</a>',
            ((self._records_url, t.pk, t.name) for t in record.tags.all()),
        )

    def render_duplicate(self, value):
        return format_html('<span title="Duplicate of record {}">dup of #{}</span>', value, value)


# Counting the matches of a text search reads every matching title and abstract; past this many the
# table says "more than" and pages on without a total.
TEXT_SEARCH_COUNT_LIMIT = 500


@dataclass(frozen=True)
class Total:
    """How many records the table lists: ``count`` exactly, or at least ``count`` when not ``exact``."""

    count: int
    exact: bool = True


def count_listed(queryset, *, text_search):
    """The number of records in ``queryset`` (the filtered records, before the table's annotations).

    Exact, from the index, unless a text search matches more than TEXT_SEARCH_COUNT_LIMIT records:
    then a lower bound, and the page says so.
    """
    if not text_search:
        return Total(queryset.count())
    # Unordered: any TEXT_SEARCH_COUNT_LIMIT + 1 matches will do, wherever PostgreSQL finds them first.
    found = queryset.order_by()[: TEXT_SEARCH_COUNT_LIMIT + 1].count()
    return Total(min(found, TEXT_SEARCH_COUNT_LIMIT), exact=found <= TEXT_SEARCH_COUNT_LIMIT)


class CountedPaginator(Paginator):
    """A paginator told the exact count beforehand (count_listed), so it never counts again."""

    def __init__(self, object_list, per_page, *, total, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.total = total

    @cached_property
    def count(self):
        return self.total.count


def paginate_options(total, per_page):
    """RequestConfig's ``paginate`` for ``total``: numbered pages when it is exact, else next/previous."""
    if total.exact:
        return {"per_page": per_page, "paginator_class": CountedPaginator, "total": total}
    return {"per_page": per_page, "paginator_class": LazyPaginator}


class SelectableRecordTable(RecordTable):
    """The records table with a checkbox on each row, for the bulk actions (screening/bulk.py): the
    boxes belong to the page's bulk form (``form="bulk-form"``), which sits outside the table."""

    select = tables.Column("Select", accessor="pk", orderable=False, attrs={"td": {"class": "select"}})

    class Meta(RecordTable.Meta):
        sequence = ("select", *RecordTable.Meta.sequence)

    def render_select(self, value):
        return format_html(
            '<input type="checkbox" name="bulk-records" value="{}" form="bulk-form" aria-label="Select record {}">',
            value,
            value,
        )
