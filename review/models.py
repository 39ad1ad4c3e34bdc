import uuid

from django.conf import settings
from django.core.files.storage import storages
from django.db import models, transaction
from django.db.models.functions import Left, Lower
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone

from review.links import web_url


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    REVIEWER = "reviewer", "Reviewer"
    VIEWER = "viewer", "Viewer"


class Stage(models.TextChoices):
    TITLE_ABSTRACT = "title_abstract", "Title/abstract"
    FULL_TEXT = "full_text", "Full text"


class ReviewQuerySet(models.QuerySet):
    def for_user(self, user):
        if not user.is_authenticated:
            return self.none()
        return self.filter(memberships__user=user).distinct()


class VisibleReviewManager(models.Manager.from_queryset(ReviewQuerySet)):
    """The reviews that exist for people: a review file still being imported (staged) is not one."""

    def get_queryset(self):
        return super().get_queryset().filter(staged_at__isnull=True)


class Review(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=300)
    question = models.TextField("research question", blank=True)
    inclusion_criteria = models.TextField(blank=True)
    exclusion_criteria = models.TextField(blank=True)
    # One reason per line; the full-text stage requires one of these (or a free reason) to exclude.
    exclusion_reasons = models.TextField(
        blank=True,
        default="Wrong population\nWrong intervention\nWrong comparator\nWrong outcome\nWrong study design",
    )
    include_keywords = models.TextField(blank=True, help_text="Highlighted in green; one per line or comma-separated.")
    exclude_keywords = models.TextField(blank=True, help_text="Highlighted in red; one per line or comma-separated.")
    pubmed_query = models.TextField(blank=True)
    title_abstract_reviewers = models.PositiveSmallIntegerField("reviewers per record (title/abstract)", default=1)
    full_text_reviewers = models.PositiveSmallIntegerField("reviewers per record (full text)", default=1)
    maybe_counts_as_include = models.BooleanField(default=True)
    # Until the owner lifts it, a reviewer sees only their own votes on unreconciled records.
    ta_blinding_lifted = models.BooleanField("title/abstract blinding lifted", default=False)
    ft_blinding_lifted = models.BooleanField("full-text blinding lifted", default=False)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Set while a review file is still being imported into this new review (the last time it wrote
    # a chunk), cleared in the one short transaction that makes it visible, as Search.staged_at is
    # for a file import. Until then no manager lists it and no membership grants it
    # (transfer/importing.py writes the memberships at the landing).
    staged_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = VisibleReviewManager()
    # Every review, those still being imported included: for the import, slugs and clean-up only.
    all_objects = ReviewQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("review:detail", args=[self.slug])

    def reasons_list(self):
        return [line.strip() for line in self.exclusion_reasons.splitlines() if line.strip()]

    @staticmethod
    def _keywords(text):
        return [k.strip() for k in text.replace(",", "\n").splitlines() if k.strip()]

    def include_keywords_list(self):
        return self._keywords(self.include_keywords)

    def exclude_keywords_list(self):
        return self._keywords(self.exclude_keywords)

    def reviewers_needed(self, stage):
        if stage == Stage.FULL_TEXT:
            return self.full_text_reviewers
        return self.title_abstract_reviewers

    @staticmethod
    def blinding_field(stage):
        """The field saying whether the owner lifted blinding at ``stage``."""
        return "ft_blinding_lifted" if stage == Stage.FULL_TEXT else "ta_blinding_lifted"

    def blinding_lifted(self, stage):
        return getattr(self, self.blinding_field(stage))

    def reblind(self, stages, *, reason):
        """Restore blinding at ``stages`` where the owner had lifted it (logged, with ``reason``).

        Called whenever a stage opens again: new records imported, a changed vote, a new include
        reaching full text. Reads the flags under the review's row lock, which lifting blinding
        holds while it checks that the stage is done: either the lift sees this transaction's
        reopened record, or this transaction sees the lift and undoes it. (Lock order everywhere:
        records, then the review.)
        """
        if not stages:
            return
        flags = ["ta_blinding_lifted", "ft_blinding_lifted"]
        with transaction.atomic():
            current = Review.objects.select_for_update(no_key=True).filter(pk=self.pk).values(*flags).get()
            for flag in flags:
                setattr(self, flag, current[flag])
            for stage in stages:
                if not self.blinding_lifted(stage):
                    continue
                flag = self.blinding_field(stage)
                Review.objects.filter(pk=self.pk).update(**{flag: False})
                setattr(self, flag, False)
                Event.objects.create(
                    review=self, kind=Event.Kind.BLINDING, detail={"stage": stage, "restored": True, "reason": reason}
                )

    def role_of(self, user):
        membership = self.memberships.filter(user=user).first() if user.is_authenticated else None
        return membership.role if membership else None


class Membership(models.Model):
    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.REVIEWER)
    # A designated third reviewer: resolves conflicts like the owner (and so sees the votes).
    can_resolve = models.BooleanField("resolves conflicts", default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["review", "user"], name="review_membership_one_per_user"),
        ]

    def __str__(self):
        return f"{self.user} ({self.role}) in {self.review}"

    @property
    def can_screen(self):
        return self.role in (Role.OWNER, Role.REVIEWER)

    @property
    def is_owner(self):
        return self.role == Role.OWNER

    @property
    def resolves_conflicts(self):
        return self.role == Role.OWNER or (self.can_resolve and self.role == Role.REVIEWER)


