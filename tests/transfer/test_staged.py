"""A whole-review import writes in short transactions, yet never half-lands: the new review is
staged (no manager lists it, no membership grants it) until one short transaction at the end, a
failure removes what was staged, a killed import is removed by the next one (its slug freed), and
a killed import job is re-run from its page with each row once. The real worker killed mid-import
is in test_killed.py."""

import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from review import jobs
from review.models import Job, Membership, Record, Review, Role, Search
from review.removal import discard_staged_review
from screening.decisions import record_decision
from screening.models import Decision
from transfer import importing, tasks
from transfer.exporting import export_review
from transfer.importing import TransferError, import_review

RECORDS = 40


@pytest.fixture
def exported(review, bob, tmp_path, monkeypatch):
    search = Search.objects.create(review=review, kind="file", source="Embase")
    records = Record.objects.bulk_create(
        Record(review=review, search=search, source="Embase", title=f"Kratom cohort {i}", pmid=str(100 + i))
        for i in range(RECORDS)
    )
    Record.objects.filter(pk=records[1].pk).update(duplicate_of=records[0], duplicate_reason="title")
    for record in records[2:12]:
        record_decision(record=record, reviewer=bob, stage="title_abstract", decision="exclude")
    # One account the importing server does not have: the import creates it.
    zoe = get_user_model().objects.create_user("zoe", "zoe@example.org")
    Membership.objects.create(review=review, user=zoe, role=Role.VIEWER)
    path = tmp_path / "kratom.zip"
    export_review(review=review, out=path)
    zoe.delete()
    monkeypatch.setattr(importing, "BATCH", 7)  # many small transactions for a small review
    monkeypatch.setattr(importing, "PROGRESS_EVERY", 1)
    return path


def _copy():
    return Review.all_objects.filter(slug="copy").first()


class Stop(BaseException):
    """Stands for a SIGKILL between two chunks (a BaseException, as KeyboardInterrupt is)."""


def _killed(path, monkeypatch, *, after=20, **kwargs):
    """An import that staged ``after`` rows and then died without its clean-up."""
    cleanup = importing._discard_quietly
    monkeypatch.setattr(importing, "_discard_quietly", lambda loader: None)

    def progress(done, total):
        if done >= after:
            raise Stop

    with pytest.raises(Stop):
        import_review(source=path, slug="copy", progress=progress, **kwargs)
    monkeypatch.setattr(importing, "_discard_quietly", cleanup)


