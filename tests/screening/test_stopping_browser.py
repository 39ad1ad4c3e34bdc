"""The "When to stop screening" panel as its owner uses it, in a real browser and through the views.

alice (owner) of the kratom review closes title/abstract screening once bob's votes make the
stopping rule say stop: from the dashboard's button, through the confirmation page, to the PRISMA
page's automation box, and back with Reopen. Each action's message is shown in the stage's panel,
where the redirect leaves her, not at the top of a page scrolled out of sight.
"""

import tempfile
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from review.models import Stage
from screening import closing, progress_report, sampling
from tests.browser import log_in
from tests.screening.test_closing import IRRELEVANT, LEFT, RELEVANT, add_records, screen

TA = Stage.TITLE_ABSTRACT
FAILURE_SHOT = Path(tempfile.gettempdir()) / "sieve-test-stopping-browser-failure.png"


@pytest.fixture
def stoppable(review, bob):
    """The review with bob's votes in: the rule says stop with LEFT records unscreened."""
    records = add_records(review, RELEVANT + IRRELEVANT + LEFT)
    screen(review, records[: RELEVANT + IRRELEVANT], bob, ["include"] * RELEVANT + ["exclude"] * IRRELEVANT)
    return review


def in_viewport(page, selector):
    return page.evaluate(
        "s => { const r = document.querySelector(s).getBoundingClientRect();"
        " return r.top >= 0 && r.bottom <= window.innerHeight; }",
        selector,
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_alice_closes_title_abstract_on_the_rule_sees_it_in_prisma_and_reopens(stoppable, live_server, browser_page):
    page, slug = browser_page, stoppable.slug
    panel = "#stopping-title_abstract"
    violations, errors = [], []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "console.log('Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
    )
    try:
        log_in(page, live_server, "alice")
        page.goto(live_server.url + reverse("review:detail", args=[slug]))
        assert "Stopping is recommended" in page.inner_text(f"{panel} > p strong")

        with page.expect_navigation():
            page.click(f"{panel} a:has-text('Close title/abstract screening on this recommendation')")
        assert page.url.endswith(reverse("screening:close_stage", args=[slug, TA.value]))
        assert f"{LEFT} records" in page.inner_text("main")
        with page.expect_navigation():
            page.click(f"button:has-text('mark {LEFT} records')")

        # Back on the dashboard, at the stage's panel, with the message in sight.
        message = f"{panel} .messages .msg-success"
        assert f"{LEFT} records marked ineligible by automation tools" in page.inner_text(message)
        assert in_viewport(page, message)
        # ... and the keyboard focus on it, so a screen reader reads it out.
        assert page.evaluate("document.activeElement.closest('#stopping-title_abstract .messages') !== null")
        assert page.locator("main > .messages").count() == 0
        # The panel says the stage was closed, not that every record was screened.
        closed = page.inner_text(panel)
        assert (
            f"Closed on the stopping rule on {date_format(timezone.localtime(), 'j M Y')}: {LEFT} records left unscreened"
            in closed
        )
        assert "Every record at this stage has been screened" not in closed
        assert "marked ineligible by automation tools" in page.inner_text("#closures")
        assert closing.open_closure(stoppable, TA) is not None

        page.goto(live_server.url + reverse("screening:prisma", args=[slug]))
        figure = page.inner_text(".prisma-figure")
        assert "Records marked as ineligible by automation tools" in figure.replace("\n", " ")
        assert "Callaghan and Müller-Hansen (2020) indicated, at 95% confidence, that at least 95%" in page.inner_text(
            ".prisma-footnotes"
        )

        page.goto(live_server.url + reverse("review:detail", args=[slug]))
        with page.expect_navigation():
            page.click("#closures button:has-text('Reopen')")
        assert f"{LEFT} records returned to screening" in page.inner_text(f"{panel} .messages")
        assert in_viewport(page, f"{panel} .messages")
        assert "Reopened" in page.inner_text("#closures")
        assert closing.open_closure(stoppable, TA) is None
        assert violations == [] and errors == [], (violations, errors)
    except Exception:
        page.screenshot(path=str(FAILURE_SHOT), full_page=True)
        print(f"screenshot of the failure: {FAILURE_SHOT}")
        raise


# The panel's messages and figures, through the views --------------------------------------------


def _dashboard_after(client, url, data):
    response = client.post(url, data, follow=True)
    assert response.status_code == 200
    return response.content.decode()


def _panel(html, stage="title_abstract"):
    """The stage's part of the stopping panel (up to the next stage's)."""
    return next(part for part in html.split('class="stopping-stage"')[1:] if part.startswith(f' id="stopping-{stage}"'))


def test_a_bad_target_is_refused_in_the_stages_panel_naming_the_field(stoppable, alice):
    client = Client()
    client.force_login(alice)
    url = reverse("screening:stopping_targets", args=[stoppable.slug, TA.value])
    html = _dashboard_after(client, url, {"recall_target": "120", "confidence": "95"})
    panel = _panel(html)
    assert "Stopping rule not changed. Recall target (%): Ensure this value is less than or equal to 99.9." in panel
    assert 'class="msg-error"' in panel
    top = html[: html.index('id="stopping"')]
    assert "Stopping rule not changed" not in top
    assert sampling.targets(stoppable, TA).recall_target == 0.95


