"""Helpers for the browser tests (the `browser_page` fixture is in conftest.py)."""

from django.urls import reverse


def log_in(page, live_server, name):
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", f"pw-{name}")
    page.press("input[name=password]", "Enter")
    page.wait_for_load_state()


def wait_until_wired(page, selector):
    """Wait until htmx has processed the element (a freshly swapped form): before that, Enter or
    a click submits the plain form and the whole page reloads."""
    page.wait_for_function(
        "s => { const e = document.querySelector(s); return !!(e && e['htmx-internal-data'] && "
        "e['htmx-internal-data'].initHash); }",
        arg=selector,
    )
