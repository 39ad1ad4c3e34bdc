"""Background tasks (Django's tasks API, through the django-tasks backport): the worker started by
`make demo` (`manage.py db_worker`) runs them; the screening page only enqueues and never waits."""

import logging

from django.http import QueryDict
from django_tasks import task

from review import exportfiles, jobs
from review.models import Job, Membership, Review, Stage
from screening import records_out, stages
from screening import retrain as retraining
from screening.models import RankingRun

log = logging.getLogger(__name__)


@task()
def retrain_ranking(run_id, job_id=None):
    """Train the queued run ``run_id`` and store its scores (unless a newer version stored first),
    reporting to the re-ranking Job ``job_id`` when there is one."""
    job = jobs.start(job_id, stage="Training the model") if job_id is not None else None
    run = RankingRun.objects.select_related("review").filter(pk=run_id, status=RankingRun.Status.QUEUED).first()
    if run is None:
        if job is not None:
            jobs.finish(job, summary="Nothing to do: another worker took this run, or the review is gone.")
        return None  # already taken by another worker, or its review is gone
    try:
        run = retraining.retrain(run)
    except Exception as error:
        retraining.fail(run, error)
        if job is not None:
            jobs.fail(job, f"The ranking model could not be trained ({type(error).__name__}); the old ranking stays.")
        raise
    if job is not None:
        jobs.finish(job, summary=_rerank_summary(run), result={"run": run.pk, "version": run.version})
    return {"version": run.version, "status": run.status, "scored": run.scored}


def _rerank_summary(run):
    if run.status == RankingRun.Status.SUPERSEDED:
        return f"Version {run.version} was overtaken by a newer one; the newer ranking is used."
    return f"Version {run.version}: {run.scored:,} records ranked from {run.decisions_seen:,} decisions."


def request_retrain(review, stage, *, force=False, user=None):
    """Enqueue a retrain of ``review`` at ``stage`` when it is due (or ``force``); returns the run or None.
    The retrain reports as a re-ranking Job of the review."""
    if not force and not retraining.needs_retrain(review, stage):
        return None
    run = retraining.start_run(review, stage)
    job = jobs.create(
        review=review,
        kind=Job.Kind.RERANK,
        user=user,
        params={"run": run.pk, "stage": str(stage)},
        title=f"{Stage(stage).label}, version {run.version}",
    )
    try:
        jobs.enqueue(job, retrain_ranking, run.pk)
    except jobs.JobNotQueued:
        # Ranking is an aid: a queue that is down must never lose the reviewer's vote.
        log.exception("Could not enqueue the retrain of %s (%s)", review.slug, stage)
        retraining.fail(run, "could not be enqueued")
        return None
    return run


@task()
def prepare_ranking(review_id, job_id=None):
    """After an import: build and cache the ranking features of each stage whose records changed,
    then retrain it, so the first retrain after an import does not build them (slow at 100,000
    records) and the new records get a rank at once. Sent by review.signals.records_added; reports
    to the re-ranking Job ``job_id`` when there is one (its stages: building features, ranking)."""
    job = jobs.start(job_id, stage="Starting") if job_id is not None else None
    review = Review.objects.filter(pk=review_id).first()
    if review is None:
        if job is not None:
            jobs.finish(job, summary="Nothing to do: the review is gone.")
        return None  # deleted meanwhile
    if job is None:
        return _prepare(review, None)
    progress = jobs.Progress(job)
    try:
        with jobs.running(job):
            outcome = _prepare(review, progress)
    except Exception as error:
        jobs.fail(job, f"The ranking could not be prepared ({type(error).__name__}); the old ranking stays.")
        raise
    ranked = outcome.pop("ranked")
    summary = "; ".join(f"{Stage(stage).label}: {count:,} records ranked" for stage, count in ranked.items())
    jobs.finish(job, summary=summary or "The ranking was up to date.", result=outcome)
    return outcome


