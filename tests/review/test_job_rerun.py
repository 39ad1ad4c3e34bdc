"""A job whose worker stopped answering: the heartbeat, the sweep that marks it stopped, and the
Re-run button, which removes what the stopped run staged and queues the same work again."""

import signal
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from review import jobs, tasks
from review.article import Article
from review.importing import CHUNK, import_articles
from review.models import Job, Record, Search
from review.sources import SourceDetails
from tests.shared import shared

ZOTERO = ("fixtures", "exports", "pubmed_zotero.ris")


def job_url(job, name="review:job"):
    return reverse(name, args=[job.review.slug, job.pk])


def _silent(job, seconds=600):
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(seconds=seconds))


def _bobs_import(review, bob):
    data = shared(*ZOTERO).read_bytes()
    return tasks.enqueue_import(
        review=review, user=bob, upload=SimpleUploadedFile("zotero.ris", data), details=SourceDetails()
    )


def _killed_half_way(review, bob):
    """Bob's import, taken by a worker that staged part of it and then died (no clean-up ran)."""
    job = _bobs_import(review, bob)
    started = jobs.start(job.pk, stage="Reading the file")
    search = Search(review=review, kind=Search.Kind.FILE, source="Zotero", filename="zotero.ris", run_by=bob)

    def articles():
        yield Article(title="Kratom and sleep", pmid="111")
        raise KeyboardInterrupt  # stands for the SIGKILL: nothing after this runs

    with jobs.running(started), pytest.raises(KeyboardInterrupt):
        # The staged rows stay: a killed process runs no clean-up. (Here the clean-up is skipped.)
        import_articles(search=search, articles=_no_cleanup(articles()), user=bob)
    return started


def _no_cleanup(iterator):
    yield from iterator


@pytest.fixture
def stopped(review, bob, monkeypatch):
    # The clean-up of a failed import is what a SIGKILL skips.
    monkeypatch.setattr("review.importing._discard_quietly", lambda search: None)
    monkeypatch.setattr("review.importing.CHUNK", 1)  # the first record is written before the "kill"
    job = _killed_half_way(review, bob)
    monkeypatch.undo()
    _silent(job)
    return job


# --- The sweep and the page ---------------------------------------------------------------------


def test_a_job_silent_past_the_timeout_is_marked_stopped_when_its_page_is_opened(client, review, bob, settings):
    settings.SIEVE_JOB_STALE_SECONDS = 120
    job = _bobs_import(review, bob)
    jobs.start(job.pk)
    client.force_login(bob)
    assert "Re-run" not in client.get(job_url(job)).content.decode()
    _silent(job, 119)
    assert Job.objects.get(pk=job.pk).status == "running"
    client.get(job_url(job))
    assert Job.objects.get(pk=job.pk).status == "running"
    _silent(job, 121)
    text = client.get(job_url(job)).content.decode()
    job.refresh_from_db()
    assert (job.status, job.error) == ("stopped", jobs.STOPPED_ERROR)
    assert "Worker stopped" in text and "Re-run" in text and "hx-trigger" not in text


def test_a_worker_starting_a_job_sweeps_the_stopped_ones(review, bob):
    dead = _bobs_import(review, bob)
    jobs.start(dead.pk)
    _silent(dead)
    jobs.start(_bobs_import(review, bob).pk)
    assert Job.objects.get(pk=dead.pk).status == "stopped"


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_touches_the_row_while_a_long_stage_says_nothing(review, bob, settings):
    settings.SIEVE_JOB_HEARTBEAT_SECONDS = 0.05
    job = jobs.start(_bobs_import(review, bob).pk)
    _silent(job)
    with jobs.running(job):
        time.sleep(0.5)  # a long stage: no progress call
    job.refresh_from_db()
    assert (timezone.now() - job.updated_at).total_seconds() < 5


def test_a_heartbeat_brings_back_a_job_taken_for_stopped_but_not_one_re_run(review, bob):
    job = jobs.start(_bobs_import(review, bob).pk)
    _silent(job)
    jobs.sweep()
    jobs.beat(job)  # the worker was only slow
    assert Job.objects.get(pk=job.pk).status == "running"
    Job.objects.filter(pk=job.pk).update(attempt=2, status="queued")
    jobs.beat(job)
    assert Job.objects.get(pk=job.pk).status == "queued"


# --- Re-run -------------------------------------------------------------------------------------


