"""Accessibility in a real browser: axe-core on every page for each role, the keyboard, small screens.

Pages are listed by URL name in tests/a11y.py (PAGES); every other URL pattern must say there why it
is not a page, so a page added later is either checked here or fails the first test below.
"""

import pytest
from django.urls import reverse

from tests.a11y import NOT_PAGES, PAGES, TA, add_jobs_and_invitation, axe_violations, pages_for
from tests.browser import log_in
from tests.test_xss_sweep import patterns, world  # noqa: F401  (a review with every kind of content)

FT = "full_text"


@pytest.fixture
def site(world):  # noqa: F811
    add_jobs_and_invitation(world)
    return world


def test_every_url_pattern_is_a_page_or_says_why_not():
    names = {name for name, _ in patterns()}
    assert not set(PAGES) & set(NOT_PAGES)
    assert names - set(PAGES) - set(NOT_PAGES) == set(), "add these URL names to PAGES (or NOT_PAGES, saying why)"
    assert set(PAGES) | set(NOT_PAGES) <= names, "names in tests/a11y.py that no URL pattern has"


def visit(page, live_server, url):
    response = page.goto(live_server.url + url)
    page.wait_for_load_state("networkidle")
    return response


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role, username", [("owner", "alice"), ("reviewer", "bob"), ("viewer", "erin")])
def test_axe_finds_no_violation_on_any_page(site, live_server, browser_page, role, username):
    page = browser_page
    log_in(page, live_server, username)
    found, visited = [], []
    for name, kwargs in pages_for(site, role):
        url = reverse(name, kwargs=kwargs)
        response = visit(page, live_server, url)
        assert response.status == 200, f"{role} {url}: {response.status}"
        visited.append(name)
        found += [f"{role} {url}: {line}" for line in axe_violations(page)]
        # The first Tab reaches a skip link, unless the page put the focus in its form (autofocus).
        autofocus = page.evaluate("() => !!document.activeElement.closest('main')")
        page.keyboard.press("Tab")
        if not autofocus and not page.evaluate("() => document.activeElement.matches('a.skip-link')"):
            found.append(f"{role} {url}: the first Tab does not reach a skip link")
    assert found == [], "\n".join(found)
    assert {"review:record", "screening:records", "review:detail"} <= set(visited)
    assert ("screening:screen" in visited) == (role != "viewer")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_axe_finds_no_violation_on_the_refusal_pages(site, live_server, browser_page):
    page = browser_page
    log_in(page, live_server, "erin")  # a viewer
    found = []
    for url, status in (
        (reverse("review:settings", args=[site.slug]), 403),
        (reverse("review:record", args=[site.slug, 10**9]), 404),
        ("/no/such/page/", 404),
    ):
        response = visit(page, live_server, url)
        assert response.status == status, url
        assert page.locator("main").count() == 1 and page.locator("header").count() >= 1, url  # the site's layout
        found += [f"{url} ({status}): {line}" for line in axe_violations(page)]
    assert found == [], "\n".join(found)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_axe_finds_no_violation_on_the_login_and_lockout_pages(site, live_server, browser_page, settings):
    page = browser_page
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 2
    visit(page, live_server, reverse("login"))
    found = [f"login: {line}" for line in axe_violations(page)]
    for _ in range(2):
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "wrong")
        page.press("input[name=password]", "Enter")
        page.wait_for_load_state("networkidle")
    found += [f"login after a failure: {line}" for line in axe_violations(page)]
    response = page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "pw-alice")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.press("input[name=password]", "Enter")
    assert answer.value.status == 429, response
    page.wait_for_load_state("networkidle")
    found += [f"lockout: {line}" for line in axe_violations(page)]
    assert found == [], "\n".join(found)


def _luminance(rgb):
    def channel(c):
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b):
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


# The focused element's ring: its outline colour and width, and the colour behind it (the first
# ancestor with an opaque background).
FOCUS_RING = """() => {
  const e = document.activeElement, style = getComputedStyle(e);
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  let behind = e.parentElement, background = [255, 255, 255];
  while (behind) {
    const c = rgb(getComputedStyle(behind).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] === 1)) { background = c.slice(0, 3); break; }
    behind = behind.parentElement;
  }
  return {style: style.outlineStyle, width: parseFloat(style.outlineWidth), color: rgb(style.outlineColor).slice(0, 3),
          background, text: e.tagName + '.' + e.className + ' ' + (e.innerText || e.getAttribute('aria-label') || '').trim()};
}"""


def tab(page):
    page.keyboard.press("Tab")
    return page.evaluate("() => document.activeElement.textContent.trim()")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("stage", [TA, FT])
