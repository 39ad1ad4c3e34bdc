"""Records out as a background job: the table's Download of a set bigger than
SIEVE_RECORDS_EXPORT_INLINE (screening/tasks.py export_records_file, review/exportfiles.py)."""

import csv
import io
import os
import time
from pathlib import Path

import openpyxl
import pytest
import rispy
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from review import exportfiles, jobs
from review.models import Job, Membership, Record
from screening import records_out, tasks
from screening.decisions import record_decision
from tests.screening.team import SECRET_NOTE, SECRET_REASON, TA
from tests.screening.test_records_out import add


@pytest.fixture
def small_inline(settings):
    settings.SIEVE_RECORDS_EXPORT_INLINE = 3


def export_url(review, fmt, query=""):
    return reverse("screening:records_export", args=[review.slug, fmt]) + (f"?{query}" if query else "")


def download_url(review, job):
    return reverse("screening:records_export_download", args=[review.slug, job.pk])


def only_job(review):
    (job,) = Job.objects.filter(review=review, kind=Job.Kind.RECORDS_EXPORT)
    return job


def file_of(job):
    return exportfiles.export_dir() / job.result["file"]


def downloaded(response):
    return b"".join(response.streaming_content)


def inline(client, review, fmt, query=""):
    response = client.get(export_url(review, fmt, query))
    assert response.status_code == 200 and response.streaming
    return downloaded(response)


def xlsx_values(body):
    book = openpyxl.load_workbook(io.BytesIO(body))
    return [[c.value for c in row] for row in book.active.iter_rows()]


# The threshold ------------------------------------------------------------------------------------


def test_a_set_at_the_limit_still_streams_at_once(client, review, alice, small_inline):
    add(review, 3)
    client.force_login(alice)
    body = inline(client, review, "ris")
    assert len(rispy.loads(body.decode("utf-8"))) == 3
    assert not Job.objects.filter(kind=Job.Kind.RECORDS_EXPORT).exists()


def test_a_get_of_a_bigger_set_asks_to_confirm_and_queues_nothing(client, review, alice, small_inline):
    add(review, 4)
    client.force_login(alice)
    url = export_url(review, "csv", "decisions=1&ta=pending")
    page = client.get(url)
    assert page.status_code == 200 and not page.streaming
    text = page.content.decode()
    assert 'method="post"' in text and f'action="{escape(url)}"' in text and "csrfmiddlewaretoken" in text
    assert not Job.objects.filter(kind=Job.Kind.RECORDS_EXPORT).exists()  # a GET changes nothing
    assert client.post(url).status_code == 302
    assert Job.objects.filter(kind=Job.Kind.RECORDS_EXPORT).count() == 1


def test_a_bigger_set_becomes_a_job_and_the_request_answers_with_its_page(client, review, alice, small_inline):
    # No worker: the job waits, and the request does not.
    add(review, 4)
    client.force_login(alice)
    response = client.post(export_url(review, "xlsx", "decisions=1&year_min=1990"))
    job = only_job(review)
    assert response.status_code == 302 and response.url == reverse("review:job", args=[review.slug, job.pk])
    assert job.status == Job.Status.QUEUED and job.created_by == alice
    assert job.params["format"] == "xlsx" and job.params["decisions"] is True
    assert QueryDict(job.params["query"])["year_min"] == "1990" and "decisions" not in QueryDict(job.params["query"])
    assert job.params["task"]["path"] == "screening.tasks.export_records_file"
    page = client.get(response.url)
    assert b"Records export" in page.content and b"Download the records" not in page.content


def test_a_filter_that_narrows_the_set_under_the_limit_streams(client, review, alice, bob, small_inline):
    records = add(review, 6)
    record_decision(record=records[0], reviewer=bob, stage=TA, decision="exclude")
    client.force_login(alice)
    body = inline(client, review, "csv", "ta=exclude")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    assert [int(r["Sieve ID"]) for r in rows] == [records[0].pk]


def test_the_default_limit_is_two_thousand(settings):
    settings.SIEVE_RECORDS_EXPORT_INLINE = None
    assert records_out.inline_limit() == 2000


