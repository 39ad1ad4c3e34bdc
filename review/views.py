from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from review import importing, invitations, jobs, searchlog, sources, tasks, uploads
from review.access import SCREENING_ROLES, record_for_member, review_for_member
from review.forms import CountForm, ImportForm, MergeForm, PubMedSearchForm, ReviewForm, RoleForm, SearchEditForm
from review.models import Invitation, Membership, Record, Review, Role, Search
from review.reviews import change_role, create_review, remove_member, set_resolver

OWNER = (Role.OWNER,)


@login_required
@require_GET
def review_list(request):
    # Subqueries: for_user() already joins memberships, so a joined Count would see only the user's row.
    reviews = Review.objects.for_user(request.user).annotate(
        n_records=_count(Record.objects.filter(review=OuterRef("pk"))),
        n_members=_count(Membership.objects.filter(review=OuterRef("pk"))),
    )
    pending = Invitation.objects.for_invitee(request.user).select_related("review", "invited_by")
    return render(request, "review/review_list.html", {"reviews": reviews, "invitations": pending})


def _count(queryset):
    counted = queryset.order_by().values("review").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


@login_required
def review_create(request):
    form = ReviewForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            review = create_review(owner=request.user, **form.cleaned_data)
        except ValueError as e:  # a slug taken between validation and saving
            form.add_error(None, str(e))
        else:
            messages.success(request, f"Review “{review.title}” created. Next: run a search or import records.")
            return redirect(review)
    return render(request, "review/review_form.html", {"form": form, "creating": True})


@login_required
def pubmed_search(request, slug):
    review, membership = review_for_member(request, slug, SCREENING_ROLES)
    form = PubMedSearchForm(request.POST or None, initial={"query": review.pubmed_query})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = tasks.enqueue_search(
                review=review,
                user=request.user,
                query=data["query"],
                mindate=data["mindate"],
                maxdate=data["maxdate"],
                max_records=data["max_records"],
            )
        except jobs.JobNotQueued:
            form.add_error(None, QUEUE_DOWN)
        else:
            return redirect(job)
    return render(request, "review/search_form.html", {"form": form, "review": review, "membership": membership})


QUEUE_DOWN = "The background worker's queue did not answer; nothing was started. Try again in a moment."


@login_required
def import_file(request, slug):
    review, membership = review_for_member(request, slug, SCREENING_ROLES)
    if request.method == "POST":
        # An upload stopped for its size leaves no file (and no fields after it) in the POST.
        form = ImportForm(request.POST, request.FILES, refusal=uploads.refusal(request))
    else:
        form = ImportForm()
    if form.is_bound and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            job = tasks.enqueue_import(
                review=review, user=request.user, upload=upload, details=form.source_details().checked()
            )
        except ValueError as e:
            form.add_error(None, str(e))
        except jobs.JobNotQueued:
            form.add_error(None, QUEUE_DOWN)
        else:
            return redirect(job)
    return _import_page(request, review, membership, form, CountForm())


@login_required
@require_POST
def import_count(request, slug):
    review, membership = review_for_member(request, slug, OWNER)
    form = CountForm(request.POST)
    if form.is_valid():
        search = importing.record_count(
            review=review, count=form.cleaned_data["count"], details=form.source_details(), user=request.user
        )
        messages.success(request, f"{search.source}: {search.hits} records identified, counted (not imported).")
        return redirect("review:searches", review.slug)
    return _import_page(request, review, membership, ImportForm(), form)


def _import_page(request, review, membership, form, count_form):
    context = {"form": form, "count_form": count_form, "review": review, "membership": membership}
    return render(request, "review/import_form.html", context)


@login_required
@require_GET
def searches(request, slug):
    review, membership = review_for_member(request, slug)
    log = review.searches.select_related("run_by", "undone_by").order_by("run_at", "pk")
    context = {
        "review": review,
        "membership": membership,
        "searches": log,
        "log_events": searchlog.registered_rows(review),
    }
    return render(request, "review/searches.html", context)


@login_required
def search_edit(request, slug, pk):
    review, membership = review_for_member(request, slug, OWNER)
    search = get_object_or_404(Search, review=review, pk=pk)
    form = SearchEditForm(request.POST or None, search=search)
    if request.method == "POST" and form.is_valid():
        changed = importing.edit_search(
            search=search, details=form.source_details(), count=form.cleaned_data.get("count"), user=request.user
        )
        if changed:
            corrected = ", ".join(sources.LABELS[name] for name in changed)
            messages.success(request, f"{search.source}: {corrected} corrected.")
        else:
            messages.info(request, "Nothing changed.")
        return redirect("review:searches", review.slug)
    context = {"form": form, "search": search, "review": review, "membership": membership}
    return render(request, "review/search_edit.html", context)


