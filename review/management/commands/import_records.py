from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from review.article import ImportFileError
from review.importing import import_file
from review.models import Review


class Command(BaseCommand):
    help = (
        "Import an export file (PubMed XML, MEDLINE/.nbib, RIS, CSV/TSV, .xlsx) into a review; "
        "the format is told from the content and duplicates are linked."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the review's slug")
        parser.add_argument("file", help="path of the export file")
        parser.add_argument("--source", help="database name for the search log (default: from the file)")
        parser.add_argument("--user", help="username recorded as having run the import")

    def handle(self, *args, slug, file, source, user, **options):
        review = Review.objects.filter(slug=slug).first()
        if review is None:
            raise CommandError(f"No review with slug {slug!r}.")
        run_by = None
        if user:
            run_by = get_user_model().objects.filter(username=user).first()
            if run_by is None:
                raise CommandError(f"No user named {user!r}.")
        try:
            result = import_file(review=review, path=file, source=source, user=run_by)
        except ImportFileError as exc:
            raise CommandError(f"Nothing imported: {exc}") from exc
        for warning in result.warnings:
            self.stderr.write(f"warning: {warning}")
        search = result.search
        self.stdout.write(
            f"{search.filename} ({search.file_format}, source {search.source}): {result.added} added, "
            f"{result.duplicates} duplicates, {result.skipped} skipped"
            + (f", {result.empty} empty left out" if result.empty else "")
        )
