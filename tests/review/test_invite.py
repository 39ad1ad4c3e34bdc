import re

import pytest
from django.contrib.auth import get_user_model

from review.models import Membership

STRONG = "kratom-ptsd-2026!"


def test_alice_invites_a_new_colleague_by_email_who_sets_a_password_and_logs_in(client, review, alice):
    client.force_login(alice)
    response = client.post(
        f"/r/{review.slug}/members/add/", {"identifier": "Erin.Moss@lab.example", "role": "reviewer"}, follow=True
    )
    page = response.content.decode()
    erin = get_user_model().objects.get(email="Erin.Moss@lab.example")
    assert erin.username == "erin.moss" and not erin.has_usable_password()
    assert Membership.objects.get(review=review, user=erin).role == "reviewer"
    link = re.search(r"(http://testserver/accounts/reset/[^\s<]+)", page).group(1)
    client.logout()
    # Django swaps the token for a session marker and redirects to the set-password form.
    form = client.get(link, follow=True)
    assert "Choose a password" in form.content.decode()
    done = client.post(form.redirect_chain[-1][0], {"new_password1": STRONG, "new_password2": STRONG}, follow=True)
    assert "Your password is set" in done.content.decode()
    assert client.login(username="erin.moss", password=STRONG)
    client.logout()
    again = client.get(link, follow=True)
    assert "This link no longer works" in again.content.decode()


def test_an_unknown_username_is_not_an_invitation(client, review, alice):
    client.force_login(alice)
    page = client.post(
        f"/r/{review.slug}/members/add/", {"identifier": "nobody", "role": "reviewer"}, follow=True
    ).content.decode()
    assert "Give an email address to invite someone new" in page
    assert not get_user_model().objects.filter(username="nobody").exists()


@pytest.mark.parametrize("who", ["bob", "dave"])
def test_only_the_owner_invites(client, review, other_review, bob, dave, who):
    client.force_login({"bob": bob, "dave": dave}[who])
    response = client.post(f"/r/{review.slug}/members/add/", {"identifier": "x@lab.example", "role": "reviewer"})
    assert response.status_code == (403 if who == "bob" else 404)
    assert not get_user_model().objects.filter(email="x@lab.example").exists()
