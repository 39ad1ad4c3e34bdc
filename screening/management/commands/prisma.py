import sys

from django.core.management.base import BaseCommand, CommandError

from review.models import Review
from screening import prisma
from screening.prisma_svg import render

TEXT_FORMATS = ("svg", "json", "prisma2020-csv")
BINARY_FORMATS = ("png", "pdf")


class Command(BaseCommand):
    help = (
        "Write a review's PRISMA 2020 flow diagram (SVG, PNG, PDF), its counts (JSON) "
        "or the CSV the PRISMA2020 R package reads."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The review's slug")
        parser.add_argument("--format", default="svg", choices=TEXT_FORMATS + BINARY_FORMATS)
        parser.add_argument("-o", "--output", default="-", help="File to write; '-' (default) for standard output")
        parser.add_argument("--title", default=None, help="Title above the diagram (default: the review's title)")

    def handle(self, *args, slug, format, output, title, **options):
        review = Review.objects.filter(slug=slug).first()
        if review is None:
            raise CommandError(f"No review with slug {slug!r}.")
        counts = prisma.compute(review)
        content = render(counts, format, title=review.title if title is None else title)
        if output == "-":
            if isinstance(content, bytes):
                if sys.stdout.isatty():
                    raise CommandError(f"{format.upper()} is binary: give a file with -o FILE.")
                sys.stdout.buffer.write(content)
                sys.stdout.flush()
            else:
                self.stdout.write(content, ending="")
            return
        try:
            if isinstance(content, bytes):
                with open(output, "wb") as fh:
                    fh.write(content)
            else:
                with open(output, "w", encoding="utf-8", newline="") as fh:
                    fh.write(content)
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror}") from exc
        self.stderr.write(f"Wrote {format} for {review.slug} to {output}")
