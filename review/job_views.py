from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from review import jobs
from review.access import review_for_member
from review.models import Job


def _job_for_member(request, slug, pk):
    review, membership = review_for_member(request, slug)
    shown = Job.objects.visible_to(membership).select_related("created_by", "search")
    job = get_object_or_404(shown, review=review, pk=pk)
    job.review = review
    jobs.sweep(job)  # a worker that died is seen as soon as someone looks
    return review, membership, job


@login_required
@require_GET
def job_detail(request, slug, pk):
    review, membership, job = _job_for_member(request, slug, pk)
    rerun = jobs.can_rerun(job, request.user, membership)
    context = {"review": review, "membership": membership, "job": job, "can_rerun": rerun}
    return render(request, "review/job.html", context)


@login_required
@require_POST
def job_rerun(request, slug, pk):
    review, membership, job = _job_for_member(request, slug, pk)
    if not jobs.can_rerun(job, request.user, membership):
        raise PermissionDenied("Only whoever started this job, or an owner, can run it again.")
    return rerun_and_tell(request, job, "The job is queued again; what its stopped run had stored was removed.")


def rerun_and_tell(request, job, queued):
    """Run ``job`` again (review.jobs.rerun), tell the user how it went (``queued`` on success)
    and go back to the job's page: the one shell of every Re-run button."""
    try:
        jobs.rerun(job, user=request.user)
    except jobs.JobNotRerun as refusal:
        messages.error(request, str(refusal))
    except jobs.JobNotQueued:
        messages.error(request, "The job could not be queued (the task queue did not answer); try again.")
    else:
        messages.success(request, queued)
    return redirect(job.get_absolute_url())


@login_required
@require_GET
def job_progress(request, slug, pk):
    # The fragment the job page polls (htmx); it stops polling once the job has finished.
    review, membership, job = _job_for_member(request, slug, pk)
    context = {"review": review, "job": job, "can_rerun": jobs.can_rerun(job, request.user, membership)}
    return render(request, "review/_job_progress.html", context)


@login_required
@require_GET
def job_list(request, slug):
    review, membership = review_for_member(request, slug)
    recent = Job.objects.for_review(review).visible_to(membership).select_related("created_by")
    shown = jobs.listed(recent, 100)
    return render(request, "review/jobs.html", {"review": review, "membership": membership, "jobs": shown})


@login_required
@require_GET
def dashboard_jobs(request, slug):
    # The dashboard's "Background jobs" box, polled (htmx) while one of its jobs is unfinished.
    review, membership = review_for_member(request, slug)
    context = {"review": review, "jobs": jobs.on_dashboard(review, membership)}
    return render(request, "review/_dashboard_jobs.html", context)
