from django.core.management.base import BaseCommand, CommandError

from review.article import ImportFileError
from review.importing import import_file
from review.management.source_options import add_source_arguments, review_and_user, source_details


class Command(BaseCommand):
    help = (
        "Import an export file (PubMed XML, MEDLINE/.nbib, RIS, CSV/TSV, .xlsx) into a review; "
        "the format is told from the content and duplicates are linked. The source's database, "
        "platform, search date, query and limits, as typed, go to the search log."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the review's slug")
        parser.add_argument("file", help="path of the export file")
        add_source_arguments(parser, source_help="database name for the search log (default: from the file)")

    def handle(self, *args, slug, file, user, **options):
        review, run_by = review_and_user(slug, user)
        details = source_details(options)
        try:
            result = import_file(
                review=review,
                path=file,
                details=details,
                user=run_by,
                progress=self._progress if options["verbosity"] > 0 else None,
            )
        except ImportFileError as exc:
            raise CommandError(f"Nothing imported: {exc}") from exc
        if options["verbosity"] > 0:
            self.stderr.write("")  # end the progress line
        for warning in result.warnings:
            self.stderr.write(f"warning: {warning}")
        search = result.search
        self.stdout.write(
            f"{search.filename} ({search.file_format}, source {search.source}): {result.added} added, "
            f"{result.duplicates} duplicates, {result.skipped} skipped"
            + (f", {result.empty} empty left out" if result.empty else "")
        )

    def _progress(self, parsed):
        self.stderr.write(f"Read {parsed:,} records", ending="\r")
