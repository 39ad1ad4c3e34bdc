"""Background jobs: the row a long piece of work reports to while the worker does it.

A view (or screening's re-ranking) creates a Job and enqueues a task with its id; the task calls
``start`` (queued -> running, once: a second worker taking the same task finds it taken), reports
through a ``Progress`` (throttled: one UPDATE at most every PROGRESS_INTERVAL seconds), and ends
with ``finish`` or ``fail``. The job's page reads the row; nothing here waits for the worker.

A worker that dies (killed, out of memory, its machine down) cannot say so. While a task runs,
``running`` beats: a thread touches the row every ``heartbeat_seconds()``, however long a stage
is. A running job silent for ``stale_seconds()`` is marked STOPPED by ``sweep`` (run by every
worker as it starts a job, and by the job's page), and whoever started it, or an owner, can
``rerun`` it: the stopped run's staged rows are removed under locks, and the same task is queued
again for the same row with ``attempt`` counted up, so the stopped run's writes, should its worker
come back, touch nothing.
"""

import contextvars
import logging
import os
import threading
import time
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from django.db.models.signals import post_save
from django.utils import timezone
from django.utils.module_loading import import_string

from review.importing import discard_staged
from review.models import Job, Record, Review, Search

log = logging.getLogger(__name__)


def _seconds(name, default):
    # Settings first, then the environment (a worker started with SIEVE_JOB_STALE_SECONDS=...).
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name) or default
    return float(value)


def heartbeat_seconds():
    """How often a running job's worker touches its row (SIEVE_JOB_HEARTBEAT_SECONDS, default 10)."""
    return _seconds("SIEVE_JOB_HEARTBEAT_SECONDS", 10)


def stale_seconds():
    """How long a running job may stay silent before it counts as stopped (SIEVE_JOB_STALE_SECONDS,
    default 120: a dozen missed heartbeats, so a worker busy writing or waiting for a lock is not
    taken for dead)."""
    return _seconds("SIEVE_JOB_STALE_SECONDS", 120)


# The param of a review file import's job naming the review its run staged (transfer/tasks.py).
STAGED_REVIEW = "staged_review"

# Seconds between two progress writes of one job: often enough for a live bar, rarely enough that
# a 100,000-record import spends no time on it.
PROGRESS_INTERVAL = 1.0


def create(*, review, kind, user=None, params=None, title="", stage="Waiting for a worker"):
    """A queued Job of ``review``; the caller enqueues its task with ``enqueue``."""
    return Job.objects.create(
        review=review, kind=kind, created_by=user, params=params or {}, title=title[:300], stage=stage
    )


def enqueue(job, task, *args):
    """Enqueue ``task(*args, job_id=job.pk)`` and keep the task result's id on the job, and the task
    with its arguments (for ``rerun``). When the queue cannot take it, the job is failed (with the
    reason) and the error raised."""
    try:
        result = task.enqueue(*args, job_id=job.pk)
    except Exception as error:
        fail(job, "The job could not be queued (the task queue did not answer); try again.")
        log.exception("Could not enqueue job %s", job.pk)
        raise JobNotQueued(str(error)) from error
    # update(), not save(): with an in-process backend the task has already run and written the row.
    job.params = {**job.params, "task": {"path": getattr(task, "module_path", ""), "args": list(args)}}
    job.task_result_id = str(result.id)[:64]
    Job.objects.filter(pk=job.pk, attempt=job.attempt).update(task_result_id=job.task_result_id, params=job.params)
    return job


class JobNotQueued(Exception):
    pass


class JobNotRerun(Exception):
    """Why a job cannot be run again (it is still running, it is done...): shown to the user."""


def start(job_id, stage="Starting"):
    """Mark the queued job ``job_id`` running and return it; None when it is gone or another
    worker already took it (a task delivered twice runs once). Sweeps stopped jobs first: every
    worker looks for dead ones as it starts work."""
    sweep()
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
        Job.objects.filter(pk=self.job.pk, attempt=self.job.attempt).update(**fields)


def finish(job, *, summary="", notes=(), search=None, result=None):
    """The job is done: its summary, its notes (warnings, the search log's notes) and result.
    Written only while the row is still this run's (not re-run meanwhile)."""
    job.status = Job.Status.DONE
    job.stage = "Done"
    job.summary = summary
    job.notes = [str(note) for note in notes]
    job.search = search
    job.result = result or {}
    job.finished_at = job.updated_at = timezone.now()
    if job.total is not None:
        job.done = max(job.done, job.total)
    fields = ["status", "stage", "summary", "notes", "search", "result", "done", "finished_at", "updated_at"]
    Job.objects.filter(pk=job.pk, attempt=job.attempt).update(error="", **{f: getattr(job, f) for f in fields})
    job.error = ""
    return job


