"""Closing a stage on the stopping rule's recommendation, and reopening it: owner only."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from review.access import review_for_member
from review.models import Role
from screening import closing
from screening.templatetags.closing import panel_tag
from screening.views import _stage


def _dashboard(review, stage):
    return redirect(reverse("review:detail", args=[review.slug]) + f"#{panel_tag(stage)}")


@login_required
@require_http_methods(["GET", "POST"])
def close_stage(request, slug, stage):
    review, membership = review_for_member(request, slug, [Role.OWNER])
    stage = _stage(stage)
    if request.method == "POST":
        expect = request.POST.get("expect", "")
        try:
            if not expect.isdigit():
                raise closing.ClosureError("Confirm how many records to mark from the confirmation page.")
            closure = closing.close_stage(review, stage, request.user, expect=int(expect))
        except closing.ClosureError as e:
            messages.error(request, str(e), extra_tags=panel_tag(stage))
        else:
            messages.success(
                request,
                f"{stage.label} screening closed on the stopping rule: {closure.records_marked} records marked "
                "ineligible by automation tools.",
                extra_tags=panel_tag(stage),
            )
        return _dashboard(review, stage)
    try:
        progress = closing.check_closable(review, stage)
    except closing.ClosureError as e:
        progress, problem = None, str(e)
    else:
        problem = ""
    context = {
        "review": review,
        "membership": membership,
        "stage": stage,
        "progress": progress,
        "problem": problem,
        "to_mark": closing.unscreened(review, stage).count() if progress else 0,
    }
    return render(request, "screening/close_stage.html", context)


@login_required
@require_POST
def reopen_stage(request, slug, stage):
    review, _ = review_for_member(request, slug, [Role.OWNER])
    stage = _stage(stage)
    try:
        closure = closing.reopen_stage(review, stage, request.user)
    except closing.ClosureError as e:
        messages.error(request, str(e), extra_tags=panel_tag(stage))
    else:
        messages.success(
            request,
            f"{stage.label} screening reopened: {closure.records_marked} records returned to screening.",
            extra_tags=panel_tag(stage),
        )
    return _dashboard(review, stage)
