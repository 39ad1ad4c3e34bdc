"""Background jobs: the row a long piece of work reports to while the worker does it.

A view (or screening's re-ranking) creates a Job and enqueues a task with its id; the task calls
``start`` (queued -> running, once: a second worker taking the same task finds it taken), reports
through a ``Progress`` (throttled: one UPDATE at most every PROGRESS_INTERVAL seconds), and ends
with ``finish`` or ``fail``. The job's page reads the row; nothing here waits for the worker.
"""

import logging
import time

from django.db import transaction
from django.utils import timezone

from review.models import Job

log = logging.getLogger(__name__)

# Seconds between two progress writes of one job: often enough for a live bar, rarely enough that
# a 100,000-record import spends no time on it.
PROGRESS_INTERVAL = 1.0


def create(*, review, kind, user=None, params=None, title="", stage="Waiting for a worker"):
    """A queued Job of ``review``; the caller enqueues its task with ``enqueue``."""
    return Job.objects.create(
        review=review, kind=kind, created_by=user, params=params or {}, title=title[:300], stage=stage
    )


def enqueue(job, task, *args):
    """Enqueue ``task(*args, job_id=job.pk)`` and keep the task result's id on the job. When the queue
    cannot take it, the job is failed (with the reason) and the error raised."""
    try:
        result = task.enqueue(*args, job_id=job.pk)
    except Exception as error:
        fail(job, "The job could not be queued (the task queue did not answer); try again.")
        log.exception("Could not enqueue job %s", job.pk)
        raise JobNotQueued(str(error)) from error
    # update(), not save(): with an in-process backend the task has already run and written the row.
    Job.objects.filter(pk=job.pk).update(task_result_id=str(result.id)[:64])
    job.task_result_id = str(result.id)[:64]
    return job


class JobNotQueued(Exception):
    pass


def start(job_id, stage="Starting"):
    """Mark the queued job ``job_id`` running and return it; None when it is gone or another
    worker already took it (a task delivered twice runs once)."""
    now = timezone.now()
    with transaction.atomic():
        taken = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
            status=Job.Status.RUNNING, started_at=now, updated_at=now, stage=stage
        )
    if not taken:
        return None
    return Job.objects.select_related("review", "created_by").get(pk=job_id)


class Progress:
    """A progress callback for one job: ``progress(done, total)``, and ``stage(label)``.

    Writes go straight to the row with one UPDATE, at most every ``interval`` seconds, and always
    when the work reaches its total or the stage changes, so the page never lags at the end.
    """

    def __init__(self, job, *, interval=None, clock=time.monotonic):
        self.job = job
        self.interval = PROGRESS_INTERVAL if interval is None else interval
        self.clock = clock
        self.last = None
        self.writes = 0

    def __call__(self, done, total=None):
        self.job.done, self.job.total = done, total
        now = self.clock()
        reached = total is not None and done >= total
        if self.last is not None and now - self.last < self.interval and not reached:
            return
        self._write(done=done, total=total)

    def stage(self, label, *, done=None, total=None):
        self.job.stage = label[:200]
        fields = {"stage": self.job.stage}
        if done is not None:
            self.job.done = fields["done"] = done
            self.job.total = fields["total"] = total
        self._write(**fields)

    def _write(self, **fields):
        # The work calls back between its short transactions (an import parses each chunk before
        # writing it; a search fetches before storing), so the row is seen by the job's page at once.
        self.last = self.clock()
        self.writes += 1
        fields["updated_at"] = timezone.now()
        Job.objects.filter(pk=self.job.pk).update(**fields)


def finish(job, *, summary="", notes=(), search=None, result=None):
    """The job is done: its summary, its notes (warnings, the search log's notes) and result."""
    job.status = Job.Status.DONE
    job.stage = "Done"
    job.summary = summary
    job.notes = [str(note) for note in notes]
    job.search = search
    job.result = result or {}
    job.finished_at = job.updated_at = timezone.now()
    if job.total is not None:
        job.done = max(job.done, job.total)
    job.save(
        update_fields=["status", "stage", "summary", "notes", "search", "result", "done", "finished_at", "updated_at"]
    )
    return job


def fail(job, error):
    """The job failed: ``error`` is the reason shown on its page (what the user can act on)."""
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.FAILED, stage="Failed", error=str(error), finished_at=now, updated_at=now
    )
    job.status, job.stage, job.error, job.finished_at = Job.Status.FAILED, "Failed", str(error), now
    return job
