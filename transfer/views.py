import tempfile

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from review import uploads
from review.access import review_for_member
from review.models import Role
from transfer.exporting import export_review
from transfer.forms import ReviewFileForm
from transfer.importing import TransferError, import_review


@login_required
@require_GET
def review_export(request, slug):
    review, _ = review_for_member(request, slug, (Role.OWNER,))
    # Written to a temporary file (streamed in, streamed out): the review is never whole in memory.
    out = tempfile.TemporaryFile()  # noqa: SIM115 (FileResponse closes it once sent)
    export_review(review=review, out=out)
    out.seek(0)
    return FileResponse(out, as_attachment=True, filename=f"{review.slug}.sieve.zip", content_type="application/zip")


@login_required
def review_import(request):
    form = ReviewFileForm(request.POST or None, request.FILES or None, refusal=uploads.refusal(request))
    if request.method == "POST" and form.is_valid():
        try:
            result = import_review(
                source=form.cleaned_data["file"], slug=form.cleaned_data["slug"] or None, owner=request.user
            )
        except TransferError as e:
            form.add_error("file", str(e))
        else:
            created = f" New inactive accounts for: {', '.join(result.users_created)}." if result.users_created else ""
            messages.success(request, f"Review “{result.review.title}” imported.{created}")
            return redirect(result.review)
    return render(request, "transfer/import_form.html", {"form": form})