def test_bob_re_runs_his_stopped_import_and_each_record_lands_once(
    client, review, bob, stopped, django_capture_on_commit_callbacks
):
    staged = Search.all_objects.get(staged_at__isnull=False)
    assert Job.objects.get(pk=stopped.pk).search_id == staged.pk  # the staged search is tied to the job
    assert Record.all_objects.filter(staged=True).count() == 1
    client.force_login(bob)
    assert "Re-run" in client.get(job_url(stopped)).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(job_url(stopped, "review:job_rerun"))
    assert response.status_code == 302 and response["Location"] == job_url(stopped)
    job = Job.objects.get(pk=stopped.pk)
    assert (job.status, job.attempt, job.search, job.error) == ("queued", 2, None, "")
    assert job.params["reruns"][0]["by"] == "bob"
    assert not Record.all_objects.exists() and not Search.all_objects.exists()
    queued = DBTaskResult.objects.order_by("enqueued_at").last()  # the same task, queued again
    assert queued.task_path == "review.tasks.import_saved_file" and str(queued.id) == job.task_result_id
    assert DBTaskResult.objects.count() == 2
    tasks.import_saved_file.call(job_id=job.pk)  # the worker takes the queued task
    job.refresh_from_db()
    assert job.status == "done" and job.search == Search.objects.get()
    assert Record.all_objects.count() == Record.objects.count() == job.done == job.result["added"] > 1
    assert not Path(job.params["path"]).exists()


def test_alice_the_owner_may_re_run_it_carol_may_not_dave_gets_404(client, review, alice, carol, dave, stopped):
    url = job_url(stopped, "review:job_rerun")
    client.force_login(carol)
    assert "Re-run" not in client.get(job_url(stopped)).content.decode()
    assert client.post(url).status_code == 403
    client.force_login(dave)
    assert client.post(url).status_code == 404
    assert Job.objects.get(pk=stopped.pk).status == "stopped"
    client.force_login(alice)
    assert client.get(url).status_code == 405  # POST only
    client.post(url)
    assert Job.objects.get(pk=stopped.pk).status == "queued"


def test_a_re_run_needs_the_csrf_token(review, bob, stopped):
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    assert client.post(job_url(stopped, "review:job_rerun")).status_code == 403
    assert Job.objects.get(pk=stopped.pk).attempt == 1


def test_a_job_that_is_alive_or_done_or_failed_is_not_re_run(client, review, bob):
    client.force_login(bob)
    alive = jobs.start(_bobs_import(review, bob).pk)
    done = jobs.finish(jobs.start(_bobs_import(review, bob).pk), summary="3 records added")
    failed = jobs.fail(jobs.start(_bobs_import(review, bob).pk), "zotero.ris: record 3: no TY line.")
    for job, reason in ((alive, "still running"), (done, "is done"), (failed, "failed")):
        response = client.post(job_url(job, "review:job_rerun"), follow=True)
        assert reason in response.content.decode()
        assert Job.objects.get(pk=job.pk).attempt == 1


def test_a_stopped_run_that_had_landed_is_marked_done_not_run_again(client, review, bob, stopped):
    staged = Search.all_objects.get()
    Record.all_objects.update(staged=False)  # the landing committed, then the worker died
    Search.all_objects.filter(pk=staged.pk).update(staged_at=None)
    client.force_login(bob)
    response = client.post(job_url(stopped, "review:job_rerun"), follow=True)
    assert "stored before the worker stopped" in response.content.decode()
    job = Job.objects.get(pk=stopped.pk)
    assert (job.status, job.attempt, job.search) == ("done", 1, staged)
    assert Record.objects.count() == 1


def test_the_stopped_runs_late_writes_touch_nothing_after_a_re_run(review, bob, stopped):
    old = Job.objects.get(pk=stopped.pk)  # what the stopped run's worker holds
    jobs.rerun(old, user=bob)
    jobs.Progress(old).stage("Checking for duplicates", done=5, total=5)
    jobs.fail(old, "IntegrityError")
    jobs.finish(old, summary="5 records added")
    jobs.beat(old)
    job = Job.objects.get(pk=stopped.pk)
    assert (job.status, job.stage, job.done, job.error, job.attempt) == ("queued", "Waiting for a worker", 0, "", 2)
    path = Path(job.params["path"])
    tasks.remove_upload(old, path)
    assert path.exists()  # the next run reads it


def test_a_re_run_whose_upload_is_gone_says_so(client, review, bob, stopped):
    Path(stopped.params["path"]).unlink()
    client.force_login(bob)
    assert "upload it again" in client.post(job_url(stopped, "review:job_rerun"), follow=True).content.decode()


