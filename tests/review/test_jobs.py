"""Background jobs: the web forms answer at once, the worker runs the search or import, the job
page shows its progress to the review's members (and nobody else)."""

import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DEFAULT_DB_ALIAS, connections
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django_tasks_db.models import DBTaskResult

from review import importing, jobs, tasks
from review.forms import PubMedSearchForm
from review.importing import import_file
from review.models import Job, Record, Search
from review.sources import SourceDetails
from screening import tasks as screening_tasks
from tests.eutils_server import eutils_server, fixture_records  # noqa: F401 (fixture)
from tests.shared import shared

ROOT = Path(__file__).resolve().parents[2]
ZOTERO = ("fixtures", "exports", "pubmed_zotero.ris")
ZOTERO_100 = ("fixtures", "exports", "baseline_zotero.ris")
SEARCH = {"query": "kratom[tiab]", "mindate": "", "maxdate": "", "max_records": ""}


def job_url(job, name="review:job"):
    return reverse(name, args=[job.review.slug, job.pk])


def upload(*parts, name=None):
    path = shared(*parts)
    return SimpleUploadedFile(name or path.name, path.read_bytes())


# --- The web forms answer at once ---------------------------------------------------------------


def test_bobs_search_is_queued_and_his_page_answers_before_pubmed_is_asked(client, review, bob, eutils_server):  # noqa: F811
    client.force_login(bob)
    response = client.post(reverse("review:search", args=[review.slug]), SEARCH)
    job = Job.objects.get(review=review)
    assert response.status_code == 302 and response["Location"] == job_url(job)
    assert (job.kind, job.status, job.created_by, job.params["query"]) == (
        "pubmed_search",
        "queued",
        bob,
        "kratom[tiab]",
    )
    (queued,) = DBTaskResult.objects.all()
    assert queued.task_path == "review.tasks.run_pubmed_search" and queued.args_kwargs["kwargs"] == {"job_id": job.pk}
    assert str(queued.id) == job.task_result_id
    assert eutils_server.seen == []  # PubMed is asked by the worker, not by the request
    assert not Search.objects.exists()
    assert "Waiting for a worker" in client.get(job_url(job)).content.decode()


def test_the_worker_runs_bobs_search_and_the_page_shows_what_came_of_it(client, review, bob, eutils_server):  # noqa: F811
    client.force_login(bob)
    client.post(reverse("review:search", args=[review.slug]), SEARCH)
    job = Job.objects.get()
    tasks.run_pubmed_search.call(job_id=job.pk)  # what the worker does with the queued task
    job.refresh_from_db()
    expected = len(fixture_records())
    assert (job.status, job.done, job.total, job.search) == ("done", expected, expected, Search.objects.get())
    assert job.result["added"] == expected == Record.objects.filter(review=review).count()
    text = client.get(job_url(job)).content.decode()  # a reload shows the outcome
    assert f"{expected} records added" in text and "hx-trigger" not in text


def test_a_task_delivered_twice_imports_once(review, bob, eutils_server):  # noqa: F811
    job = tasks.enqueue_search(review=review, user=bob, query="kratom[tiab]")
    tasks.run_pubmed_search.call(job_id=job.pk)
    assert tasks.run_pubmed_search.call(job_id=job.pk) is None
    assert Search.objects.count() == 1 and Record.objects.count() == len(fixture_records())


def test_the_search_form_has_no_cap_of_its_own():
    # It stopped at 10,000 before; PubMed's own limit is paged through by the client.
    assert PubMedSearchForm({**SEARCH, "max_records": "250000"}).is_valid()
    assert PubMedSearchForm(SEARCH).is_valid()  # blank: every record found
    assert not PubMedSearchForm({**SEARCH, "max_records": "0"}).is_valid()


