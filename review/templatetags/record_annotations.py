from django import template

from review.access import SCREENING_ROLES
from review.annotation_views import annotations_context
from review.models import Membership

register = template.Library()


@register.inclusion_tag("review/_annotations.html", takes_context=True)
def record_annotations(context, record, next=""):
    """The record's tags and notes with their forms; ``next`` is where a plain form post returns."""
    request = context["request"]
    membership = context.get("membership")
    if isinstance(membership, Membership) and membership.review_id == record.review_id:
        role = membership.role
    else:
        role = (
            Membership.objects.filter(review_id=record.review_id, user_id=request.user.pk)
            .values_list("role", flat=True)
            .first()
        )
    if not next and request.method == "GET":
        next = request.get_full_path()
    review = context.get("review")
    if review is None or review.pk != record.review_id:
        review = record.review
    return annotations_context(review, record, can_edit=role in SCREENING_ROLES, next_url=next)
