import django_tables2 as tables
from django.db.models import Prefetch, QuerySet
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from review.models import Record, Stage, Tag

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


class RecordTable(tables.Table):
    id = tables.Column("#", accessor="pk", order_by="pk")
    title = tables.Column(attrs={"td": {"class": "title"}})
    first_author = tables.Column("First author", accessor="authors", orderable=False)
    year = tables.Column()
    journal = tables.Column()
    source = tables.Column()
    ta_outcome = tables.Column("TA", empty_values=())
    ft_outcome = tables.Column("FT", empty_values=())
    tags = tables.Column("Tags", accessor="pk", orderable=False, attrs={"td": {"class": "tags"}})
    duplicate = tables.Column("Duplicate", accessor="duplicate_of_id", order_by="duplicate_of")

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
        template_name = "django_tables2/table.html"
        attrs = {"class": "table records"}
        order_by = "id"
        empty_text = "No records match these filters."

    def __init__(self, data=None, *args, review, blind=(), **kwargs):
        if isinstance(data, QuerySet):
            # The Tags column: one query per page rather than one per row.
            data = data.prefetch_related(Prefetch("tags", queryset=Tag.objects.only("pk", "name")))
        super().__init__(data, *args, **kwargs)
        self.review = review
        # Stages at which a conflict must read as pending (screening/visibility.py).
        self.blind = blind

    def render_title(self, record, value):
        return format_html('<a href="{}">{}</a>', reverse("review:record", args=[self.review.slug, record.pk]), value)

    def render_first_author(self, record):
        return record.first_author

    def _shown(self, value, stage):
        if value == Record.Outcome.CONFLICT and stage in self.blind:
            value = Record.Outcome.PENDING
        return _outcome(value, Record.Outcome(value).label)

    def render_ta_outcome(self, record):
        return self._shown(record.ta_outcome, Stage.TITLE_ABSTRACT)

    def render_ft_outcome(self, record):
        if record.ta_outcome != Record.Outcome.INCLUDE and not record.ft_outcome:
            return ""
        return self._shown(record.ft_outcome, Stage.FULL_TEXT)

    def render_tags(self, record):
        url = reverse("screening:records", args=[self.review.slug])
        return format_html_join(
            " ", '<a class="chip chip-only" href="{}?tag={}">{}</a>', ((url, t.pk, t.name) for t in record.tags.all())
        )

    def render_duplicate(self, value):
        return format_html('<span title="Duplicate of record {}">dup of #{}</span>', value, value)
