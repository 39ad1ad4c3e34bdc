from django.core.management.base import BaseCommand, CommandError

from review.reviews import create_review, find_user


class Command(BaseCommand):
    help = "Create a review project owned by an existing account (add others with add_member)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--title", required=True)
        parser.add_argument("--question", default="")
        parser.add_argument("--owner", help="username or e-mail address of the owner (an existing account; required)")
        parser.add_argument(
            "--reviewers-per-record",
            type=int,
            default=1,
            help="how many reviewers screen each record independently (both stages; 1 = single screening)",
        )

    def handle(self, *args, slug, title, question, owner, reviewers_per_record, **options):
        if not owner:
            raise CommandError(
                "A review needs an owner: pass --owner USERNAME (an existing account). Without one nobody "
                "could open the review, since every page of a review is for its members."
            )
        if reviewers_per_record < 1:
            raise CommandError("--reviewers-per-record must be at least 1.")
        try:
            review = create_review(
                slug=slug,
                title=title,
                owner=find_user(owner),
                question=question,
                title_abstract_reviewers=reviewers_per_record,
                full_text_reviewers=reviewers_per_record,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Created review {review.slug!r}: {review.title}, owned by {owner}")
