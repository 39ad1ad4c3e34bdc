"""The background search for open-access full texts (review.fulltexts.find_open_access) as a job."""

from django_tasks import task

from review import fulltexts, jobs, pubmed


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
