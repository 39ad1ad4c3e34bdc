from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render

from review import removal, tasks
from review.access import review_for_member
from review.forms import DeleteReviewForm
from review.models import Role, Search

OWNER = (Role.OWNER,)
# Above this many records a review is deleted by the worker: on PostgreSQL each deleted record
# costs a check of every foreign key pointing at it (about a minute at 100,000 on a busy box).
DELETE_IN_REQUEST_UP_TO = 20_000


@login_required
def search_undo(request, slug, pk):
    review, membership = review_for_member(request, slug, OWNER)
    search = get_object_or_404(Search, review=review, pk=pk)
    if request.method == "POST":
        try:
            plan = removal.undo_import(search, user=request.user)
        except removal.RemovalRefused as e:
            messages.error(request, str(e))
        else:
            messages.success(
                request,
                f"{search.source}: undone; {plan.records:,} records removed. The search log keeps it, marked undone.",
            )
        return redirect("review:searches", review.slug)
    context = {"review": review, "membership": membership, "search": search, "plan": removal.plan_undo(search)}
    return render(request, "review/search_undo.html", context)


@login_required
def review_delete(request, slug):
    review, membership = review_for_member(request, slug, OWNER)
    form = DeleteReviewForm(request.POST or None)
    counts = removal.review_counts(review)
    if request.method == "POST" and form.is_valid():
        try:
            removal.check_confirmation(review, form.cleaned_data["confirmation"])
        except removal.RemovalRefused as e:
            form.add_error("confirmation", str(e))
        else:
            if counts["records"] > DELETE_IN_REQUEST_UP_TO:
                tasks.delete_review.enqueue(review.pk)
                messages.info(
                    request,
                    f"Review “{review.title}” ({counts['records']:,} records) is being deleted in the background; "
                    "it leaves this list within a few minutes.",
                )
            else:
                removal.delete_review(review, confirmation=form.cleaned_data["confirmation"])
                messages.success(request, f"Review “{review.title}” and everything in it deleted.")
            return redirect("review:list")
    context = {"review": review, "membership": membership, "form": form, "counts": counts}
    return render(request, "review/review_delete.html", context)
