from django.core.management.base import BaseCommand, CommandError

from review import removal
from review.models import Review


class Command(BaseCommand):
    help = "Delete a review and everything in it (records, searches, decisions, audit trail). Cannot be undone."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the review's slug")
        parser.add_argument("--yes", action="store_true", help="confirm: without it nothing is deleted")

    def handle(self, *args, slug, yes, **options):
        review = Review.objects.filter(slug=slug).first()
        if review is None:
            raise CommandError(f"No review with slug {slug!r}.")
        counts = removal.review_counts(review)
        summary = ", ".join(f"{n} {what}" for what, n in counts.items())
        if not yes:
            raise CommandError(f"Review {slug!r} holds {summary}. Run again with --yes to delete it all.")
        removal.delete_review(review, confirmation=review.slug)
        self.stdout.write(f"Deleted review {slug!r}: {summary}.")
