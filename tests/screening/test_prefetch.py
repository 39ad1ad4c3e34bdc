"""The prefetched next card: claimed with the card on screen, never more than two held, shown
by the page the moment a decision is sent, and the decision's answer brings the card after it."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from review.models import Membership, Record, Role
from screening import queue
from screening.decisions import record_decision
from screening.models import Claim, Decision, HandOut
from screening.views import NEXT_ONLY_HEADER, SHOWING_HEADER
from tests.browser import log_in
from tests.screening.conftest import dual_screened

TA = "title_abstract"
HTMX = {"HX-Request": "true"}
NEXT_CARD = re.compile(r'<template class="next-card" data-record="(\d+)">(.*?)</template>', re.S)


@pytest.fixture
def dual(review):
    return dual_screened(review, 12)


def pks(review):
    return list(Record.objects.filter(review=review).order_by("pk").values_list("pk", flat=True))


def held(user):
    return list(Claim.objects.filter(reviewer=user).order_by("pk").values_list("record_id", flat=True))


def shown_and_next(html):
    """(record of the card on screen, record of the prefetched card after it or None)."""
    card = html.split('<template class="next-card"')[0]
    shown = re.search(rf"/screen/{TA}/(\d+)/decide/", card)
    following = NEXT_CARD.search(html)
    return (int(shown.group(1)) if shown else None), (int(following.group(1)) if following else None)


def screen(client, review):
    return client.get(reverse("screening:screen", args=[review.slug, TA])).content.decode()


def decide(client, review, pk, decision="exclude", showing=None):
    headers = dict(HTMX, **({SHOWING_HEADER: str(showing)} if showing else {}))
    return client.post(reverse("screening:decide", args=[review.slug, TA, pk]), {"decision": decision}, headers=headers)


def test_bobs_page_holds_his_card_and_the_next_one_and_logs_both_hand_outs(client, dual, bob):
    first, second = pks(dual)[:2]
    client.force_login(bob)
    assert shown_and_next(screen(client, dual)) == (first, second)
    assert held(bob) == [first, second]
    assert list(HandOut.objects.filter(reviewer=bob).values_list("record_id", flat=True)) == [first, second]
    # A reload shows the same two cards: nothing new claimed or handed out.
    assert shown_and_next(screen(client, dual)) == (first, second)
    assert held(bob) == [first, second]
    assert HandOut.objects.filter(reviewer=bob).count() == 2


def test_bob_never_holds_more_than_two_records_however_he_screens(client, dual, bob):
    client.force_login(bob)
    shown, following = shown_and_next(screen(client, dual))
    for i in range(6):
        response = decide(client, dual, shown, showing=following)
        assert response.headers.get(NEXT_ONLY_HEADER) == "1"
        (after,) = [int(pk) for pk, _ in NEXT_CARD.findall(response.content.decode())]
        # The card shown by the page is the prefetched one; the answer carries the one after it.
        assert held(bob) == [following, after]
        shown, following = following, after
        if i % 2:
            screen(client, dual)  # a reload in between claims nothing more
            assert held(bob) == [shown, following]
    assert queue.next_records(dual, bob, TA, count=5) == list(Record.objects.filter(pk__in=[shown, following]))
    assert Claim.objects.filter(reviewer=bob).count() == queue.HOLD


def test_the_answer_to_a_page_without_the_prefetched_card_is_the_whole_next_card(client, dual, bob):
    first, second, third = pks(dual)[:3]
    client.force_login(bob)
    screen(client, dual)
    response = decide(client, dual, first)
    assert NEXT_ONLY_HEADER not in response.headers
    assert shown_and_next(response.content.decode()) == (second, third)
    # The page says it shows another record than bob's next one: it gets the whole card too.
    response = decide(client, dual, second, showing=first)
    assert NEXT_ONLY_HEADER not in response.headers
    assert shown_and_next(response.content.decode())[0] == third


def test_a_prefetched_claim_holds_a_vote_under_dual_screening_like_any_claim(dual, alice, bob, carol):
    first, second, third = pks(dual)[:3]
    # bob holds the first two, carol too (two votes per record): alice gets neither.
    assert [r.pk for r in queue.next_records(dual, bob, TA)] == [first, second]
    assert [r.pk for r in queue.next_records(dual, carol, TA)] == [first, second]
    assert queue.next_record(dual, alice, TA).pk == third
    for record_id in (first, second):
        assert Claim.objects.filter(record_id=record_id).count() == 2


def test_a_prefetched_claim_that_lapsed_frees_its_record_and_bob_is_given_another(dual, alice, bob, carol):
    dual.title_abstract_reviewers = 1
    dual.save()
    first, second, third = pks(dual)[:3]
    assert [r.pk for r in queue.next_records(dual, bob, TA)] == [first, second]
    Claim.objects.filter(reviewer=bob, record_id=second).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert queue.next_record(dual, alice, TA).pk == second
    # bob keeps his card on screen; the lapsed claim is dropped and the next free record prefetched.
    assert [r.pk for r in queue.next_records(dual, bob, TA)] == [first, third]
    assert held(bob) == [first, third]


def test_a_record_voted_to_the_full_meanwhile_is_not_kept_as_bobs_prefetched_card(dual, alice, bob, carol):
    first, second, third = pks(dual)[:3]
    assert [r.pk for r in queue.next_records(dual, bob, TA)] == [first, second]
    for user in (alice, carol):  # two votes in on the second record (the claim holds no row lock)
        record_decision(record=Record.objects.get(pk=second), reviewer=user, stage=TA, decision="exclude")
    assert [r.pk for r in queue.next_records(dual, bob, TA)] == [first, third]


def test_the_prefetched_card_tells_bob_nothing_of_carols_vote_on_it(client, dual, bob, carol):
    first, second = pks(dual)[:2]
    client.force_login(bob)
    before = NEXT_CARD.search(screen(client, dual))
    assert int(before.group(1)) == second
    record_decision(record=Record.objects.get(pk=second), reviewer=carol, stage=TA, decision="include")
    after = NEXT_CARD.search(screen(client, dual))
    # The same card, byte for byte (but the CSRF token, masked afresh on every page), whether carol
    # has voted on the record or not.
    unmasked = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
    assert unmasked.sub("", after.group(0)) == unmasked.sub("", before.group(0))
    assert "carol" not in after.group(0) and "You decided" not in after.group(0)


def test_bob_goes_back_from_the_prefetched_card_to_the_record_he_just_decided(client, dual, bob):
    first, second, _ = pks(dual)[:3]
    client.force_login(bob)
    screen(client, dual)
    response = decide(client, dual, first, decision="include", showing=second)
    assert response.status_code == 200
    # The card the page now shows (prefetched when the first was on screen) links back to the first.
    page = screen(client, dual)
    assert shown_and_next(page)[0] == second
    card = page.split('<template class="next-card"')[0]
    assert re.search(rf'href="[^"]+\?record={first}" data-shortcut="u"', card)
    page = client.get(f"{reverse('screening:screen', args=[dual.slug, TA])}?record={first}").content.decode()
    assert "You decided <strong>Include</strong>" in page
    # Changing that vote answers with the card bob holds first again (the second), then the next.
    response = decide(client, dual, first, decision="exclude")
    assert shown_and_next(response.content.decode())[0] == second
    assert Decision.objects.get(reviewer=bob, record_id=first, is_current=True).decision == "exclude"


def test_a_viewer_gets_no_card_and_holds_nothing(client, dual, erin):
    client.force_login(erin)
    assert client.get(reverse("screening:screen", args=[dual.slug, TA])).status_code == 403
    assert not Claim.objects.filter(reviewer=erin).exists()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_bobs_next_card_shows_before_the_server_answers_his_decision(review, bob, live_server, browser_page):
    dual_screened(review, 6)
    Membership.objects.filter(review=review, user=bob).update(role=Role.REVIEWER)
    first, second, third = pks(review)[:3]
    page = browser_page
    held_posts = []
    log_in(page, live_server, "bob")
    page.goto(live_server.url + reverse("screening:screen", args=[review.slug, TA]))
    page.wait_for_selector(f"#card[data-ready][data-record='{first}'] form.decision-form")
    # Hold every decision on its way to the server until the test lets it go.
    page.route("**/decide/", lambda route: held_posts.append(route))
    page.keyboard.press("e")
    page.wait_for_selector(f"#card[data-ready][data-record='{second}'] form.decision-form")
    assert len(held_posts) == 1 and held_posts[0].request.headers.get("x-sieve-showing") == str(second)
    # The second card is on screen while the decision on the first has not reached the server.
    assert not Decision.objects.filter(reviewer=bob).exists()
    assert page.locator("section.screen[hidden]").count() == 1  # the first card, until the answer
    held_posts[0].continue_()
    page.unroute("**/decide/")
    # The answer brings the card after the second one; the first card is gone, the vote stored.
    page.wait_for_selector(f"#card > template.next-card[data-record='{third}']", state="attached")
    page.wait_for_selector("#card .screen-progress progress[value]")
    assert "You: 1 screened, 5 left for you" in page.inner_text("#card .screen-progress")
    assert page.locator("section.screen").count() == 1
    assert list(Decision.objects.filter(reviewer=bob).values_list("record_id", "decision")) == [(first, "exclude")]
    # The keys work on the prefetched card, and its back link returns to the first record.
    # (The vote's answer and what it sets off are awaited before going back: the test database is SQLite in memory,
    # shared between the live server's threads, where two hand-outs at once are not serialised
    # as on a database file (BEGIN IMMEDIATE) or PostgreSQL (the membership row's lock).)
    with page.expect_response(lambda r: r.url.endswith("/decide/")):
        page.keyboard.press("i")
    page.wait_for_selector(f"#card[data-ready][data-record='{third}'] form.decision-form")
    page.wait_for_load_state("networkidle")  # and the requests it set off (progress, prefetch)
    page.keyboard.press("u")
    page.wait_for_selector("text=You decided")
    assert f"record={second}" in page.url
