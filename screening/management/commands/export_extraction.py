import sys

from django.core.management.base import BaseCommand, CommandError

from review.models import Review
from screening.extraction import FORMATS, export


class Command(BaseCommand):
    help = "Write a review's data-extraction table (one row per included study) as CSV or XLSX."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The review's slug")
        parser.add_argument("--format", default="csv", choices=FORMATS)
        parser.add_argument("-o", "--output", default="-", help="File to write; '-' (default) for standard output")

    def handle(self, *args, slug, format, output, **options):
        review = Review.objects.filter(slug=slug).first()
        if review is None:
            raise CommandError(f"No review with slug {slug!r}.")
        content = export(review, format)
        if output == "-":
            if format == "csv":
                self.stdout.write(content.decode("utf-8"), ending="")
                return
            if sys.stdout.isatty():
                raise CommandError("XLSX is binary: give a file with -o FILE.")
            sys.stdout.buffer.write(content)
            sys.stdout.flush()
            return
        try:
            with open(output, "wb") as fh:
                fh.write(content)
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror}") from exc
        self.stderr.write(f"Wrote the extraction table of {review.slug} to {output}")
