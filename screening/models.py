from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from review.models import Record, Review, Stage


class Choice(models.TextChoices):
    INCLUDE = "include", "Include"
    EXCLUDE = "exclude", "Exclude"
    MAYBE = "maybe", "Maybe"
    NOT_RETRIEVED = "not_retrieved", "Report not retrieved"


class DecisionQuerySet(models.QuerySet):
    def current(self):
        return self.filter(is_current=True)

    def for_review(self, review):
        return self.filter(record__review=review)


class Decision(models.Model):
    """One reviewer's vote on one record at one stage.

    Rows are never updated in place except to mark them superseded: a changed decision adds a
    new current row, so the full history stays.
    """

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="decisions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="decisions")
    stage = models.CharField(max_length=20, choices=Stage.choices)
    decision = models.CharField(max_length=15, choices=Choice.choices)
    reason = models.CharField(max_length=300, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    is_current = models.BooleanField(default=True)

    objects = DecisionQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["record", "reviewer", "stage"],
                condition=Q(is_current=True),
                name="screening_decision_one_current_per_reviewer_stage",
            ),
        ]
        indexes = [
            models.Index(fields=["record", "stage", "is_current"], name="decision_record_stage"),
            models.Index(fields=["reviewer", "stage", "is_current"], name="decision_reviewer_stage"),
        ]

    def __str__(self):
        return f"{self.reviewer} {self.decision} {self.record_id} ({self.stage})"


class Resolution(models.Model):
    """The final word on a record at a stage when reviewers disagree (history kept like decisions)."""

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="resolutions")
    stage = models.CharField(max_length=20, choices=Stage.choices)
    decision = models.CharField(max_length=15, choices=Choice.choices)
    reason = models.CharField(max_length=300, blank=True)
    note = models.TextField(blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    is_current = models.BooleanField(default=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["record", "stage"],
                condition=Q(is_current=True),
                name="screening_resolution_one_current_per_stage",
            ),
        ]

    def __str__(self):
        return f"{self.decision} {self.record_id} ({self.stage}) by {self.resolved_by}"


class Claim(models.Model):
    """A record handed to a reviewer and not yet decided: holds one of its open votes for a while,
    so two reviewers screening at once are not both given the record that needs one more vote."""

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="claims")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    stage = models.CharField(max_length=20, choices=Stage.choices)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["record", "reviewer", "stage"], name="screening_claim_one_per_reviewer"),
        ]
        indexes = [models.Index(fields=["record", "stage", "expires_at"], name="claim_record_stage")]

    def __str__(self):
        return f"{self.reviewer} holds {self.record_id} ({self.stage}) until {self.expires_at:%H:%M}"


class ExtractionField(models.Model):
    class Kind(models.TextChoices):
        TEXT = "text", "Text"
        NUMBER = "number", "Number"
        CHOICE = "choice", "Choice"
        YESNO = "yesno", "Yes/no"

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="extraction_fields")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TEXT)
    choices = models.TextField(blank=True, help_text="For a choice field: one option per line.")
    help_text = models.CharField(max_length=300, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["review", "name"], name="screening_extraction_field_unique_name"),
        ]

    def __str__(self):
        return self.name

    def choices_list(self):
        return [c.strip() for c in self.choices.splitlines() if c.strip()]


class ExtractionValue(models.Model):
    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="extraction_values")
    field = models.ForeignKey(ExtractionField, on_delete=models.CASCADE, related_name="values")
    value = models.TextField(blank=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["record", "field"], name="screening_extraction_value_unique"),
        ]

    def __str__(self):
        return f"{self.field}: {self.value}"
