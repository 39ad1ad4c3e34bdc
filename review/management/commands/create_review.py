from django.core.management.base import BaseCommand, CommandError

from review.reviews import create_review, find_user


class Command(BaseCommand):
    help = "Create a review project owned by an existing account (add others with add_member)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--title", required=True)
        parser.add_argument("--question", default="")
        parser.add_argument(
            "--owner",
            help="username or e-mail address of the owner (an existing account); without it the review has no owner until add_member gives it one",
        )
        parser.add_argument(
            "--reviewers-per-record",
            type=int,
            default=1,
            help="how many reviewers screen each record independently (both stages; 1 = single screening)",
        )

    def handle(self, *args, slug, title, question, owner, reviewers_per_record, **options):
        if reviewers_per_record < 1:
            raise CommandError("--reviewers-per-record must be at least 1.")
        try:
            review = create_review(
                slug=slug,
                title=title,
                owner=find_user(owner) if owner else None,
                allow_no_owner=not owner,
                question=question,
                title_abstract_reviewers=reviewers_per_record,
                full_text_reviewers=reviewers_per_record,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if owner:
            self.stdout.write(f"Created review {review.slug!r}: {review.title}, owned by {owner}")
            return
        self.stdout.write(f"Created review {review.slug!r}: {review.title}, with no owner yet")
        self.stderr.write(
            f"Warning: review {review.slug!r} has no owner, so nobody can open it until one is added: "
            f"manage.py add_member {review.slug} USERNAME --role owner (pass --owner to create_review to "
            "avoid this; reviewers named in an imported decisions file become members)."
        )
