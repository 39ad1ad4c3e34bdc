"""Helpers for the browser tests (the `browser_page` fixture is in conftest.py)."""

from django.urls import reverse


def log_in(page, live_server, name):
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", f"pw-{name}")
    page.press("input[name=password]", "Enter")
    page.wait_for_load_state()