def _prepare(review, progress):
    built, ranked = {}, {}
    for stage in Stage:
        if not stages.in_stage(review, stage).exists():
            continue
        if progress is not None:
            progress.stage(f"Building features for {Stage(stage).label.lower()}")
        timings = {}
        retraining.features_for(review, stage, timings=timings)
        if not timings:
            continue  # this stage's records did not change (full text, after an import)
        built[stage.value] = {step: round(seconds, 3) for step, seconds in timings.items()}
        if RankingRun.objects.filter(review=review, stage=stage, status=RankingRun.Status.QUEUED).exists():
            continue  # a queued run reads the features when it starts: it will rank the new records
        if progress is not None:
            progress.stage(f"Ranking {Stage(stage).label.lower()}")
        # Here, in this process: the features just built are in its memory.
        run = retraining.start_run(review, stage)
        try:
            run = retraining.retrain(run)
        except Exception as error:
            retraining.fail(run, error)
            raise
        ranked[stage.value] = run.scored or 0
    return {"built": built} if progress is None else {"built": built, "ranked": ranked}


def on_records_added(sender, *, review, **kwargs):
    """records_added receiver (connected in ScreeningConfig.ready): enqueue prepare_ranking, which
    reports as a re-ranking job (seen by those who see every vote, like every re-ranking)."""
    try:
        job = jobs.create(review=review, kind=Job.Kind.RERANK, title="Preparing the ranking after an import")
        jobs.enqueue(job, prepare_ranking, review.pk)
    except Exception:
        # The records are stored: without this task the first retrain builds the features itself.
        log.exception("Could not enqueue the ranking features of %s", review.slug)


# --- The records table's Download of a big set ---------------------------------------------------


def enqueue_records_export(*, review, user, fmt, query, with_decisions):
    """Queue the export of the records the table's filter ``query`` (a QueryDict) selects, as
    ``fmt``, for ``user``; returns the Job. Its file holds what ``user`` may see when it runs."""
    if fmt not in records_out.FORMATS:
        raise records_out.ExportError(f"Unknown export format {fmt!r}: use {', '.join(records_out.FORMATS)}.")
    title = f"{fmt.upper()} of {'the matching' if query else 'all'} records" + (
        " with decisions" if with_decisions else ""
    )
    job = jobs.create(
        review=review,
        kind=Job.Kind.RECORDS_EXPORT,
        user=user,
        params={"format": fmt, "query": query.urlencode(), "decisions": bool(with_decisions)},
        title=title,
    )
    return jobs.enqueue(job, export_records_file)


def records_export_path(job):
    """The finished file of the records export ``job``, or None."""
    return exportfiles.job_file(job, Job.Kind.RECORDS_EXPORT)


@task()
def export_records_file(job_id):
    """Write the records of records export job ``job_id`` to a file under export_dir(): the same
    filter and export as the table's Download, seen as its starter's membership is now."""
    job = jobs.start(job_id, stage="Writing the records")
    if job is None:
        return None
    fmt = job.params["format"]
    folder = exportfiles.export_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = f"records{job.review_id}-job{job.pk}-{job.attempt}.{fmt}"
    part = folder / f"{name}.part"
    progress = jobs.Progress(job)
    try:
        with jobs.running(job):
            membership = Membership.objects.filter(review=job.review, user_id=job.created_by_id).first()
            if membership is None:
                raise records_out.ExportError("Whoever started this export is no longer a member of the review.")
            records = records_out.filtered(
                job.review, QueryDict(job.params.get("query", "")), user=job.created_by, membership=membership
            )
            pieces = records_out.export(
                job.review,
                records,
                fmt,
                membership=membership,
                with_decisions=job.params.get("decisions", False),
                progress=progress,
            )
            with open(part, "wb") as fh:
                for piece in pieces:
                    fh.write(piece)
        part.replace(folder / name)
    except records_out.ExportError as error:
        part.unlink(missing_ok=True)
        jobs.fail(job, f"{error} Nothing was exported.")
        return {"failed": str(error)}
    except Exception as error:
        part.unlink(missing_ok=True)
        jobs.fail(
            job, f"The export stopped on an unexpected error ({type(error).__name__}); nothing was kept: export again."
        )
        raise
    size = (folder / name).stat().st_size
    jobs.finish(
        job,
        summary=f"{job.done:,} records written as {fmt.upper()}, {size / 1e6:,.1f} MB.",
        result={"file": name, "format": fmt, "records": job.done, "size": size},
    )
    exportfiles.remove_expired()
    return job.result
