"""Background work of the review app (Django's tasks API; `manage.py db_worker` runs it)."""

from django_tasks import task

from review import removal
from review.models import Review


@task()
def delete_review(review_id):
    """Delete a review its owner confirmed deleting, when it is too big to delete in the request."""
    review = Review.objects.filter(pk=review_id).first()
    if review is None:
        return None  # deleted meanwhile (the owner asked twice)
    return removal.delete_review(review, confirmation=review.slug)