def test_the_review_shows_nowhere_until_the_import_lands(exported, client, bob, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.org", "pw")
    seen = []

    def progress(done, total):
        copy = _copy()
        if copy is None or copy.staged_at is None or seen or not Record.all_objects.filter(review=copy).exists():
            return
        # Half-way, between two chunks: the rows are committed, yet nobody sees the review.
        seen.append(Record.all_objects.filter(review=copy).count())
        assert not Review.objects.filter(slug="copy").exists()
        assert not Review.objects.for_user(bob).filter(pk=copy.pk).exists()
        assert not Membership.objects.filter(review=copy).exists()
        client.force_login(bob)
        assert client.get(reverse("review:detail", args=["copy"])).status_code == 404
        assert client.get(reverse("review:list")).content.decode().count("/r/copy/") == 0
        client.force_login(admin)
        for model in ("review", "record", "search", "event"):
            listed = client.get(reverse(f"admin:review_{model}_changelist")).context["cl"].queryset
            assert not listed.filter(**({"pk": copy.pk} if model == "review" else {"review": copy})).exists()

    result = import_review(source=exported, slug="copy", progress=progress)
    assert seen and seen[0] > 0
    copy = Review.objects.get(slug="copy")
    assert result.review == copy and copy.staged_at is None
    assert Record.objects.filter(review=copy).count() == RECORDS
    assert Membership.objects.filter(review=copy, user=bob).exists()
    client.force_login(bob)
    assert client.get(reverse("review:detail", args=["copy"])).status_code == 200


def test_a_failure_half_way_leaves_nothing_and_frees_the_slug(exported):
    users = set(get_user_model().objects.values_list("username", flat=True))

    def progress(done, total):
        if done > 30:
            raise RuntimeError("the disk is full")

    with pytest.raises(RuntimeError):
        import_review(source=exported, slug="copy", progress=progress)
    assert _copy() is None and not Record.all_objects.exclude(review__slug="kratom-ptsd").exists()
    assert set(get_user_model().objects.values_list("username", flat=True)) == users  # zoe's account went too
    result = import_review(source=exported, slug="copy")
    assert Record.objects.filter(review=result.review).count() == RECORDS
    assert result.users_created == ["zoe"]


def test_a_killed_import_holds_its_slug_until_it_is_stale_then_the_next_import_removes_it(
    exported, monkeypatch, settings
):
    _killed(exported, monkeypatch)
    staged = _copy()
    assert staged.staged_at is not None and Record.all_objects.filter(review=staged).exists()
    assert not Review.objects.filter(slug="copy").exists()

    settings.SIEVE_IMPORT_STALE_SECONDS = 600
    with pytest.raises(TransferError, match="being imported under the slug 'copy' right now"):
        import_review(source=exported, slug="copy")

    settings.SIEVE_IMPORT_STALE_SECONDS = 0
    result = import_review(source=exported, slug="copy")
    assert not Review.all_objects.filter(pk=staged.pk).exists()
    assert Record.all_objects.filter(review=result.review).count() == RECORDS
    assert Record.all_objects.count() == 2 * RECORDS  # the original and the copy, each record once
    assert Decision.objects.count() == 2 * 10
    assert get_user_model().objects.filter(username__startswith="zoe").count() == 1  # reused, not doubled


def test_an_import_whose_review_is_being_removed_neither_writes_on_nor_lands(exported):
    def progress(done, total):
        copy = _copy()
        if copy is not None and copy.staged_at is not None:
            discard_staged_review(copy.pk)  # a re-run, or the next import, took it for abandoned

    with pytest.raises(TransferError, match="stopped and what it had written removed"):
        import_review(source=exported, slug="copy", progress=progress)
    assert _copy() is None and Record.all_objects.count() == RECORDS


def test_discarding_leaves_a_landed_review_alone(exported):
    result = import_review(source=exported, slug="copy")
    assert discard_staged_review(result.review.pk) is False
    assert Record.objects.filter(review=result.review).count() == RECORDS


# --- The job: progress, and re-run ---------------------------------------------------------------


def _upload(client, path):
    upload = io.BytesIO(path.read_bytes())
    upload.name = "kratom.sieve.zip"
    client.post(reverse("transfer:import"), {"file": upload, "slug": "copy"})
    return Job.objects.get(kind=Job.Kind.REVIEW_IMPORT)


def test_the_import_job_shows_rows_written_of_rows_in_the_file_while_it_runs(exported, client, dave, monkeypatch):
    monkeypatch.setattr(jobs, "PROGRESS_INTERVAL", 0)
    client.force_login(dave)
    job = _upload(client, exported)
    pages = []

    def peek(done, total):
        row = Job.objects.get(pk=job.pk)
        if row.done and not pages:
            pages.append((row.done, row.total, client.get(reverse("transfer:import_job_progress", args=[job.pk]))))

    real = jobs.Progress.__call__
    monkeypatch.setattr(
        jobs.Progress, "__call__", lambda self, done, total=None: (real(self, done, total), peek(done, total))
    )
    tasks.import_review_file.call(job_id=job.pk)
    done, total, page = pages[0]
    assert 0 < done < total
    assert f"{done} of {total} rows written" in page.content.decode()
    job.refresh_from_db()
    assert (job.status, job.done, job.total) == ("done", total, total)


def _stopped_job(client, dave, exported, monkeypatch):
    """dave's import job, whose worker died half-way (no clean-up ran), seen as stopped."""
    client.force_login(dave)
    job = _upload(client, exported)
    started = jobs.start(job.pk)
    with jobs.running(started):
        _killed(
            Path(job.params["path"]),
            monkeypatch,
            staged=lambda pk: tasks._staged(started, pk),
            landing=lambda: tasks._still_this_run(started),
        )
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    return started


def test_dave_re_runs_his_killed_import_from_its_page_and_each_row_lands_once(
    exported, client, dave, bob, monkeypatch, django_capture_on_commit_callbacks
):
    old = _stopped_job(client, dave, exported, monkeypatch)
    staged = _copy()
    assert Job.objects.get(pk=old.pk).params["staged_review"] == staged.pk
    page = client.get(old.get_absolute_url()).content.decode()
    assert "Worker stopped" in page and "Re-run" in page

    client.force_login(bob)  # the page and its button are dave's alone
    assert client.post(reverse("transfer:import_job_rerun", args=[old.pk])).status_code == 404
    client.force_login(dave)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("transfer:import_job_rerun", args=[old.pk]), follow=True)
    assert "queued again" in response.content.decode()
    job = Job.objects.get(pk=old.pk)
    assert (job.status, job.attempt) == ("queued", 2)
    with pytest.raises(TransferError):
        tasks._still_this_run(old)  # the stopped run, should it come back, can no longer land

    tasks.import_review_file.call(job_id=job.pk)  # the worker takes the queued task
    job.refresh_from_db()
    assert job.status == "done", job.error
    copy = Review.objects.get(slug="copy")
    assert not Review.all_objects.filter(pk=staged.pk).exists()
    assert Review.all_objects.filter(staged_at__isnull=False).count() == 0
    assert Record.objects.filter(review=copy).count() == RECORDS
    assert Record.objects.filter(review=copy).values("pmid").distinct().count() == RECORDS
    assert Decision.objects.filter(record__review=copy).count() == 10
    assert Membership.objects.filter(review=copy, user=dave, role=Role.OWNER).exists()
    assert not Path(job.params["path"]).exists()


def test_a_killed_import_that_had_landed_is_marked_done_not_run_again(exported, client, dave, monkeypatch):
    old = _stopped_job(client, dave, exported, monkeypatch)
    Review.all_objects.filter(pk=_copy().pk).update(staged_at=None)  # the landing committed, then it died
    response = client.post(reverse("transfer:import_job_rerun", args=[old.pk]), follow=True)
    assert "nothing to run again" in response.content.decode()
    job = Job.objects.get(pk=old.pk)
    assert (job.status, job.attempt, job.result["review"]) == ("done", 1, "copy")


def test_the_export_summary_counts_what_its_progress_counted(client, review, alice):
    search = Search.objects.create(review=review, kind="file", source="Embase")
    Record.objects.bulk_create(Record(review=review, search=search, source="Embase", title=f"t {i}") for i in range(3))
    client.force_login(alice)
    client.post(reverse("review:export", args=[review.slug]))
    job = Job.objects.get(kind=Job.Kind.EXPORT)
    tasks.export_review_file.call(job_id=job.pk)
    job.refresh_from_db()
    users = job.result["counts"]["users"]
    assert f"{job.total:,} rows and {users:,} accounts" in job.summary and job.done == job.total