# The file the worker writes ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["ris", "csv", "xlsx"])
def test_the_jobs_file_is_what_the_inline_export_gives_for_the_same_filter_and_user(
    client, settings, review, team, bob, inline_worker, fmt
):
    query = "decisions=1&duplicates=unique"
    client.force_login(bob)
    expected = inline(client, review, fmt, query)
    settings.SIEVE_RECORDS_EXPORT_INLINE = 2
    response = client.post(export_url(review, fmt, query))
    job = only_job(review)
    assert response.status_code == 302
    assert job.status == Job.Status.DONE, job.error
    assert job.done == job.total == Record.objects.for_review(review).filter(duplicate_of__isnull=True).count() > 2
    got = downloaded(client.get(download_url(review, job)))
    if fmt == "xlsx":
        assert xlsx_values(got) == xlsx_values(expected)
    else:
        assert got == expected


def test_a_blinded_reviewers_job_file_has_no_other_votes(client, settings, review, team, alice, bob, inline_worker):
    settings.SIEVE_RECORDS_EXPORT_INLINE = 1
    client.force_login(bob)
    client.post(export_url(review, "ris", "decisions=1"))
    job = only_job(review)
    text = downloaded(client.get(download_url(review, job))).decode("utf-8")
    assert "vote by bob: include" in text
    assert SECRET_REASON not in text and SECRET_NOTE not in text and "Conflict" not in text
    # alice's (the owner's) export of the same set carries carol's votes: the file follows its reader.
    client.force_login(alice)
    client.post(export_url(review, "ris", "decisions=1"))
    owners = Job.objects.filter(kind=Job.Kind.RECORDS_EXPORT).exclude(pk=job.pk).get()
    assert SECRET_REASON in downloaded(client.get(download_url(review, owners))).decode("utf-8")


def test_blinding_is_applied_as_the_membership_is_when_the_job_runs(client, settings, review, team, bob):
    # bob starts the export as an owner would see it, then is made a plain reviewer before it runs.
    settings.SIEVE_RECORDS_EXPORT_INLINE = 1
    membership = Membership.objects.get(review=review, user=bob)
    membership.role = "owner"
    membership.save()
    client.force_login(bob)
    client.post(export_url(review, "csv", "decisions=1"))
    job = only_job(review)
    membership.role = "reviewer"
    membership.save()
    tasks.export_records_file.call(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    text = file_of(job).read_text(encoding="utf-8")
    assert "vote by bob: include" in text and SECRET_REASON not in text and SECRET_NOTE not in text


def test_progress_is_reported_in_records_written_of_the_total(review, alice, monkeypatch):
    add(review, 7)
    monkeypatch.setattr(records_out, "CHUNK", 3)
    seen = []
    real = jobs.Progress.__call__

    def spy(self, done, total=None):
        seen.append((done, total))
        real(self, done, total)

    monkeypatch.setattr(jobs.Progress, "__call__", spy)
    job = tasks.enqueue_records_export(review=review, user=alice, fmt="csv", query=QueryDict(), with_decisions=False)
    tasks.export_records_file.call(job_id=job.pk)
    assert seen == [(0, 7), (3, 7), (6, 7), (7, 7)]
    job.refresh_from_db()
    assert (job.done, job.total, job.status) == (7, 7, Job.Status.DONE)
    assert "7 records written as CSV" in job.summary


def test_the_progress_fragment_says_records_written(client, review, alice):
    job = jobs.create(review=review, kind=Job.Kind.RECORDS_EXPORT, user=alice)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, done=2000, total=5000)
    client.force_login(alice)
    page = client.get(reverse("review:job_progress", args=[review.slug, job.pk]))
    assert b"2000 of 5000 records written (40%)" in page.content


def test_the_file_is_named_by_sieve_not_by_the_user(client, settings, review, alice, inline_worker):
    settings.SIEVE_RECORDS_EXPORT_INLINE = 1
    add(review, 2)
    client.force_login(alice)
    client.post(export_url(review, "csv", "duplicates=unique&filename=../../etc/passwd"))
    job = only_job(review)
    assert job.result["file"] == f"records{review.pk}-job{job.pk}-1.csv"
    assert [p.name for p in exportfiles.export_dir().iterdir()] == [job.result["file"]]


# Failures ----------------------------------------------------------------------------------------


