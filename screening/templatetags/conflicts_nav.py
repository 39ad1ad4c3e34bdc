"""The screening part of a review's navigation: the screening pages for those who screen, the
conflicts link (with the open count) for those who resolve; nobody sees a link that would refuse them."""

from django import template

from review.models import Membership, Stage
from screening.conflicts import open_counts

register = template.Library()


def _membership(context, review):
    membership = context.get("membership")
    if not isinstance(membership, Membership) or membership.review_id != review.pk:
        request = context.get("request")
        user_id = request.user.pk if request is not None else None
        membership = Membership.objects.filter(review=review, user_id=user_id).first()
    return membership


@register.inclusion_tag("screening/_screening_nav.html", takes_context=True)
def screening_nav(context, review):
    membership = _membership(context, review)
    resolver_match = getattr(context.get("request"), "resolver_match", None)
    return {
        "review": review,
        "can_screen": membership is not None and membership.can_screen,
        "here": getattr(resolver_match, "view_name", ""),
        "stage_here": getattr(resolver_match, "kwargs", {}).get("stage"),
        "conflicts": _conflicts_link(context, review, membership),
    }


def _conflicts_link(context, review, membership):
    if membership is None or not membership.resolves_conflicts:
        return {"show": False}
    counts = open_counts(review)
    # Straight to the stage that has conflicts, title/abstract first.
    stage = Stage.FULL_TEXT if counts[Stage.FULL_TEXT] and not counts[Stage.TITLE_ABSTRACT] else Stage.TITLE_ABSTRACT
    resolver_match = getattr(context.get("request"), "resolver_match", None)
    here = resolver_match is not None and resolver_match.view_name.startswith("screening:conflicts")
    return {"show": True, "review": review, "stage": stage, "open": sum(counts.values()), "here": here}
