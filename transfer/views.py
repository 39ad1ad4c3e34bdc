from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from review import exportfiles, jobs, uploads
from review.access import review_for_member
from review.job_views import rerun_and_tell
from review.models import Job, Role
from transfer.forms import ReviewFileForm
from transfer.tasks import enqueue_export, enqueue_review_import, export_path


@login_required
@require_POST
def review_export(request, slug):
    review, _ = review_for_member(request, slug, (Role.OWNER,))
    try:
        job = enqueue_export(review=review, user=request.user)
    except jobs.JobNotQueued:
        messages.error(request, "The export could not be queued (the task queue did not answer); try again.")
        return redirect("review:settings", review.slug)
    return redirect(job)


@login_required
@require_GET
def export_download(request, slug, pk):
    review, _ = review_for_member(request, slug, (Role.OWNER,))
    job = get_object_or_404(Job, review=review, pk=pk, kind=Job.Kind.EXPORT)
    stream = exportfiles.open_kept(export_path(job))  # None: missing, or expired (then removed)
    if stream is None:
        raise Http404("This export's file is not there (not finished, or removed since: export again).")
    return FileResponse(stream, as_attachment=True, filename=f"{review.slug}.sieve.zip", content_type="application/zip")


@login_required
def review_import(request):
    form = ReviewFileForm(request.POST or None, request.FILES or None, refusal=uploads.refusal(request))
    if request.method == "POST" and form.is_valid():
        try:
            job = enqueue_review_import(
                upload=form.cleaned_data["file"], slug=form.cleaned_data["slug"], user=request.user
            )
        except jobs.JobNotQueued:
            form.add_error(None, "The import could not be queued (the task queue did not answer); try again.")
        else:
            return redirect(job)
    return render(request, "transfer/import_form.html", {"form": form})


def _import_job(request, pk):
    # The job's page is its starter's alone: until it is done there is no review to be a member of.
    job = get_object_or_404(Job, pk=pk, kind=Job.Kind.REVIEW_IMPORT, created_by_id=request.user.pk)
    jobs.sweep(job)
    return job


@login_required
@require_GET
def import_job(request, pk):
    return render(request, "transfer/import_job.html", {"job": _import_job(request, pk)})


@login_required
@require_POST
def import_job_rerun(request, pk):
    """Run a stopped import again from its saved file (review.jobs.rerun): its starter's alone."""
    queued = "The import is queued again; what its stopped run had written is removed first."
    return rerun_and_tell(request, _import_job(request, pk), queued)


@login_required
@require_GET
def import_job_progress(request, pk):
    return render(request, "transfer/_import_job_progress.html", {"job": _import_job(request, pk)})
