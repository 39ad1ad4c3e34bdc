"""Membership needs consent: owners invite by email; only the invitee's answer makes a member."""

import re
import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from review import invitations
from review.models import Event, Invitation, Membership, Role

STRONG = "kratom-ptsd-2026!"
LINK = re.compile(r"http://testserver(/invitations/([\w-]+)/)")


def page(response):
    return response.content.decode()


def invite(client, review, email, role="reviewer"):
    """Invite ``email`` as whoever is logged in on ``client``: (the page they land on, the link's path)."""
    response = client.post(
        reverse("review:member_invite", args=[review.slug]), {"email": email, "role": role}, follow=True
    )
    html = page(response)
    found = LINK.search(html)
    assert found, html
    return html, found.group(1)


def members(review):
    return dict(review.memberships.values_list("user__username", "role"))


def pending_for(user):
    return list(Invitation.objects.for_invitee(user).values_list("review__slug", flat=True))


@pytest.fixture
def erins_invitation(review, alice):
    """alice invited erin@lab.example (no account yet) to review as viewer."""
    return invitations.invite(review, email="erin@lab.example", role=Role.VIEWER, by=alice)


# --- The owner's side ------------------------------------------------------------------------------


def test_alices_page_is_byte_identical_whether_or_not_the_address_has_an_account(
    client, review, alice, dave, monkeypatch
):
    # Invitation times are fixed so that the listed dates cannot differ between the two pages.
    fixed = timezone.now()
    monkeypatch.setattr(invitations, "timezone", SimpleNamespace(now=lambda: fixed))

    def blank(html, path):
        html = html.replace(path, "/invitations/TOKEN/")
        html = re.sub(r"/invitations/\d+/revoke/", "/invitations/PK/revoke/", html)
        # Django masks the CSRF token afresh on every page.
        return re.sub(r'(csrfmiddlewaretoken" value="|"X-CSRFToken": ")[^"]+', r"\1CSRF", html)

    client.force_login(alice)
    with_account, path_1 = invite(client, review, "dave@example.org")
    Invitation.objects.all().delete()
    dave.email = "dave@elsewhere.example"
    dave.save()
    without_account, path_2 = invite(client, review, "dave@example.org")
    assert path_1 != path_2
    assert blank(with_account, path_1) == blank(without_account, path_2)
    assert "Invitation to dave@example.org as reviewer created. Send them this link" in with_account
    assert members(review) == {"alice": "owner", "bob": "reviewer", "carol": "reviewer"}


def test_inviting_makes_no_account_and_no_membership(client, review, alice, dave):
    client.force_login(alice)
    html, _ = invite(client, review, "Zack@Lab.example")
    assert not get_user_model().objects.filter(email__iexact="zack@lab.example").exists()
    invite(client, review, "dave@example.org", role="owner")
    assert "dave" not in members(review)
    assert sorted(Invitation.objects.pending().values_list("email", "role")) == [
        ("Zack@Lab.example", "reviewer"),
        ("dave@example.org", "owner"),
    ]
    assert Event.objects.filter(review=review, kind=Event.Kind.INVITATION, detail__action="invited").count() == 2


@pytest.mark.parametrize("given", ["dave", "dave@", "not an address", ""])
def test_a_username_or_other_non_address_is_a_form_error_that_reveals_nothing(client, review, alice, dave, given):
    client.force_login(alice)
    response = client.post(reverse("review:member_invite", args=[review.slug]), {"email": given, "role": "reviewer"})
    assert response.status_code == 200
    errors = response.context["form"].errors["email"]
    assert errors == (
        ["This field is required."]
        if not given
        else [f"{given!r} is not an email address: invite people by their email address."]
    )
    assert not Invitation.objects.exists()


def test_an_address_of_a_current_member_is_refused_by_name(client, review, alice):
    # The members page shows every member's address to alice already: this tells her nothing new.
    client.force_login(alice)
    response = client.post(
        reverse("review:member_invite", args=[review.slug]), {"email": "BOB@example.org", "role": "owner"}
    )
    assert response.context["form"].errors["email"] == [
        "BOB@example.org is the address of bob, already a member of this review."
    ]
    assert not Invitation.objects.exists()


