"""A whole-review import in real processes, on the database the tests run on (SQLite file or
PostgreSQL): another connection writes while it runs, a SIGKILL half-way leaves nothing visible,
and the import run again (the command, or the job's Re-run button with a real db_worker) lands
each row exactly once."""

import sqlite3
import time

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from tests.review.test_job_rerun import JOB, RERUN, _last, _worker, run_job_to_the_end, worker_site
from transfer.exporting import export_review

RECORDS = 6_000

COUNTS = """
import json
from review.models import Membership, Record, Review
from screening.models import Decision
copy = Record.all_objects.filter(review__slug="big-copy")
print("counts", json.dumps({
    "visible": Review.objects.filter(slug="big-copy").count(),
    "staged_reviews": Review.all_objects.filter(staged_at__isnull=False).count(),
    "staged_members": Membership.objects.filter(review__staged_at__isnull=False).count(),
    "records": copy.count(),
    "pmids": copy.values("pmid").distinct().count(),
    "decisions": Decision.objects.filter(record__review__slug="big-copy").count(),
}).replace(" ", ""))
"""

ENQUEUE = """
from django.contrib.auth.models import User
from transfer import tasks
alice = User.objects.filter(username="alice").first() or User.objects.create_user("alice", "alice@example.org", "pw")
User.objects.filter(pk=alice.pk).update(is_active=True)
with open({path!r}, "rb") as upload:
    job = tasks.enqueue_review_import(upload=upload, slug="big-copy", user=alice)
print("job", job.pk)
"""

STAGED_ROWS = (
    "SELECT count(*) FROM review_record r JOIN review_review v ON v.id = r.review_id WHERE v.staged_at IS NOT NULL"
)


def _counts(site):
    import json

    return json.loads(_last(site.python(COUNTS), "counts")[0])


def _staged_rows(site):
    if site.url.startswith("sqlite"):
        with sqlite3.connect(site.url.removeprefix("sqlite:///"), timeout=20) as db:
            return db.execute(STAGED_ROWS).fetchone()[0]
    with connection.cursor() as cursor:
        cursor.execute(STAGED_ROWS)
        return cursor.fetchone()[0]


def _wait_for_staged(site, process, at_least):
    deadline = time.monotonic() + 240
    while _staged_rows(site) < at_least:
        assert process.poll() is None, "it ended before any staged row was seen: " + process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "nothing staged in 4 minutes"
        time.sleep(0.05)


def _another_writer(site):
    """A login's write (a new account) on another connection, while the import runs: seconds taken."""
    started = time.monotonic()
    if site.url.startswith("sqlite"):
        # Django's own timeout (20 s) would only hide a lock held for the whole import: 5 s at most.
        with sqlite3.connect(site.url.removeprefix("sqlite:///"), timeout=5) as db:
            db.execute(
                "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, "
                "is_active, date_joined) VALUES ('!', 0, 'walk-in', '', '', '', 0, 1, '2026-11-30 12:00:00')"
            )
    else:
        get_user_model().objects.create_user("walk-in")
    return time.monotonic() - started


@pytest.fixture
def review_file(tmp_path):
    from bench.transfer_review import build

    path = tmp_path / "big.sieve.zip"
    export_review(review=build(RECORDS), out=path)
    return worker_site(tmp_path), path


def _assert_landed_once(site):
    final = _counts(site)
    assert final == {
        "visible": 1,
        "staged_reviews": 0,
        "staged_members": 0,
        "records": RECORDS,
        "pmids": RECORDS,
        "decisions": 2 * RECORDS,
    }


@pytest.mark.django_db(transaction=True)
def test_others_write_while_the_command_imports_and_a_kill_half_way_leaves_nothing(review_file):
    site, path = review_file
    importing = site.manage("import_review", str(path), "--slug", "big-copy")
    try:
        _wait_for_staged(site, importing, 1000)
        seconds = _another_writer(site)  # between two chunks: no "database is locked"
        assert importing.poll() is None, "the import ended before the other write was tried: make the file bigger"
        staged = _staged_rows(site)
    finally:
        importing.kill()  # SIGKILL: no clean-up code of the import runs
        importing.communicate()
    assert seconds < 5 and staged >= 1000
    killed = _counts(site)
    assert killed["visible"] == 0 and killed["staged_reviews"] == 1 and killed["staged_members"] == 0

    # Run again: the slug is held while the killed import may still be alive, then freed.
    again = site.manage("import_review", str(path), "--slug", "big-copy")
    assert again.wait(timeout=300) == 1 and "right now" in again.communicate()[1]
    site.env["SIEVE_IMPORT_STALE_SECONDS"] = "0"
    out = site.run("import_review", str(path), "--slug", "big-copy")
    assert f"{RECORDS} records" in out
    _assert_landed_once(site)
    print(f"killed after {staged} staged records; the other write took {seconds:.2f} s during the import")


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_review_import_is_re_run_from_the_page_and_each_row_lands_once(review_file, tmp_path):
    site, path = review_file
    job_id = int(_last(site.python(ENQUEUE.format(path=str(path))), "job")[0])
    worker = _worker(site)
    try:
        _wait_for_staged(site, worker, 1000)
        assert worker.poll() is None
    finally:
        worker.kill()  # SIGKILL: no clean-up of the import, the job or the upload runs
        worker.communicate()
    killed = _counts(site)
    assert killed["visible"] == 0 and killed["staged_reviews"] == 1 and killed["records"] > 0
    status, _, _ = _last(site.python(JOB.format(job=job_id)), "job")
    assert status == "running"  # until someone looks, or a worker starts a job

    time.sleep(3.5)  # silent past SIEVE_JOB_STALE_SECONDS
    shown, status_code, status, attempt = _last(site.python(RERUN.format(job=job_id)), "rerun")
    assert (shown, status_code, status, attempt) == ("True", "200", "queued", "2")

    status, attempt, error = run_job_to_the_end(site, job_id)
    assert (status, attempt, error) == ("done", 2, "''")
    _assert_landed_once(site)
    assert list((tmp_path / "uploads").iterdir()) == []
