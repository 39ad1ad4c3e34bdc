"""Creating reviews and managing who works on them.

Views and management commands call these; each raises ValueError with a message fit to show
to the person who asked.
"""

import copy
import dataclasses

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.db.models import Count, Q
from django.utils.text import slugify

from review.models import Event, Membership, Record, Review, Role, Stage
from screening import queue
from screening.decisions import OUTCOME_FIELD, lock_records, refresh_outcomes, settled_outcomes
from screening.models import Decision

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


@dataclasses.dataclass
class SettingsPreview:
    """What saving new settings would do: the changed fields ({name: (old, new)}) and, per stage,
    the records whose outcome would move from one value to another ({stage: {(old, new): [ids]}})."""

    changed: dict = dataclasses.field(default_factory=dict)
    outcomes: dict = dataclasses.field(default_factory=dict)
    recomputes: bool = False
    has_votes: bool = False

    @property
    def needs_confirmation(self):
        """Outcome rules change on a review that has votes: the owner should see what moves first."""
        return self.recomputes and self.has_votes

    def transitions(self):
        """(stage label, old label, new label, how many) per outcome transition, for a page."""
        return [
            (Stage(stage).label, _outcome_label(old), _outcome_label(new), len(pks))
            for stage, moves in self.outcomes.items()
            for (old, new), pks in sorted(moves.items())
        ]


def _outcome_label(value):
    return Record.Outcome(value).label


def _clean_update(review, fields):
    """Check ``fields`` (title and settings) and return {name: (old, new)} for those that change."""
    if "title" in fields:
        fields["title"] = (fields["title"] or "").strip()
        if not fields["title"]:
            raise ValueError("A review needs a title.")
    _check_settings({k: v for k, v in fields.items() if k != "title"})
    for name, value in fields.items():
        if isinstance(value, str):
            # Browsers send a textarea's line breaks as CRLF: an unedited text is not a change.
            fields[name] = value.replace("\r\n", "\n")
    return {
        name: (getattr(review, name), value) for name, value in sorted(fields.items()) if getattr(review, name) != value
    }


def _stored_outcomes(review, stage):
    field_name = OUTCOME_FIELD[stage]
    return dict(Record.objects.for_review(review).values_list("pk", field_name))


def _moves(before, after):
    """{(old, new): [record ids]} for the records whose outcome differs between two snapshots."""
    moves = {}
    for pk, old in before.items():
        new = after.get(pk, old)
        if new != old:
            moves.setdefault((old, new), []).append(pk)
    return moves


def preview_update(review, **fields) -> SettingsPreview:
    """What ``update_review(review, **fields)`` would change, without writing anything: the
    changed fields, and per stage how many records' outcomes would move from which to which."""
    changed = _clean_update(review, dict(fields))
    preview = SettingsPreview(changed=changed, recomputes=bool(OUTCOME_SETTINGS.intersection(changed)))
    if not preview.recomputes:
        return preview
    preview.has_votes = Decision.objects.filter(record__review=review).exists()
    proposed = copy.copy(review)
    for name, (_, new) in changed.items():
        setattr(proposed, name, new)
    for stage in Stage:
        before = _stored_outcomes(review, stage)
        # By the same rule as refresh_outcomes, under the proposed settings.
        settled = settled_outcomes(proposed, Record.objects.for_review(review).values("pk"), stage)
        after = {pk: settled[pk][0] for pk in before}
        moves = _moves(before, after)
        if moves:
            preview.outcomes[stage.value] = moves
    return preview


def update_review(review, *, user, **fields) -> Review:
    """Change a review's title and settings, logging the old and new value of each changed field.

    Changing how many reviewers screen each record (or whether maybe counts as include)
    recomputes every record's outcome from the votes already cast; the event then also lists,
    per stage, which records' outcomes moved from which to which. ``preview_update`` says the
    same beforehand without writing.
    """
    with transaction.atomic():
        review.refresh_from_db()
        records_locked = bool(OUTCOME_SETTINGS.intersection(_clean_update(review, dict(fields))))
        if records_locked:
            # The records before the review row: the order a vote takes them in (no deadlock).
            lock_records(Record.objects.for_review(review).values("pk"))
        # One settings change at a time: the outcomes logged are the ones this change moved.
        Review.objects.select_for_update().filter(pk=review.pk).values("pk").get()
        review.refresh_from_db()
        changed = _clean_update(review, fields)
        if not changed:
            return review
        recomputes = OUTCOME_SETTINGS.intersection(changed)
        if recomputes and not records_locked:
            # Another owner changed the same settings a moment ago: taking the records' locks now,
            # after the review's, could deadlock with a vote. Nothing is written.
            raise ValueError(
                "Another owner changed this review's screening settings while you were saving. "
                "Reload the settings page, check them, and save again."
            )
        before = {stage: _stored_outcomes(review, stage) for stage in Stage} if recomputes else {}
        for name, (_, new) in changed.items():
            setattr(review, name, new)
        review.save(update_fields=list(changed))
        detail = {
            "changed": list(changed),
            "old": {name: old for name, (old, _) in changed.items()},
            "new": {name: new for name, (_, new) in changed.items()},
        }
        if recomputes:
            records = Record.objects.for_review(review).values("pk")
            outcomes = {}
            for stage in Stage:
                refresh_outcomes(review, records, stage)
                moves = _moves(before[stage], _stored_outcomes(review, stage))
                if moves:
                    outcomes[stage.value] = [
                        {"from": old, "to": new, "count": len(pks), "records": sorted(pks)}
                        for (old, new), pks in sorted(moves.items())
                    ]
            detail["outcomes"] = outcomes
        Event.objects.create(review=review, actor=user, kind=Event.Kind.SETTINGS, detail=detail)
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
        Review.objects.select_for_update().filter(pk=review.pk).values("pk").get()
        review.refresh_from_db()
        if getattr(review, field):
            return review
        blockers = stage_blockers(review, stage)
        if blockers:
            raise ValueError(f"{stage.label} screening is not done: {blockers}. Blinding stays until it is.")
        setattr(review, field, True)
        review.save(update_fields=[field])
        Event.objects.create(review=review, actor=by, kind=Event.Kind.BLINDING, detail={"stage": stage.value})
    return review
