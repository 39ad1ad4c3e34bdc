"""Background tasks for the review's long work: PubMed searches, file imports, deleting a big review.

The web forms call ``enqueue_search`` / ``enqueue_import`` and answer at once with the job's page;
the worker (`manage.py db_worker --queue-name '*'`) runs the tasks, which call the same
``review.importing`` functions as the management commands, reporting to the job as they go.
"""

import logging
import uuid
from datetime import date
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django_tasks import task

from review import importing, jobs, pubmed, removal
from review.article import ImportFileError
from review.models import Job, Review
from review.sources import SourceDetails

log = logging.getLogger(__name__)


def upload_dir():
    """Where uploads wait for the worker: under the data directory, which every web process and
    worker of a deployment must share (SIEVE_UPLOAD_DIR overrides it)."""
    return Path(getattr(settings, "SIEVE_UPLOAD_DIR", None) or Path(settings.DATA_DIR) / "uploads")


def save_upload(upload):
    """Save ``upload`` (an UploadedFile or binary file) under upload_dir(), for a worker to read;
    returns (its name as uploaded, the saved path)."""
    name = Path(getattr(upload, "name", "") or "uploaded file").name
    folder = upload_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}{Path(name).suffix[:10]}"
    try:
        with open(path, "wb") as saved:
            chunks = upload.chunks() if hasattr(upload, "chunks") else iter(lambda: upload.read(1024 * 1024), b"")
            for chunk in chunks:
                saved.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return name, path


def enqueue_upload(upload, task, *, review, kind, user, params=None):
    """Save ``upload`` under upload_dir() and queue ``task`` on a new ``kind`` Job whose params
    carry the saved path and name (and ``params``); returns the Job. The worker removes the file
    after (remove_upload); here it goes if the job cannot be created or queued."""
    name, path = save_upload(upload)
    try:
        job = jobs.create(
            review=review,
            kind=kind,
            user=user,
            params={"path": str(path), "filename": name, **(params or {})},
            title=name,
        )
        return jobs.enqueue(job, task)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def enqueue_search(*, review, user, query, mindate="", maxdate="", max_records=None):
    """Queue a PubMed search of ``review``; returns the Job."""
    params = {"query": query, "mindate": mindate or "", "maxdate": maxdate or "", "max_records": max_records}
    job = jobs.create(review=review, kind=Job.Kind.PUBMED_SEARCH, user=user, params=params, title=query[:300])
    return jobs.enqueue(job, run_pubmed_search)


def enqueue_import(*, review, user, upload, details):
    """Save ``upload`` (an UploadedFile or binary file) under upload_dir() and queue its import
    with ``details`` (a SourceDetails); returns the Job. The worker removes the file after."""
    return enqueue_upload(
        upload,
        import_saved_file,
        review=review,
        kind=Job.Kind.FILE_IMPORT,
        user=user,
        params={"details": _details_json(details)},
    )


def _details_json(details):
    return {
        "database": details.database,
        "platform": details.platform,
        "source_type": details.source_type,
        "searched_on": details.searched_on.isoformat() if details.searched_on else None,
        "query": details.query,
        "limits": details.limits,
    }


def _details_from(data):
    searched_on = date.fromisoformat(data["searched_on"]) if data.get("searched_on") else None
    return SourceDetails(**{**data, "searched_on": searched_on})


@task()
def run_pubmed_search(job_id):
    """Run the PubMed search of job ``job_id`` and store its records (review.importing.run_search)."""
    job = jobs.start(job_id, stage="Searching PubMed")
    if job is None:
        return None
    progress = jobs.Progress(job)

    fetching = []

    def fetched(done, hits):
        if done >= hits:
            progress.stage("Checking for duplicates and storing", done=done, total=hits)
        elif not fetching:
            fetching.append(True)
            progress.stage("Fetching records from PubMed", done=done, total=hits)
        else:
            progress(done, hits)

    params = job.params
    return _run(
        job,
        lambda: importing.run_search(
            review=job.review,
            query=params["query"],
            mindate=params.get("mindate") or None,
            maxdate=params.get("maxdate") or None,
            max_records=params.get("max_records"),
            user=job.created_by,
            progress=fetched,
        ),
        expected=(pubmed.PubMedError,),
    )


@task()
def import_saved_file(job_id):
    """Import the file saved for job ``job_id`` (review.importing.import_file), then remove it."""
    job = jobs.start(job_id, stage="Reading the file")
    if job is None:
        return None  # gone, or another worker has it (and its file)
    path = Path(job.params["path"])
    progress = jobs.Progress(job)
    try:
        return _run(
            job,
            lambda: importing.import_file(
                review=job.review,
                path=path,
                filename=job.params.get("filename", ""),
                details=_details_from(job.params.get("details") or {}),
                user=job.created_by,
                progress=progress,
            ),
            expected=(ImportFileError, ValueError),
        )
    finally:
        remove_upload(job, path)


def remove_upload(job, path):
    # Under the job row's lock, and only while the row is this run's: a run re-run meanwhile (its
    # worker was only slow) must not remove the file the next run reads.
    with transaction.atomic():
        if Job.objects.select_for_update().filter(pk=job.pk, attempt=job.attempt).exists():
            path.unlink(missing_ok=True)


def _run(job, work, *, expected):
    """Run ``work`` (returning an ImportResult) for ``job``: finish it with the result, or fail it
    with the error's message (an expected error) or its kind (anything else, raised again so the
    worker logs the traceback)."""
    try:
        with jobs.running(job):
            result = work()
    except expected as error:
        jobs.fail(job, str(error))
        return {"failed": str(error)}
    except Exception as error:
        jobs.fail(job, f"The job stopped on an unexpected error ({type(error).__name__}); the review is unchanged.")
        raise
    search = result.search
    jobs.finish(
        job,
        summary=result.summary(),
        notes=[*search.log_notes(), *result.warnings],
        search=search,
        result={"search": search.pk, "added": result.added, "duplicates": result.duplicates, "skipped": result.skipped},
    )
    return job.result


@task()
def delete_review(review_id):
    """Delete a review its owner confirmed deleting, when it is too big to delete in the request."""
    review = Review.objects.filter(pk=review_id).first()
    if review is None:
        return None  # deleted meanwhile (the owner asked twice)
    return removal.delete_review(review, confirmation=review.slug)
