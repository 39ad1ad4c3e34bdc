from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from review import annotations
from review.access import SCREENING_ROLES, record_for_member, review_for_member
from review.models import Role, Tag

OWNER = (Role.OWNER,)


def annotations_context(review, record, *, can_edit, next_url="", error="", focus="", note_text=""):
    """Context for templates/review/_annotations.html (also used by its template tag)."""
    tags = list(record.tags.all())
    on_record = {t.pk for t in tags}
    suggestions = [t.name for t in Tag.objects.filter(review_id=record.review_id).only("name") if t.pk not in on_record]
    return {
        "record": record,
        "review": review,
        "tags": tags,
        "notes": list(record.notes.select_related("author")),
        "suggestions": suggestions,
        "can_edit": can_edit,
        "next": next_url,
        "error": error,
        "focus": focus,
        "note_text": note_text,
        "tag_max_length": annotations.TAG_MAX_LENGTH,
        "note_max_length": annotations.NOTE_MAX_LENGTH,
    }


def _next(request):
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return ""


def _done(request, review, record, *, error="", focus="", note_text=""):
    """htmx gets the re-rendered block; a plain form post goes back where it came from."""
    next_url = _next(request)
    if request.htmx:
        context = annotations_context(
            review, record, can_edit=True, next_url=next_url, error=error, focus=focus, note_text=note_text
        )
        return render(request, "review/_annotations.html", context, status=400 if error else 200)
    if error:
        messages.error(request, error)
    return redirect(next_url or reverse("review:record", args=[review.slug, record.pk]))


@login_required
@require_POST
def tag_add(request, slug, pk):
    review, _, record = record_for_member(request, slug, pk, SCREENING_ROLES)
    try:
        annotations.add_tag(record, request.POST.get("name", ""), user=request.user)
    except annotations.AnnotationError as error:
        return _done(request, review, record, error=str(error), focus="tag")
    return _done(request, review, record, focus="tag")


@login_required
@require_POST
def tag_remove(request, slug, pk, tag_pk):
    review, _, record = record_for_member(request, slug, pk, SCREENING_ROLES)
    tag = get_object_or_404(Tag, review=review, pk=tag_pk)
    annotations.remove_tag(record, tag, user=request.user)
    return _done(request, review, record)


@login_required
@require_POST
def note_add(request, slug, pk):
    review, _, record = record_for_member(request, slug, pk, SCREENING_ROLES)
    text = request.POST.get("text", "")
    try:
        annotations.add_note(record, text, user=request.user)
    except annotations.AnnotationError as error:
        return _done(request, review, record, error=str(error), focus="note", note_text=text)
    return _done(request, review, record)


# The review's tags, for the owner to rename or delete ------------------------------------------


@login_required
@require_GET
def tags(request, slug):
    review, membership = review_for_member(request, slug)
    rows = Tag.objects.filter(review=review).annotate(n_records=Count("record_tags"))
    return render(
        request,
        "review/tags.html",
        {"review": review, "tags": rows, "is_owner": membership.is_owner, "tag_max_length": annotations.TAG_MAX_LENGTH},
    )


@login_required
@require_POST
def tag_rename(request, slug, tag_pk):
    review, _ = review_for_member(request, slug, OWNER)
    tag = get_object_or_404(Tag, review=review, pk=tag_pk)
    old = tag.name
    try:
        kept = annotations.rename_tag(tag, request.POST.get("name", ""), user=request.user)
    except annotations.AnnotationError as error:
        messages.error(request, f"“{old}”: {error}")
    else:
        if kept.pk != tag.pk:
            messages.success(request, f"“{old}” merged into “{kept.name}”.")
        elif kept.name != old:
            messages.success(request, f"“{old}” renamed to “{kept.name}”.")
    return redirect("review:tags", review.slug)


@login_required
@require_POST
def tag_delete(request, slug, tag_pk):
    review, _ = review_for_member(request, slug, OWNER)
    tag = get_object_or_404(Tag, review=review, pk=tag_pk)
    n = annotations.delete_tag(tag, user=request.user)
    messages.success(request, f"Tag “{tag.name}” deleted from the review and from {n} record{'s' if n != 1 else ''}.")
    return redirect("review:tags", review.slug)