def fail(job, error):
    """The job failed: ``error`` is the reason shown on its page (what the user can act on)."""
    now = timezone.now()
    Job.objects.filter(pk=job.pk, attempt=job.attempt).update(
        status=Job.Status.FAILED, stage="Failed", error=str(error), finished_at=now, updated_at=now
    )
    job.status, job.stage, job.error, job.finished_at = Job.Status.FAILED, "Failed", str(error), now
    return job


# --- A worker that stops answering ---------------------------------------------------------------

STOPPED_ERROR = (
    "The worker running this job stopped answering (it was stopped or killed, or its machine went down). "
    "Nothing of it was stored; run it again."
)

_current = contextvars.ContextVar("review_job", default=None)


@contextmanager
def running(job):
    """Run the body as ``job``'s work: the row's heartbeat beats, and a search log row the work
    stages is tied to the job (so a re-run can remove it)."""
    token = _current.set(job)
    beat = _Heartbeat(job)
    beat.start()
    try:
        yield job
    finally:
        beat.stop()
        _current.reset(token)


class _Heartbeat(threading.Thread):
    def __init__(self, job):
        super().__init__(name=f"job-{job.pk}-heartbeat", daemon=True)
        self.job = job
        self.stopping = threading.Event()

    def run(self):
        try:
            while not self.stopping.wait(heartbeat_seconds()):
                beat(self.job)
        finally:
            connections.close_all()  # this thread's own connection

    def stop(self):
        self.stopping.set()
        self.join(timeout=30)


def beat(job):
    """Touch the row of ``job``'s run: it is alive. A run the sweep took for stopped (its worker
    was only slow) is running again; a row re-run meanwhile is left alone."""
    try:
        Job.objects.filter(pk=job.pk, attempt=job.attempt, status__in=(Job.Status.RUNNING, Job.Status.STOPPED)).update(
            updated_at=timezone.now(), status=Job.Status.RUNNING, error=""
        )
    except Exception:
        # A busy database (SQLite's write lock held a long while): the next beat tries again.
        log.warning("Job %s: heartbeat not written", job.pk, exc_info=True)


def _staged_search_saved(sender, instance, created, **kwargs):
    job = _current.get()
    if created and job is not None and instance.staged_at is not None:
        Job.objects.filter(pk=job.pk, attempt=job.attempt).update(search=instance)
        job.search = instance


post_save.connect(_staged_search_saved, sender=Search, dispatch_uid="review.jobs.staged_search")


def _stale_running():
    return Job.objects.filter(
        status=Job.Status.RUNNING, updated_at__lt=timezone.now() - timedelta(seconds=stale_seconds())
    )


def is_silent(job):
    """True when ``job`` (as read) is running and has been silent past stale_seconds()."""
    return job.status == Job.Status.RUNNING and (timezone.now() - job.updated_at).total_seconds() > stale_seconds()


def sweep(job=None):
    """Mark the running jobs (or ``job`` alone) silent for ``stale_seconds()`` STOPPED; returns how
    many. One UPDATE: a worker that beats at the same moment wins or comes back (``beat``)."""
    jobs = _stale_running()
    if job is not None:
        if not is_silent(job):
            return 0  # no write at all: the job's page polls every second
        jobs = jobs.filter(pk=job.pk)
    swept = jobs.update(
        status=Job.Status.STOPPED, stage="The worker stopped answering", error=STOPPED_ERROR, finished_at=timezone.now()
    )
    if swept and job is not None:
        job.refresh_from_db()
    return swept


def listed(queryset, limit):
    """The first ``limit`` jobs of ``queryset`` as a list, a job whose worker died already shown as
    stopped (the jobs list and the review's dashboard: wherever someone looks)."""
    shown = list(queryset[:limit])
    if any(is_silent(job) for job in shown):
        sweep()
        shown = list(queryset[:limit])
    return shown


def on_dashboard(review, membership, limit=5):
    """The jobs the review's dashboard lists for this member, the latest first (the dashboard and
    the fragment it polls while one of them runs)."""
    from review.models import Job

    shown = Job.objects.for_review(review).visible_to(membership).for_dashboard().select_related("created_by")
    return listed(shown, limit)