def test_a_new_target_says_the_running_sample_keeps_its_own(stoppable, alice):
    sampling.set_targets(stoppable, TA, recall_target=0.9, confidence=0.95, by=alice)
    sampling.start_sample(stoppable, TA, by=alice)
    client = Client()
    client.force_login(alice)
    url = reverse("screening:stopping_targets", args=[stoppable.slug, TA.value])
    html = _dashboard_after(client, url, {"recall_target": "97.5", "confidence": "99"})
    assert (
        "the stopping test now asks for 97.5% recall at 99% confidence; the random sample running now keeps "
        "90% recall at 95% confidence until it ends." in _panel(html)
    )


def test_an_empty_sample_estimates_nothing_yet_and_the_ranked_table_keeps_its_own_recall(stoppable, alice):
    client = Client()
    client.force_login(alice)
    before = _panel(client.get(reverse("review:detail", args=[stoppable.slug])).content.decode())
    assert "Estimated recall" in before
    sampling.start_sample(stoppable, TA, by=alice)
    panel = _panel(client.get(reverse("review:detail", args=[stoppable.slug])).content.decode())
    sample_table = panel[panel.index("Random-sample test") : panel.index("Ranked test")]
    ranked_table = panel[panel.index("Ranked test") :]
    assert "not known until sample records are screened" in sample_table
    # The estimated recall row belongs to the sample's figures while it runs: none from an empty sample,
    # and the ranked table no longer shows the sample's figure beside its own estimate.
    assert "Estimated recall" not in sample_table and "Estimated recall" not in ranked_table


def test_bob_is_told_why_the_stage_ran_out_once_it_is_closed(stoppable, alice, bob):
    closing.close_stage(stoppable, TA, alice, expect=LEFT)
    client = Client()
    client.force_login(bob)
    page = client.get(reverse("screening:screen", args=[stoppable.slug, TA.value])).content.decode()
    assert "All done at this stage" in page
    assert f"the {LEFT} records nobody had screened were marked ineligible by automation tools" in page
    closing.reopen_stage(stoppable, TA, alice)
    page = client.get(reverse("screening:screen", args=[stoppable.slug, TA.value])).content.decode()
    assert "marked ineligible by automation tools" not in page


def test_the_searches_page_lists_the_closure_and_the_reopening_like_its_csv(stoppable, alice, bob):
    closing.close_stage(stoppable, TA, alice, expect=LEFT)
    closing.reopen_stage(stoppable, TA, alice)
    client = Client()
    client.force_login(bob)
    page = client.get(reverse("review:searches", args=[stoppable.slug])).content.decode()
    listed = page[page.index("Also in the search log") :]
    assert listed.index("Stage closed") < listed.index("Stage reopened")
    assert (
        f"Stopping rule: title/abstract screening closed, {LEFT} records marked ineligible by automation tools"
        in listed
    )
    assert f"Stopping rule: title/abstract screening reopened, {LEFT} records returned to screening" in listed
    assert "<td>alice</td>" in listed


def test_the_methods_paragraph_claims_no_estimate_from_an_empty_sample(stoppable, alice, bob):
    sampling.start_sample(stoppable, TA, by=alice)
    text = progress_report.methods_paragraph(stoppable)
    title_abstract = next(part for part in text.split("\n\n") if part.startswith("At title/abstract"))
    assert f"A uniform random sample of the {LEFT} records then left unscreened was started" in title_abstract
    assert "none of its records had been screened yet, so it gave no estimate" in title_abstract
    assert "An estimated" not in title_abstract and "estimated recall" not in title_abstract
    # Once a sample record is agreed on, the figures come back.
    record = sampling.open_sample(stoppable, TA).records.get(position=1).record
    screen(stoppable, [record], bob, ["exclude"], minute=500)
    assert "An estimated" in progress_report.methods_paragraph(stoppable)


def test_erin_the_viewer_is_told_the_blinded_hand_out_log_holds_nothing_of_hers(stoppable, erin, bob):
    client = Client()
    for user, told in ((erin, True), (bob, False)):
        client.force_login(user)
        page = client.get(reverse("review:detail", args=[stoppable.slug])).content.decode()
        assert "lists your own hand-outs only" in page
        assert ("as a viewer you have none" in page) is told


def test_the_recall_curve_keeps_its_scale_when_a_sample_starts(stoppable, alice):
    before = progress_report.recall_curve_svg(progress_report.stage_progress(stoppable, TA))
    sampling.start_sample(stoppable, TA, by=alice)
    during = progress_report.stage_progress(stoppable, TA)
    assert during.sample is not None and during.sample.sampled == 0
    assert during.advice.estimated_remaining == LEFT  # the empty sample's own "estimate": every record left
    assert progress_report.recall_curve_svg(during) == before
