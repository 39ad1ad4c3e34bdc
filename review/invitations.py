"""Invitations: how someone becomes a member of a review, with their consent.

An owner invites an email address and gets a link to send; nothing is learnt about whether the
address has an account, and no account is made. The invitee accepts (or declines) through the
link, logged in or making an account there, or from their review list when the invitation was
sent to their account's address. Only accepting makes a membership.

The link is a bearer invitation: whoever holds it may accept it with the account they are logged
in as (the owner sends it to one person; it is shown once, stored only as a hash, expires, is
single-use and can be revoked). Each function raises ValueError with a message fit to show.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from review.models import Event, Invitation, Membership, Role

INVITATION_DAYS = 14


class InvitationClosed(ValueError):
    """The invitation was accepted, declined, revoked or has expired (or never existed)."""

    def __init__(self):
        super().__init__(
            "This invitation link no longer works: it has expired, or was already used, declined or withdrawn. "
            "Ask the review's owner for a new one."
        )


@dataclass
class NewInvitation:
    invitation: Invitation
    token: str  # shown once: only its hash is stored

    @property
    def path(self):
        return reverse("invitations:show", args=[self.token])


def hash_token(token):
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(email):
    """The address as given, trimmed; ValueError naming the problem when it is not an address."""
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError:
        raise ValueError(f"{email!r} is not an email address: invite people by their email address.") from None
    return email


def _log(invitation, by, action, **extra):
    Event.objects.create(
        review=invitation.review,
        actor=by,
        kind=Event.Kind.INVITATION,
        detail={"action": action, "email": invitation.email, "role": invitation.role, **extra},
    )


def invite(review, *, email, role, by) -> NewInvitation:
    """Invite ``email`` to ``review`` as ``role``; returns the invitation and its one-time token.

    Inviting an address again replaces its open invitation (the old link stops working). The
    answer is the same whether or not an account uses the address; only an address that a
    current member's account has (which the owner sees on the members page) is refused.
    """
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}.")
    email = normalise_email(email)
    member = review.memberships.select_related("user").filter(user__email__iexact=email).first()
    if member is not None:
        raise ValueError(f"{email} is the address of {member.user.get_username()}, already a member of this review.")
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    try:
        with transaction.atomic():
            for old in Invitation.objects.select_for_update().open().filter(review=review, email__iexact=email):
                old.revoked_at = now
                old.save(update_fields=["revoked_at"])
                _log(old, by, "replaced")
            invitation = Invitation.objects.create(
                review=review,
                email=email,
                role=role,
                token_hash=hash_token(token),
                invited_by=by,
                created_at=now,
                expires_at=now + timedelta(days=INVITATION_DAYS),
            )
            _log(invitation, by, "invited")
    except IntegrityError:
        # Two invitations to one address at the same moment: the constraint let one through.
        raise ValueError(f"{email} was invited by someone else at the same moment; reload the page.") from None
    return NewInvitation(invitation, token)


def revoke(invitation, *, by) -> Invitation:
    """Withdraw an open invitation: its link stops working."""
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if not invitation.is_open:
            raise ValueError(f"The invitation to {invitation.email} was already answered or withdrawn.")
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        _log(invitation, by, "revoked")
    return invitation


def by_token(token) -> Invitation:
    """The pending invitation whose link holds ``token``; InvitationClosed for any other token."""
    invitation = (
        Invitation.objects.select_related("review", "invited_by").filter(token_hash=hash_token(token or "")).first()
    )
    if invitation is None or not invitation.is_pending:
        raise InvitationClosed()
    return invitation


def _locked_pending(invitation):
    # Read-then-write on the invitation: two accepts (or an accept and a revoke) queue here.
    locked = Invitation.objects.select_for_update().filter(pk=invitation.pk).first()
    if locked is None or not locked.is_pending:
        raise InvitationClosed()
    return locked


def accept(invitation, *, user, created_account=False) -> Membership:
    """``user`` accepts ``invitation``: they become a member with the invitation's role."""
    with transaction.atomic():
        invitation = _locked_pending(invitation)
        if Membership.objects.filter(review_id=invitation.review_id, user=user).exists():
            raise ValueError(f"You are already a member of “{invitation.review.title}”.")
        try:
            with transaction.atomic():
                membership = Membership.objects.create(review=invitation.review, user=user, role=invitation.role)
        except IntegrityError:
            # Another invitation to this review made them a member a moment ago.
            raise ValueError(f"You are already a member of “{invitation.review.title}”.") from None
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.created_account = created_account
        invitation.save(update_fields=["accepted_at", "accepted_by", "created_account"])
        _log(invitation, user, "accepted", user=user.get_username())
        Event.objects.create(
            review=invitation.review,
            actor=user,
            kind=Event.Kind.MEMBER,
            detail={"action": "joined", "user": user.get_username(), "role": invitation.role},
        )
    return membership


def accept_with_new_account(invitation, *, form) -> Membership:
    """Make the account ``form`` (a valid InvitationSignupForm) describes and accept with it:
    both or neither."""
    try:
        with transaction.atomic():
            invitation = _locked_pending(invitation)
            user = form.save()
            return accept(invitation, user=user, created_account=True)
    except IntegrityError:
        # The form checked the username; someone took it in the moment since.
        raise ValueError("That username was taken a moment ago; choose another.") from None


def decline(invitation, *, user) -> Invitation:
    with transaction.atomic():
        invitation = _locked_pending(invitation)
        invitation.declined_at = timezone.now()
        invitation.save(update_fields=["declined_at"])
        _log(invitation, user, "declined", user=user.get_username())
    return invitation
