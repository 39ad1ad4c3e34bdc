import pytest
from django.urls import reverse

from review.models import Event, Membership, Record
from screening.models import Decision, Resolution
from tests.screening.team import FT, SECRET_NOTE, SECRET_REASON, TA

HTMX = {"HTTP_HX_REQUEST": "true"}


def url(name, review, *args):
    return reverse(f"screening:{name}", args=[review.slug, *args])


def queue_pks(response):
    return [row.record.pk for row, _ in response.context["items"]]


def settle(client, review, stage, record, **data):
    return client.post(url("resolve", review, stage, record.pk), data)


def votes_of(record, stage):
    return list(
        Decision.objects.filter(record=record, stage=stage, is_current=True)
        .order_by("reviewer__username")
        .values_list("reviewer__username", "decision", "reason", "note")
    )


# The queue --------------------------------------------------------------------------------------


def test_alice_sees_each_stages_conflicts_with_every_vote(client, review, team, alice):
    client.force_login(alice)
    response = client.get(url("conflicts", review, TA))
    assert response.status_code == 200
    assert queue_pks(response) == [team.conflict.pk]
    ((row, _),) = response.context["items"]
    assert [(v.reviewer.username, v.decision, v.reason, v.note) for v in row.votes] == [
        ("bob", "include", "", ""),
        ("carol", "exclude", SECRET_REASON, SECRET_NOTE),
    ]
    html = response.content.decode()
    assert SECRET_NOTE in html and SECRET_REASON in html
    assert f"{row.votes[1].created_at:%Y-%m-%d %H:%M}" in html
    assert queue_pks(client.get(url("conflicts", review, FT))) == [team.ft_conflict.pk]
    assert response.context["open_counts"] == {TA: 1, FT: 1}


@pytest.mark.parametrize("name,args", [("conflicts", (TA,)), ("conflicts_resolved", (FT,))])
def test_only_resolvers_read_the_queue(client, review, team, bob, erin, dave, name, args):
    for user, status in ((bob, 403), (erin, 403), (dave, 404)):
        client.force_login(user)
        assert client.get(url(name, review, *args)).status_code == status
    client.logout()
    assert client.get(url(name, review, *args)).status_code == 302


def test_only_resolvers_resolve(client, review, team, bob, erin, dave):
    for user, status in ((bob, 403), (erin, 403), (dave, 404)):
        client.force_login(user)
        assert settle(client, review, TA, team.conflict, decision="include").status_code == status
    assert not Resolution.objects.exists()
    client.force_login(bob)
    assert client.get(url("resolve", review, TA, team.conflict.pk)).status_code == 405


def test_an_unknown_stage_or_a_record_not_at_the_stage_is_404(client, review, team, alice):
    client.force_login(alice)
    assert client.get(url("conflicts", review, "abstracts")).status_code == 404
    # The pending record never reached full text.
    assert settle(client, review, FT, team.pending, decision="include").status_code == 404


# Resolving --------------------------------------------------------------------------------------


def test_alice_resolves_without_javascript_and_the_votes_stay(client, review, team, alice, bob):
    client.force_login(alice)
    before = votes_of(team.conflict, TA)
    response = settle(client, review, TA, team.conflict, decision="include", note="Mentions kratom in methods")
    assert response.status_code == 302 and response["Location"] == url("conflicts", review, TA)
    team.conflict.refresh_from_db()
    assert team.conflict.ta_outcome == "include"
    resolution = Resolution.objects.get(record=team.conflict, stage=TA, is_current=True)
    assert (resolution.decision, resolution.note, resolution.resolved_by) == (
        "include",
        "Mentions kratom in methods",
        alice,
    )
    assert votes_of(team.conflict, TA) == before
    event = Event.objects.get(kind=Event.Kind.RESOLUTION, record=team.conflict)
    assert event.actor == alice and event.detail["decision"] == "include"

    assert queue_pks(client.get(url("conflicts", review, TA))) == []
    resolved = client.get(url("conflicts_resolved", review, TA))
    ((row, _),) = resolved.context["items"]
    assert row.record == team.conflict and row.resolution == resolution
    assert [v.reviewer.username for v in row.votes] == ["bob", "carol"]
    assert SECRET_NOTE in resolved.content.decode()

    # Reconciled: bob now sees carol's vote, note and reason on the record.
    client.force_login(bob)
    html = client.get(reverse("review:record", args=[review.slug, team.conflict.pk])).content.decode()
    assert SECRET_NOTE in html and SECRET_REASON in html and "Mentions kratom in methods" in html


