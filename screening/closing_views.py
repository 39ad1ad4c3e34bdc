"""Closing a stage on the stopping rule's recommendation, and reopening it: owner only."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_http_methods, require_POST

from review.access import review_for_member
from review.models import Role
from screening import closing
from screening.views import _stage, stopping_action


def _confirmed_close(request, review, stage):
    expect = request.POST.get("expect", "")
    if not expect.isdigit():
        raise closing.ClosureError("Confirm how many records to mark from the confirmation page.")
    return closing.close_stage(review, stage, request.user, expect=int(expect))


@login_required
@require_http_methods(["GET", "POST"])
def close_stage(request, slug, stage):
    if request.method == "POST":
        return stopping_action(
            request,
            slug,
            stage,
            lambda review, stage: _confirmed_close(request, review, stage),
            closing.ClosureError,
            lambda stage, closure: (
                f"{stage.label} screening closed on the stopping rule: {closure.records_marked} records marked "
                "ineligible by automation tools."
            ),
        )
    review, membership = review_for_member(request, slug, [Role.OWNER])
    stage = _stage(stage)
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
    return stopping_action(
        request,
        slug,
        stage,
        lambda review, stage: closing.reopen_stage(review, stage, request.user),
        closing.ClosureError,
        lambda stage, closure: (
            f"{stage.label} screening reopened: {closure.records_marked} records returned to screening."
        ),
    )