def can_rerun(job, user, membership):
    """Whoever started the job, or an owner of its review."""
    return membership is not None and (membership.role == "owner" or (user.pk and job.created_by_id == user.pk))


def rerun(job, *, user):
    """Queue a STOPPED job again (same task, same file or query), after removing what its stopped
    run staged; returns the job. Raises JobNotRerun with the reason when it is not stopped (still
    running, done, failed) or has nothing to run again.

    Everything happens under the job row's lock, and the staged rows' locks are taken in the order
    the import's landing takes them (records, then the search row), so the stopped run, should its
    worker still be alive, either landed first (the job is then done, and nothing is queued) or can
    no longer land: its search row and staged records are gone and its writes fail."""
    try:
        job, landed = _rerun_locked(job, user)
    except DatabaseError as error:
        # A lock not granted in time: a worker is still writing this job's rows.
        log.warning("Job %s: re-run not done: %s", job.pk, error)
        raise JobNotRerun("Its worker seems to be still writing (its rows are busy); try again in a minute.") from error
    if landed:
        raise JobNotRerun("Its records were stored before the worker stopped; there is nothing to run again.")
    return job


def _rerun_locked(job, user):
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # A worker holding the rows (only paused?) makes the re-run fail, not the request hang.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '10s'")
        job = Job.objects.select_for_update(of=("self",)).select_related("review").get(pk=job.pk)
        sweep(job)
        if job.status != Job.Status.STOPPED:
            raise JobNotRerun(_not_stopped_reason(job))
        spec = job.params.get("task") or {}
        if not spec.get("path"):
            raise JobNotRerun("This job was started by an older Sieve and cannot be run again; start it anew.")
        saved = job.params.get("path")
        if saved and not os.path.exists(saved):
            raise JobNotRerun("The uploaded file of this job is gone; upload it again.")
        if job.kind == Job.Kind.REVIEW_IMPORT:
            landed = _review_landed(job)
        else:
            landed = job.search_id is not None and _landed(job)
            if landed:
                finish(
                    job,
                    summary="Its records were stored before the worker stopped: see the search log.",
                    search=job.search,
                )
        if not landed:
            _requeue(job, user, spec)
    return job, landed


def _requeue(job, user, spec):
    task = import_string(spec["path"])
    reruns = [*job.params.get("reruns", []), {"by": user.get_username(), "at": timezone.now().isoformat()}]
    job.attempt += 1
    job.params = {**job.params, "reruns": reruns}
    job.status, job.stage, job.error, job.summary, job.notes = Job.Status.QUEUED, "Waiting for a worker", "", "", []
    job.done, job.total, job.search, job.started_at, job.finished_at = 0, None, None, None, None
    job.updated_at = timezone.now()
    job.save()
    transaction.on_commit(lambda: enqueue(job, task, *spec.get("args", [])))


def _landed(job):
    """Remove what the stopped run of ``job`` staged; True when it had landed instead."""
    # Lock order: the records, then the search row, as review.importing's landing writes them.
    list(Record.all_objects.select_for_update().filter(search_id=job.search_id, staged=True).values_list("pk"))
    search = Search.all_objects.select_for_update().filter(pk=job.search_id).first()
    if search is None:
        return False  # already removed (the import failed, or the next import discarded it)
    if search.staged_at is None:
        return True
    discard_staged(search)
    return False


def _review_landed(job):
    """Whether the stopped run of review file import ``job`` had landed its review (the job is then
    finished). Its staged review, if any, stays for the next run to remove (in short transactions,
    in the worker): under this job row's lock the stopped run's landing, which takes it first,
    either committed before (seen here) or can no longer happen (its attempt is gone)."""
    staged = job.params.get(STAGED_REVIEW)
    review = Review.all_objects.filter(pk=staged).values("slug", "title", "staged_at").first() if staged else None
    if review is None or review["staged_at"] is not None:
        return False
    finish(
        job,
        summary=f"Review “{review['title']}” imported before the worker stopped.",
        result={"review": review["slug"]},
    )
    return True


def _not_stopped_reason(job):
    if job.status in (Job.Status.QUEUED, Job.Status.RUNNING):
        return "This job is still running (its worker answered recently); it cannot be run twice at once."
    if job.status == Job.Status.DONE:
        return "This job is done; there is nothing to run again."
    return "This job failed for the reason shown; start it anew."
