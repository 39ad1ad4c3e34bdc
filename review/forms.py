import re

from django import forms
from django.contrib.auth.forms import UserCreationForm

from review import limits, sources
from review.invitations import normalise_email
from review.models import Review, Role, Search
from review.reviews import SETTINGS_FIELDS, check_slug

# PubMed's date filters accept YYYY, YYYY/MM or YYYY/MM/DD.
PUBMED_DATE = re.compile(r"^\d{4}(/(0[1-9]|1[0-2])(/(0[1-9]|[12]\d|3[01]))?)?$")
# The review's long text settings are TextFields; the form bounds what may be typed.
REVIEW_TEXT_CAPS = {
    "question": limits.REVIEW_TEXT,
    "inclusion_criteria": limits.REVIEW_TEXT,
    "exclusion_criteria": limits.REVIEW_TEXT,
    "exclusion_reasons": limits.REVIEW_TEXT,
    "include_keywords": limits.REVIEW_TEXT,
    "exclude_keywords": limits.REVIEW_TEXT,
    "pubmed_query": limits.PUBMED_QUERY,
}


class ReviewForm(forms.ModelForm):
    class Meta:
        model = Review
        fields = ("title", "slug", *SETTINGS_FIELDS)
        widgets = {
            "question": forms.Textarea(attrs={"rows": 2}),
            "inclusion_criteria": forms.Textarea(attrs={"rows": 4}),
            "exclusion_criteria": forms.Textarea(attrs={"rows": 4}),
            "exclusion_reasons": forms.Textarea(attrs={"rows": 5}),
            "include_keywords": forms.Textarea(attrs={"rows": 2}),
            "exclude_keywords": forms.Textarea(attrs={"rows": 2}),
            "pubmed_query": forms.Textarea(attrs={"rows": 3, "class": "mono"}),
            "title_abstract_reviewers": forms.NumberInput(attrs={"min": 1, "max": 5}),
            "full_text_reviewers": forms.NumberInput(attrs={"min": 1, "max": 5}),
        }
        help_texts = {
            "slug": "Used in the review's web address. Left blank, it is made from the title.",
            "exclusion_reasons": "One per line; full-text exclusions pick one of these.",
            "title_abstract_reviewers": "2 for dual independent screening.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        limits.cap_text_fields(self, REVIEW_TEXT_CAPS)
        self.fields["slug"].required = False
        if self.instance.pk:
            # The slug is in every link people have saved: it is fixed once the review exists.
            del self.fields["slug"]

    def clean_slug(self):
        slug = self.cleaned_data["slug"].strip()
        if slug:
            try:
                check_slug(slug, exclude_pk=self.instance.pk)
            except ValueError as e:
                raise forms.ValidationError(str(e)) from None
        return slug

    def clean(self):
        cleaned = super().clean()
        for name in ("title_abstract_reviewers", "full_text_reviewers"):
            value = cleaned.get(name)
            if value is not None and not 1 <= value <= 5:
                self.add_error(name, "Between 1 and 5 reviewers per record.")
        return cleaned


class PubMedSearchForm(forms.Form):
    query = forms.CharField(max_length=limits.PUBMED_QUERY, widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}))
    mindate = forms.CharField(
        label="From", required=False, max_length=10, help_text="YYYY, YYYY/MM or YYYY/MM/DD (publication date)"
    )
    maxdate = forms.CharField(label="To", required=False, max_length=10, help_text="YYYY, YYYY/MM or YYYY/MM/DD")
    # No cap of Sieve's own: the search runs in the background, and the client pages through
    # PubMed's 9,999-per-query limit by splitting the dates. Blank fetches every record found.
    max_records = forms.IntegerField(
        label="Fetch at most",
        required=False,
        min_value=1,
        help_text="Leave blank to fetch every record found. The search runs in the background.",
    )

    def _date(self, name):
        given = self.cleaned_data[name].strip()
        value = given.replace("-", "/")
        if value and not PUBMED_DATE.match(value):
            raise forms.ValidationError(f"{given!r} is not a date PubMed accepts: use YYYY, YYYY/MM or YYYY/MM/DD.")
        return value

    def clean_mindate(self):
        return self._date("mindate")

    def clean_maxdate(self):
        return self._date("maxdate")

    def clean(self):
        cleaned = super().clean()
        mindate, maxdate = cleaned.get("mindate"), cleaned.get("maxdate")
        if bool(mindate) != bool(maxdate):
            # E-utilities ignores a date range unless both ends are given.
            self.add_error("maxdate" if mindate else "mindate", "Give both dates, or neither.")
        elif mindate and maxdate and mindate[: len(maxdate)] > maxdate[: len(mindate)]:
            self.add_error("maxdate", "The end date is before the start date.")
        return cleaned