def test_carols_upload_is_saved_for_the_worker_which_imports_it_and_removes_it(client, review, carol, settings):
    client.force_login(carol)
    response = client.post(reverse("review:import", args=[review.slug]), {"file": upload(*ZOTERO), "source": "Zotero"})
    job = Job.objects.get()
    assert response["Location"] == job_url(job)
    saved = Path(job.params["path"])
    assert saved.parent == settings.SIEVE_UPLOAD_DIR and saved.read_bytes() == shared(*ZOTERO).read_bytes()
    assert not Record.objects.exists()
    tasks.import_saved_file.call(job_id=job.pk)
    job.refresh_from_db()
    search = Search.objects.get()
    assert (job.status, job.search, search.source, search.filename) == ("done", search, "Zotero", shared(*ZOTERO).name)
    assert job.done == search.added == Record.objects.count() > 0  # records parsed, reported as it went
    assert not saved.exists()


def test_a_failed_import_says_why_keeps_nothing_and_removes_the_file(review, carol, settings):
    data = shared("fixtures", "exports", "pubmed.xml").read_bytes()
    job = tasks.enqueue_import(
        review=review, user=carol, upload=SimpleUploadedFile("half.xml", data[: len(data) // 2]), details=_details()
    )
    tasks.import_saved_file.call(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and job.error.startswith("half.xml") and job.finished_at
    assert not Record.objects.exists() and not Search.objects.exists()
    assert list(settings.SIEVE_UPLOAD_DIR.iterdir()) == []


def _details():
    return SourceDetails()


# --- Progress ---------------------------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_is_written_at_most_once_a_second_and_always_at_the_end(review, django_assert_num_queries):
    job = jobs.create(review=review, kind=Job.Kind.FILE_IMPORT)
    clock = Clock()
    progress = jobs.Progress(job, clock=clock)
    with django_assert_num_queries(3):
        for done in range(1, 1001):
            clock.now = done / 1000  # 1,000 calls within one second...
            progress(done, 2000)
        clock.now = 1.6
        progress(1500, 2000)  # ...then one after a second...
        progress(2000, 2000)  # ...and the end, at once
    assert progress.writes == 3
    job.refresh_from_db()
    assert (job.done, job.total) == (2000, 2000)


def test_a_searchs_progress_is_records_fetched_of_the_hits(review, bob, eutils_server, monkeypatch, settings):  # noqa: F811
    settings.NCBI_BATCH_SIZE = 3
    seen = []
    original = jobs.Progress._write

    def spy(self, **fields):
        original(self, **fields)
        seen.append(Job.objects.values_list("stage", "done", "total").get(pk=self.job.pk))

    monkeypatch.setattr(jobs.Progress, "_write", spy)
    monkeypatch.setattr(jobs, "PROGRESS_INTERVAL", 0)
    job = tasks.enqueue_search(review=review, user=bob, query="kratom[tiab]")
    tasks.run_pubmed_search.call(job_id=job.pk)
    hits = len(fixture_records())
    assert seen == [
        ("Fetching records from PubMed", 3, hits),
        ("Fetching records from PubMed", 6, hits),
        ("Checking for duplicates and storing", hits, hits),
    ]


def test_the_fragment_polls_while_the_job_runs_and_stops_when_it_is_done(client, review, bob):
    job = jobs.create(review=review, kind=Job.Kind.PUBMED_SEARCH, user=bob, title="kratom")
    jobs.Progress(jobs.start(job.pk)).stage("Fetching records from PubMed", done=300, total=1200)
    client.force_login(bob)
    fragment = client.get(job_url(job, "review:job_progress")).content.decode()
    assert 'hx-trigger="every 1s"' in fragment and 'max="1200" value="300"' in fragment
    assert "300 of 1200" in fragment
    page = client.get(job_url(job)).content.decode()
    assert '<meta http-equiv="refresh"' in page  # without JavaScript the page reloads itself
    jobs.finish(job, summary="done")
    assert "hx-trigger" not in client.get(job_url(job, "review:job_progress")).content.decode()
    assert '<meta http-equiv="refresh"' not in client.get(job_url(job)).content.decode()


def test_the_dashboard_lists_running_jobs_but_not_finished_rerankings(client, review, alice):
    running = jobs.create(review=review, kind=Job.Kind.FILE_IMPORT, user=alice, title="embase.ris")
    reranked = jobs.finish(
        jobs.create(review=review, kind=Job.Kind.RERANK, title="Title/abstract, version 7"), summary=""
    )
    client.force_login(alice)
    text = client.get(reverse("review:detail", args=[review.slug])).content.decode()
    assert job_url(running) in text and "embase.ris" in text
    assert job_url(reranked) not in text
    assert job_url(reranked) in client.get(reverse("review:jobs", args=[review.slug])).content.decode()


def test_the_dashboards_job_box_shows_a_live_bar_while_a_job_runs_and_stops_polling_after(client, review, alice):
    job = jobs.create(review=review, kind=Job.Kind.FILE_IMPORT, user=alice, title="embase.ris")
    jobs.Progress(jobs.start(job.pk)).stage("Reading the file", done=250, total=1000)
    client.force_login(alice)
    live = reverse("review:dashboard_jobs", args=[review.slug])
    for text in (
        client.get(reverse("review:detail", args=[review.slug])).content.decode(),
        client.get(live).content.decode(),
    ):
        assert f'hx-get="{live}"' in text and 'max="1000" value="250"' in text and "250 of 1000" in text
    jobs.finish(job, summary="100 records imported")
    done = client.get(live).content.decode()
    assert "hx-get" not in done and "<progress" not in done and "100 records imported" in done


# --- Access and escaping ---------------------------------------------------------------------------


def test_dave_the_outsider_gets_404_on_every_job_page(client, review, other_review, alice, dave):
    job = jobs.create(review=review, kind=Job.Kind.FILE_IMPORT, user=alice)
    client.force_login(dave)
    for url in (
        job_url(job),
        job_url(job, "review:job_progress"),
        reverse("review:jobs", args=[review.slug]),
        reverse("review:dashboard_jobs", args=[review.slug]),
    ):
        assert client.get(url).status_code == 404, url
    # His own review's slug does not open alice's job either.
    for name in ("review:job", "review:job_progress"):
        assert client.get(reverse(name, args=[other_review.slug, job.pk])).status_code == 404


def test_a_viewer_follows_a_job_but_cannot_start_one(client, review, erin):
    job = jobs.create(review=review, kind=Job.Kind.FILE_IMPORT)
    client.force_login(erin)
    assert client.get(job_url(job)).status_code == 200
    assert client.post(reverse("review:search", args=[review.slug]), SEARCH).status_code == 403
    assert not Job.objects.exclude(pk=job.pk).exists()


def test_a_jobs_file_name_notes_and_error_are_escaped(client, review, bob):
    evil = '<img src=x onerror="alert(1)">'
    job = jobs.create(review=review, kind=Job.Kind.FILE_IMPORT, user=bob, title=evil + ".ris")
    jobs.start(job.pk)
    jobs.fail(job, f"{evil}.ris: record 3 {evil}")
    Job.objects.filter(pk=job.pk).update(notes=[evil])
    client.force_login(bob)
    for url in (job_url(job), job_url(job, "review:job_progress"), reverse("review:detail", args=[review.slug])):
        text = client.get(url).content.decode()
        assert evil not in text and escape(evil) in text, url


# --- Re-ranking ---------------------------------------------------------------------------------------


def test_a_retrain_reports_as_a_reranking_job(review, alice, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    import_file(review=review, path=shared(*ZOTERO), user=alice)
    run = screening_tasks.request_retrain(review, "title_abstract", force=True)
    job = Job.objects.get(kind=Job.Kind.RERANK)
    assert (job.status, job.result["run"], job.params["run"]) == ("done", run.pk, run.pk)
    run.refresh_from_db()
    assert f"{run.scored:,} records ranked" in job.summary


def test_a_queue_that_is_down_fails_the_job_and_tells_bob(client, review, bob, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("queue down")

    monkeypatch.setattr(type(tasks.run_pubmed_search), "enqueue", down)
    client.force_login(bob)
    response = client.post(reverse("review:search", args=[review.slug]), SEARCH)
    assert response.status_code == 200 and "queue did not answer" in response.content.decode()
    assert Job.objects.get().status == Job.Status.FAILED


# --- The real worker ------------------------------------------------------------------------------


SETUP = """
import django, sys
django.setup()
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from review import tasks
from review.models import Membership, Review, Role
from review.sources import SourceDetails
alice = get_user_model().objects.create_user("alice", "alice@example.org", "pw")
review = Review.objects.create(slug="kratom", title="Kratom", created_by=alice)
Membership.objects.create(review=review, user=alice, role=Role.OWNER)
data = open(sys.argv[1], "rb").read()
job = tasks.enqueue_import(review=review, user=alice, upload=SimpleUploadedFile("k.ris", data), details=SourceDetails())
print(job.pk)
"""

STATE = """
import django, json, sys
django.setup()
from review.models import Job, Record
job = Job.objects.get(pk=int(sys.argv[1]))
print(json.dumps([job.status, job.error, job.done, Record.objects.count()]))
"""


def _script(code, *args, env, timeout=120):
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_db_worker_runs_a_file_import_job_to_the_end(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIEVE_") and k != "DATABASE_URL"}
    env.update(SIEVE_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="sieve.settings")
    manage = [sys.executable, "manage.py"]
    migrated = subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=env, capture_output=True, timeout=300)
    assert migrated.returncode == 0, migrated.stderr
    job_id = _script(SETUP, shared(*ZOTERO), env=env)
    assert len(list((tmp_path / "uploads").iterdir())) == 1
    worker = subprocess.Popen(
        [*manage, "db_worker", "--queue-name", "*", "--no-reload", "--no-startup-delay", "--interval", "0.2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            status, error, done, records = json.loads(_script(STATE, job_id, env=env))
            if status in ("done", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        worker.terminate()
        _, stderr = worker.communicate(timeout=30)
    assert (status, error) == ("done", ""), stderr.decode()[-2000:]
    assert records == done > 0
    assert list((tmp_path / "uploads").iterdir()) == []


def test_a_job_no_worker_takes_says_so(client, review, bob):
    job = jobs.create(review=review, kind=Job.Kind.PUBMED_SEARCH, user=bob)
    client.force_login(bob)
    assert "No worker has taken" not in client.get(job_url(job)).content.decode()
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=2))
    assert "No worker has taken this job for 2\xa0minutes" in client.get(job_url(job)).content.decode()


@pytest.mark.django_db(transaction=True)
def test_an_imports_progress_is_seen_by_other_connections_while_it_runs(review, carol, monkeypatch):
    monkeypatch.setattr(importing, "PARSED_EVERY", 20)
    monkeypatch.setattr(jobs, "PROGRESS_INTERVAL", 0)
    job = tasks.enqueue_import(review=review, user=carol, upload=upload(*ZOTERO_100), details=SourceDetails())
    outside = connections.create_connection(DEFAULT_DB_ALIAS)
    seen = []
    original = jobs.Progress._write

    def spy(self, **fields):
        original(self, **fields)
        with outside.cursor() as cursor:  # another reviewer's request, while the import runs
            cursor.execute("SELECT done FROM review_job WHERE id = %s", [self.job.pk])
            seen.append(cursor.fetchone()[0])

    monkeypatch.setattr(jobs.Progress, "_write", spy)
    try:
        tasks.import_saved_file.call(job_id=job.pk)
    finally:
        outside.close()
    assert seen == [20, 40, 60, 80, 100, 100]
    assert Job.objects.get(pk=job.pk).status == "done"


def test_bob_never_sees_a_reranking_job_which_would_tell_him_someone_voted(client, review, alice, bob):
    job = jobs.create(review=review, kind=Job.Kind.RERANK, title="Title/abstract, version 2")
    client.force_login(bob)
    assert client.get(job_url(job)).status_code == 404
    assert job_url(job) not in client.get(reverse("review:jobs", args=[review.slug])).content.decode()
    assert job_url(job) not in client.get(reverse("review:detail", args=[review.slug])).content.decode()
    client.force_login(alice)  # the owner sees every vote anyway
    assert client.get(job_url(job)).status_code == 200
    assert job_url(job) in client.get(reverse("review:detail", args=[review.slug])).content.decode()