def test_a_failing_export_fails_the_job_with_a_clear_message_and_leaves_no_file(review, alice, monkeypatch):
    add(review, 5)
    monkeypatch.setattr(records_out, "CHUNK", 2)

    def broken(rows):
        yield b"TY  - JOUR\n"
        next(rows)
        raise OSError("disk full")

    monkeypatch.setattr(records_out, "_ris", broken)
    job = tasks.enqueue_records_export(review=review, user=alice, fmt="ris", query=QueryDict(), with_decisions=False)
    with pytest.raises(OSError):
        tasks.export_records_file.call(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error == "The export stopped on an unexpected error (OSError); nothing was kept: export again."
    assert list(exportfiles.export_dir().iterdir()) == []


def test_a_filter_no_longer_valid_fails_the_job_naming_it(review, alice):
    add(review, 2)
    job = tasks.enqueue_records_export(
        review=review, user=alice, fmt="csv", query=QueryDict("ta=nonsense"), with_decisions=False
    )
    tasks.export_records_file.call(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error.startswith("These filters are not valid: ta:") and job.error.endswith("Nothing was exported.")
    assert list(exportfiles.export_dir().iterdir()) == []


def test_a_starter_who_left_the_review_gets_no_file(review, alice, bob):
    add(review, 2)
    job = tasks.enqueue_records_export(review=review, user=bob, fmt="csv", query=QueryDict(), with_decisions=False)
    Membership.objects.filter(review=review, user=bob).delete()
    tasks.export_records_file.call(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "no longer a member" in job.error
    assert not exportfiles.export_dir().exists() or list(exportfiles.export_dir().iterdir()) == []


# Who may see and download it ---------------------------------------------------------------------


@pytest.fixture
def bobs_job(client, settings, review, team, bob, inline_worker):
    settings.SIEVE_RECORDS_EXPORT_INLINE = 1
    client.force_login(bob)
    client.post(export_url(review, "csv", "decisions=1"))
    client.logout()
    return only_job(review)


def test_only_its_starter_downloads_it_even_owners_get_404(client, review, bobs_job, alice, bob, carol, erin, dave):
    url = download_url(review, bobs_job)
    assert client.get(url).status_code == 302  # to the login page
    for user in (alice, carol, erin, dave):
        client.force_login(user)
        assert client.get(url).status_code == 404, user
    client.force_login(bob)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{review.slug}-records.csv"'
    assert response["Content-Type"] == "text/csv; charset=utf-8"


def test_its_page_offers_download_to_its_starter_and_is_shown_to_nobody_else(
    client, review, bobs_job, alice, bob, carol, dave
):
    page = reverse("review:job", args=[review.slug, bobs_job.pk])
    client.force_login(bob)
    response = client.get(page)
    assert download_url(review, bobs_job).encode() in response.content
    assert b"Download the records (CSV)" in response.content
    # Its filter and count tell of bob's votes: other members do not see it, owners neither.
    for user in (alice, carol, dave):
        client.force_login(user)
        assert client.get(page).status_code == 404, user
        assert client.get(reverse("review:job_progress", args=[review.slug, bobs_job.pk])).status_code == 404


def test_another_reviews_job_is_not_reached_through_a_review_one_belongs_to(client, review, other_review, dave):
    add(other_review, 2)
    job = tasks.enqueue_records_export(
        review=other_review, user=dave, fmt="csv", query=QueryDict(), with_decisions=False
    )
    tasks.export_records_file.call(job_id=job.pk)
    client.force_login(dave)
    assert client.get(download_url(other_review, job)).status_code == 200
    # dave is an outsider of the kratom review: 404 on everything there, whatever the job.
    assert client.get(download_url(review, job)).status_code == 404
    assert client.get(reverse("review:job", args=[review.slug, job.pk])).status_code == 404


def test_the_job_shows_on_its_starters_dashboard_only(review, bobs_job, alice, bob):
    assert jobs.on_dashboard(review, Membership.objects.get(review=review, user=bob)) == [bobs_job]
    assert jobs.on_dashboard(review, Membership.objects.get(review=review, user=alice)) == []


def test_a_job_not_done_has_no_file_to_download(client, review, alice):
    job = jobs.create(review=review, kind=Job.Kind.RECORDS_EXPORT, user=alice, params={"format": "csv"})
    Job.objects.filter(pk=job.pk).update(result={"file": f"records{review.pk}-job{job.pk}-1.csv", "format": "csv"})
    client.force_login(alice)
    assert client.get(download_url(review, job)).status_code == 404


# Expiry ------------------------------------------------------------------------------------------


def age(path, hours):
    then = time.time() - hours * 3600
    os.utime(path, (then, then))


def test_an_expired_file_is_not_handed_out_and_is_removed(client, settings, review, bobs_job, bob):
    settings.SIEVE_EXPORT_KEEP_HOURS = 1
    path = file_of(bobs_job)
    client.force_login(bob)
    age(path, 0.5)
    assert client.get(download_url(review, bobs_job)).status_code == 200
    age(path, 2)
    assert client.get(download_url(review, bobs_job)).status_code == 404
    assert not path.exists()
    bobs_job.refresh_from_db()
    assert bobs_job.result["removed"] is True
    page = client.get(reverse("review:job", args=[review.slug, bobs_job.pk]))
    assert b"Its file was removed" in page.content and download_url(review, bobs_job).encode() not in page.content


def test_files_older_than_the_keep_time_are_swept_when_an_export_finishes(settings, review, bobs_job, bob, alice):
    settings.SIEVE_EXPORT_KEEP_HOURS = 24
    old = file_of(bobs_job)
    leftover = exportfiles.export_dir() / "records9-job9-1.xlsx.part"
    leftover.write_bytes(b"half")
    age(old, 25)
    age(leftover, 25)
    job = tasks.enqueue_records_export(review=review, user=alice, fmt="ris", query=QueryDict(), with_decisions=False)
    tasks.export_records_file.call(job_id=job.pk)
    job.refresh_from_db()
    assert sorted(p.name for p in exportfiles.export_dir().iterdir()) == [job.result["file"]]
    bobs_job.refresh_from_db()
    assert bobs_job.result["removed"] is True and "removed" not in job.result


def test_remove_expired_keeps_fresh_files(settings, bobs_job):
    settings.SIEVE_EXPORT_KEEP_HOURS = 1
    assert exportfiles.remove_expired() == []
    assert Path(file_of(bobs_job)).exists()
    age(file_of(bobs_job), 2)
    assert exportfiles.remove_expired() == [bobs_job.result["file"]]


# The command stays synchronous -------------------------------------------------------------------


def test_the_command_writes_its_file_at_once_whatever_the_size(review, settings, tmp_path):
    from django.core.management import call_command

    settings.SIEVE_RECORDS_EXPORT_INLINE = 1
    add(review, 3)
    out = tmp_path / "all.ris"
    call_command("export_records", review.slug, "-o", str(out))
    assert len(rispy.loads(out.read_text(encoding="utf-8"))) == 3
    assert not Job.objects.exists()


# A worker that dies ------------------------------------------------------------------------------


def test_a_stopped_export_is_run_again_by_its_starter_into_a_new_file(
    client, review, alice, inline_worker, django_capture_on_commit_callbacks
):
    add(review, 3)
    job = tasks.enqueue_records_export(review=review, user=alice, fmt="csv", query=QueryDict(), with_decisions=False)
    first = Job.objects.get(pk=job.pk).result
    # As if its worker had died half-way: the job silent, its part file left behind.
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.STOPPED, result={}, updated_at=job.updated_at.replace(year=2000)
    )
    (exportfiles.export_dir() / f"{first['file']}.part").write_bytes(b"half")
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("review:job_rerun", args=[review.slug, job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == Job.Status.DONE and job.attempt == 2
    assert job.result["file"] == f"records{review.pk}-job{job.pk}-2.csv"
    rows = list(csv.DictReader(io.StringIO(downloaded(client.get(download_url(review, job))).decode("utf-8"))))
    assert len(rows) == 3


def test_the_request_for_a_big_set_makes_the_same_queries_however_big(client, review, alice, small_inline):
    client.force_login(alice)
    counts = []
    for n in (5, 50):
        add(review, n)
        with CaptureQueriesContext(connection) as queries:
            assert client.post(export_url(review, "xlsx")).status_code == 302
        counts.append(len(queries))
    # Session, user, membership, the filter's sources, one count stopping at limit + 1, the job row,
    # the task row, the task's id on the job: no record is read.
    assert counts == [8, 8]
