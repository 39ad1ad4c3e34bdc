"""Deployment: login throttling, password rules, SECRET_KEY refusal, HTTPS settings, error logs,
and `make serve-prod` (gunicorn, task workers, collected static files) against PostgreSQL."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.hashers import MD5PasswordHasher, PBKDF2PasswordHasher
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse
from django.utils.http import urlencode
from django_tasks import TaskResultStatus

from demo.reviews import PASSWORD as DEMO_PASSWORD
from demo.reviews import PEOPLE as DEMO_PEOPLE
from tests.concurrent import database_url
from tests.deploy_tasks import where_am_i

ROOT = Path(__file__).resolve().parent.parent
LOCKED = 429


# --- login throttling (django-axes) ---------------------------------------------------------------


@pytest.fixture
def throttled(settings):
    settings.AXES_ENABLED = True


def _log_in(client, username, password, ip, url=None):
    return client.post(url or reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


def _logged_in(client):
    return "_auth_user_id" in client.session


def _fail_ten_times(client, username="alice", ips=None, usernames=None):
    for i in range(10):
        response = _log_in(
            client, usernames[i] if usernames else username, "wrong password", ips[i] if ips else "10.0.0.1"
        )
        assert response.status_code in (200, LOCKED)


def test_nine_failures_do_not_lock_alice_out(client, alice, throttled):
    for _ in range(9):
        assert _log_in(client, "alice", "wrong password", "10.0.0.1").status_code == 200
    response = _log_in(client, "alice", "pw-alice", "10.0.0.1")
    assert response.status_code == 302
    assert _logged_in(client)


def test_ten_failures_lock_alices_username_from_every_address(client, alice, bob, throttled):
    _fail_ten_times(client, "alice", ips=[f"10.0.0.{i}" for i in range(1, 11)])

    response = _log_in(client, "alice", "pw-alice", "192.0.2.77")

    assert response.status_code == LOCKED
    assert not _logged_in(client)
    assert b"Try again after" in response.content
    # Bob, from a fresh address, is not affected.
    assert _log_in(client, "bob", "pw-bob", "192.0.2.78").status_code == 302


def test_ten_failures_from_one_address_lock_that_address_for_every_username(client, alice, throttled):
    _fail_ten_times(client, ips=["203.0.113.9"] * 10, usernames=[f"guess{i}" for i in range(10)])

    assert _log_in(client, "alice", "pw-alice", "203.0.113.9").status_code == LOCKED
    assert not _logged_in(client)
    assert _log_in(client, "alice", "pw-alice", "203.0.113.10").status_code == 302


def test_the_admin_login_is_throttled_too(client, alice, throttled):
    alice.is_staff = alice.is_superuser = True
    alice.save()
    url = reverse("admin:login")
    for i in range(10):
        _log_in(client, "alice", "wrong password", f"10.1.0.{i}", url=url)

    response = _log_in(client, "alice", "pw-alice", "10.1.0.99", url=url)

    assert response.status_code == LOCKED
    assert not _logged_in(client)


def test_a_locked_out_attempt_computes_no_password_hash(client, alice, throttled):
    with (
        mock.patch.object(MD5PasswordHasher, "verify", autospec=True, side_effect=MD5PasswordHasher.verify) as verify,
        mock.patch.object(MD5PasswordHasher, "encode", autospec=True, side_effect=MD5PasswordHasher.encode) as encode,
    ):
        _fail_ten_times(client, "alice", ips=[f"10.2.0.{i}" for i in range(10)])
        assert verify.call_count == 10  # the patch sees the checks that do happen
        verify.reset_mock()
        encode.reset_mock()

        response = _log_in(client, "alice", "pw-alice", "10.2.0.99")

    assert response.status_code == LOCKED
    verify.assert_not_called()
    encode.assert_not_called()


def test_the_lock_lifts_fifteen_minutes_after_the_tenth_failure(client, alice, throttled):
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        _fail_ten_times(client, "alice", ips=[f"10.3.0.{i}" for i in range(10)])
        clock.move_to(start + timedelta(minutes=14, seconds=59))
        response = _log_in(client, "alice", "pw-alice", "10.3.0.99")
        assert response.status_code == LOCKED
        # Attempts while locked out do not extend the lock, and the page says when it ends.
        assert b"Try again after 12:15 UTC" in response.content
        assert response["Retry-After"] == "1"

        clock.move_to(start + timedelta(minutes=15, seconds=1))
        assert _log_in(client, "alice", "pw-alice", "10.3.0.99").status_code == 302
        assert _logged_in(client)


# --- password validators --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password, problem",
    [
        ("password1", "too common"),
        ("48151623429", "entirely numeric"),
        ("Ab3$xyz", "too short"),
        ("alice.liddell", "too similar"),
    ],
)
def test_a_weak_new_password_is_refused_with_the_reason(alice, password, problem):
    alice.first_name, alice.last_name = "Alice", "Liddell"
    form = SetPasswordForm(alice, {"new_password1": password, "new_password2": password})

    assert not form.is_valid()
    assert problem in " ".join(form.errors["new_password2"])


def test_the_demo_password_passes_every_validator_for_every_persona(db):
    for username, (_, full_name) in DEMO_PEOPLE.items():
        first, last = full_name.split(" ", 1)
        user = get_user_model()(username=username, email=f"{username}@example.org", first_name=first, last_name=last)
        try:
            validate_password(DEMO_PASSWORD, user)
        except ValidationError as error:  # pragma: no cover - a failure message, not a branch
            pytest.fail(f"the demo password is refused for {username}: {error.messages}")


# --- the web server and SECRET_KEY ----------------------------------------------------------------


def _env(tmp_path, **extra):
    """The environment of a fresh deployment: none of our settings variables, a throw-away database."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "DJANGO_SETTINGS_MODULE"}
        and not k.startswith("SIEVE_")
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    env.update(extra)
    return env