def test_resolving_through_htmx_removes_the_row_and_updates_the_counts(client, review, team, alice):
    client.force_login(alice)
    response = client.post(url("resolve", review, TA, team.conflict.pk), {"decision": "exclude"}, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="conflict-tabs"' in html and 'hx-swap-oob="true"' in html
    assert f'id="conflict-{team.conflict.pk}"' not in html
    assert 'Title/abstract: open <span class="badge">0</span>' in html
    assert Record.objects.get(pk=team.conflict.pk).ta_outcome == "exclude"


def test_a_full_text_exclusion_needs_a_reason_typed_or_listed(client, review, team, alice):
    client.force_login(alice)
    response = settle(client, review, FT, team.ft_conflict, decision="exclude")
    assert response.status_code == 400
    assert "A full-text exclusion needs a reason" in response.content.decode()
    htmx = client.post(url("resolve", review, FT, team.ft_conflict.pk), {"decision": "exclude"}, **HTMX)
    assert htmx.status_code == 400 and f'id="conflict-{team.ft_conflict.pk}"' in htmx.content.decode()
    assert not Resolution.objects.exists()

    listed = review.reasons_list()[0]
    settle(client, review, FT, team.ft_conflict, decision="exclude", reason=listed)
    team.ft_conflict.refresh_from_db()
    assert (team.ft_conflict.ft_outcome, team.ft_conflict.ft_reason) == ("exclude", listed)
    # Changed from the resolved tab with a typed reason: the first resolution is kept as history.
    settle(
        client,
        review,
        FT,
        team.ft_conflict,
        decision="exclude",
        other_reason="Conference abstract only",
        tab="resolved",
    )
    team.ft_conflict.refresh_from_db()
    assert team.ft_conflict.ft_reason == "Conference abstract only"
    assert list(Resolution.objects.filter(record=team.ft_conflict).values_list("reason", "is_current")) == [
        (listed, False),
        ("Conference abstract only", True),
    ]


def test_a_conflict_resolved_meanwhile_is_not_overwritten_from_the_open_tab(client, review, team, alice, carol):
    Membership.objects.filter(review=review, user=carol).update(can_resolve=True)
    client.force_login(carol)
    settle(client, review, TA, team.conflict, decision="exclude")
    client.force_login(alice)
    gone = f"Record #{team.conflict.pk} is no longer an open conflict"
    response = client.post(url("resolve", review, TA, team.conflict.pk), {"decision": "include"}, **HTMX)
    assert response.status_code == 400 and gone in response.content.decode()
    response = settle(client, review, TA, team.conflict, decision="include")
    assert response["Location"] == url("conflicts_resolved", review, TA)
    assert gone in client.get(response["Location"]).content.decode()
    assert Resolution.objects.get(record=team.conflict).resolved_by == carol


def test_the_conflicts_link_and_count_are_for_resolvers(client, review, team, alice, bob):
    queue_url = url("conflicts", review, TA)
    client.force_login(alice)
    html = client.get(reverse("review:detail", args=[review.slug])).content.decode()
    assert f'href="{queue_url}"' in html
    assert 'aria-label="2 open">2</span>' in html  # the nav: one conflict per stage
    client.force_login(bob)
    html = client.get(reverse("review:detail", args=[review.slug])).content.decode()
    assert queue_url not in html


# A third reviewer -------------------------------------------------------------------------------


def resolver_url(review, user):
    member = Membership.objects.get(review=review, user=user)
    return reverse("review:member_resolver", args=[review.slug, member.pk])


def test_alice_designates_carol_to_resolve_conflicts(client, review, team, alice, carol):
    client.force_login(alice)
    members = client.get(reverse("review:members", args=[review.slug])).content.decode()
    assert resolver_url(review, carol) in members
    response = client.post(resolver_url(review, carol), {"can_resolve": "1"}, follow=True)
    assert "carol now resolves conflicts and sees every vote" in response.content.decode()
    assert Membership.objects.get(review=review, user=carol).can_resolve
    event = Event.objects.get(kind=Event.Kind.MEMBER, detail__action="resolver designated")
    assert (event.actor, event.detail["user"]) == (alice, "carol")

    client.force_login(carol)
    assert queue_pks(client.get(url("conflicts", review, TA))) == [team.conflict.pk]
    settle(client, review, TA, team.conflict, decision="include")
    assert Resolution.objects.get(record=team.conflict).resolved_by == carol

    client.force_login(alice)
    client.post(resolver_url(review, carol), {"can_resolve": "0"})
    client.force_login(carol)
    assert client.get(url("conflicts", review, TA)).status_code == 403
    assert Event.objects.filter(kind=Event.Kind.MEMBER, detail__action="resolver designation removed").exists()


def test_a_viewer_cannot_be_designated(client, review, alice, erin):
    client.force_login(alice)
    response = client.post(resolver_url(review, erin), {"can_resolve": "1"}, follow=True)
    assert "erin is a viewer: make them a reviewer before they resolve conflicts." in response.content.decode()
    assert not Membership.objects.get(review=review, user=erin).can_resolve


def test_only_alice_designates(client, review, bob, carol, dave):
    for user, status in ((bob, 403), (dave, 404)):
        client.force_login(user)
        assert client.post(resolver_url(review, carol), {"can_resolve": "1"}).status_code == status
    assert not Membership.objects.get(review=review, user=carol).can_resolve
