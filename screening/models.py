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
            # The per-decision retrain check looks for the votes made since the last run started.
            models.Index(fields=["stage", "created_at"], name="decision_stage_created"),
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


class Assignment(models.Model):
    """The owner's word that ``reviewer`` screens ``record`` at ``stage``: it comes first in their
    queue (screening/queue.py). Nobody else is kept from it; a vote by anyone counts as usual."""

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="assignments")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    stage = models.CharField(max_length=20, choices=Stage.choices)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["record", "reviewer", "stage"], name="screening_assignment_one_per_reviewer_stage"
            ),
        ]
        indexes = [models.Index(fields=["reviewer", "stage", "record"], name="assignment_reviewer_stage")]

    def __str__(self):
        return f"#{self.record_id} assigned to {self.reviewer} ({self.stage})"


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


class RankingRun(models.Model):
    """One version of a review's prioritisation model at one stage: the scores it gave the records
    still to screen. Versions only grow; a run stores its scores only if no newer run has."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        SUPERSEDED = "superseded", "Superseded by a newer version"
        FAILED = "failed", "Failed"

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="ranking_runs")
    stage = models.CharField(max_length=20, choices=Stage.choices)
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # How many votes and resolutions the stage had when the run read its labels (retrain every few).
    decisions_seen = models.PositiveIntegerField(default=0)
    relevant_labels = models.PositiveIntegerField(default=0)
    irrelevant_labels = models.PositiveIntegerField(default=0)
    used_criteria = models.BooleanField(default=False)
    scored = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(null=True, blank=True)
    # The terms that raise a record's score most ({term: weight}), for the screening card.
    terms = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["review", "stage", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["review", "stage", "version"], name="screening_rankingrun_one_version"),
        ]
        indexes = [models.Index(fields=["review", "stage", "status", "version"], name="rankingrun_latest")]

    def __str__(self):
        return f"{self.review} {self.stage} model v{self.version} ({self.status})"


class RecordScore(models.Model):
    """A record's score and rank (1 = most likely relevant) among those still to screen, in one run."""

    run = models.ForeignKey(RankingRun, on_delete=models.CASCADE, related_name="scores")
    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="+")
    score = models.FloatField()
    rank = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "record"], name="screening_recordscore_one_per_run")]
        indexes = [models.Index(fields=["run", "rank"], name="recordscore_run_rank")]

    def __str__(self):
        return f"#{self.record_id} rank {self.rank} in {self.run_id}"


class ScreeningOrder(models.TextChoices):
    RANKED = "ranked", "Most likely relevant first"
    RANDOM = "random", "Random"
    IMPORT = "import", "In import order"


class OrderPreference(models.Model):
    """The screening order a reviewer chose for a review (absent: the review's default)."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    order = models.CharField(max_length=10, choices=ScreeningOrder.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["review", "user"], name="screening_orderpreference_one")]

    def __str__(self):
        return f"{self.user} screens {self.review} {self.order}"


class HandOutOrder(models.TextChoices):
    """The orders a hand-out can come from: a reviewer's choice, or a stage's random sample."""

    RANKED = ScreeningOrder.RANKED.value, ScreeningOrder.RANKED.label
    RANDOM = ScreeningOrder.RANDOM.value, ScreeningOrder.RANDOM.label
    IMPORT = ScreeningOrder.IMPORT.value, ScreeningOrder.IMPORT.label
    SAMPLE = "sample", "Random sample of the rest (stopping check)"


class HandOut(models.Model):
    """A record handed to a reviewer, with what the model said about it then (append-only), so a
    review's methods can say which model version showed whom which record, at what rank."""

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="+")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    stage = models.CharField(max_length=20, choices=Stage.choices)
    order = models.CharField(max_length=10, choices=HandOutOrder.choices)
    run = models.ForeignKey(RankingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    model_version = models.PositiveIntegerField(null=True, blank=True)
    # Ranked order: the model's rank; sample order: the position in the sample's permutation (1 first).
    rank = models.PositiveIntegerField(null=True, blank=True)
    score = models.FloatField(null=True, blank=True)
    handed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["handed_at", "pk"]
        indexes = [models.Index(fields=["record", "reviewer", "stage"], name="handout_record_reviewer")]

    def __str__(self):
        return f"#{self.record_id} to {self.reviewer} ({self.order}, v{self.model_version}, rank {self.rank})"


class StoppingSettings(models.Model):
    """The recall target and confidence the stopping test uses for one stage of a review (absent:
    95% and 95%). Changes are audited (review.models.Event, kind "settings")."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="+")
    stage = models.CharField(max_length=20, choices=Stage.choices)
    recall_target = models.FloatField(default=0.95)
    confidence = models.FloatField(default=0.95)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["review", "stage"], name="screening_stoppingsettings_one_per_stage"),
        ]

    def __str__(self):
        return f"{self.review} {self.stage}: {self.recall_target:.1%} recall at {self.confidence:.1%}"


class RandomSample(models.Model):
    """A uniform random sample of the records left unscreened at one stage when the owner began
    it: their order is a permutation drawn then (``SampleRecord``), which the queue follows for
    every reviewer until the sample ends. The stopping test uses the longest prefix of the
    permutation whose records all have a settled outcome (screening/sampling.py)."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="+")
    stage = models.CharField(max_length=20, choices=Stage.choices)
    started_at = models.DateTimeField(default=timezone.now)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    # Records of the stage with a settled outcome at the start, and the remainder the sample is drawn from.
    sampled_from = models.PositiveIntegerField()
    remainder = models.PositiveIntegerField()
    # The seed (from ``secrets``) of the numpy generator that shuffled the remainder's ids, sorted.
    seed = models.CharField(max_length=40)
    recall_target = models.FloatField()
    confidence = models.FloatField()
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["review", "stage", "-started_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["review", "stage"],
                condition=Q(ended_at__isnull=True),
                name="screening_randomsample_one_open_per_stage",
            ),
        ]

    def __str__(self):
        return f"{self.review} {self.stage}: random sample of {self.remainder} from {self.started_at:%Y-%m-%d %H:%M}"


