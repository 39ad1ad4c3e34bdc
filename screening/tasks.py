"""Background tasks (Django's tasks API, through the django-tasks backport): the worker started by
`make demo` (`manage.py db_worker`) runs them; the screening page only enqueues and never waits."""

import logging

from django_tasks import task

from screening import retrain as retraining
from screening.models import RankingRun

log = logging.getLogger(__name__)


@task()
def retrain_ranking(run_id):
    """Train the queued run ``run_id`` and store its scores (unless a newer version stored first)."""
    run = RankingRun.objects.select_related("review").filter(pk=run_id, status=RankingRun.Status.QUEUED).first()
    if run is None:
        return None  # already taken by another worker, or its review is gone
    try:
        run = retraining.retrain(run)
    except Exception as error:
        retraining.fail(run, error)
        raise
    return {"version": run.version, "status": run.status, "scored": run.scored}


def request_retrain(review, stage, *, force=False):
    """Enqueue a retrain of ``review`` at ``stage`` when it is due (or ``force``); returns the run or None."""
    if not force and not retraining.needs_retrain(review, stage):
        return None
    run = retraining.start_run(review, stage)
    try:
        retrain_ranking.enqueue(run.pk)
    except Exception:
        # Ranking is an aid: a queue that is down must never lose the reviewer's vote.
        log.exception("Could not enqueue the retrain of %s (%s)", review.slug, stage)
        retraining.fail(run, "could not be enqueued")
        return None
    return run