def _run(args, env, timeout=120):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_wsgi_application_refuses_to_start_without_secret_key(tmp_path):
    result = _run(["-c", "import sieve.wsgi"], _env(tmp_path))

    assert result.returncode != 0
    assert "SECRET_KEY is not set and DEBUG is off" in result.stderr


def test_the_wsgi_application_starts_with_a_secret_key_or_under_debug(tmp_path):
    assert _run(["-c", "import sieve.wsgi"], _env(tmp_path, SECRET_KEY="k" * 60)).returncode == 0
    assert _run(["-c", "import sieve.wsgi"], _env(tmp_path, DEBUG="true")).returncode == 0


def test_runserver_refuses_to_start_without_secret_key(tmp_path):
    # On the old code the server started and this timed out.
    result = _run(["manage.py", "runserver", "--noreload", "127.0.0.1:0"], _env(tmp_path), timeout=60)

    assert result.returncode != 0
    assert "SECRET_KEY is not set and DEBUG is off" in result.stderr


def test_command_line_tools_run_without_secret_key(tmp_path):
    result = _run(["manage.py", "check"], _env(tmp_path))

    assert result.returncode == 0, result.stderr


# --- HTTPS settings and check --deploy ------------------------------------------------------------

PRODUCTION = {
    "SECRET_KEY": "q3V9m0cWJ7xT2rL8nB5kP1sH6dF4gY0zA7eU3iO9wR2tQ5vX8bN1mC6jK4lZ",
    "ALLOWED_HOSTS": "sieve.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://sieve.example.org",
    "SIEVE_HTTPS": "true",
    "SIEVE_HSTS_PRELOAD": "true",
}


def test_check_deploy_is_clean_with_the_production_variables(tmp_path):
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], _env(tmp_path, **PRODUCTION))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_without_sieve_https_check_deploy_names_what_is_missing(tmp_path):
    production = {k: v for k, v in PRODUCTION.items() if k != "SIEVE_HTTPS"}
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], _env(tmp_path, **production))

    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


