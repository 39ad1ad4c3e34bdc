from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from review.models import Review
from transfer.exporting import ExportError, export_review


class Command(BaseCommand):
    help = "Write a whole review (records, searches, members, decisions, audit trail...) to a review file."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("-o", "--output", required=True, help="the review file to write (a .zip)")

    def handle(self, *args, slug, output, **options):
        review = Review.objects.filter(slug=slug).first()
        if review is None:
            raise CommandError(f"No review with the slug {slug!r}.")
        try:
            result = export_review(review=review, out=output)
        except ExportError as error:
            Path(output).unlink(missing_ok=True)  # not a review file: half of one
            raise CommandError(str(error)) from None
        rows = ", ".join(f"{n} {name}" for name, n in result.counts.items() if n)
        pdfs = f", {result.pdfs} PDFs ({result.pdf_bytes / 1e6:,.1f} MB)" if result.pdfs else ""
        self.stdout.write(f"Wrote {review.slug} to {output}: {rows}{pdfs}.")