def test_inviting_an_address_again_replaces_the_old_link(client, review, alice):
    client.force_login(alice)
    _, old = invite(client, review, "erin@lab.example")
    _, new = invite(client, review, "ERIN@lab.example", role="viewer")
    assert Invitation.objects.open().count() == 1
    assert client.get(old).status_code == 404
    assert client.get(new).status_code == 200


def test_the_pending_list_shows_and_revokes(client, review, alice, erins_invitation):
    client.force_login(alice)
    html = page(client.get(reverse("review:members", args=[review.slug])))
    assert "Pending invitations" in html and "erin@lab.example" in html
    url = reverse("review:invitation_revoke", args=[review.slug, erins_invitation.invitation.pk])
    done = page(client.post(url, follow=True))
    assert "Invitation to erin@lab.example withdrawn" in done
    assert "No invitation is waiting for an answer." in done
    client.logout()
    assert client.get(erins_invitation.path).status_code == 404
    assert Event.objects.filter(kind=Event.Kind.INVITATION, detail__action="revoked").count() == 1


@pytest.mark.parametrize("who", ["bob", "erin", "dave"])
def test_only_the_owner_invites_and_revokes(client, review, other_review, bob, dave, erin, erins_invitation, who):
    client.force_login({"bob": bob, "dave": dave, "erin": erin}[who])
    status = 404 if who == "dave" else 403
    invite_url = reverse("review:member_invite", args=[review.slug])
    assert client.post(invite_url, {"email": "x@lab.example", "role": "reviewer"}).status_code == status
    revoke_url = reverse("review:invitation_revoke", args=[review.slug, erins_invitation.invitation.pk])
    assert client.post(revoke_url).status_code == status
    assert list(Invitation.objects.pending().values_list("email", flat=True)) == ["erin@lab.example"]


def test_dave_cannot_revoke_an_invitation_of_alices_review_through_his_own(client, review, other_review, dave):
    theirs = invitations.invite(review, email="x@lab.example", role=Role.REVIEWER, by=None)
    client.force_login(dave)
    url = reverse("review:invitation_revoke", args=[other_review.slug, theirs.invitation.pk])
    assert client.post(url).status_code == 404
    assert Invitation.objects.pending().count() == 1


# --- The invitee's side: the review list -------------------------------------------------------------


def test_dave_accepts_from_his_review_list(client, review, alice, dave):
    invitations.invite(review, email="DAVE@example.org", role=Role.VIEWER, by=alice)
    client.force_login(dave)
    html = page(client.get(reverse("review:list")))
    assert "Invitations for you" in html and review.title in html
    assert "dave" not in members(review)
    [invitation] = Invitation.objects.for_invitee(dave)
    response = client.post(reverse("invitations:accept_listed", args=[invitation.pk]), follow=True)
    assert response.redirect_chain[-1][0] == review.get_absolute_url()
    assert members(review)["dave"] == "viewer"
    invitation.refresh_from_db()
    assert (invitation.accepted_by, invitation.created_account) == (dave, False)
    assert Event.objects.filter(review=review, kind=Event.Kind.MEMBER, detail__action="joined", actor=dave).exists()
    assert Event.objects.filter(review=review, kind=Event.Kind.INVITATION, detail__action="accepted").exists()


def test_dave_declines_from_his_review_list(client, review, alice, dave):
    new = invitations.invite(review, email="dave@example.org", role=Role.REVIEWER, by=alice)
    client.force_login(dave)
    client.post(reverse("invitations:decline_listed", args=[new.invitation.pk]))
    assert "dave" not in members(review)
    assert pending_for(dave) == []
    assert client.get(new.path).status_code == 404
    assert Event.objects.filter(kind=Event.Kind.INVITATION, detail__action="declined").count() == 1


def test_bob_neither_sees_nor_answers_daves_invitation_from_the_list(client, review, other_review, alice, bob, dave):
    new = invitations.invite(other_review, email="alice@example.org", role=Role.OWNER, by=dave)
    client.force_login(bob)
    assert "Invitations for you" not in page(client.get(reverse("review:list")))
    for name in ("invitations:accept_listed", "invitations:decline_listed"):
        assert client.post(reverse(name, args=[new.invitation.pk])).status_code == 404
    assert not other_review.memberships.filter(user=bob).exists()
    assert Invitation.objects.get().is_pending


