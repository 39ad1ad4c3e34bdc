"""The conflicts link in a review's navigation: only for those who resolve, with the open count."""

from django import template

from review.models import Membership, Stage
from screening.conflicts import open_counts

register = template.Library()


@register.inclusion_tag("screening/_conflicts_nav.html", takes_context=True)
def conflicts_nav(context, review):
    membership = context.get("membership")
    if not isinstance(membership, Membership) or membership.review_id != review.pk:
        request = context.get("request")
        user_id = request.user.pk if request is not None else None
        membership = Membership.objects.filter(review=review, user_id=user_id).first()
    if membership is None or not membership.resolves_conflicts:
        return {"show": False}
    counts = open_counts(review)
    # Straight to the stage that has conflicts, title/abstract first.
    stage = Stage.FULL_TEXT if counts[Stage.FULL_TEXT] and not counts[Stage.TITLE_ABSTRACT] else Stage.TITLE_ABSTRACT
    resolver_match = getattr(context.get("request"), "resolver_match", None)
    here = resolver_match is not None and resolver_match.view_name.startswith("screening:conflicts")
    return {"show": True, "review": review, "stage": stage, "open": sum(counts.values()), "here": here}
