"""Creating reviews and managing who works on them.

Views and management commands call these; each raises ValueError with a message fit to show
to the person who asked.
"""

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.db.models import Count, Q
from django.utils.text import slugify

from review.models import Event, Membership, Record, Review, Role, Stage
from screening import queue
from screening.decisions import OUTCOME_FIELD, lock_records, refresh_outcomes

SLUG_MAX = Review._meta.get_field("slug").max_length
# Settings a review's owner may change; create_review accepts the same.
SETTINGS_FIELDS = (
    "question",
    "inclusion_criteria",
    "exclusion_criteria",
    "exclusion_reasons",
    "include_keywords",
    "exclude_keywords",
    "pubmed_query",
    "title_abstract_reviewers",
    "full_text_reviewers",
    "maybe_counts_as_include",
)


def slug_from_title(title):
    """A free slug made from ``title``: 'kratom-for-ptsd', then 'kratom-for-ptsd-2', ..."""
    base = slugify(title)[: SLUG_MAX - 4].strip("-") or "review"
    taken = set(Review.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def check_slug(slug, *, exclude_pk=None):
    """Raise ValueError unless ``slug`` is a well-formed slug no other review uses."""
    try:
        validate_slug(slug)
    except ValidationError:
        raise ValueError(f"{slug!r} is not a valid slug: use letters, digits, hyphens and underscores only.") from None
    if len(slug) > SLUG_MAX:
        raise ValueError(f"The slug {slug!r} is longer than {SLUG_MAX} characters.")
    if Review.objects.filter(slug=slug).exclude(pk=exclude_pk).exists():
        raise ValueError(f"A review with the slug {slug!r} already exists; choose another.")


def _check_settings(fields):
    unknown = set(fields) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValueError(f"Unknown review setting(s): {', '.join(sorted(unknown))}.")
    for name in ("title_abstract_reviewers", "full_text_reviewers"):
        if name in fields:
            try:
                value = int(fields[name])
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be a whole number, not {fields[name]!r}.") from None
            if not 1 <= value <= 5:
                raise ValueError(f"{name} must be between 1 and 5 (got {value}).")
            fields[name] = value


def create_review(*, slug, title, owner=None, **fields) -> Review:
    """Create a review; ``owner`` (a user) becomes its first owner.

    A blank ``slug`` is made from the title. Raises ValueError for a bad or taken slug, an
    empty title or an unknown setting.
    """
    title = (title or "").strip()
    if not title:
        raise ValueError("A review needs a title.")
    _check_settings(fields)
    with transaction.atomic():
        slug = (slug or "").strip() or slug_from_title(title)
        check_slug(slug)
        review = Review.objects.create(slug=slug, title=title, created_by=owner, **fields)
        if owner is not None:
            Membership.objects.create(review=review, user=owner, role=Role.OWNER)
        Event.objects.create(review=review, actor=owner, kind=Event.Kind.SETTINGS, detail={"created": slug})
    return review


# Settings that decide how votes combine into an outcome: changing one recomputes outcomes.
OUTCOME_SETTINGS = {"title_abstract_reviewers", "full_text_reviewers", "maybe_counts_as_include"}


def update_review(review, *, user, **fields) -> Review:
    """Change a review's title and settings, logging which fields changed.

    Changing how many reviewers screen each record (or whether maybe counts as include)
    recomputes every record's outcome from the votes already cast.
    """
    if "title" in fields:
        fields["title"] = (fields["title"] or "").strip()
        if not fields["title"]:
            raise ValueError("A review needs a title.")
    _check_settings({k: v for k, v in fields.items() if k != "title"})
    changed = sorted(name for name, value in fields.items() if getattr(review, name) != value)
    if not changed:
        return review
    with transaction.atomic():
        if OUTCOME_SETTINGS.intersection(changed):
            # The records before the review row: the order a vote takes them in (no deadlock).
            lock_records(Record.objects.for_review(review).values("pk"))
        for name in changed:
            setattr(review, name, fields[name])
        review.save(update_fields=changed)
        Event.objects.create(review=review, actor=user, kind=Event.Kind.SETTINGS, detail={"changed": changed})
        if OUTCOME_SETTINGS.intersection(changed):
            records = Record.objects.for_review(review).values("pk")
            for stage in Stage:
                refresh_outcomes(review, records, stage)
    return review


def _log_member(review, by, action, member, role):
    Event.objects.create(
        review=review,
        actor=by,
        kind=Event.Kind.MEMBER,
        detail={"action": action, "user": member.get_username(), "role": role},
    )


def add_member_directly(review, *, user, role, by) -> Membership:
    """Make ``user`` a member of ``review`` without asking them.

    For trusted internal use only (the demo loader, management commands, tests): people reached
    through the web are invited (review.invitations) and become members when they accept.
    """
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}.")
    with transaction.atomic():
        if Membership.objects.filter(review=review, user=user).exists():
            raise ValueError(f"{user.get_username()} is already a member of this review.")
        membership = Membership.objects.create(review=review, user=user, role=role)
        _log_member(review, by, "added", user, role)
    return membership