def test_an_account_made_through_a_link_does_not_claim_other_invitations_to_its_address(
    client, review, other_review, alice, dave
):
    # dave owns other_review. He invites a newcomer's address to it and uses his own link to make
    # an account with that address: alice's invitation to the same address must not be his to take.
    alices = invitations.invite(review, email="newcomer@lab.example", role=Role.OWNER, by=alice)
    daves = invitations.invite(other_review, email="newcomer@lab.example", role=Role.VIEWER, by=dave)
    client.post(
        reverse("invitations:join", args=[daves.token]),
        {"username": "mallory", "password1": STRONG, "password2": STRONG},
    )
    mallory = get_user_model().objects.get(username="mallory")
    assert mallory.email == "newcomer@lab.example"
    assert pending_for(mallory) == []
    assert client.post(reverse("invitations:accept_listed", args=[alices.invitation.pk])).status_code == 404
    assert "mallory" not in members(review)


# --- The invitee's side: the link --------------------------------------------------------------------


def test_logged_in_dave_sees_the_invitation_and_accepts_through_the_link(client, review, alice, dave):
    new = invitations.invite(review, email="dave@example.org", role=Role.REVIEWER, by=alice)
    client.force_login(dave)
    html = page(client.get(new.path))
    for text in (review.title, "alice", "<strong>reviewer</strong>", "You will join as <strong>dave</strong>"):
        assert text in html
    assert "dave" not in members(review)
    response = client.post(reverse("invitations:accept", args=[new.token]), follow=True)
    assert response.redirect_chain[-1][0] == review.get_absolute_url()
    assert members(review)["dave"] == "reviewer"


def test_a_second_accept_is_refused_and_changes_nothing(client, review, alice, dave, bob):
    new = invitations.invite(review, email="dave@example.org", role=Role.OWNER, by=alice)
    client.force_login(dave)
    client.post(reverse("invitations:accept", args=[new.token]))
    events = Event.objects.count()
    again = client.post(reverse("invitations:accept", args=[new.token]))
    assert again.status_code == 404
    assert "This invitation link no longer works" in page(again)
    with pytest.raises(invitations.InvitationClosed):
        invitations.accept(new.invitation, user=bob)
    assert Event.objects.count() == events
    assert members(review)["bob"] == "reviewer"


def test_the_link_is_a_bearer_invitation_whoever_is_logged_in_accepts_it(client, review, alice, dave):
    # Sent to zack@lab.example; dave holds the link and is logged in: he joins, as himself.
    new = invitations.invite(review, email="zack@lab.example", role=Role.VIEWER, by=alice)
    client.force_login(dave)
    assert "You will join as <strong>dave</strong>" in page(client.get(new.path))
    client.post(reverse("invitations:accept", args=[new.token]))
    assert members(review)["dave"] == "viewer"
    assert Invitation.objects.get().accepted_by == dave


def test_a_member_is_told_so_and_the_invitation_stays_open(client, review, alice, bob):
    new = invitations.invite(review, email="someone@lab.example", role=Role.OWNER, by=alice)
    client.force_login(bob)
    response = client.post(reverse("invitations:accept", args=[new.token]), follow=True)
    assert "You are already a member of “Kratom for PTSD symptoms”." in page(response)
    assert members(review)["bob"] == "reviewer"
    assert Invitation.objects.get().is_pending


