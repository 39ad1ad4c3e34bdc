from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils.html import escape

from review import limits
from review.access import SCREENING_ROLES
from review.models import Record, Stage
from screening import bulk, stages
from screening.models import Assignment, Choice, ExtractionField

DECISION_ORDER = {
    Stage.TITLE_ABSTRACT: [Choice.INCLUDE, Choice.EXCLUDE, Choice.MAYBE],
    Stage.FULL_TEXT: [Choice.INCLUDE, Choice.EXCLUDE, Choice.NOT_RETRIEVED],
}


# The review's first nine exclusion reasons each get a number key (1-9) on both screening stages and
# in the conflicts queue; the rest stay in the reason list.
REASON_KEYS = 9


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(required=False)
    reason = forms.ChoiceField(required=False, label="Exclusion reason")
    # Sent by a reason's own button (one keystroke: exclude with that reason). Only this review's
    # listed reasons are accepted: another review's, or one taken off the list since the page was
    # shown, is refused (the text is the reason's identity: positions shift when the list is edited).
    exclude_reason = forms.ChoiceField(required=False)
    other_reason = forms.CharField(required=False, max_length=300, label="Other reason")
    note = forms.CharField(
        required=False,
        max_length=limits.DECISION_NOTE,
        widget=forms.Textarea(attrs={"rows": 1, "placeholder": "optional"}),
    )

    def __init__(self, *args, review, stage, **kwargs):
        super().__init__(*args, **kwargs)
        self.stage = stage
        self.fields["decision"].choices = [(c.value, c.label) for c in DECISION_ORDER[stage]]
        reasons = review.reasons_list()
        self.fields["reason"].choices = [("", "— reason —")] + [(r, r) for r in reasons]
        self.reasons = reasons
        self.fields["exclude_reason"].choices = [("", "")] + [(r, r) for r in reasons]
        self.fields["other_reason"].widget.attrs["placeholder"] = "or type a reason"

    @classmethod
    def from_decision(cls, decision, *, review, stage):
        """An unbound form showing ``decision`` (the reviewer's earlier vote), if any."""
        if decision is None:
            return cls(review=review, stage=stage)
        listed = decision.reason in review.reasons_list()
        initial = {
            "decision": decision.decision,
            "reason": decision.reason if listed else "",
            "other_reason": "" if listed else decision.reason,
            "note": decision.note,
        }
        return cls(review=review, stage=stage, initial=initial)

    def reason_buttons(self):
        """(reason, its key or '') for each of the review's reasons: one button each."""
        return [(reason, str(i) if i <= REASON_KEYS else "") for i, reason in enumerate(self.reasons, start=1)]

    def clean(self):
        cleaned = super().clean()
        reason = (cleaned.get("other_reason") or "").strip() or cleaned.get("reason") or ""
        picked = cleaned.get("exclude_reason")
        if picked:
            if cleaned.get("decision") not in ("", Choice.EXCLUDE):
                raise forms.ValidationError("A reason's button excludes; it cannot go with another decision.")
            # The button's reason, whatever the list or the typed box says.
            cleaned["decision"], reason = Choice.EXCLUDE, picked
        elif not cleaned.get("decision") and not self.errors:
            raise forms.ValidationError("Choose a decision.")
        if cleaned.get("decision") == Choice.EXCLUDE:
            if stages.needs_reason(self.stage, Choice.EXCLUDE) and not reason:
                self.add_error("reason", "A full-text exclusion needs a reason: pick one or type your own.")
        else:
            # A reason only means something for an exclusion; drop one left selected by mistake.
            reason = ""
        cleaned["reason"] = reason
        return cleaned

    def decision_kwargs(self):
        return {key: self.cleaned_data[key] for key in ("decision", "reason", "note")}


class ExtractionFieldForm(forms.ModelForm):
    class Meta:
        model = ExtractionField
        fields = ["name", "kind", "choices", "help_text"]
        widgets = {"choices": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, review, **kwargs):
        super().__init__(*args, **kwargs)
        limits.cap_text_fields(self, {"choices": limits.EXTRACTION_CHOICES})
        self.review = review

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        taken = ExtractionField.objects.filter(review=self.review, name__iexact=name)
        if self.instance.pk:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError(f"This review already has a field called “{name}”.")
        return name

    def clean(self):
        cleaned = super().clean()
        options = [c.strip() for c in (cleaned.get("choices") or "").splitlines() if c.strip()]
        if cleaned.get("kind") == ExtractionField.Kind.CHOICE and len(options) < 2:
            self.add_error("choices", "A choice field needs at least two options, one per line.")
        cleaned["choices"] = "\n".join(options)
        return cleaned

    def save(self, commit=True):
        field = super().save(commit=False)
        field.review = self.review
        if field.position == 0 and not field.pk:
            last = ExtractionField.objects.filter(review=self.review).order_by("-position").first()
            field.position = (last.position + 1) if last else 1
        if commit:
            field.save()
        return field


YES_NO = [("", "—"), ("yes", "Yes"), ("no", "No")]


