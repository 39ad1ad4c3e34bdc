"""Fetch-and-authorise helpers: every view reaches a review through these."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404

from review.models import Membership, Record, Review, Role

SCREENING_ROLES = (Role.OWNER, Role.REVIEWER)


def review_for_member(request, slug, roles=None):
    """The review and the user's membership; 404 for outsiders, 403 when the role is not in ``roles``."""
    membership = Membership.objects.select_related("review").filter(review__slug=slug, user_id=request.user.pk).first()
    if membership is None:
        # Same answer whether the review exists or not: outsiders learn nothing.
        raise Http404("No such review")
    if roles is not None and membership.role not in roles:
        raise PermissionDenied("Your role in this review does not allow this.")
    return membership.review, membership


def record_for_member(request, slug, pk, roles=None):
    review, membership = review_for_member(request, slug, roles)
    record = get_object_or_404(Record, review=review, pk=pk)
    return review, membership, record


__all__ = ["review_for_member", "record_for_member", "SCREENING_ROLES", "Review"]
