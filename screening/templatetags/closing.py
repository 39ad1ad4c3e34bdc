"""The dashboard's closure controls (review_detail.html loads these; review never imports screening):
a stage's "Close on this recommendation" button, and the stages closed on the stopping rule."""

from django import template

from screening import closing
from screening.models import StageClosure

register = template.Library()


@register.inclusion_tag("screening/_close_button.html")
def close_button(review, membership, progress):
    """For an owner, when the rule says stop and records are left: the button, or what blocks it."""
    advice = progress.advice
    if not (membership.is_owner and advice is not None and advice.stop and progress.unscreened):
        return {"show": False}
    if closing.open_closure(review, progress.stage):
        return {"show": False}
    return {
        "show": True,
        "review": review,
        "stage": progress.stage,
        "waiting": closing.unsettled_with_votes(review, progress.stage).count(),
    }


@register.inclusion_tag("screening/_closures.html")
def closures(review, membership):
    """Every closure of the review (open ones first), with Reopen for owners. The same for every
    member: a closure reveals no vote."""
    rows = sorted(closing.history(review), key=lambda c: (not c.is_open, c.closed_at))
    return {"review": review, "membership": membership, "closures": rows}


@register.simple_tag
def stage_closure(review, stage):
    """The closure that holds now at ``stage`` of ``review``, or None."""
    return closing.open_closure(review, stage)


@register.simple_tag
def closure_of(record, stage):
    """The open closure that marked ``record`` at ``stage`` ineligible by automation, or None."""
    return StageClosure.objects.filter(
        review_id=record.review_id, stage=stage, reopened_at__isnull=True, records__record=record
    ).first()


# An owner's action on the stopping panel (targets, random sample, close, reopen) comes back to the
# dashboard scrolled to that stage's panel, far below the page's message list: its message is shown
# in the panel, where the owner is looking. Such messages carry the panel's id as their extra tag.
def panel_tag(stage):
    """The extra tag that puts a message in ``stage``'s stopping panel."""
    return f"stopping-{getattr(stage, 'value', stage)}"


@register.filter
def panel_messages(messages, stage):
    """The messages for ``stage``'s stopping panel."""
    return [m for m in messages if m.extra_tags == panel_tag(stage)]


@register.filter
def outside_panels(messages, stopping):
    """The messages for the top of the page: all but those of the stopping panels shown
    (``stopping``: the dashboard's [(progress, svg)]); a panel not shown leaves its message here."""
    shown = {panel_tag(progress.stage) for progress, _ in stopping or ()}
    return [m for m in messages if m.extra_tags not in shown]
