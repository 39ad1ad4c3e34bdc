from django.core.management.base import BaseCommand, CommandError

from review import removal
from review.management.source_options import review_and_user
from review.models import Search


class Command(BaseCommand):
    help = (
        "Undo a file import or a PubMed search: its records and their duplicate links go; the search "
        "log keeps it, marked undone. Refused once any of its records has been worked on."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the review's slug")
        parser.add_argument("search_id", type=int, help="the search's number (its id in the search log)")
        parser.add_argument("--user", help="the username recorded in the audit trail as having undone it")

    def handle(self, *args, slug, search_id, user, **options):
        review, undone_by = review_and_user(slug, user)
        search = Search.objects.filter(review=review, pk=search_id).first()
        if search is None:
            raise CommandError(f"No search or import #{search_id} in review {slug!r}.")
        try:
            plan = removal.undo_import(search, user=undone_by)
        except removal.RemovalRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{search.source} (#{search.pk}) undone: {plan.records} records removed, {plan.restored} records of "
            f"other imports are originals again, {plan.relinked} relinked."
        )