@pytest.mark.django_db(transaction=True)
def test_two_re_runs_at_once_queue_the_job_once(review, bob, monkeypatch):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("row locks between two connections are proven on PostgreSQL")
    monkeypatch.setattr("review.importing._discard_quietly", lambda search: None)
    monkeypatch.setattr("review.importing.CHUNK", 1)
    job = _killed_half_way(review, bob)
    monkeypatch.undo()
    _silent(job)
    outcomes, barrier = [], threading.Barrier(2)

    def rerun():
        barrier.wait()
        try:
            jobs.rerun(Job.objects.get(pk=job.pk), user=bob)
            outcomes.append("queued")
        except jobs.JobNotRerun as refusal:
            outcomes.append(str(refusal))
        finally:
            connection.close()

    threads = [threading.Thread(target=rerun) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes)[-1] == "queued" and "still running" in sorted(outcomes)[0]
    assert Job.objects.get(pk=job.pk).attempt == 2


# --- A real worker, killed half-way --------------------------------------------------------------

RECORDS = 8_000

ENQUEUE = """
import sys
from django.contrib.auth.models import User
from review import tasks
from review.importing import import_file
from review.models import Membership, Review, Role
from review.sources import SourceDetails
alice = User.objects.create_user("alice", "alice@example.org", "pw")
review = Review.objects.create(slug="big", title="A big review", created_by=alice)
Membership.objects.create(review=review, user=alice, role=Role.OWNER)
import_file(review=review, path={embase!r}, user=alice)
with open({big!r}, "rb") as upload:
    job = tasks.enqueue_import(review=review, user=alice, upload=upload, details=SourceDetails())
print("job", job.pk)
"""

# Alice opens the job's page and presses Re-run: the view, through Django's test client.
RERUN = """
from django.contrib.auth.models import User
from django.test import Client
from review.models import Job
job = Job.objects.get(pk={job})
client = Client(HTTP_HOST="localhost")
client.force_login(User.objects.get(username="alice"))
page = client.get(job.get_absolute_url()).content.decode()
print("posting", flush=True)
response = client.post(job.get_absolute_url() + "rerun/", follow=True)
job.refresh_from_db()
print("rerun", "Re-run" in page, response.status_code, job.status, job.attempt)
import re
print("said", re.findall(r'<li class="msg-[a-z]+">(.*?)</li>', response.content.decode()))
"""

JOB = """
from review.models import Job
job = Job.objects.get(pk={job})
print("job", job.status, job.attempt, repr(job.error))
"""


def _last(out, word):
    return [line for line in out.splitlines() if line.startswith(word + " ")][-1].split()[1:]


def _worker(site):
    return site.manage("db_worker", "--queue-name", "*", "--no-reload", "--no-startup-delay", "--interval", "0.2")


def _wait_for_staged(site, worker, at_least):
    deadline = time.monotonic() + 240
    while site.staged() < at_least:
        assert worker.poll() is None, worker.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the worker staged nothing in 4 minutes"
        time.sleep(0.1)


def run_job_to_the_end(site, job_id):
    """Start a fresh worker, wait until job ``job_id`` is done or failed, stop the worker:
    (status, attempt, error)."""
    worker = _worker(site)
    try:
        return _wait_for_job(site, job_id, worker)
    finally:
        worker.terminate()
        worker.communicate(timeout=30)


def _wait_for_job(site, job_id, worker):
    deadline = time.monotonic() + 300
    while True:
        status, attempt, error = _last(site.python(JOB.format(job=job_id)), "job")
        if status in ("done", "failed") or time.monotonic() > deadline:
            return status, int(attempt), error
        assert worker.poll() is None, worker.communicate()[1][-3000:]
        time.sleep(0.5)


def worker_site(tmp_path):
    from tests.review.test_staged_import import Site, _database_url

    site = Site(_database_url(tmp_path), tmp_path)
    site.env.update(
        SIEVE_DATA_DIR=str(tmp_path),
        SIEVE_UPLOAD_DIR=str(tmp_path / "uploads"),
        SIEVE_JOB_HEARTBEAT_SECONDS="0.5",
        SIEVE_JOB_STALE_SECONDS="3",
    )
    if not site.url.startswith("postgres"):
        site.run("migrate", "--no-input")
    return site


