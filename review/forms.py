import re

from django import forms
from django.contrib.auth.forms import UserCreationForm

from review import limits
from review.invitations import normalise_email
from review.models import Review, Role
from review.reviews import SETTINGS_FIELDS, check_slug

# PubMed's date filters accept YYYY, YYYY/MM or YYYY/MM/DD.
PUBMED_DATE = re.compile(r"^\d{4}(/(0[1-9]|1[0-2])(/(0[1-9]|[12]\d|3[01]))?)?$")
MAX_RECORDS_LIMIT = 10000
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
    max_records = forms.IntegerField(
        label="Fetch at most",
        min_value=1,
        max_value=MAX_RECORDS_LIMIT,
        initial=2000,
        help_text=f"Records to fetch (up to {MAX_RECORDS_LIMIT:,}).",
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


class ImportForm(forms.Form):
    file = forms.FileField(help_text="RIS, PubMed XML, MEDLINE (.nbib/.txt), CSV or Web of Science export.")
    source = forms.CharField(
        label="Database / source",
        required=False,
        max_length=200,
        help_text="Where the file came from, e.g. Embase via Ovid. Left blank, it is guessed from the file.",
    )

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
