"""The background search for open-access full texts (review.fulltexts.find_open_access) as a job."""

from django_tasks import task

from review import fulltexts, jobs, pubmed
from review.models import Job, Record, Stage
from screening.stages import in_stage


def records_to_search(review, record_pk=None):
    """Ids of the records an open-access search asks about: those taking part in full-text
    screening without a PDF, or the one record ``record_pk`` of the review."""
    if record_pk is not None:
        records = Record.objects.filter(review=review, pk=record_pk, duplicate_of__isnull=True)
    else:
        records = in_stage(review, Stage.FULL_TEXT).exclude(fulltext__file__gt="")
    return list(records.order_by("pk").values_list("pk", flat=True))


def enqueue_open_access(review, ids, *, user):
    """Queue the open-access search of the records ``ids`` as a job; returns the Job (raises
    jobs.JobNotQueued when the queue does not take it)."""
    title = f"Open-access full texts for {len(ids):,} record{'s' if len(ids) != 1 else ''}"
    job = jobs.create(review=review, kind=Job.Kind.FULLTEXT_SEARCH, user=user, params={"records": ids}, title=title)
    return jobs.enqueue(job, find_open_access)


@task()
def find_open_access(job_id):
    """Ask PubMed Central about the job's records, storing the PDFs it offers, with progress."""
    job = jobs.start(job_id, stage="Asking PubMed Central")
    if job is None:
        return None  # gone, or another worker has it
    progress = jobs.Progress(job)
    try:
        with jobs.running(job):
            result = fulltexts.find_open_access(
                job.review, job.params.get("records", []), user=job.created_by, progress=progress
            )
    except pubmed.PubMedError as error:
        jobs.fail(job, str(error))
        return {"failed": str(error)}
    except Exception as error:
        jobs.fail(
            job, f"The job stopped on an unexpected error ({type(error).__name__}); PDFs already fetched are kept."
        )
        raise
    jobs.finish(
        job,
        summary=result.summary(),
        notes=result.notes[:200],
        result={"asked": result.asked, "linked": result.linked, "fetched": result.fetched},
    )
    return job.result