class InvitationQuerySet(models.QuerySet):
    def open(self):
        """Neither accepted, declined nor revoked (possibly expired)."""
        return self.filter(accepted_at__isnull=True, declined_at__isnull=True, revoked_at__isnull=True)

    def pending(self):
        """Open and not expired: these can still be accepted."""
        return self.open().filter(expires_at__gt=timezone.now())

    def for_invitee(self, user):
        """The pending invitations ``user`` may answer from their review list: those sent to their
        account's email address (any case).

        An account whose address only an inviter vouched for is not trusted to claim other
        invitations sent to the same address: those are accepted through their own links.
        """
        email = (getattr(user, "email", "") or "").strip()
        if not user.is_authenticated or not email or _address_set_by_an_inviter(user):
            return self.none()
        return self.pending().filter(email__iexact=email)


def _address_set_by_an_inviter(user):
    """Whether ``user``'s account was made for an address its holder never proved to be theirs.

    An account made through an invitation link has the address the inviter typed (and the inviter
    holds the link too). So does an account made by the invite flow before invitations: adding an
    unknown address made an account for it, logged as a "member invited" event, and handed its
    set-password link to the inviter, who may have used it.
    """
    if Invitation.objects.filter(accepted_by=user, created_account=True).exists():
        return True
    return Event.objects.filter(
        kind=Event.Kind.MEMBER, detail__action="invited", detail__user=user.get_username()
    ).exists()


class Invitation(models.Model):
    """An owner's offer of a role in a review to an email address; a membership once accepted.

    The link's token is shown once, to the owner who invites, and stored only as its SHA-256.
    """

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.REVIEWER)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="invitations_sent"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The invitee made their account through this invitation's link (see for_invitee()).
    created_account = models.BooleanField(default=False)
    declined_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                "review",
                condition=models.Q(accepted_at__isnull=True, declined_at__isnull=True, revoked_at__isnull=True),
                name="review_invitation_one_open_per_email",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(accepted_at__isnull=True, declined_at__isnull=True)
                    | models.Q(accepted_at__isnull=True, revoked_at__isnull=True)
                    | models.Q(declined_at__isnull=True, revoked_at__isnull=True)
                ),
                name="review_invitation_closed_once",
            ),
        ]
        indexes = [models.Index(Lower("email"), name="invitation_email_ci")]

    def __str__(self):
        return f"{self.email} ({self.role}) to {self.review}"

    @property
    def is_open(self):
        return self.accepted_at is None and self.declined_at is None and self.revoked_at is None

    @property
    def is_expired(self):
        return self.expires_at <= timezone.now()

    @property
    def is_pending(self):
        return self.is_open and not self.is_expired


