"""One keystroke per decision, reasons included: each of the review's exclusion reasons has a
button, the first nine a number key, at both stages (issue 10)."""

import pytest
from django.urls import reverse

from review.models import Record, Stage
from screening.decisions import record_decision
from screening.models import Decision
from tests.browser import log_in
from tests.screening.conftest import dual_screened

TA, FT = Stage.TITLE_ABSTRACT, Stage.FULL_TEXT
HTMX = {"HX-Request": "true"}
REASONS = ["Wrong population", "Wrong intervention", "Animal study", "Not a trial"]


@pytest.fixture
def listed(review):
    review.exclusion_reasons = "\n".join(REASONS)
    review.save()
    return dual_screened(review, 4)


def pks(review):
    return list(Record.objects.filter(review=review).order_by("pk").values_list("pk", flat=True))


def decide(client, review, stage, pk, data, **headers):
    return client.post(reverse("screening:decide", args=[review.slug, stage, pk]), data, headers=headers)


def to_full_text(review, pk, alice, bob, carol):
    record = Record.objects.get(pk=pk)
    for who in (bob, carol):
        record_decision(record=record, reviewer=who, stage=TA, decision="include")


def bobs_votes(stage=TA):
    return list(
        Decision.objects.filter(reviewer__username="bob", stage=stage, is_current=True)
        .order_by("pk")
        .values_list("record_id", "decision", "reason")
    )


@pytest.mark.parametrize("stage", [TA, FT])
def test_bob_sees_a_button_with_its_number_key_for_each_reason(client, listed, alice, bob, carol, stage):
    first = pks(listed)[0]
    if stage == FT:
        to_full_text(listed, first, alice, bob, carol)
    client.force_login(bob)
    page = client.get(reverse("screening:screen", args=[listed.slug, stage])).content.decode()
    for key, reason in enumerate(REASONS, start=1):
        assert (
            f'<button type="submit" name="exclude_reason" value="{reason}" class="btn btn-small btn-exclude" '
            f'data-shortcut="{key}" aria-keyshortcuts="{key}"><kbd>{key}</kbd> {reason}</button>'
        ) in page


def test_only_the_first_nine_reasons_get_a_key(client, review, bob):
    review.exclusion_reasons = "\n".join(f"Reason {i}" for i in range(1, 12))
    review.save()
    dual_screened(review, 1)
    client.force_login(bob)
    page = client.get(reverse("screening:screen", args=[review.slug, TA])).content.decode()
    card = page.split('<template class="next-card"')[0]
    assert 'data-shortcut="9" aria-keyshortcuts="9"><kbd>9</kbd> Reason 9</button>' in card
    assert 'value="Reason 10" class="btn btn-small btn-exclude">Reason 10</button>' in card
    assert 'data-shortcut="10"' not in card


@pytest.mark.parametrize("stage", [TA, FT])
def test_bobs_reason_button_excludes_with_that_reason(client, listed, alice, bob, carol, stage):
    first = pks(listed)[0]
    if stage == FT:
        to_full_text(listed, first, alice, bob, carol)
    client.force_login(bob)
    # The typed box holds something else: the button's reason wins, and it is an exclusion.
    response = decide(client, listed, stage, first, {"exclude_reason": "Animal study", "other_reason": "typed"}, **HTMX)
    assert response.status_code == 200
    assert bobs_votes(stage)[-1] == (first, "exclude", "Animal study")


def test_a_reason_from_another_review_is_refused_and_nothing_is_stored(client, listed, other_review, bob):
    other_review.exclusion_reasons = "Conference abstract only"
    other_review.save()
    first = pks(listed)[0]
    client.force_login(bob)
    for data in (
        {"exclude_reason": "Conference abstract only"},
        {"decision": "exclude", "reason": "Conference abstract only"},
    ):
        response = decide(client, listed, TA, first, data, **HTMX)
        assert response.status_code == 400
        assert "Conference abstract only is not one of the available choices" in response.content.decode()
    assert bobs_votes() == []


def test_a_reason_button_cannot_go_with_an_inclusion(client, listed, bob):
    first = pks(listed)[0]
    client.force_login(bob)
    response = decide(client, listed, TA, first, {"decision": "include", "exclude_reason": "Animal study"}, **HTMX)
    assert response.status_code == 400
    assert "A reason&#x27;s button excludes" in response.content.decode()
    assert bobs_votes() == []


def test_a_post_without_any_decision_is_refused_with_a_message(client, listed, bob):
    first = pks(listed)[0]
    client.force_login(bob)
    response = decide(client, listed, TA, first, {}, **HTMX)
    assert response.status_code == 400
    assert "Choose a decision." in response.content.decode()
    assert bobs_votes() == []


def test_without_javascript_the_reason_button_is_a_plain_submit(client, listed, bob):
    first, second = pks(listed)[:2]
    client.force_login(bob)
    response = decide(client, listed, TA, first, {"exclude_reason": "Wrong population"})
    assert response.status_code == 302
    assert bobs_votes() == [(first, "exclude", "Wrong population")]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_bob_screens_by_number_keys_across_prefetched_cards_and_typing_never_fires_them(
    review, bob, live_server, browser_page
):
    review.exclusion_reasons = "\n".join(REASONS)
    review.save()
    dual_screened(review, 4)
    first, second, third, fourth = pks(review)
    page = browser_page
    log_in(page, live_server, "bob")
    page.goto(live_server.url + reverse("screening:screen", args=[review.slug, TA]))
    page.wait_for_selector(f"#card[data-ready][data-record='{first}'] form.decision-form")
    page.keyboard.press("2")
    # The prefetched card is shown at once, and its keys work too.
    page.wait_for_selector(f"#card[data-ready][data-record='{second}'] form.decision-form")
    page.wait_for_selector(f"#card > template.next-card[data-record='{third}']", state="attached")
    page.keyboard.press("3")
    page.wait_for_selector(f"#card[data-ready][data-record='{third}'] form.decision-form")
    # Typing a number in a text box types it; no decision is sent.
    page.fill("#card [name=note]", "")
    page.focus("#card [name=note]")
    page.keyboard.type("1")
    assert page.input_value("#card [name=note]") == "1"
    page.keyboard.press("Escape")
    # A prefetched card shows before the server answers the vote before it: wait for that answer.
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith(f"/{third}/decide/")):
        page.keyboard.press("4")
    page.wait_for_selector(f"#card[data-ready][data-record='{fourth}'] form.decision-form")
    page.wait_for_function("() => !document.querySelector('section.screen[hidden]')")
    assert bobs_votes() == [
        (first, "exclude", "Wrong intervention"),
        (second, "exclude", "Animal study"),
        (third, "exclude", "Not a trial"),
    ]
    assert Decision.objects.get(record_id=third, reviewer__username="bob").note == "1"


def test_on_a_revisit_bobs_chosen_reason_button_is_marked(client, listed, bob):
    first = pks(listed)[0]
    client.force_login(bob)
    decide(client, listed, TA, first, {"exclude_reason": "Animal study"})
    page = client.get(reverse("screening:screen", args=[listed.slug, TA]) + f"?record={first}").content.decode()
    card = page.split('<template class="next-card"')[0]
    assert 'value="Animal study" class="btn btn-small btn-exclude chosen"' in card
    assert 'value="Wrong population" class="btn btn-small btn-exclude"' in card
