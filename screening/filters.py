import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef

from review.models import Record, RecordTag, Search, Stage, Tag
from screening import stages, textsearch, visibility
from screening.models import Choice, Decision

# "automation": left unscreened when the stage was closed on the stopping rule (not pending any more).
AUTOMATION = "automation"
OUTCOME_CHOICES = (
    [("pending", "Pending")]
    + [(o.value, o.label) for o in Record.Outcome if o.value]
    + [(AUTOMATION, "Ineligible (automation)")]
)
DUPLICATE_CHOICES = [("unique", "Unique"), ("duplicate", "Duplicate")]


class SearchField(forms.CharField):
    """What was typed in the search box, cleaned to its tree (screening/textsearch.py), or None."""

    def clean(self, value):
        try:
            return textsearch.parse(super().clean(value))
        except textsearch.SearchSyntaxError as error:
            raise forms.ValidationError(str(error), code="search_syntax") from None


class SearchFilter(django_filters.CharFilter):
    field_class = SearchField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", forms.TextInput(attrs={"type": "search", "aria-describedby": "search-help"}))
        super().__init__(*args, **kwargs)


class RecordFilter(django_filters.FilterSet):
    q = SearchFilter(
        method="filter_text",
        label="Search title/abstract",
        help_text='Words all found; "a phrase", OR, NOT or -word, rat* for rat, rats...; (parentheses).',
    )
    ta = django_filters.ChoiceFilter(
        choices=OUTCOME_CHOICES, method="filter_outcome", label="TA outcome", empty_label="any"
    )
    ft = django_filters.ChoiceFilter(
        choices=OUTCOME_CHOICES, method="filter_outcome", label="FT outcome", empty_label="any"
    )
    decision = django_filters.ChoiceFilter(choices=Choice.choices, method="keep", label="Decision", empty_label="any")
    decision_stage = django_filters.ChoiceFilter(
        choices=Stage.choices, method="keep", label="at stage", empty_label=None
    )
    reviewer = django_filters.ModelChoiceFilter(queryset=get_user_model().objects.none(), method="keep", label="by")
    source = django_filters.ChoiceFilter(choices=[], label="Source", empty_label="any")
    duplicates = django_filters.ChoiceFilter(
        choices=DUPLICATE_CHOICES, method="filter_duplicates", label="Duplicates", empty_label="all"
    )
    tag = django_filters.ModelMultipleChoiceFilter(
        queryset=Tag.objects.none(),
        method="filter_tags",
        label="Tags (any of)",
        widget=forms.SelectMultiple(attrs={"size": 3}),
    )
    year = django_filters.RangeFilter(
        label="Year", widget=django_filters.widgets.RangeWidget(attrs={"inputmode": "numeric", "size": 4})
    )

    class Meta:
        model = Record
        fields = []

    def __init__(self, data=None, *args, review, user, membership, **kwargs):
        super().__init__(data, *args, **kwargs)
        self.review = review
        self.user = user
        self.membership = membership
        users = get_user_model().objects.filter(memberships__review=review).order_by("username")
        # Blinding: another reviewer's votes only for whoever sees all votes at some stage; the
        # stage picked is checked again in filter_queryset.
        self.blind = visibility.blind_stages(review, membership)
        sees_others = len(self.blind) < len(Stage)
        reviewer = self.filters["reviewer"]
        reviewer.queryset = users if sees_others else users.filter(pk=self.user.pk)
        reviewer.extra["empty_label"] = "anyone" if sees_others else None
        for name, stage in (("ta", Stage.TITLE_ABSTRACT), ("ft", Stage.FULL_TEXT)):
            if stage in self.blind:
                # A blinded reviewer is not told which records are in conflict: they read as pending.
                self.filters[name].extra["choices"] = [c for c in OUTCOME_CHOICES if c[0] != Record.Outcome.CONFLICT]
        # A counted source (citation searching...) has no records to filter by.
        searches = Search.objects.filter(review=review).active().exclude(kind=Search.Kind.COUNT)
        sources = searches.order_by("source").values_list("source", flat=True).distinct()
        self.filters["source"].extra["choices"] = [(s, s) for s in sources]
        self.filters["tag"].queryset = Tag.objects.filter(review=review)

    @property
    def text_search(self):
        """True when the records are filtered by a text search (slow to count: screening/tables.py)."""
        return self.is_valid() and self.text_query is not None

    @property
    def text_query(self):
        """The search's tree (screening/textsearch.py), or None; what the table highlights."""
        return self.form.cleaned_data.get("q") if self.is_bound and self.is_valid() else None

    def filter_text(self, queryset, name, value):
        return textsearch.filter_records(queryset, value)

    def filter_outcome(self, queryset, name, value):
        stage = Stage.TITLE_ABSTRACT if name == "ta" else Stage.FULL_TEXT
        closed = stages.closed_records(self.review, stage)
        if value == AUTOMATION:
            return queryset.filter(pk__in=closed)
        if value == "pending":
            queryset = queryset.exclude(pk__in=closed)
            value = Record.Outcome.PENDING
        # By the outcome this member may be told (a conflict is pending to a blinded reviewer).
        return queryset.filter(visibility.shown_outcome_q(stage, self.membership, value))

    def filter_tags(self, queryset, name, value):
        if not value:  # an empty selection cleans to an empty queryset, not to None
            return queryset
        # Exists rather than a join: a record with two of the tags is listed once, without DISTINCT.
        return queryset.filter(Exists(RecordTag.objects.filter(record=OuterRef("pk"), tag__in=value)))

    def filter_duplicates(self, queryset, name, value):
        return queryset.filter(duplicate_of__isnull=value == "unique")

    def keep(self, queryset, name, value):
        # decision, decision_stage and reviewer act together in filter_queryset.
        return queryset

    def filter_queryset(self, queryset):
        if "q" in self.form.errors:
            # A search that cannot be read lists nothing (its message is on the page), rather than
            # every record as though they matched.
            return queryset.none()
        queryset = super().filter_queryset(queryset)
        data = self.form.cleaned_data
        decision = data.get("decision")
        stage = data.get("decision_stage") or Stage.TITLE_ABSTRACT
        # A blinded reviewer filters by their own votes only; the others by anyone's, or any vote at all.
        sees_all = stage not in self.blind
        reviewer = data.get("reviewer") if sees_all else self.user
        if not decision and not (sees_all and reviewer):
            return queryset
        votes = Decision.objects.filter(record=OuterRef("pk"), stage=stage, is_current=True)
        if decision:
            votes = votes.filter(decision=decision)
        if reviewer:
            votes = votes.filter(reviewer=reviewer)
        return queryset.filter(Exists(votes))