@login_required
@require_GET
def searches_csv(request, slug):
    review, _ = review_for_member(request, slug)
    response = HttpResponse(searchlog.search_log_csv(review), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{review.slug}-search-log.csv"'
    return response


def _back(request, default):
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(default)


@login_required
@require_POST
def record_unmerge(request, slug, pk):
    _, _, record = record_for_member(request, slug, pk, SCREENING_ROLES)
    if record.duplicate_of_id is not None:
        importing.unmerge(record, user=request.user)
    if request.htmx:
        # The duplicates page swaps the row out: nothing left to show for it.
        return HttpResponse("")
    messages.success(request, f"Record #{record.pk} is not a duplicate; it will be screened on its own.")
    return _back(request, record_url(record))


@login_required
@require_POST
def record_merge(request, slug, pk):
    review, _, record = record_for_member(request, slug, pk, SCREENING_ROLES)
    form = MergeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the number of the record this one duplicates.")
        return redirect(record_url(record))
    into = Record.objects.filter(review=review, pk=form.cleaned_data["into"]).first()
    if into is None:
        messages.error(request, f"There is no record #{form.cleaned_data['into']} in this review.")
        return redirect(record_url(record))
    try:
        importing.merge(record, into=into, user=request.user)
    except ValueError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"Record #{record.pk} is now marked as a duplicate of #{record.duplicate_of_id}.")
    return redirect(record_url(record))


def record_url(record):
    return reverse("review:record", args=[record.review.slug, record.pk])


@login_required
@require_GET
def duplicates(request, slug):
    review, membership = review_for_member(request, slug)
    dups = (
        Record.objects.for_review(review).duplicates().select_related("duplicate_of").order_by("duplicate_of_id", "pk")
    )
    page = Paginator(dups, 200).get_page(request.GET.get("page"))
    context = {"review": review, "membership": membership, "page": page}
    return render(request, "review/duplicates.html", context)


@login_required
@require_POST
def invitation_revoke(request, slug, pk):
    review, _ = review_for_member(request, slug, OWNER)
    invitation = get_object_or_404(Invitation, review=review, pk=pk)
    try:
        invitations.revoke(invitation, by=request.user)
    except ValueError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"Invitation to {invitation.email} withdrawn; its link no longer works.")
    return redirect("review:members", review.slug)


def _member_for_owner(request, slug, pk):
    review, _ = review_for_member(request, slug, OWNER)
    return review, get_object_or_404(Membership.objects.select_related("user"), review=review, pk=pk)


@login_required
@require_POST
def member_role(request, slug, pk):
    review, member = _member_for_owner(request, slug, pk)
    form = RoleForm(request.POST, prefix=f"m{member.pk}")
    if form.is_valid():
        try:
            change_role(member, role=form.cleaned_data["role"], by=request.user)
        except ValueError as e:
            messages.error(request, str(e))
        else:
            messages.success(request, f"{member.user.get_username()} is now {member.get_role_display().lower()}.")
    if member.user_id == request.user.pk and member.role != Role.OWNER:
        return redirect(review)  # alice stepped down: the members page is no longer hers
    return redirect("review:members", review.slug)


@login_required
@require_POST
def member_resolver(request, slug, pk):
    review, member = _member_for_owner(request, slug, pk)
    can_resolve = request.POST.get("can_resolve") == "1"
    try:
        set_resolver(member, can_resolve=can_resolve, by=request.user)
    except ValueError as e:
        messages.error(request, str(e))
    else:
        name = member.user.get_username()
        done = "now resolves conflicts and sees every vote" if can_resolve else "no longer resolves conflicts"
        messages.success(request, f"{name} {done}.")
    return redirect("review:members", review.slug)


@login_required
@require_POST
def member_remove(request, slug, pk):
    review, member = _member_for_owner(request, slug, pk)
    try:
        remove_member(member, by=request.user)
    except ValueError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"{member.user.get_username()} removed; their decisions are kept.")
        if member.user_id == request.user.pk:
            return redirect("review:list")
    return redirect("review:members", review.slug)
