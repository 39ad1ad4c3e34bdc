"""Creating reviews and managing who works on them.

Views and management commands call these; each raises ValueError with a message fit to show
to the person who asked.
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.utils.text import slugify

from review.models import Event, Membership, Review, Role

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
    taken = set(Review.all_objects.filter(slug__startswith=base).values_list("slug", flat=True))
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
    if Review.all_objects.filter(slug=slug).exclude(pk=exclude_pk).exists():  # staged ones too
        raise ValueError(f"A review with the slug {slug!r} already exists; choose another.")


def check_settings(fields):
    """Raise ValueError for an unknown setting or a reviewers-per-record out of 1-5 (made an int)."""
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


def create_review(*, slug, title, owner, allow_no_owner=False, **fields) -> Review:
    """Create a review; ``owner`` (a saved user) becomes its first owner.

    A blank ``slug`` is made from the title. Raises ValueError for a missing owner (nobody could
    open the review: every page is for members only), a bad or taken slug, an empty title or an
    unknown setting. ``allow_no_owner`` is for the ``create_review`` command's scripted set-ups
    only (members come later from ``add_member`` or a decisions file), which it warns about.
    """
    if (owner is None or owner.pk is None) and not allow_no_owner:
        raise ValueError(
            "A review needs an owner: nobody else could open it, since every page of a review is for its members."
        )
    title = (title or "").strip()
    if not title:
        raise ValueError("A review needs a title.")
    check_settings(fields)
    with transaction.atomic():
        slug = (slug or "").strip() or slug_from_title(title)
        check_slug(slug)
        review = Review.objects.create(slug=slug, title=title, created_by=owner, **fields)
        if owner is not None:
            Membership.objects.create(review=review, user=owner, role=Role.OWNER)
        Event.objects.create(review=review, actor=owner, kind=Event.Kind.SETTINGS, detail={"created": slug})
    return review


def find_user(name):
    """The account whose username, or else e-mail address, is ``name``; ValueError naming it if none
    (or if two accounts share that address)."""
    User = get_user_model()
    name = (name or "").strip()
    user = User.objects.filter(username=name).first()
    if user is None and "@" in name:
        matches = list(User.objects.filter(email__iexact=name)[:2])
        if len(matches) > 1:
            raise ValueError(f"More than one account has the address {name!r}: give the username instead.")
        user = matches[0] if matches else None
    if user is None:
        raise ValueError(
            f"No account with the username or e-mail address {name!r}: create it first (createsuperuser, or the admin site)."
        )
    return user


def _log_member(review, by, action, member, role, **extra):
    Event.objects.create(
        review=review,
        actor=by,
        kind=Event.Kind.MEMBER,
        detail={"action": action, "user": member.get_username(), "role": role, **extra},
    )


def add_member_directly(review, *, user, role, by, via=None) -> Membership:
    """Make ``user`` a member of ``review`` without asking them; logged like any membership change
    (``via`` says how, e.g. "add_member command", when not through the web).

    For trusted internal use only (the demo loader, management commands, tests): people reached
    through the web are invited (review.invitations) and become members when they accept.
    """
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}: use one of {', '.join(Role.values)}.")
    with transaction.atomic():
        if Membership.objects.filter(review=review, user=user).exists():
            raise ValueError(f"{user.get_username()} is already a member of this review.")
        membership = Membership.objects.create(review=review, user=user, role=role)
        _log_member(review, by, "added", user, role, **({"via": via} if via else {}))
    return membership


def _locked_for_owner_change(membership):
    """``membership`` as it now stands, read under a lock on its review's row.

    Two owners who step each other down (or remove each other) at the same moment would each see
    the other still an owner and leave the review with none: every change that can take an owner
    away queues on the review row, and each then checks what the other left.
    """
    Review.objects.select_for_update().filter(pk=membership.review_id).first()
    try:
        membership.refresh_from_db(fields=["role"])
    except Membership.DoesNotExist:
        raise ValueError(f"{membership.user.get_username()} is no longer a member of this review.") from None
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
        membership = _locked_for_owner_change(membership)
        if membership.role == role:
            return membership
        if membership.role == Role.OWNER and not _other_owners(membership):
            raise ValueError("A review needs at least one owner: make someone else owner first.")
        membership.role = role
        membership.save(update_fields=["role"])
        _log_member(membership.review, by, "role changed", membership.user, role)
    return membership


def remove_member(membership, *, by):
    """Remove a member. Their decisions stay: they are part of the review's record."""
    with transaction.atomic():
        membership = _locked_for_owner_change(membership)
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
