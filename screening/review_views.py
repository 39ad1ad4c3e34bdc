"""Review-level pages that show screening state, under the review's URLs (``review:`` names).

The dashboard (progress, conflicts, agreement, the stopping rule), the settings page (changing how
votes combine recomputes outcomes), blinding, a record's page (its votes and history as blinding
allows), the members page (votes per member) and the audit trail. They live here because review
never imports screening; sieve/urls.py mounts them among the review's pages.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from review import invitations, jobs
from review.access import record_for_member, review_for_member
from review.forms import InviteForm, MergeForm, ReviewForm, RoleForm
from review.models import Review, Role, Stage
from screening import audit, conflicts, progress_report, queue, status, visibility
from screening.blinding import lift_blinding
from screening.models import Decision
from screening.review_settings import preview_update, update_review
from screening.stages import passes_title_abstract

OWNER = (Role.OWNER,)


@login_required
@require_GET
def review_detail(request, slug):
    review, membership = review_for_member(request, slug)
    counts = status.review_status(review)
    for stage in Stage:
        # Conflict counts and agreement tell a disagreement from a missing vote: blinded like the votes.
        counts[stage.value] = visibility.shown_stage_status(counts[stage.value], membership, stage)
    stages = [
        (
            stage.value,
            stage.label,
            counts[stage.value],
            queue.progress(review, request.user, stage) if membership.can_screen else None,
            review.blinding_lifted(stage),
        )
        for stage in Stage
    ]
    context = {
        "review": review,
        "membership": membership,
        "status": counts,
        "stages": stages,
        "open_conflicts": conflicts.open_counts(review) if membership.resolves_conflicts else None,
        "members": review.memberships.select_related("user").order_by("role", "user__username"),
        "searches": review.searches.select_related("run_by").order_by("-run_at", "-pk")[:5],
        "jobs": jobs.on_dashboard(review, membership),
        **_stopping_context(review),
    }
    return render(request, "screening/review_detail.html", context)


def _stopping_context(review):
    # Reconciled outcomes only (screening/progress_report.py): the same for every member.
    progresses = progress_report.review_progress(review)
    return {
        "stopping": [(p, progress_report.recall_curve_svg(p)) for p in progresses if p.n_total],
        "stopping_explanation": progress_report.explanation(),
        "sample_explanation": progress_report.sample_explanation(),
        "methods_paragraph": progress_report.methods_paragraph(review, progresses),
    }


@login_required
def review_settings(request, slug):
    review, membership = review_for_member(request, slug, OWNER)
    form = ReviewForm(request.POST or None, instance=Review.objects.get(pk=review.pk))
    if request.method == "POST" and form.is_valid():
        preview = preview_update(review, **form.cleaned_data)
        if preview.needs_confirmation and not request.POST.get("confirm"):
            # Outcomes would be recomputed from the votes cast: say how, and save only on Confirm.
            context = {"form": form, "review": review, "membership": membership, "preview": preview}
            return render(request, "screening/review_settings_confirm.html", context)
        try:
            update_review(review, user=request.user, **form.cleaned_data)
        except ValueError as e:
            form.add_error(None, str(e))
        else:
            messages.success(request, "Settings saved.")
            return redirect(review)
    return render(request, "review/review_form.html", {"form": form, "review": review, "membership": membership})


@login_required
@require_POST
def blinding_lift(request, slug, stage):
    review, _ = review_for_member(request, slug, OWNER)
    if stage not in Stage.values:
        raise Http404("No such screening stage")
    try:
        lift_blinding(review, stage=stage, by=request.user)
    except ValueError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"Blinding lifted at {Stage(stage).label.lower()}: every member now sees all votes.")
    return redirect(review)


@login_required
@require_GET
def audit_csv(request, slug):
    review, membership = review_for_member(request, slug)
    response = StreamingHttpResponse(audit.audit_csv_chunks(review, membership), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{review.slug}-audit-trail.csv"'
    return response


@login_required
@require_GET
def record_detail(request, slug, pk):
    review, membership, record = record_for_member(request, slug, pk)
    context = {
        "review": review,
        "membership": membership,
        "record": record,
        "original": record.duplicate_of,
        "duplicates": record.duplicates.order_by("pk"),
        "ta_shown": visibility.shown_outcome(record, Stage.TITLE_ABSTRACT, membership),
        "ft_shown": visibility.shown_outcome(record, Stage.FULL_TEXT, membership),
        "at_full_text": passes_title_abstract(record, review),
        "blind": bool(visibility.blind_stages(review, membership)),
        "decisions": visibility.visible_decisions(record, membership),
        "events": [(e, audit.describe_event(e, record)) for e in audit.record_history(record, membership)],
        "merge_form": MergeForm(),
    }
    return render(request, "screening/record_detail.html", context)


@login_required
@require_GET
def members(request, slug):
    review, membership = review_for_member(request, slug, OWNER)
    return _members_page(request, review, membership, InviteForm())


def _members_page(request, review, membership, form):
    votes = dict(
        Decision.objects.for_review(review).current().values_list("reviewer").annotate(n=Count("pk")).order_by()
    )
    rows = [
        (m, RoleForm(initial={"role": m.role}, prefix=f"m{m.pk}"), votes.get(m.user_id, 0))
        for m in review.memberships.select_related("user").order_by("user__username")
    ]
    pending = review.invitations.open().select_related("invited_by").order_by("email")
    context = {"review": review, "membership": membership, "rows": rows, "form": form, "invitations": pending}
    return render(request, "screening/members.html", context)


@login_required
@require_POST
def member_invite(request, slug):
    review, membership = review_for_member(request, slug, OWNER)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            new = invitations.invite(
                review, email=form.cleaned_data["email"], role=form.cleaned_data["role"], by=request.user
            )
        except ValueError as e:
            form.add_error("email", str(e))
        else:
            # The same words whether or not the address has an account: the owner learns nothing.
            invitation = new.invitation
            messages.success(
                request,
                f"Invitation to {invitation.email} as {invitation.get_role_display().lower()} created. "
                f"Send them this link (it works once, for {invitations.INVITATION_DAYS} days): "
                f"{request.build_absolute_uri(new.path)}",
            )
            return redirect("review:members", review.slug)
    return _members_page(request, review, membership, form)
