"""Attacks by people with an account (or none): what the audit tried after issue 6 landed."""

import contextlib

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.urls import NoReverseMatch, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

# --- no emailed password reset ---------------------------------------------------------------------


def test_nobody_can_have_a_password_reset_mailed_to_alices_address(client, alice):
    # Django's reset form mailed any address with an account, unthrottled, and took longer for one.
    response = client.post("/accounts/password_reset/", {"email": "alice@example.org"})

    assert response.status_code == 404
    assert mail.outbox == []
    with pytest.raises(NoReverseMatch):
        reverse("password_reset")


@pytest.fixture
def invited_the_old_way(db):
    """An account the old invite flow made for an address: no password, and a set-password link
    handed to whoever invited it (not to the address's owner)."""
    user = get_user_model()(username="victim", email="victim@example.org")
    user.set_unusable_password()
    user.save()
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return user, f"/accounts/reset/{uid}/{default_token_generator.make_token(user)}/"


def test_an_old_set_password_link_no_longer_sets_a_password(client, invited_the_old_way):
    user, link = invited_the_old_way

    for response in (
        client.get(link, follow=True),
        client.post(
            link.replace(link.split("/")[-2], "set-password"),
            {"new_password1": "Tr0ub4dor&3x", "new_password2": "Tr0ub4dor&3x"},
        ),
    ):
        assert response.status_code == 404

    user.refresh_from_db()
    assert not user.has_usable_password()


# --- accounts whose address an inviter chose -------------------------------------------------------


def _owned_by_mallory(user, mallory_review):
    """What the old invite flow left behind once the inviter (mallory) used the set-password link."""
    from review.models import Event, Membership, Role

    Membership.objects.create(review=mallory_review, user=user, role=Role.REVIEWER)
    Event.objects.create(
        review=mallory_review,
        actor=mallory_review.created_by,
        kind=Event.Kind.MEMBER,
        detail={"action": "invited", "user": user.get_username(), "role": Role.REVIEWER},
    )
    user.set_password("mallory-knows-this-1")
    user.save()


def test_an_account_the_old_invite_flow_made_cannot_claim_alices_invitation_to_that_address(
    client, review, alice, other_review, invited_the_old_way
):
    from review import invitations
    from review.models import Membership, Role

    victim_account, _ = invited_the_old_way
    _owned_by_mallory(victim_account, other_review)
    invitation = invitations.invite(review, email="victim@example.org", role=Role.OWNER, by=alice).invitation
    client.force_login(victim_account)

    listing = client.get(reverse("review:list"))
    response = client.post(reverse("invitations:accept_listed", args=[invitation.pk]))

    assert review.title not in listing.content.decode()
    assert response.status_code == 404
    assert not Membership.objects.filter(review=review, user=victim_account).exists()


# --- two owners stepping each other down at once ---------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", ["demote", "remove"])
def test_two_owners_taking_each_other_out_at_the_same_instant_leave_one_owner(review, alice, bob, action):
    import threading

    from django.db import connection

    from review import reviews
    from review.models import Membership, Role

    if connection.vendor != "postgresql":
        pytest.skip("the concurrency proof runs in the PostgreSQL pass of `make test` (DATABASE_URL=postgres://...)")
    Membership.objects.filter(review=review, user=bob).update(role=Role.OWNER)
    # Both check "is there another owner?" before either writes: without a lock both see one.
    barrier = threading.Barrier(2)
    checked = reviews._other_owners

    def check_then_wait(membership):
        answer = checked(membership)
        # The second caller, if queued on a lock, never arrives: go on after a moment.
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=3)
        return answer

    errors, refused = [], []

    def take_out(actor, target):
        try:
            member = Membership.objects.select_related("user", "review").get(review=review, user=target)
            try:
                if action == "demote":
                    reviews.change_role(member, role=Role.REVIEWER, by=actor)
                else:
                    reviews.remove_member(member, by=actor)
            except ValueError as e:
                refused.append(str(e))
        except Exception as exc:  # reported below
            errors.append(repr(exc))
        finally:
            connection.close()

    reviews._other_owners = check_then_wait
    try:
        threads = [threading.Thread(target=take_out, args=pair) for pair in ((alice, bob), (bob, alice))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        reviews._other_owners = checked

    assert not errors, errors
    assert review.memberships.filter(role=Role.OWNER).count() == 1
    assert refused == ["A review needs at least one owner: make someone else owner first."]