def _set_up(site, tmp_path):
    from bench.pubmed_xml import make_file

    big = tmp_path / "big.xml"
    make_file(big, RECORDS)
    embase = str(shared("fixtures", "exports", "embase.ris"))
    return int(_last(site.python(ENQUEUE.format(embase=embase, big=str(big))), "job")[0])


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_import_is_re_run_from_the_page_and_each_record_lands_once(tmp_path):
    site = worker_site(tmp_path)
    job_id = _set_up(site, tmp_path)
    before = site.counts()

    worker = _worker(site)
    try:
        _wait_for_staged(site, worker, CHUNK)
        assert worker.poll() is None, "the import ended before the kill: make the file bigger"
    finally:
        worker.kill()  # SIGKILL: no clean-up of the import, the job or the upload runs
        worker.communicate()
    killed = site.counts()
    assert killed["staged"] >= CHUNK and killed["visible"] == before["visible"]

    time.sleep(3.5)  # silent past SIEVE_JOB_STALE_SECONDS
    shown, status_code, status, attempt = _last(site.python(RERUN.format(job=job_id)), "rerun")
    assert (shown, status_code, status, attempt) == ("True", "200", "queued", "2")
    assert site.counts()["staged"] == 0  # the stopped run's staged rows went with the re-run

    status, attempt, error = run_job_to_the_end(site, job_id)
    assert (status, attempt, error) == ("done", 2, "''")
    final = site.counts()
    assert final["big"] == final["big_pmids"] == RECORDS  # each record exactly once
    assert final["visible"] == final["all"] == before["visible"] + RECORDS
    assert final["searches"] == final["all_searches"] == before["searches"] + 1
    assert list((tmp_path / "uploads").iterdir()) == []


@pytest.mark.django_db(transaction=True)
def test_a_re_run_while_the_first_worker_is_in_fact_alive_lands_each_record_once(tmp_path):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("a paused worker holding row locks against the re-run is proven on PostgreSQL")
    site = worker_site(tmp_path)
    job_id = _set_up(site, tmp_path)
    before = site.counts()

    first = _worker(site)
    second = None
    try:
        _wait_for_staged(site, first, CHUNK)
        first.send_signal(signal.SIGSTOP)  # paused, not dead: its heartbeat stops, maybe mid-transaction
        time.sleep(3.5)
        rerun = site.manage("shell", "-c", RERUN.format(job=job_id))
        while rerun.stdout.readline().strip() != "posting":  # shell -c prints its imports first
            assert rerun.poll() is None, rerun.communicate()[1]
        time.sleep(0.5)
        first.send_signal(signal.SIGCONT)  # it comes back while (or after) the re-run holds the locks
        out, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
        _, status_code, status, attempt = _last(out, "rerun")
        said = out.split("said ", 1)[-1].strip()
        assert status_code == "200" and (status, attempt) in (("queued", "2"), ("running", "1"), ("done", "1"))
        second = _worker(site)
        status, attempt, error = _wait_for_job(site, job_id, second)
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.send_signal(signal.SIGCONT)
                worker.terminate()
                worker.communicate(timeout=30)
    assert status == "done", error
    final = site.counts()
    assert final["big"] == final["big_pmids"] == RECORDS  # each record once, whichever run landed
    assert final["visible"] == final["all"] == before["visible"] + RECORDS
    assert final["searches"] == final["all_searches"] == before["searches"] + 1
    print(f"re-run answered {status_code} ({said}); the job ended {status} on attempt {attempt}")


def test_the_jobs_list_shows_a_silent_job_stopped_and_polling_a_live_one_writes_nothing(
    client, review, bob, django_assert_num_queries
):
    job = jobs.start(_bobs_import(review, bob).pk)
    client.force_login(bob)
    jobs.Progress(job).stage("Reading the file")
    fresh = Job.objects.get(pk=job.pk)
    with django_assert_num_queries(0):
        assert jobs.sweep(fresh) == 0  # a job heard from recently: not even a query
    _silent(job)
    text = client.get(reverse("review:jobs", args=[review.slug])).content.decode()
    assert "Worker stopped" in text and Job.objects.get(pk=job.pk).status == "stopped"


def test_the_review_dashboard_shows_a_silent_job_stopped(client, review, bob):
    job = jobs.start(_bobs_import(review, bob).pk)
    client.force_login(bob)
    assert "Worker stopped" not in client.get(review.get_absolute_url()).content.decode()
    _silent(job)
    text = client.get(review.get_absolute_url()).content.decode()
    assert "Worker stopped" in text and Job.objects.get(pk=job.pk).status == "stopped"
