"""The main pages in a real browser under the Content-Security-Policy, with hostile text stored everywhere."""

import pytest
from django.urls import reverse

from tests.browser import log_in
from tests.test_xss_sweep import TA, world  # noqa: F401  (the fixture with hostile text everywhere)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_alices_pages_work_under_the_csp_and_run_nothing_she_did_not_ship(world, live_server, browser_page):  # noqa: F811
    page, slug = browser_page, world.review.slug
    violations, dialogs, errors = [], [], []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "console.log('Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
    )
    log_in(page, live_server, "alice")

    def visit(name, *args, ready="main"):
        response = page.goto(live_server.url + reverse(name, args=args))
        assert response.status == 200, name
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_selector(ready)

    visit("review:list")
    visit("review:detail", slug, ready="progress.progress")
    visit("screening:records", slug, ready="table")
    visit("screening:prisma", slug, ready=".prisma-figure svg text")
    assert page.locator(".prisma-figure svg text").first.is_visible()
    visit("screening:extraction", slug)
    visit("screening:extraction_entry", slug, world.included.pk, ready="form .help")
    assert "alert(" in page.inner_text("form .help")  # shown as text, not run

    # The conflicts queue with its keys (static/conflicts.js): hostile reasons on the buttons, shown as text.
    visit("screening:conflicts", slug, TA, ready=f"#conflict-{world.conflict.pk}.current")
    assert page.locator(f"#conflict-{world.conflict.pk} .reason-buttons button").count() == 2

    # Screening with keyboard shortcuts: htmx swaps in the next card under the policy.
    visit("screening:screen", slug, TA, ready="#card[data-ready]")
    first = page.get_attribute("#card form.decision-form", "action")
    page.keyboard.press("i")
    page.wait_for_function(
        "a => document.querySelector('#card form.decision-form')?.getAttribute('action') !== a", arg=first
    )
    page.wait_for_selector("#card[data-ready]")
    page.keyboard.press("?")
    assert page.is_visible("#shortcut-help")
    page.keyboard.press("Escape")

    assert violations == [] and dialogs == [] and errors == [], (violations, dialogs, errors)
    # The htmx indicator style was not injected (it would be an inline <style>).
    assert page.evaluate("document.querySelectorAll('style').length") == 0