class SearchQuerySet(models.QuerySet):
    def active(self):
        """Searches and imports not undone (an undone one stays in the log, its records gone)."""
        return self.filter(undone_at__isnull=True)


class VisibleSearchManager(models.Manager.from_queryset(SearchQuerySet)):
    """The searches that have landed: an import still being written (staged) is not one of them."""

    def get_queryset(self):
        return super().get_queryset().filter(staged_at__isnull=True)


class Search(models.Model):
    """One search or file import: the search log that PRISMA-S reporting asks for."""

    class Kind(models.TextChoices):
        PUBMED = "pubmed", "PubMed search"
        FILE = "file", "File import"
        COUNT = "count", "Counted, not imported"

    class SourceType(models.TextChoices):
        """PRISMA 2020 draws databases, registers and other methods apart."""

        DATABASE = "database", "Database"
        REGISTER = "register", "Register"
        OTHER = "other", "Other method (citation searching, websites, organisations)"

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="searches")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    source = models.CharField("database / source", max_length=200)
    source_type = models.CharField(max_length=10, choices=SourceType.choices, default=SourceType.DATABASE)
    # PRISMA-S items 1-3, 8, 9, 13 as the user typed them (or as the file showed them).
    platform = models.CharField("platform / interface", max_length=100, blank=True)
    searched_on = models.DateField("date the search was run", null=True, blank=True)
    limits = models.TextField("limits and restrictions", blank=True)
    query = models.TextField(blank=True)
    query_translation = models.TextField(blank=True)
    filename = models.CharField(max_length=300, blank=True)
    file_format = models.CharField(max_length=40, blank=True)
    mindate = models.CharField(max_length=10, blank=True)
    maxdate = models.CharField(max_length=10, blank=True)
    run_at = models.DateTimeField(default=timezone.now)
    run_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    hits = models.PositiveIntegerField(null=True, blank=True)
    fetched = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0, help_text="New records stored (duplicates included)")
    duplicates = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0, help_text="Already in the review from an earlier run")
    # A PubMed search skips the PMIDs PubMed already brought: from earlier searches, or from
    # PubMed files imported (this many of ``skipped``). The PMIDs themselves are in its Event.
    skipped_from_files = models.PositiveIntegerField(
        default=0, help_text="Of those skipped, already in the review from an imported PubMed file"
    )
    stopped_reason = models.CharField(
        max_length=300, blank=True, help_text="Why fewer records were fetched than were found"
    )
    # An undone import keeps its row, so the search log stays honest; its records are gone
    # (review/removal.py).
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    undone_records = models.PositiveIntegerField(default=0, help_text="Records removed when it was undone")
    # Set while an import is still being written (the last time it wrote a chunk), cleared in the
    # one short transaction that makes it visible. Until then neither the search nor its records
    # show anywhere: a failed or killed import never half-lands (review/importing.py).
    staged_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = VisibleSearchManager()
    # Every search, those still being imported included: for the import itself and its clean-up.
    all_objects = SearchQuerySet.as_manager()

    class Meta:
        ordering = ["run_at", "pk"]
        verbose_name_plural = "searches"

    def __str__(self):
        return f"{self.source}: {self.query or self.filename}"

    def log_notes(self):
        """What the search log's numbers alone do not say, in sentences: why fewer records were
        fetched than found, and where the records a PubMed search skipped came from."""
        notes = []
        if self.undone_at:
            by = f" by {self.undone_by.get_username()}" if self.undone_by else ""
            notes.append(
                f"Undone on {self.undone_at:%Y-%m-%d}{by}: its {self.undone_records:,} records were removed "
                "from the review."
            )
        if self.stopped_reason:
            notes.append(f"Fetched {self.fetched:,} of {self.hits or 0:,} found: {self.stopped_reason}.")
        if self.skipped:
            origins = []
            if self.skipped > self.skipped_from_files:
                origins.append(f"{self.skipped - self.skipped_from_files:,} from earlier PubMed searches")
            if self.skipped_from_files:
                origins.append(f"{self.skipped_from_files:,} from imported PubMed files")
            notes.append(f"Skipped {self.skipped:,} already in the review: {', '.join(origins)}.")
        return notes