class SourceForm(forms.Form):
    """A source as the user describes it (PRISMA-S items 1-3, 8, 9, 13); see review.sources."""

    source = forms.CharField(
        label="Database / source",
        required=False,
        max_length=sources.MAX_LENGTHS["database"],
        help_text="The database searched, e.g. Embase or APA PsycInfo. Left blank, it is taken from the file.",
    )
    platform = forms.CharField(
        label="Platform / interface",
        required=False,
        max_length=sources.MAX_LENGTHS["platform"],
        help_text="Where it was searched, e.g. Ovid, EBSCOhost, Embase.com. Left blank, taken from the file if shown.",
    )
    source_type = forms.ChoiceField(
        label="Source type",
        required=False,
        choices=[("", "Database (a trial register if the name is one)"), *Search.SourceType.choices],
        help_text="Trial registers such as ClinicalTrials.gov and ICTRP are counted apart from databases in PRISMA.",
    )
    searched_on = forms.DateField(
        label="Date searched",
        required=False,
        # ISO only: "03/04/2024" is March or April depending on who typed it.
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": "Write the date as YYYY-MM-DD, e.g. 2024-03-31."},
        help_text="The day the search was run (YYYY-MM-DD).",
    )
    query = forms.CharField(
        label="Search strategy as run",
        required=False,
        max_length=sources.MAX_LENGTHS["query"],
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        help_text="Paste the query exactly as it was run, every line of it.",
    )
    limits = forms.CharField(
        label="Limits and restrictions",
        required=False,
        max_length=sources.MAX_LENGTHS["limits"],
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="e.g. English only; 2000 to present; humans; no filters.",
    )

    def clean_searched_on(self):
        day = self.cleaned_data["searched_on"]
        try:
            sources.check_search_date(day)
        except ValueError as e:
            raise forms.ValidationError(str(e)) from None
        return day

    def source_details(self):
        data = self.cleaned_data
        return sources.SourceDetails(
            database=data.get("source") or "",
            platform=data.get("platform") or "",
            source_type=data.get("source_type") or "",
            searched_on=data.get("searched_on"),
            query=data.get("query") or "",
            limits=data.get("limits") or "",
        )


class ImportForm(SourceForm):
    file = forms.FileField(help_text="RIS, PubMed XML, MEDLINE (.nbib/.txt), CSV or Web of Science export.")
    field_order = ["file"]

    def __init__(self, *args, refusal="", **kwargs):
        # ``refusal``: why the upload was stopped while it streamed in (review.uploads), if it was.
        super().__init__(*args, **kwargs)
        self.refusal = refusal
        limit = limits.megabytes(limits.max_upload_size())
        self.fields["file"].help_text += f" At most {limit} MB."
        if refusal:
            self.fields["file"].required = False

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if self.refusal:
            raise forms.ValidationError(self.refusal)
        if upload.size > limits.max_upload_size():
            raise forms.ValidationError(limits.too_large_message(upload.size, name=upload.name))
        return upload


class CountForm(SourceForm):
    """Records identified by a source that is counted, not imported (citation searching...)."""

    count = forms.IntegerField(
        label="Records identified",
        min_value=0,
        max_value=sources.MAX_COUNT,
        help_text="How many records this source identified.",
    )
    field_order = ["source", "count", "source_type", "searched_on", "query", "limits", "platform"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="count", **kwargs)
        source = self.fields["source"]
        source.required = True
        source.label = "Source"
        source.help_text = "e.g. Citation searching, Websites, Organisations, or a register searched by hand."
        self.fields["source_type"].choices = Search.SourceType.choices
        self.fields["source_type"].required = True
        self.fields["source_type"].help_text = ""
        self.initial.setdefault("source_type", Search.SourceType.OTHER)
        self.fields["searched_on"].required = True
        self.fields["searched_on"].error_messages["required"] = "Give the date the source was searched (YYYY-MM-DD)."
        self.fields["query"].label = "How it was searched"
        self.fields["query"].help_text = "e.g. the reference lists of the included studies; the websites visited."
        self.fields["platform"].help_text = ""


class SearchEditForm(SourceForm):
    """The owner's corrections to what the search log says of a search, import or count."""

    def __init__(self, *args, search, **kwargs):
        initial = {name: getattr(search, name) for name in ("source", "platform", "source_type", "query", "limits")}
        initial["searched_on"] = search.searched_on
        if search.kind == Search.Kind.COUNT:
            initial["count"] = search.hits
        super().__init__(*args, initial=initial, **kwargs)
        self.fields["source"].required = True
        self.fields["source"].help_text = ""
        self.fields["platform"].help_text = ""
        self.fields["source_type"].choices = Search.SourceType.choices
        self.fields["source_type"].required = True
        if search.kind == Search.Kind.COUNT:
            self.fields["count"] = forms.IntegerField(
                label="Records identified", min_value=0, max_value=sources.MAX_COUNT
            )
            self.order_fields(["source", "count"])
        if search.kind == Search.Kind.PUBMED:
            # Sieve ran it: the database, query, date and platform are what it sent.
            for name in ("source", "platform", "source_type", "searched_on", "query"):
                del self.fields[name]


class InviteForm(forms.Form):
    email = forms.CharField(
        label="Email address",
        max_length=254,
        help_text="They get a link to accept; they become a member only when they do.",
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.REVIEWER)

    def clean_email(self):
        try:
            return normalise_email(self.cleaned_data["email"])
        except ValueError as e:
            raise forms.ValidationError(str(e)) from None


class InvitationSignupForm(UserCreationForm):
    """A new account for the holder of an invitation link; its email is the invitation's."""

    def __init__(self, *args, email, **kwargs):
        super().__init__(*args, **kwargs)
        # Set before validation: the password validators compare the password with it.
        self.instance.email = email


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class MergeForm(forms.Form):
    into = forms.IntegerField(label="Duplicate of record #", min_value=1)


class DeleteReviewForm(forms.Form):
    confirmation = forms.CharField(
        label="Type the review's short name to confirm",
        max_length=300,
        strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
