from django.core.management.base import BaseCommand, CommandError

from review import sources
from review.importing import record_count
from review.management.source_options import add_source_arguments, review_and_user, source_details


class Command(BaseCommand):
    help = (
        "Log the records a source identified without importing them (citation searching, websites, "
        "organisations, a register searched by hand): they count in the search log and PRISMA."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the review's slug")
        parser.add_argument("count", type=int, help="how many records the source identified")
        add_source_arguments(parser, source_help="the source, e.g. 'Citation searching' (required)")

    def handle(self, *args, slug, count, user, **options):
        review, run_by = review_and_user(slug, user)
        details = source_details(options)
        if not details.searched_on:
            raise CommandError("Give the date the source was searched: --date YYYY-MM-DD.")
        try:
            search = record_count(review=review, count=count, details=details, user=run_by)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        kind = dict(zip(sources.SOURCE_TYPES, ("database", "register", "other methods"), strict=True))
        self.stdout.write(
            f"{search.source} ({kind[search.source_type]}, searched {search.searched_on.isoformat()}): "
            f"{search.hits} records identified, counted (not imported)"
        )