def test_tab_from_the_top_reaches_a_skip_link_then_the_decision_buttons(site, live_server, browser_page, stage):
    page = browser_page
    log_in(page, live_server, "alice")
    url = reverse("screening:screen", args=[site.slug, stage])
    visit(page, live_server, url)
    page.wait_for_selector("#card[data-ready]")

    assert tab(page) == "Skip to the decision buttons"
    assert page.evaluate("() => document.activeElement.getBoundingClientRect().top") >= 0  # shown when focused
    page.keyboard.press("Enter")
    assert tab(page).startswith("Include")
    # Without the skip link, the decision buttons still come before the tags and notes.
    visit(page, live_server, url)
    page.wait_for_selector("#card[data-ready]")
    order = [tab(page) for _ in range(40)]
    assert order[1] == "Skip to main content"
    first_button = next(i for i, text in enumerate(order) if text.startswith("Include"))
    assert first_button < order.index("Add tag")
    page.keyboard.press("Home")
    visit(page, live_server, url)
    tab(page)
    tab(page)
    page.keyboard.press("Enter")  # skip to main content: the next stop is inside main, past the site's links
    tab(page)
    assert page.evaluate("() => !!document.activeElement.closest('main')")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_focus_ring_is_visible_everywhere_the_keyboard_goes(site, live_server, browser_page):
    page = browser_page
    log_in(page, live_server, "alice")
    weak = []
    for url in (reverse("screening:screen", args=[site.slug, TA]), reverse("screening:records", args=[site.slug])):
        visit(page, live_server, url)
        for _ in range(30):
            page.keyboard.press("Tab")
            ring = page.evaluate(FOCUS_RING)
            if ring["text"].startswith("BODY."):
                continue  # past the last control: the focus went to the browser's own controls
            ratio = contrast(ring["color"], ring["background"])
            if ring["style"] == "none" or ring["width"] < 2 or ratio < 3:
                weak.append(f"{url} {ring['text'][:40]!r}: {ring['style']} {ring['width']}px, {ratio:.2f}:1")
    assert weak == [], "\n".join(weak)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_next_record_is_announced_and_the_focus_stays_at_the_decision(site, live_server, browser_page):
    page = browser_page
    log_in(page, live_server, "alice")
    visit(page, live_server, reverse("screening:screen", args=[site.slug, TA]))
    page.wait_for_selector("#card[data-ready]")
    assert page.text_content("#screen-announcer") == ""
    assert page.get_attribute("#screen-announcer", "aria-live") == "polite"
    first = page.get_attribute("#card", "data-record")
    page.keyboard.press("i")
    page.wait_for_function("a => document.querySelector('#card')?.getAttribute('data-record') !== a", arg=first)
    page.wait_for_selector("#card[data-ready]")
    shown = page.get_attribute("#card", "data-record")
    title = page.text_content("#card .record-title").strip()
    assert page.text_content("#screen-announcer") == f"Next record #{shown}: {title}"
    assert tab(page).startswith("Include")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_reason_boxes_are_labelled(site, live_server, browser_page):
    page = browser_page
    log_in(page, live_server, "alice")
    visit(page, live_server, reverse("screening:screen", args=[site.slug, TA]))
    assert page.get_by_label("Exclusion reason (optional)").count() == 1
    assert page.get_by_label("Other exclusion reason").get_attribute("name") == "other_reason"
    assert page.get_by_label("Note", exact=True).get_attribute("name") == "note"


SMALL_SCREENS = [(390, 844), (820, 1180)]


def small_screen_pages(site):
    names = [
        "review:list",
        "review:create",
        "review:detail",
        "review:record",
        "review:members",
        "review:settings",
        "review:search",
        "review:import",
        "review:searches",
        "review:duplicates",
        "review:job",
        "screening:screen",
        "screening:records",
        "screening:conflicts",
        "screening:prisma",
        "screening:extraction",
        "screening:extraction_entry",
        "screening:extraction_fields",
        "transfer:import",
        "transfer:import_job",
    ]
    return [(name, kwargs) for name in names for kwargs in PAGES[name](site)]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width, height", SMALL_SCREENS)
def test_phone_and_tablet_pages_do_not_scroll_sideways(site, live_server, browser_page, width, height):
    page = browser_page
    page.set_viewport_size({"width": width, "height": height})
    log_in(page, live_server, "alice")
    wide = []
    for name, kwargs in small_screen_pages(site):
        url = reverse(name, kwargs=kwargs)
        assert visit(page, live_server, url).status == 200, url
        sizes = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        if sizes[0] > sizes[1]:
            wider = page.evaluate(
                """w => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > w
                      && !e.closest('.table-wrap, .table-container'))
                      .slice(0, 3).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""",
                width,
            )
            wide.append(f"{url}: {sizes[0]}px wide in {sizes[1]}px {wider}")
    assert wide == [], "\n".join(wide)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width, height", SMALL_SCREENS)
@pytest.mark.parametrize("stage", [TA, FT])
def test_the_decision_panel_takes_less_than_a_third_of_the_screen(
    site, live_server, browser_page, width, height, stage
):
    page = browser_page
    page.set_viewport_size({"width": width, "height": height})
    log_in(page, live_server, "alice")
    url = reverse("screening:screen", args=[site.slug, stage])
    visit(page, live_server, url)
    panel = page.locator("#card .decision-form").bounding_box()
    assert panel["height"] < height / 3, (panel, height)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    # The panel stays in sight while the record is read: at the bottom of the screen.
    page.mouse.wheel(0, 200)
    panel = page.locator("#card .decision-form").bounding_box()
    assert panel["y"] + panel["height"] <= height + 1


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_axe_finds_no_violation_on_a_phone(site, live_server, browser_page):
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server, "alice")
    found = []
    for name, kwargs in small_screen_pages(site):
        url = reverse(name, kwargs=kwargs)
        visit(page, live_server, url)
        found += [f"{url}: {line}" for line in axe_violations(page)]
    assert found == [], "\n".join(found)
