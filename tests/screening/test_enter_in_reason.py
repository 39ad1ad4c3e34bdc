"""Enter in the typed-reason box: an exclusion with that reason, never an inclusion (issue #6)."""

import pytest
from django.urls import reverse

from review.models import Record, Stage
from screening.decisions import record_decision
from screening.models import Decision
from tests.browser import log_in, wait_until_wired
from tests.screening.test_queue import import_ris, unique_pks

TA, FT = Stage.TITLE_ABSTRACT, Stage.FULL_TEXT


@pytest.fixture
def imported(review):
    import_ris(review, "baseline_endnote.ris", "EndNote")
    return review


def _screen_url(review, stage):
    return reverse("screening:screen", args=[review.slug, stage])


def _decide_url(review, stage, pk):
    return reverse("screening:decide", args=[review.slug, stage, pk])


def _first_records(review, n):
    return [Record.objects.get(pk=pk) for pk in unique_pks(review)[:n]]


def _bobs_votes(stage):
    return list(
        Decision.objects.filter(reviewer__username="bob", stage=stage, is_current=True)
        .order_by("pk")
        .values_list("record_id", "decision", "reason")
    )


def _press_enter_in_reason(page, review, stage, record, reason, *, htmx):
    form = f"#card form[action='{_decide_url(review, stage, record.pk)}']"
    if htmx:
        page.wait_for_selector(f"#card[data-ready] {form[6:]}")
        wait_until_wired(page, form)
    else:
        page.wait_for_selector(form)
    page.fill(f"{form} input[name=other_reason]", reason)
    page.press(f"{form} input[name=other_reason]", "Enter")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("stage", [TA, FT])
def test_enter_in_bobs_typed_reason_excludes_with_that_reason_with_htmx(
    imported, bob, live_server, browser_page, stage
):
    page = browser_page
    first, second = _first_records(imported, 2)
    if stage == FT:
        for record in (first, second):
            record_decision(record=record, reviewer=bob, stage=TA, decision="include")
    log_in(page, live_server, "bob")
    page.goto(live_server.url + _screen_url(imported, stage))
    page.evaluate("window.stillTheSamePage = true")
    _press_enter_in_reason(page, imported, stage, first, "Animal study", htmx=True)
    # The next record's card replaces this one, without a page load.
    page.wait_for_selector(f"#card[data-ready] form[action='{_decide_url(imported, stage, second.pk)}']")
    assert page.evaluate("window.stillTheSamePage") is True
    # It is the prefetched card, shown as the vote was sent: its progress bar follows the answer.
    page.wait_for_selector("#card .screen-progress progress[value]")
    assert _bobs_votes(stage) == [(first.pk, "exclude", "Animal study")]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("stage", [TA, FT])
def test_enter_in_bobs_typed_reason_excludes_with_that_reason_without_javascript(
    imported, bob, live_server, browser_page, stage
):
    page = browser_page
    # No script at all: the plain form's implicit submission presses its first submit button.
    page.context.route("**/*.js", lambda route: route.abort())
    first, second = _first_records(imported, 2)
    if stage == FT:
        for record in (first, second):
            record_decision(record=record, reviewer=bob, stage=TA, decision="include")
    log_in(page, live_server, "bob")
    page.goto(live_server.url + _screen_url(imported, stage))
    _press_enter_in_reason(page, imported, stage, first, "Wrong population", htmx=False)
    page.wait_for_selector(f"#card form[action='{_decide_url(imported, stage, second.pk)}']")
    assert _bobs_votes(stage) == [(first.pk, "exclude", "Wrong population")]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_enter_in_an_empty_reason_box_at_full_text_records_nothing(imported, bob, live_server, browser_page):
    page = browser_page
    (first,) = _first_records(imported, 1)
    record_decision(record=first, reviewer=bob, stage=TA, decision="include")
    log_in(page, live_server, "bob")
    page.goto(live_server.url + _screen_url(imported, FT))
    _press_enter_in_reason(page, imported, FT, first, "", htmx=True)
    # The reviewer is sent to the reason list instead; nothing is recorded.
    page.wait_for_function("document.activeElement && document.activeElement.name === 'reason'")
    assert _bobs_votes(FT) == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_enter_in_alices_typed_reason_resolves_a_conflict_as_an_exclusion(
    imported, alice, bob, carol, live_server, browser_page
):
    page = browser_page
    imported.title_abstract_reviewers = 2
    imported.save()
    (first,) = _first_records(imported, 1)
    record_decision(record=first, reviewer=bob, stage=TA, decision="include")
    record_decision(record=first, reviewer=carol, stage=TA, decision="exclude")
    log_in(page, live_server, "alice")
    page.goto(live_server.url + reverse("screening:conflicts", args=[imported.slug, TA]))
    form = f"form[action='{reverse('screening:resolve', args=[imported.slug, TA, first.pk])}']"
    wait_until_wired(page, form)
    page.fill(f"{form} input[name=other_reason]", "Animal study")
    page.press(f"{form} input[name=other_reason]", "Enter")
    page.wait_for_selector(f"{form}", state="detached")
    assert Record.objects.get(pk=first.pk).ta_outcome == "exclude"
    assert list(first.resolutions.values_list("decision", "reason")) == [("exclude", "Animal study")]
