from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from review.access import review_for_member
from review.models import Job


def _job_for_member(request, slug, pk):
    review, membership = review_for_member(request, slug)
    shown = Job.objects.visible_to(membership).select_related("created_by", "search")
    job = get_object_or_404(shown, review=review, pk=pk)
    job.review = review
    return review, membership, job


@login_required
@require_GET
def job_detail(request, slug, pk):
    review, membership, job = _job_for_member(request, slug, pk)
    context = {"review": review, "membership": membership, "job": job}
    return render(request, "review/job.html", context)


@login_required
@require_GET
def job_progress(request, slug, pk):
    # The fragment the job page polls (htmx); it stops polling once the job has finished.
    review, _, job = _job_for_member(request, slug, pk)
    return render(request, "review/_job_progress.html", {"review": review, "job": job})


@login_required
@require_GET
def job_list(request, slug):
    review, membership = review_for_member(request, slug)
    recent = Job.objects.for_review(review).visible_to(membership).select_related("created_by")[:100]
    return render(request, "review/jobs.html", {"review": review, "membership": membership, "jobs": recent})
