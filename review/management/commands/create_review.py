from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from review.reviews import create_review


class Command(BaseCommand):
    help = "Create a review project."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--title", required=True)
        parser.add_argument("--question", default="")
        parser.add_argument("--owner", help="username of the owner (must exist)")
        parser.add_argument(
            "--reviewers-per-record",
            type=int,
            default=1,
            help="how many reviewers screen each record independently (both stages; 1 = single screening)",
        )

    def handle(self, *args, slug, title, question, owner, reviewers_per_record, **options):
        user = None
        if owner:
            user = get_user_model().objects.filter(username=owner).first()
            if user is None:
                raise CommandError(f"No user named {owner!r}.")
        if reviewers_per_record < 1:
            raise CommandError("--reviewers-per-record must be at least 1.")
        try:
            review = create_review(
                slug=slug,
                title=title,
                owner=user,
                question=question,
                title_abstract_reviewers=reviewers_per_record,
                full_text_reviewers=reviewers_per_record,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Created review {review.slug!r}: {review.title}")