def test_a_logged_out_visitor_is_offered_login_and_comes_back(client, review, alice, dave, erins_invitation):
    html = page(client.get(erins_invitation.path))
    login_url = f"{reverse('login')}?next={erins_invitation.path}"
    assert login_url in html and "Create account and accept" in html
    response = client.post(reverse("invitations:accept", args=[erins_invitation.token]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    response = client.post(login_url, {"username": "dave", "password": "pw-dave", "next": erins_invitation.path})
    assert response["Location"] == erins_invitation.path
    assert Invitation.objects.get().is_pending


def test_erin_creates_her_account_through_the_link_and_is_a_member(client, review, erins_invitation):
    response = client.post(
        reverse("invitations:join", args=[erins_invitation.token]),
        {"username": "erin", "password1": STRONG, "password2": STRONG},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == review.get_absolute_url()
    erin = get_user_model().objects.get(username="erin")
    assert erin.email == "erin@lab.example" and erin.check_password(STRONG)
    assert response.context["user"] == erin
    assert members(review)["erin"] == "viewer"
    assert Invitation.objects.get().created_account


def test_creating_an_account_through_the_link_enforces_the_password_validators(client, review, erins_invitation):
    response = client.post(
        reverse("invitations:join", args=[erins_invitation.token]),
        {"username": "erin", "password1": "short", "password2": "short"},
    )
    assert response.status_code == 200
    assert "This password is too short" in " ".join(response.context["signup_form"].errors["password2"])
    assert not get_user_model().objects.filter(username="erin").exists()
    assert Invitation.objects.get().is_pending


def test_a_taken_username_is_a_form_error_and_makes_nothing(client, review, erins_invitation, bob):
    response = client.post(
        reverse("invitations:join", args=[erins_invitation.token]),
        {"username": "BOB", "password1": STRONG, "password2": STRONG},
    )
    assert "username already exists" in " ".join(response.context["signup_form"].errors["username"])
    assert get_user_model().objects.filter(email="erin@lab.example").count() == 0


def test_an_expired_link_is_a_clear_404_and_changes_nothing(client, review, dave, erins_invitation):
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    client.force_login(dave)
    for response in (
        client.get(erins_invitation.path),
        client.post(reverse("invitations:accept", args=[erins_invitation.token])),
        client.post(reverse("invitations:decline", args=[erins_invitation.token])),
    ):
        assert response.status_code == 404
        assert "This invitation link no longer works" in page(response)
    assert "dave" not in members(review)
    client.logout()
    client.post(
        reverse("invitations:join", args=[erins_invitation.token]),
        {"username": "erin", "password1": STRONG, "password2": STRONG},
    )
    assert not get_user_model().objects.filter(username="erin").exists()
    assert Invitation.objects.get().declined_at is None


def test_an_unknown_token_reads_like_a_closed_one(client, dave):
    client.force_login(dave)
    response = client.get(reverse("invitations:show", args=["not-a-token"]))
    assert response.status_code == 404 and "This invitation link no longer works" in page(response)


def test_declining_through_the_link(client, review, dave, erins_invitation):
    client.force_login(dave)
    client.post(reverse("invitations:decline", args=[erins_invitation.token]))
    assert "dave" not in members(review)
    assert client.get(erins_invitation.path).status_code == 404


def test_only_the_tokens_hash_is_stored(erins_invitation):
    stored = Invitation.objects.get()
    assert erins_invitation.token not in stored.token_hash
    assert stored.token_hash == invitations.hash_token(erins_invitation.token)
    assert Membership.objects.filter(user__email="erin@lab.example").count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_people_accepting_one_link_at_the_same_instant_make_one_member(review, alice):
    """Ten links, each held by two people who press Accept at the same instant: every link makes
    exactly one membership (the row lock queues the second accept, which then finds it used)."""
    if connection.vendor != "postgresql":
        pytest.skip("the concurrency proof runs in the PostgreSQL pass of `make test` (DATABASE_URL=postgres://...)")
    User = get_user_model()
    links = [invitations.invite(review, email=f"team{i}@lab.example", role="viewer", by=alice) for i in range(10)]
    people = {side: [User.objects.create_user(f"{side}{i}") for i in range(len(links))] for side in "ab"}
    barrier = threading.Barrier(2)
    joined, errors = [], []

    def press_accept(side):
        try:
            for new, user in zip(links, people[side]):
                barrier.wait(timeout=20)
                try:
                    invitations.accept(invitations.by_token(new.token), user=user)
                    joined.append(new.token)
                except invitations.InvitationClosed:
                    pass
        except Exception as exc:  # reported below
            errors.append(f"{side}: {exc!r}")
            barrier.abort()
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=press_accept, args=(side,)) for side in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sorted(joined) == sorted(new.token for new in links)
    assert review.memberships.filter(role="viewer").count() == len(links)
