"""Journeys in a real browser against Sieve run as it is deployed: gunicorn and the background
worker as separate processes on a database of their own (a SQLite file migrated once per test
session and copied for each journey), driven in Debian's Chromium. A failing journey leaves a
screenshot of every open page under ``test-artifacts/`` (or ``$SIEVE_TEST_ARTIFACTS``)."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import CHROMIUM

ROOT = Path(__file__).resolve().parent.parent.parent
ARTIFACTS = Path(os.environ.get("SIEVE_TEST_ARTIFACTS", ROOT / "test-artifacts"))

pytestmark = pytest.mark.browser


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveSite:
    """Sieve's web processes (gunicorn, two workers) and one task worker on ``database``."""

    def __init__(self, tmp_path, database):
        self.tmp_path = tmp_path
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SIEVE_", "NCBI_", "DATABASE_URL"))},
            "DJANGO_SETTINGS_MODULE": "sieve.settings",
            "DATABASE_URL": f"sqlite:///{database}",
            "SECRET_KEY": "journeys-" + "k" * 50,
            "SIEVE_DATA_DIR": str(tmp_path / "data"),
            "SIEVE_UPLOAD_DIR": str(tmp_path / "data" / "uploads"),
            "SIEVE_EXPORT_DIR": str(tmp_path / "data" / "exports"),
            "NCBI_EUTILS_URL": "http://127.0.0.1:9/",  # PubMed is never reached from a journey
            "NCBI_EMAIL": "journeys@example.org",
        }
        self.processes = []

    def start(self):
        log = open(self.tmp_path / "site.log", "w")  # noqa: SIM115 (closed with the processes)
        self._log = log
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.processes.append(
            subprocess.Popen(
                [str(gunicorn), "sieve.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "2", "--threads", "2"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        self.processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "manage.py",
                    "db_worker",
                    "--queue-name",
                    "*",
                    "--no-reload",
                    "--no-startup-delay",
                    "--interval",
                    "0.2",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(self.url + "/accounts/login/", timeout=60)
                return self
            except OSError:
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                    self.stop()
                    raise RuntimeError("the site did not start:\n" + self.log()[-3000:]) from None
                time.sleep(0.2)

    def log(self):
        return (self.tmp_path / "site.log").read_text()

    def stop(self):
        for p in self.processes:
            p.terminate()
        for p in self.processes:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        self._log.close()

    def python(self, code):
        """Run ``code`` in ``manage.py shell`` against the site's database; its output."""
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory):
    path = tmp_path_factory.mktemp("journeys-template") / "sieve.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIEVE_", "DATABASE_URL"))}
    env.update(DJANGO_SETTINGS_MODULE="sieve.settings", DATABASE_URL=f"sqlite:///{path}")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=300
    )
    return path


@pytest.fixture
def site(tmp_path, migrated_database):
    database = tmp_path / "sieve.sqlite3"
    shutil.copy(migrated_database, database)
    live = LiveSite(tmp_path, database).start()
    yield live
    live.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.journey_failed = report.failed
    return report


@pytest.fixture
def browser(request):
    """A Chromium for the journey; each page it opened is photographed if the journey fails."""
    from playwright import sync_api

    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is not installed: the journeys cannot run (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        if getattr(request.node, "journey_failed", False):
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            for c, context in enumerate(chromium.contexts):
                for p, page in enumerate(context.pages):
                    name = f"{request.node.name}-{c}-{p}.png".replace("/", "_")
                    page.screenshot(path=ARTIFACTS / name, full_page=True)
        chromium.close()


def person(browser, site, name):
    """A page of ``name``'s own browser (cookies of their own), logged in."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(15_000)
    page.goto(site.url + "/accounts/login/")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", f"pw-{name}")
    page.press("input[name=password]", "Enter")
    page.wait_for_load_state()
    assert "/accounts/login/" not in page.url, f"{name} could not log in"
    return page