class ExtractionEntryForm(forms.Form):
    """One input per extraction field of the review, named ``field_<pk>``."""

    def __init__(self, *args, fields, values=None, read_only=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.extraction_fields = list(fields)
        values = values or {}
        for field in self.extraction_fields:
            self.fields[self.key(field)] = self._form_field(field, values.get(field.pk, ""), read_only)
        # What the form showed when it was opened: save_values writes only what the editor changed,
        # and refuses a change to a value someone else changed meanwhile.
        for field in self.extraction_fields:
            self.fields[self.seen_key(field)] = forms.CharField(
                required=False, strip=False, initial=values.get(field.pk, ""), widget=forms.HiddenInput
            )

    @staticmethod
    def key(field):
        return f"field_{field.pk}"

    @staticmethod
    def _form_field(field, initial, read_only):
        common = {
            "label": field.name,
            # Django's form templates print help_text unescaped (it may hold markup); this one is
            # typed by a review owner and shown to every member, so it goes in as plain text.
            "help_text": escape(field.help_text),
            "required": False,
            "initial": initial,
            "disabled": read_only,
        }
        if field.kind == ExtractionField.Kind.NUMBER:
            return forms.CharField(max_length=100, widget=forms.NumberInput(attrs={"step": "any"}), **common)
        if field.kind == ExtractionField.Kind.CHOICE:
            options = field.choices_list()
            if initial and initial not in options:
                # Keep a value entered before the options were edited selectable.
                options.append(initial)
            return forms.ChoiceField(choices=[("", "—")] + [(c, c) for c in options], **common)
        if field.kind == ExtractionField.Kind.YESNO:
            return forms.ChoiceField(choices=YES_NO, **common)
        return forms.CharField(max_length=limits.EXTRACTION_VALUE, widget=forms.Textarea(attrs={"rows": 2}), **common)

    @staticmethod
    def seen_key(field):
        return f"seen_{field.pk}"

    def seen(self):
        """{ExtractionField: value shown when the form was opened}, for the fields the post says."""
        return {f: self.cleaned_data[self.seen_key(f)] for f in self.extraction_fields if self.seen_key(f) in self.data}

    def values(self):
        """The cleaned values keyed by ExtractionField."""
        return {field: self.cleaned_data.get(self.key(field)) or "" for field in self.extraction_fields}


class StoppingTargetsForm(forms.Form):
    """The stopping test's recall target and confidence for one stage, in percent (50 to 99.9)."""

    recall_target = forms.DecimalField(
        label="Recall target (%)", min_value=Decimal("50"), max_value=Decimal("99.9"), decimal_places=1
    )
    confidence = forms.DecimalField(
        label="Confidence (%)", min_value=Decimal("50"), max_value=Decimal("99.9"), decimal_places=1
    )

    def fractions(self):
        """(recall_target, confidence) as fractions of 1."""
        return float(self.cleaned_data["recall_target"]) / 100, float(self.cleaned_data["confidence"]) / 100

    def error_text(self):
        """Every error in one line, each naming its field."""
        return " ".join(f"{self.fields[name].label}: {' '.join(errors)}" for name, errors in self.errors.items())


class BulkForm(forms.Form):
    """A bulk action on the records table (screening/bulk.py checks what it may do). Prefixed
    "bulk-": the table's filter fields travel in the same POST under their own names."""

    action = forms.ChoiceField(
        choices=[("tag", "Tag"), ("exclude", "Exclude (your vote)"), ("assign", "Assign"), ("unassign", "Unassign")]
    )
    scope = forms.ChoiceField(
        choices=[("selected", "The records ticked"), ("filter", "Every record matching the filter")],
        initial="selected",
    )
    records = forms.ModelMultipleChoiceField(queryset=None, required=False, widget=forms.MultipleHiddenInput)
    tag = forms.CharField(required=False, max_length=100, label="Tag")
    stage = forms.ChoiceField(choices=[("", "— stage —"), *Stage.choices], required=False, label="at")
    reason = forms.CharField(required=False, max_length=300, label="Reason")
    reviewer = forms.ModelChoiceField(queryset=None, required=False, label="reviewer", empty_label="— reviewer —")
    count = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, review, membership, **kwargs):
        super().__init__(*args, prefix="bulk", **kwargs)
        self.fields["records"].queryset = Record.objects.for_review(review)
        # Who can be given records, and whoever still holds some (to take them back).
        screeners = (
            get_user_model()
            .objects.filter(
                Q(memberships__review=review, memberships__role__in=SCREENING_ROLES)
                | Q(pk__in=Assignment.objects.filter(record__review=review).values("reviewer"))
            )
            .distinct()
            .order_by("username")
        )
        self.fields["reviewer"].queryset = screeners
        self.fields["reason"].widget.attrs["list"] = "bulk-reasons"
        if not membership.is_owner:
            # Only the owner assigns records (and takes them back).
            owners = {"assign", "unassign"}
            self.fields["action"].choices = [c for c in self.fields["action"].choices if c[0] not in owners]
            del self.fields["reviewer"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("scope") == "selected" and not cleaned.get("records"):
            raise forms.ValidationError("Tick at least one record, or choose every record matching the filter.")
        return cleaned

    def bulk_action(self):
        data = self.cleaned_data
        return bulk.Action(
            data["action"],
            tag=data.get("tag") or "",
            stage=data.get("stage") or "",
            reason=data.get("reason") or "",
            reviewer=data.get("reviewer"),
        )