def _other_owners(membership):
    return Membership.objects.filter(review_id=membership.review_id, role=Role.OWNER).exclude(pk=membership.pk).exists()


def change_role(membership, *, role, by) -> Membership:
    """Change a member's role; a review always keeps at least one owner."""
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}.")
    if membership.role == role:
        return membership
    with transaction.atomic():
        if membership.role == Role.OWNER and not _other_owners(membership):
            raise ValueError("A review needs at least one owner: make someone else owner first.")
        membership.role = role
        membership.save(update_fields=["role"])
        _log_member(membership.review, by, "role changed", membership.user, role)
    return membership


def remove_member(membership, *, by):
    """Remove a member. Their decisions stay: they are part of the review's record."""
    with transaction.atomic():
        if membership.role == Role.OWNER and not _other_owners(membership):
            raise ValueError("A review needs at least one owner: make someone else owner first.")
        membership.delete()
        _log_member(membership.review, by, "removed", membership.user, membership.role)


def set_resolver(membership, *, can_resolve, by) -> Membership:
    """Designate a reviewer as a third reviewer who resolves conflicts (and so sees every vote), or stop."""
    if can_resolve and membership.role != Role.REVIEWER:
        who = membership.user.get_username()
        if membership.role == Role.OWNER:
            raise ValueError(f"{who} is an owner and resolves conflicts already.")
        raise ValueError(f"{who} is a viewer: make them a reviewer before they resolve conflicts.")
    if membership.can_resolve == can_resolve:
        return membership
    with transaction.atomic():
        membership.can_resolve = can_resolve
        membership.save(update_fields=["can_resolve"])
        action = "resolver designated" if can_resolve else "resolver designation removed"
        _log_member(membership.review, by, action, membership.user, membership.role)
    return membership


def stage_blockers(review, stage):
    """Why ``stage`` is not done yet (pending records, open conflicts), as a message; '' when done."""
    field = OUTCOME_FIELD[stage]
    counts = queue.eligible(review, stage).aggregate(
        eligible=Count("pk"),
        pending=Count("pk", filter=Q(**{field: Record.Outcome.PENDING})),
        conflicts_open=Count("pk", filter=Q(**{field: Record.Outcome.CONFLICT})),
    )
    if not counts["eligible"]:
        return f"No record has reached {Stage(stage).label.lower()} screening yet."
    left = []
    if counts["pending"]:
        left.append(f"{counts['pending']} record{'s' if counts['pending'] != 1 else ''} still pending")
    if counts["conflicts_open"]:
        n = counts["conflicts_open"]
        left.append(f"{n} open conflict{'s' if n != 1 else ''}")
    return " and ".join(left)


def lift_blinding(review, *, stage, by) -> Review:
    """Let every member see all votes at ``stage``: only once the stage is done (nothing pending,
    no open conflict). Raises ValueError saying what is left otherwise."""
    stage = Stage(stage)
    field = "ft_blinding_lifted" if stage == Stage.FULL_TEXT else "ta_blinding_lifted"
    with transaction.atomic():
        review = Review.objects.select_for_update().get(pk=review.pk)
        if getattr(review, field):
            return review
        blockers = stage_blockers(review, stage)
        if blockers:
            raise ValueError(f"{stage.label} screening is not done: {blockers}. Blinding stays until it is.")
        setattr(review, field, True)
        review.save(update_fields=[field])
        Event.objects.create(review=review, actor=by, kind=Event.Kind.BLINDING, detail={"stage": stage.value})
    return review
