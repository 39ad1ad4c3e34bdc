import os

import pytest
from django.contrib.auth import get_user_model

from review.models import Membership, Review, Role


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Real hashing costs about a second per persona; tests check access rules, not hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_login_throttling(settings):
    # django-axes needs the request in authenticate(), which `client.login()` does not pass; the
    # throttling tests (tests/test_deploy.py) switch it back on.
    settings.AXES_ENABLED = False


def _user(name):
    return get_user_model().objects.create_user(name, f"{name}@example.org", "pw-" + name)


@pytest.fixture
def alice(db):
    """Owner of the kratom review."""
    return _user("alice")


@pytest.fixture
def bob(db):
    return _user("bob")


@pytest.fixture
def carol(db):
    return _user("carol")


@pytest.fixture
def dave(db):
    """An outsider: member of no review."""
    return _user("dave")


@pytest.fixture
def erin(review):
    """A viewer of the kratom review: reads everything, screens and resolves nothing."""
    user = _user("erin")
    Membership.objects.create(review=review, user=user, role=Role.VIEWER)
    return user


@pytest.fixture
def review(alice, bob, carol):
    r = Review.objects.create(
        slug="kratom-ptsd",
        title="Kratom for PTSD symptoms",
        created_by=alice,
        include_keywords="kratom, mitragynine",
        exclude_keywords="rat, mice",
    )
    Membership.objects.create(review=r, user=alice, role=Role.OWNER)
    Membership.objects.create(review=r, user=bob, role=Role.REVIEWER)
    Membership.objects.create(review=r, user=carol, role=Role.REVIEWER)
    return r


@pytest.fixture
def other_review(dave):
    r = Review.objects.create(slug="other", title="Somebody else's review", created_by=dave)
    Membership.objects.create(review=r, user=dave, role=Role.OWNER)
    return r


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def browser_page(live_server, monkeypatch):
    from playwright import sync_api

    if not os.path.exists(CHROMIUM):
        # `make test` installs Debian's Chromium where it can (root with apt-get); CI must run these.
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is not installed: the browser tests cannot run (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are
    # still plain synchronous code (the live server answers from its own thread).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(10_000)
        yield page
        browser.close()


@pytest.fixture
def inline_worker(settings):
    """Background tasks run at once, inside the request, by the code path the worker takes
    (django-tasks' ImmediateBackend): a web search or import is finished when its page loads."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings, tmp_path):
    # Uploads wait for the worker under the data directory; a test's stay in its own folder.
    settings.SIEVE_UPLOAD_DIR = tmp_path / "uploads"
    settings.SIEVE_EXPORT_DIR = tmp_path / "exports"