class SampleRecord(models.Model):
    """One record of a random sample's permutation (position 1 is handed out first)."""

    sample = models.ForeignKey(RandomSample, on_delete=models.CASCADE, related_name="records")
    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sample", "record"], name="screening_samplerecord_one_per_sample"),
            models.UniqueConstraint(fields=["sample", "position"], name="screening_samplerecord_one_per_position"),
        ]

    def __str__(self):
        return f"#{self.record_id} at {self.position} in sample {self.sample_id}"


class StageClosure(models.Model):
    """A stage closed on the stopping rule's recommendation (screening/closing.py): the test's
    figures at that moment, and (ClosedRecord) the records it left unscreened. Reopening keeps the
    row and stamps it, so the history stays; at most one closure per stage is open at a time."""

    class Method(models.TextChoices):
        RANKED = "ranked", "Ranked test"
        SAMPLE = "random sample", "Random-sample test"

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="closures")
    stage = models.CharField(max_length=20, choices=Stage.choices)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    closed_at = models.DateTimeField(default=timezone.now)
    method = models.CharField(max_length=15, choices=Method.choices)
    recall_target = models.FloatField()
    confidence = models.FloatField()
    p_value = models.FloatField()
    screened = models.PositiveIntegerField()
    relevant_found = models.PositiveIntegerField()
    n_total = models.PositiveIntegerField()
    estimated_remaining = models.PositiveIntegerField()
    remaining_low = models.PositiveIntegerField()
    remaining_high = models.PositiveIntegerField()
    # The ranking model whose order the team was screening in (None: no model had run).
    model_version = models.PositiveIntegerField(null=True, blank=True)
    records_marked = models.PositiveIntegerField()
    reopened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reopened_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["closed_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["review", "stage"],
                condition=Q(reopened_at__isnull=True),
                name="screening_stageclosure_one_open_per_stage",
            ),
        ]

    def __str__(self):
        state = "reopened" if self.reopened_at else "closed"
        return f"{self.review} {self.stage} {state} ({self.records_marked} records)"

    @property
    def is_open(self):
        """True while the closure holds (it has not been reopened)."""
        return self.reopened_at is None


class ClosedRecord(models.Model):
    """A record a closure left unscreened, marked ineligible by automation tools (PRISMA 2020).
    One row per record: a record imported after the closure is not covered by it."""

    closure = models.ForeignKey(StageClosure, on_delete=models.CASCADE, related_name="records")
    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["closure", "record"], name="screening_closedrecord_one_per_closure"),
        ]
        indexes = [models.Index(fields=["record", "closure"], name="closedrecord_record")]

    def __str__(self):
        return f"#{self.record_id} closed by {self.closure_id}"