class RecordQuerySet(models.QuerySet):
    def visible(self):
        """The records that have landed: not those of an import still being written."""
        return self.filter(staged=False)

    def for_review(self, review):
        return self.filter(review=review)

    def unique(self):
        return self.filter(duplicate_of__isnull=True)

    def duplicates(self):
        return self.filter(duplicate_of__isnull=False)


class VisibleRecordManager(models.Manager.from_queryset(RecordQuerySet)):
    """The one home of "an import still being written is invisible": every query through
    Record.objects (and review.records, search.records) leaves staged records out."""

    def get_queryset(self):
        return super().get_queryset().visible()


# A title sorts by its first characters (an index cannot hold a whole title: PostgreSQL refuses index
# rows over 2,704 bytes), then by the rest, then by number.
TITLE_SORT_PREFIX = 200

# Record.duplicate_reason (set by review/importing.py, or "manual") in words.
DUPLICATE_REASONS = {
    "pmid": "same PMID",
    "doi": "same DOI",
    "title": "same title, author and year",
    "title_fuzzy": "near-identical title, author and year",
    "manual": "marked by hand",
}


class Record(models.Model):
    class Outcome(models.TextChoices):
        PENDING = "", "Pending"
        INCLUDE = "include", "Include"
        EXCLUDE = "exclude", "Exclude"
        MAYBE = "maybe", "Maybe"
        NOT_RETRIEVED = "not_retrieved", "Not retrieved"
        CONFLICT = "conflict", "Conflict"

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="records")
    search = models.ForeignKey(Search, on_delete=models.PROTECT, related_name="records")
    source = models.CharField(max_length=200, db_index=True)
    source_key = models.CharField(max_length=200, blank=True, help_text="The record's id in its source file")
    pmid = models.CharField("PMID", max_length=20, blank=True)
    pmcid = models.CharField("PMCID", max_length=20, blank=True)
    doi = models.CharField("DOI", max_length=300, blank=True)
    title = models.TextField(blank=True)
    abstract = models.TextField(blank=True)
    authors = models.JSONField(default=list, blank=True)
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    journal = models.CharField(max_length=500, blank=True)
    volume = models.CharField(max_length=50, blank=True)
    issue = models.CharField(max_length=50, blank=True)
    pages = models.CharField(max_length=50, blank=True)
    keywords = models.JSONField(default=list, blank=True)
    tags = models.ManyToManyField("Tag", through="RecordTag", related_name="records", blank=True)
    url = models.URLField(max_length=1000, blank=True)
    publication_type = models.CharField(max_length=200, blank=True)
    # Normalised keys for deduplication (review/dedup.py computes them).
    doi_norm = models.CharField(max_length=300, blank=True)
    title_norm = models.CharField(max_length=500, blank=True)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates"
    )
    duplicate_reason = models.CharField(max_length=40, blank=True)
    # Set when a reviewer undoes a merge: dedup never links this record again.
    not_duplicate = models.BooleanField(default=False)
    # Final (reconciled) outcome per stage, kept up to date by screening (decisions.refresh_outcomes).
    ta_outcome = models.CharField(max_length=15, choices=Outcome.choices, blank=True, default="")
    ft_outcome = models.CharField(max_length=15, choices=Outcome.choices, blank=True, default="")
    ft_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # True while the import that brings the record is still being written (see Search.staged_at).
    staged = models.BooleanField(default=False, editable=False)

    objects = VisibleRecordManager()
    # Every record, staged ones included: for the import itself and its clean-up only.
    all_objects = RecordQuerySet.as_manager()

    class Meta:
        ordering = ["pk"]
        indexes = [
            models.Index(fields=["review", "pmid"], name="record_review_pmid"),
            models.Index(fields=["review", "doi_norm"], name="record_review_doi"),
            models.Index(fields=["review", "title_norm"], name="record_review_title"),
            models.Index(fields=["review", "duplicate_of"], name="record_review_dup"),
            models.Index(fields=["review", "ta_outcome"], name="record_review_ta"),
            models.Index(fields=["review", "ft_outcome"], name="record_review_ft"),
            # The records table (screening/tables.py): every sort ends on the pk, so each order is one
            # index walk, and the count is an index-only scan over the landed records (PostgreSQL).
            models.Index(fields=["review", "year", "id"], name="record_review_year_id"),
            models.Index(
                models.F("review"), Left("title", TITLE_SORT_PREFIX), models.F("id"), name="record_review_title_sort"
            ),
            models.Index(
                fields=["review", "id"],
                include=["ta_outcome", "ft_outcome", "duplicate_of"],
                condition=models.Q(staged=False),
                name="record_review_listed",
            ),
        ]

    def __str__(self):
        return self.title[:80] or f"Record {self.pk}"

    @property
    def first_author(self):
        return self.authors[0] if self.authors else ""

    @property
    def first_author_surname(self):
        name = self.first_author
        return name.split(",")[0].strip() if "," in name else (name.split()[0] if name else "")

    @property
    def study_id(self):
        """A conventional study label: 'Surname Year'."""
        return " ".join(str(p) for p in (self.first_author_surname, self.year) if p) or f"#{self.pk}"

    @property
    def is_duplicate(self):
        return self.duplicate_of_id is not None

    @property
    def reason_label(self):
        """Why deduplication linked this record to its original, in words ("same DOI")."""
        return DUPLICATE_REASONS.get(self.duplicate_reason, self.duplicate_reason)

    def pubmed_url(self):
        return f"https://pubmed.ncbi.nlm.nih.gov/{self.pmid}/" if self.pmid else ""

    def doi_url(self):
        return f"https://doi.org/{self.doi}" if self.doi else ""

    def safe_url(self):
        """The record's own link, only when it is an http(s) address: never ``javascript:`` or ``data:``."""
        return web_url(self.url)


