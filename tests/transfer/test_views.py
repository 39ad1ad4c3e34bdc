"""alice exports the kratom review from its settings page and imports it from the "new review" page."""

import io
import os
import time
import zipfile
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from review.models import Job, Membership, Record, Review, Role, Search
from transfer import tasks


def add_records(review):
    search = Search.objects.create(review=review, kind="file", source="Embase")
    Record.objects.bulk_create(
        Record(review=review, search=search, source="Embase", title=f"<script>x</script> cohort {i}") for i in range(3)
    )


def export(client, review):
    """The owner presses Export; the worker writes the file; returns the job."""
    response = client.post(reverse("review:export", args=[review.slug]))
    job = Job.objects.filter(kind=Job.Kind.EXPORT).latest("pk")
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    assert job.status == "queued" and "Waiting for a worker" in client.get(response["Location"]).content.decode()
    tasks.export_review_file.call(job_id=job.pk)  # what the worker does
    job.refresh_from_db()
    return job


def download(client, review):
    job = export(client, review)
    url = reverse("review:export_download", args=[review.slug, job.pk])
    assert url in client.get(job.get_absolute_url()).content.decode()
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="{review.slug}.sieve.zip"'
    return b"".join(response.streaming_content)


def test_alice_exports_the_review_and_imports_it_as_a_copy_she_owns(client, review, alice, dave):
    add_records(review)
    client.force_login(alice)
    settings_page = client.get(reverse("review:settings", args=[review.slug])).content.decode()
    assert reverse("review:export", args=[review.slug]) in settings_page
    assert reverse("transfer:import") in client.get(reverse("review:create")).content.decode()
    data = download(client, review)
    # dave imports it on "his" server: he owns the copy, the members come along.
    client.force_login(dave)
    upload = io.BytesIO(data)
    upload.name = "kratom.sieve.zip"
    response = client.post(reverse("transfer:import"), {"file": upload, "slug": "kratom-copy"})
    job = Job.objects.get(kind=Job.Kind.REVIEW_IMPORT)
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    assert not Review.objects.filter(slug="kratom-copy").exists()  # the worker imports it
    assert "Waiting for a worker" in client.get(job.get_absolute_url()).content.decode()
    tasks.import_review_file.call(job_id=job.pk)
    copy = Review.objects.get(slug="kratom-copy")
    page = client.get(job.get_absolute_url()).content.decode()
    assert copy.get_absolute_url() in page and "Review “Kratom for PTSD symptoms” imported" in page
    assert not Path(job.params["path"]).exists()
    assert copy.records.count() == 3
    assert set(copy.memberships.values_list("user__username", "role")) == {
        ("alice", Role.OWNER),
        ("bob", Role.REVIEWER),
        ("carol", Role.REVIEWER),
        ("dave", Role.OWNER),
    }
    assert "&lt;script&gt;" in client.get(reverse("screening:records", args=["kratom-copy"])).content.decode()


def test_only_the_owner_exports(client, review, alice, bob, dave, erin):
    url = reverse("review:export", args=[review.slug])
    for user, status in ((bob, 403), (erin, 403), (dave, 404)):
        client.force_login(user)
        assert client.post(url).status_code == status
    client.logout()
    assert client.post(url).status_code == 302
    assert not Job.objects.exists()
    client.force_login(alice)
    assert client.get(url).status_code == 405  # POST only: a link followed twice makes no export
    job = export(client, review)
    download_url = reverse("review:export_download", args=[review.slug, job.pk])
    for user, status in ((bob, 403), (erin, 403), (dave, 404)):
        client.force_login(user)
        assert client.get(download_url).status_code == status
        assert client.get(job.get_absolute_url()).status_code == 404  # its row counts move with the votes
    client.force_login(dave)
    other = Review.objects.create(slug="daves", title="Dave's", created_by=dave)
    Membership.objects.create(review=other, user=dave, role=Role.OWNER)
    assert client.get(reverse("review:export_download", args=[other.slug, job.pk])).status_code == 404


def test_an_export_is_written_whole_then_a_newer_one_replaces_its_file(client, review, alice, settings):
    add_records(review)
    client.force_login(alice)
    first = export(client, review)
    path = Path(settings.SIEVE_EXPORT_DIR) / first.result["file"]
    assert first.status == "done" and path.is_file() and first.result["size"] == path.stat().st_size
    assert first.done == first.total and first.result["counts"]["records"] == 3
    assert "The review file is ready" in first.summary
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no .part left
    second = export(client, review)
    assert not path.exists() and (path.parent / second.result["file"]).is_file()
    first.refresh_from_db()
    assert first.result["removed"] is True
    page = client.get(first.get_absolute_url()).content.decode()
    assert "Its file was removed" in page
    assert client.get(reverse("review:export_download", args=[review.slug, first.pk])).status_code == 404


def test_an_export_is_removed_after_the_keeping_time(client, review, alice, settings):
    client.force_login(alice)
    job = export(client, review)
    path = Path(settings.SIEVE_EXPORT_DIR) / job.result["file"]
    settings.SIEVE_EXPORT_KEEP_HOURS = 1
    assert tasks.remove_old_exports() == []
    os.utime(path, (time.time() - 3601, time.time() - 3601))
    assert tasks.remove_old_exports() == [path.name] and not path.exists()


def test_a_failed_export_says_so_and_leaves_no_file(client, review, alice, settings, monkeypatch):
    def broken(*, review, out, progress=None):
        Path(out).write_bytes(b"half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(tasks, "export_review", broken)
    client.force_login(alice)
    client.post(reverse("review:export", args=[review.slug]))
    job = Job.objects.get(kind=Job.Kind.EXPORT)
    with pytest.raises(OSError):
        tasks.export_review_file.call(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and "OSError" in job.error
    assert list(Path(settings.SIEVE_EXPORT_DIR).iterdir()) == []


def test_a_bad_file_is_shown_its_error_and_nothing_is_written(client, alice, db):
    client.force_login(alice)
    upload = io.BytesIO(b"TY  - JOUR\nER  - \n")
    upload.name = "records.ris"
    users = get_user_model().objects.count()

    response = client.post(reverse("transfer:import"), {"file": upload})

    assert response.status_code == 200
    assert "This is not a Sieve review file" in response.content.decode()
    assert Review.objects.count() == 0 and Membership.objects.count() == 0
    assert get_user_model().objects.count() == users


def test_the_import_page_needs_a_login(client, db):
    assert client.get(reverse("transfer:import")).status_code == 302


def test_a_review_file_that_fails_to_import_says_why_on_its_page(client, alice, bob, db, settings):
    client.force_login(alice)
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("notes.txt", "not a review")
    data.seek(0)
    data.name = "other.zip"
    client.post(reverse("transfer:import"), {"file": data})
    job = Job.objects.get(kind=Job.Kind.REVIEW_IMPORT)
    tasks.import_review_file.call(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and "no manifest.json" in job.error
    assert "no manifest.json" in client.get(job.get_absolute_url()).content.decode()
    assert not Review.objects.exists() and list(Path(settings.SIEVE_UPLOAD_DIR).iterdir()) == []
    # The page is alice's alone: there is no review yet whose members could see it.
    client.force_login(bob)
    for name in ("transfer:import_job", "transfer:import_job_progress"):
        assert client.get(reverse(name, args=[job.pk])).status_code == 404
