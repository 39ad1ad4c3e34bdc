"""The whole-review export, run by the background worker and reported as a Job.

The owner's Export button queues ``export_review_file``; the worker writes the review file under
``review.exportfiles.export_dir()`` (a ``.part`` file renamed when whole: a killed export leaves no file that looks
finished), and the job's page offers it for download to the review's owners. A review keeps its
newest export only, and any export is removed after ``SIEVE_EXPORT_KEEP_HOURS`` (default 24).
A review file uploaded from the web ("Import a review file") is imported the same way, by
``import_review_file``. ``manage.py export_review`` and ``import_review`` stay synchronous.
"""

import logging
from functools import partial
from pathlib import Path

from django_tasks import task

from review import exportfiles, jobs
from review import tasks as review_tasks
from review.models import Job
from transfer.exporting import ExportError, export_review
from transfer.fileformat import USERS
from transfer.importing import TransferError, discard_staged_import, import_review

log = logging.getLogger(__name__)


def enqueue_export(*, review, user):
    """Queue the export of ``review`` for ``user`` (an owner); returns the Job."""
    job = jobs.create(review=review, kind=Job.Kind.EXPORT, user=user, title=f"{review.slug}.sieve.zip")
    return jobs.enqueue(job, export_review_file)


def export_path(job):
    """The finished file of the export ``job``, or None (not done, removed, or not a name we wrote)."""
    return exportfiles.job_file(job, Job.Kind.EXPORT)


@task()
def export_review_file(job_id):
    """Write the review of export job ``job_id`` to a file under export_dir()."""
    job = jobs.start(job_id, stage="Writing the review file")
    if job is None:
        return None
    folder = exportfiles.export_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = f"review{job.review_id}-job{job.pk}-{job.attempt}.sieve.zip"
    partial = folder / f"{name}.part"
    progress = jobs.Progress(job)

    def wrote(done, total):
        progress.stage(f"Writing the review file: {done:,} of {total:,} rows", done=done, total=total)

    try:
        with jobs.running(job):
            result = export_review(review=job.review, out=partial, progress=wrote)
        partial.replace(folder / name)
    except ExportError as error:
        partial.unlink(missing_ok=True)
        jobs.fail(job, str(error))
        return {"failed": str(error)}
    except Exception as error:
        partial.unlink(missing_ok=True)
        jobs.fail(job, f"The export stopped on an unexpected error ({type(error).__name__}); export again.")
        raise
    size = (folder / name).stat().st_size
    # The review's rows, as the progress counted them; the accounts they name apart.
    rows = sum(n for section, n in result.counts.items() if section != USERS)
    accounts = result.counts.get(USERS, 0)
    jobs.finish(
        job,
        summary=f"The review file is ready: {rows:,} rows and {accounts:,} accounts, {size / 1e6:,.1f} MB.",
        result={"file": name, "size": size, "counts": result.counts},
    )
    remove_old_exports(review=job.review)
    return job.result


def remove_old_exports(*, review=None):
    """Remove the export files of ``review`` but its newest, and every export file (or abandoned
    part file) older than SIEVE_EXPORT_KEEP_HOURS (review/exportfiles.py, which marks their jobs'
    files removed). Returns the names removed."""
    folder = exportfiles.export_dir()
    if not folder.is_dir():
        return []
    removed = exportfiles.remove_expired()
    if review is not None:
        newest = Job.objects.filter(review=review, kind=Job.Kind.EXPORT, status=Job.Status.DONE).order_by(
            "-finished_at", "-pk"
        )
        keep = {job.result.get("file") for job in newest[:1]}
        for path in folder.iterdir():
            if path.name.startswith(f"review{review.pk}-") and path.suffix == ".zip" and path.name not in keep:
                exportfiles.remove(path)
                removed.append(path.name)
    return removed


# --- A review file imported from the web ----------------------------------------------------------


def enqueue_review_import(*, upload, slug, user):
    """Save the uploaded review file and queue its import as a new review owned by ``user``;
    returns the Job (it has no review until the import is done; its page is ``user``'s)."""
    return review_tasks.enqueue_upload(
        upload, import_review_file, review=None, kind=Job.Kind.REVIEW_IMPORT, user=user, params={"slug": slug or ""}
    )


@task()
def import_review_file(job_id):
    """Import the review file saved for job ``job_id`` as a new review, staged chunk by chunk and
    made visible at the end (transfer/importing.py), then remove the file. A killed run leaves the
    file and a staged review the job knows of: its re-run removes that review first."""
    job = jobs.start(job_id, stage="Importing the review file")
    if job is None:
        return None
    path = Path(job.params["path"])
    progress = jobs.Progress(job)
    try:
        with jobs.running(job):
            _discard_previous_run(job)
            result = import_review(
                source=path,
                slug=job.params.get("slug") or None,
                owner=job.created_by,
                progress=progress,
                staged=partial(_staged, job),
                landing=partial(_still_this_run, job),
            )
    except TransferError as error:
        jobs.fail(job, str(error))
        return {"failed": str(error)}
    except Exception as error:
        jobs.fail(job, f"The import stopped on an unexpected error ({type(error).__name__}); nothing was imported.")
        raise
    finally:
        review_tasks.remove_upload(job, path)
    created = result.users_created
    summary = f"Review “{result.review.title}” imported." + (
        f" New inactive accounts for: {', '.join(created)}." if created else ""
    )
    jobs.finish(job, summary=summary, result={"review": result.review.slug, "counts": result.counts})
    return job.result


def _discard_previous_run(job):
    # A stopped run's staged review: it can no longer land (_still_this_run), so it goes now,
    # in short transactions, before this run needs its slug.
    previous = job.params.get(jobs.STAGED_REVIEW)
    if previous:
        progress = jobs.Progress(job)
        progress.stage("Removing what the stopped run had written")
        discard_staged_import(previous)
        progress.stage("Importing the review file")


def _staged(job, review_pk):
    """Keep the staged review's id on the job (in the transaction that writes the review's row)."""
    job.params = {**job.params, jobs.STAGED_REVIEW: review_pk}
    Job.objects.filter(pk=job.pk, attempt=job.attempt).update(params=job.params)


def _still_this_run(job):
    """In the landing's transaction: the job row, locked, is still this run's (not re-run meanwhile:
    the re-run takes the same lock, so one of them sees the other's outcome)."""
    if not Job.objects.select_for_update().filter(pk=job.pk, attempt=job.attempt).exists():
        raise TransferError("This run of the import was stopped and run again; the other run imports the review.")