class Tag(models.Model):
    """A free-form label a review team puts on records ("animal study", "check full text")."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=60)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        # "Animal" and "animal" are one tag, even when two people add them at the same moment.
        constraints = [models.UniqueConstraint(Lower("name"), "review", name="review_tag_unique_name_ci")]

    def __str__(self):
        return self.name


class RecordTag(models.Model):
    record = models.ForeignKey("Record", on_delete=models.CASCADE, related_name="record_tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="record_tags")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["record", "tag"], name="review_recordtag_unique")]
        indexes = [models.Index(fields=["tag", "record"], name="recordtag_tag_record")]

    def __str__(self):
        return f"{self.tag} on {self.record_id}"


class RecordNote(models.Model):
    """A note on a record for the whole team (unlike a decision's note, which is blinded)."""

    record = models.ForeignKey("Record", on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self):
        return self.text[:60]


class AuditTrailError(Exception):
    """An attempt to change or delete a recorded audit event."""


class Event(models.Model):
    """Append-only audit trail: imports, searches, merges, decisions, resolutions."""

    class Kind(models.TextChoices):
        SEARCH = "search", "PubMed search"
        IMPORT = "import", "File import"
        MERGE = "merge", "Duplicate merged"
        UNMERGE = "unmerge", "Duplicate merge undone"
        DECISION = "decision", "Decision"
        RESOLUTION = "resolution", "Conflict resolved"
        MEMBER = "member", "Membership changed"
        TAG = "tag", "Tag changed"
        NOTE = "note", "Note added"
        BLINDING = "blinding", "Blinding lifted"
        SETTINGS = "settings", "Settings changed"
        EXTRACTION = "extraction", "Extraction changed"
        INVITATION = "invitation", "Invitation"
        CLOSURE = "closure", "Stage closed on the stopping rule"
        UNDO = "undo", "Import undone"
        FULLTEXT = "fulltext", "Full text changed"
        ASSIGNMENT = "assignment", "Record assigned"

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="events")
    record = models.ForeignKey(Record, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["review", "record"], name="event_review_record")]

    def __str__(self):
        return f"{self.get_kind_display()} by {self.actor or 'system'} at {self.created_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        # Append-only: an event is written once and never changed (bulk_create inserts too).
        if not self._state.adding:
            raise AuditTrailError(f"Audit event {self.pk} is already recorded; events are never changed.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditTrailError(f"Audit event {self.pk} cannot be deleted; the audit trail is append-only.")


class RateLimitSlot(models.Model):
    """The next free moment for a request to an outside service, shared by every process that
    uses this database (review.ratelimit). Seconds since the epoch, on the database's clock."""

    key = models.CharField(max_length=40, primary_key=True)
    next_at = models.FloatField(default=0.0)

    def __str__(self):
        return f"{self.key}: next request at {self.next_at:.3f}"


class JobQuerySet(models.QuerySet):
    def for_review(self, review):
        return self.filter(review=review)

    def visible_to(self, membership):
        """The jobs ``membership`` may see. A re-ranking starts every few votes, so its coming and
        going tells that someone voted: only members who see every vote (owners, resolvers) see it.
        Exports are the owners'."""
        shown = self
        if not membership.resolves_conflicts:
            shown = shown.exclude(kind=Job.Kind.RERANK)
        if not membership.is_owner:
            # An export is the owner's; its row counts would move with every vote.
            shown = shown.exclude(kind=Job.Kind.EXPORT)
        # A records export holds what its starter may see, and its filter and count tell of their
        # votes (a blinded reviewer's "my includes"): only they see it.
        return shown.exclude(models.Q(kind=Job.Kind.RECORDS_EXPORT) & ~models.Q(created_by_id=membership.user_id))

    def unfinished(self):
        return self.filter(status__in=(Job.Status.QUEUED, Job.Status.RUNNING))

    def for_dashboard(self):
        """What the review's dashboard lists: everything still running, and the searches, imports
        and exports people started (a finished re-ranking, done every few votes, is no news)."""
        return self.filter(
            models.Q(status__in=(Job.Status.QUEUED, Job.Status.RUNNING)) | ~models.Q(kind=Job.Kind.RERANK)
        )


class Job(models.Model):
    """Long work done by the background worker (a PubMed search, a file import, a re-ranking, an
    export), with the progress its page shows while it runs and what came of it."""

    class Kind(models.TextChoices):
        PUBMED_SEARCH = "pubmed_search", "PubMed search"
        FILE_IMPORT = "file_import", "File import"
        RERANK = "rerank", "Re-ranking"
        EXPORT = "export", "Export"
        # A review file imported from the web as a new review: it has no review until it is done.
        REVIEW_IMPORT = "review_import", "Review file import"
        FULLTEXT_SEARCH = "fulltext_search", "Open-access full-text search"
        # The records table's Download of a big set (screening/tasks.py): its starter's alone.
        RECORDS_EXPORT = "records_export", "Records export"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        # Its worker stopped answering (killed, or its machine went down): see review.jobs.sweep.
        STOPPED = "stopped", "Worker stopped"

    # Empty only for a review file import until its review exists (its page is its starter's).
    review = models.ForeignKey(Review, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    # What the job works on, as the task reads it: the query and dates, the saved file's path...
    params = models.JSONField(default=dict, blank=True)
    title = models.CharField(max_length=300, blank=True, help_text="What the job is about, e.g. the file's name")
    stage = models.CharField(max_length=200, blank=True, help_text="What the job is doing now")
    done = models.PositiveBigIntegerField(default=0)
    total = models.PositiveBigIntegerField(null=True, blank=True)
    summary = models.TextField(blank=True)
    notes = models.JSONField(default=list, blank=True, help_text="Warnings and notes, in order")
    error = models.TextField(blank=True)
    # What came of it: the search log row, and whatever ids the task returned.
    search = models.ForeignKey(Search, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    result = models.JSONField(default=dict, blank=True)
    task_result_id = models.CharField(max_length=64, blank=True)
    # Which run of the job this is: a re-run counts up, and the stopped run's worker, should it come
    # back, no longer writes to the row (review.jobs filters every write on it).
    attempt = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["review", "-created_at"], name="review_job_review_created")]

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    def get_absolute_url(self):
        if self.kind == self.Kind.REVIEW_IMPORT:
            return reverse("transfer:import_job", args=[self.pk])
        return reverse("review:job", args=[self.review.slug, self.pk])

    @property
    def finished(self):
        return self.status in (self.Status.DONE, self.Status.FAILED, self.Status.STOPPED)

    @property
    def quiet(self):
        """True when a queued job has waited a minute for a worker (none is running, or all are busy)."""
        return self.status == self.Status.QUEUED and (timezone.now() - self.updated_at).total_seconds() > 60

    @property
    def percent(self):
        """Progress in whole percent, or None while the total is unknown."""
        if not self.total:
            return 100 if self.status == self.Status.DONE else None
        return min(100, self.done * 100 // self.total)


def fulltext_storage():
    """The storage full-text PDFs live in: STORAGES["fulltexts"] (a deployment may make it object storage)."""
    return storages["fulltexts"]


def fulltext_name(instance, filename):
    # Never the uploader's file name: the review's folder and a random name.
    return f"{instance.record.review_id}/{uuid.uuid4().hex}.pdf"


class FullText(models.Model):
    """A record's full text: its PDF (uploaded, or fetched from PubMed Central) and what the
    last open-access search found. review.fulltexts is the one place that writes it."""

    class Source(models.TextChoices):
        NONE = "", "None"
        UPLOAD = "upload", "Uploaded"
        PMC = "pmc", "PubMed Central"

    record = models.OneToOneField(Record, on_delete=models.CASCADE, related_name="fulltext")
    file = models.FileField(storage=fulltext_storage, upload_to=fulltext_name, max_length=200, blank=True)
    filename = models.CharField(max_length=200, blank=True, help_text="The PDF's name as shown (made safe)")
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, blank=True, default="")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    added_at = models.DateTimeField(null=True, blank=True)
    # The last open-access search: when, the PMC article found ("" = none), and why no PDF came.
    oa_checked_at = models.DateTimeField(null=True, blank=True)
    oa_pmcid = models.CharField(max_length=20, blank=True)
    oa_note = models.CharField(max_length=300, blank=True)

    def __str__(self):
        return f"Full text of record {self.record_id}"

    @property
    def has_pdf(self):
        return bool(self.file)

    @property
    def pmc_url(self):
        return f"https://pmc.ncbi.nlm.nih.gov/articles/{self.oa_pmcid}/" if self.oa_pmcid else ""


@receiver(post_delete, sender=FullText)
def _fulltext_file_gone(sender, instance, **kwargs):
    # A record (or review) deleted takes its PDF with it, once the deletion is committed.
    if instance.file:
        name, storage = instance.file.name, instance.file.storage
        transaction.on_commit(lambda: storage.delete(name))
