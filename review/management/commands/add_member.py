from django.core.management.base import BaseCommand, CommandError

from review.models import Review, Role
from review.reviews import add_member_directly, find_user


class Command(BaseCommand):
    help = (
        "Make an existing account a member of a review, for scripted set-ups (the web invites people "
        "instead). Logged in the review's audit trail."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the review's slug")
        parser.add_argument("user", help="username or e-mail address of an existing account")
        parser.add_argument("--role", default=Role.REVIEWER, help=f"one of {', '.join(Role.values)} (default reviewer)")
        parser.add_argument("--by", help="username or e-mail address of who is adding them (in the audit trail)")

    def handle(self, *args, slug, user, role, by, **options):
        review = Review.objects.filter(slug=slug).first()
        if review is None:
            raise CommandError(f"No review with the slug {slug!r}.")
        if role not in Role.values:
            raise CommandError(f"Unknown role {role!r}: use one of {', '.join(Role.values)}.")
        try:
            member = find_user(user)
            actor = find_user(by) if by else None
            add_member_directly(review, user=member, role=role, by=actor, via="add_member command")
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{member.get_username()} is now {Role(role).label.lower()} of {review.slug!r}.")