def test_proxy_variables_set_the_forwarded_scheme_and_client_address_header(tmp_path):
    show = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_PROXY_SSL_HEADER, s.AXES_IPWARE_META_PRECEDENCE_ORDER)"
    )
    env = _env(
        tmp_path,
        DJANGO_SETTINGS_MODULE="sieve.settings",
        SIEVE_BEHIND_PROXY="true",
        SIEVE_CLIENT_IP_HEADER="HTTP_X_REAL_IP",
    )
    result = _run(["-c", show], env)

    assert result.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https') ('HTTP_X_REAL_IP', 'REMOTE_ADDR')"


# --- logging --------------------------------------------------------------------------------------

RAISING_VIEW = """
import django
from django.test import Client, override_settings
from django.urls import path

django.setup()


def boom(request):
    raise RuntimeError("the view broke on purpose")


urlpatterns = [path("boom/", boom)]

with override_settings(ROOT_URLCONF="__main__", ALLOWED_HOSTS=["testserver"]):
    print(Client(raise_request_exception=False).get("/boom/").status_code)
"""


def test_a_server_error_leaves_its_traceback_on_stderr(tmp_path):
    result = _run(["-c", RAISING_VIEW], _env(tmp_path, DJANGO_SETTINGS_MODULE="sieve.settings", SECRET_KEY="k" * 60))

    assert result.stdout.strip() == "500"
    assert "Internal Server Error: /boom/" in result.stderr
    assert "Traceback (most recent call last)" in result.stderr
    assert "RuntimeError: the view broke on purpose" in result.stderr


# --- make serve-prod: gunicorn and task workers against PostgreSQL -------------------------------

HOST = PRODUCTION["ALLOWED_HOSTS"]
WEB_WORKERS, TASK_WORKERS = 2, 1
GUNICORN = ".venv/bin/gunicorn"  # as the Makefile starts it


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the test follows redirects itself, to see them


