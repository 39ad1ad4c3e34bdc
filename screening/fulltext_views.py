"""Full-text pages: a record's PDF (served, uploaded, removed), bulk upload, and the search for
open-access copies in PubMed Central. Thin shells over review.fulltexts; every view checks
membership (outsiders get 404), and only those who screen may change a PDF."""

from csp.constants import SELF
from csp.decorators import csp_replace
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from review import fulltexts, jobs
from review.access import SCREENING_ROLES, record_for_member, review_for_member
from review.models import FullText, Stage
from screening import fulltext_tasks


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class PdfForm(forms.Form):
    pdf = forms.FileField(label="PDF", allow_empty_file=True)  # review.fulltexts says why it is refused


class MultipleFileField(forms.FileField):
    """Several files in one field (Django's documented pattern): a list of UploadedFiles."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_empty_file", True)  # review.fulltexts says why one is refused
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else [data]
        return [super(MultipleFileField, self).clean(one, initial) for one in files]


class BulkForm(forms.Form):
    files = MultipleFileField(
        label="PDFs or zip archives of PDFs",
        widget=MultipleFileInput(attrs={"accept": ".pdf,.zip,application/pdf,application/zip"}),
        help_text="Each file is matched by its name: a PMID (12345678.pdf), a PMCID (PMC1234567.pdf), "
        "a DOI with “_” for “/” (10.1000_xyz.pdf), or the record's id in its source file.",
    )


def _back(request, review, record):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect("review:record", review.slug, record.pk)


@login_required
@require_GET
@xframe_options_sameorigin
@csp_replace({"frame-ancestors": [SELF]})
def fulltext_pdf(request, slug, pk):
    """The record's PDF, to members only: inline (for the viewer beside the decision buttons) or,
    with ?download=1, as an attachment. Never from a public URL."""
    review, membership, record = record_for_member(request, slug, pk)
    fulltext = FullText.objects.filter(record=record).exclude(file="").first()
    if fulltext is None:
        raise Http404("This record has no PDF.")
    try:
        handle = fulltext.file.open("rb")
    except FileNotFoundError:
        raise Http404("The PDF's file is missing from the storage.") from None
    response = FileResponse(
        handle,
        content_type="application/pdf",
        as_attachment=bool(request.GET.get("download")),
        filename=fulltext.filename or f"record-{record.pk}.pdf",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def fulltext_upload(request, slug, pk):
    review, membership, record = record_for_member(request, slug, pk, SCREENING_ROLES)
    form = PdfForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a PDF file to upload.")
        return _back(request, review, record)
    upload = form.cleaned_data["pdf"]
    try:
        data = fulltexts.read_upload(upload)
        had = FullText.objects.filter(record=record).exclude(file="").exists()
        fulltexts.attach(record, data, filename=upload.name, user=request.user)
    except fulltexts.FullTextError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"PDF {'replaced' if had else 'attached'} for record #{record.pk}.")
    return _back(request, review, record)


@login_required
@require_POST
def fulltext_remove(request, slug, pk):
    review, membership, record = record_for_member(request, slug, pk, SCREENING_ROLES)
    if fulltexts.remove(record, user=request.user):
        messages.success(request, f"PDF removed from record #{record.pk}.")
    else:
        messages.error(request, f"Record #{record.pk} has no PDF to remove.")
    return _back(request, review, record)


@login_required
@require_http_methods(["GET", "POST"])
def fulltext_bulk(request, slug):
    """Upload many PDFs (or zips of PDFs) at once, each matched to a record by its name."""
    review, membership = review_for_member(request, slug, SCREENING_ROLES)
    matches = None
    if request.method == "POST":
        form = BulkForm(request.POST, request.FILES)
        if form.is_valid():
            matches = fulltexts.bulk_attach(review, form.cleaned_data["files"], user=request.user)
            form = BulkForm()
    else:
        form = BulkForm()
    context = {
        "review": review,
        "membership": membership,
        "form": form,
        "matches": matches,
        "attached": [m for m in matches or () if m.record],
        "refused": [m for m in matches or () if not m.record],
        "max_mb": fulltexts.max_size() // (1024 * 1024),
    }
    return render(request, "screening/fulltext_bulk.html", context)


@login_required
@require_POST
def fulltext_open_access(request, slug):
    """Queue the search for open-access copies of every full-text record without a PDF (or of
    one record, ``record=pk``)."""
    review, membership = review_for_member(request, slug, SCREENING_ROLES)
    one = request.POST.get("record", "")
    ids = fulltext_tasks.records_to_search(review, int(one) if one.isdigit() else None)
    if not ids:
        messages.info(request, "Every record at full text already has a PDF: nothing to search for.")
        return redirect("screening:screen", review.slug, Stage.FULL_TEXT)
    try:
        job = fulltext_tasks.enqueue_open_access(review, ids, user=request.user)
    except jobs.JobNotQueued:
        messages.error(request, "The search could not be queued (the task queue did not answer); try again.")
        return redirect("screening:screen", review.slug, Stage.FULL_TEXT)
    return redirect(reverse("review:job", args=[review.slug, job.pk]))