class Proxy:
    """Talks to gunicorn as the TLS-terminating proxy in front of it does: the public host name,
    X-Forwarded-Proto: https, and the cookies (secure ones too) of one browser."""

    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.cookies = {}
        self.opener = urllib.request.build_opener(_NoRedirects)

    def get(self, path):
        return self._send(urllib.request.Request(self.base + path))

    def post(self, path, data):
        request = urllib.request.Request(self.base + path, data=urlencode(data).encode())
        request.add_header("Origin", f"https://{HOST}")
        request.add_header("Referer", f"https://{HOST}{path}")
        return self._send(request)

    def _send(self, request):
        request.add_header("Host", HOST)
        request.add_header("X-Forwarded-Proto", "https")
        if self.cookies:
            request.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        try:
            response = self.opener.open(request, timeout=30)
        except urllib.error.HTTPError as answer:
            response = answer
        with response:
            for cookie in response.headers.get_all("Set-Cookie") or []:
                name, value = cookie.split(";", 1)[0].split("=", 1)
                self.cookies[name.strip()] = value
            return response.status, response.headers, response.read().decode()


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _descendants(pid):
    """Every process under ``pid``, with its arguments (from /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = {}, [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            try:
                found[child] = Path(f"/proc/{child}/cmdline").read_bytes().decode().split("\0")
            except OSError:
                continue
            todo.append(child)
    return found


@pytest.fixture
def serve_prod(transactional_db, tmp_path):
    """`make serve-prod` with the production variables on a free port, against the test database."""
    if connection.vendor != "postgresql":
        pytest.skip("make serve-prod needs PostgreSQL: this runs in the PostgreSQL pass of `make test`")
    port = _free_port()
    env = _env(
        tmp_path,
        **PRODUCTION,
        DATABASE_URL=database_url(),
        SIEVE_BEHIND_PROXY="true",
        SIEVE_DATA_DIR=str(tmp_path / "data"),
        SIEVE_STATIC_ROOT=str(tmp_path / "static"),
    )
    log = open(tmp_path / "serve-prod.log", "w+")  # noqa: SIM115  (closed below)
    # -o: never (re)install anything from a test.
    command = ["make", "-o", ".venv/.installed", "serve-prod", f"BIND=127.0.0.1:{port}"]
    command += [f"WEB_WORKERS={WEB_WORKERS}", f"TASK_WORKERS={TASK_WORKERS}"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def output():
        log.seek(0)
        return log.read()

    proxy = Proxy(port)
    try:
        deadline = time.monotonic() + 240  # check, migrate and collectstatic first: slow on a busy box
        while True:
            assert server.poll() is None, f"make serve-prod stopped:\n{output()}"
            assert time.monotonic() < deadline, f"gunicorn did not answer:\n{output()}"
            try:
                proxy.get("/accounts/login/")
                break
            except OSError:
                time.sleep(0.5)
        yield server, proxy, output
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.mark.postgres
def test_make_serve_prod_serves_alice_her_reviews_with_gunicorn_workers_and_a_task_worker(serve_prod, review, alice):
    server, proxy, output = serve_prod
    # Her password as a production server stores it (the tests' own hasher is MD5).
    hasher = PBKDF2PasswordHasher()
    alice.password = hasher.encode("pw-alice", hasher.salt())
    alice.save()

    status, _, page = proxy.get(reverse("login"))
    assert status == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    status, headers, _ = proxy.post(
        reverse("login"), {"username": "alice", "password": "pw-alice", "csrfmiddlewaretoken": token}
    )
    assert status == 302, output()
    assert "Secure" in " ".join(headers.get_all("Set-Cookie"))  # session cookie for HTTPS only

    status, _, page = proxy.get(headers["Location"])
    assert status == 200
    assert review.title in page

    # Static files come collected, hashed and cached for good, from WhiteNoise in gunicorn.
    stylesheet = re.search(r'href="(/static/app\.[0-9a-f]{12}\.css)"', page).group(1)
    status, headers, css = proxy.get(stylesheet)
    assert status == 200 and css
    assert "immutable" in headers["Cache-Control"]

    processes = _descendants(server.pid)
    # Python processes only (the shell running the recipe names them too).
    web = [pid for pid, argv in processes.items() if argv[1:3] == [GUNICORN, "sieve.wsgi"]]
    workers = [pid for pid, argv in processes.items() if argv[1:3] == ["manage.py", "db_worker"]]
    assert len(web) == 1 + WEB_WORKERS  # the arbiter and its workers
    assert len(workers) == TASK_WORKERS

    # A task enqueued here is run by the worker, on the same database.
    result = where_am_i.enqueue()
    deadline = time.monotonic() + 60
    while result.status not in (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED):
        assert time.monotonic() < deadline, f"the task worker did not run the task:\n{output()}"
        time.sleep(0.5)
        result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == {"pid": workers[0], "database": connection.settings_dict["NAME"]}


def test_make_serve_prod_refuses_sqlite_and_a_missing_secret_key(tmp_path):
    command = ["make", "-o", ".venv/.installed", "serve-prod"]
    run = subprocess.run(command, cwd=ROOT, env=_env(tmp_path, SECRET_KEY="k" * 60), capture_output=True, text=True)
    assert run.returncode != 0
    assert "make serve-prod needs DATABASE_URL=postgres://" in run.stderr

    env = _env(tmp_path, DATABASE_URL="postgres://127.0.0.1:5432/sieve")
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode != 0
    assert "make serve-prod needs SECRET_KEY" in run.stderr


def test_the_web_server_refuses_to_start_before_collectstatic(tmp_path):
    env = _env(tmp_path, SECRET_KEY="k" * 60, SIEVE_COLLECTED_STATIC="true", SIEVE_STATIC_ROOT=str(tmp_path / "s"))
    result = _run(["-c", "import sieve.wsgi"], env)

    assert result.returncode != 0
    assert "holds no collected static files" in result.stderr
