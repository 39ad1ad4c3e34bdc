from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from review.models import Review
from screening.handouts import handout_csv_chunks


class Command(BaseCommand):
    help = (
        "Write a review's hand-out log as CSV: every record handed to a reviewer, with the order, "
        "model version, rank and score it had then (for the methods: what the model showed whom)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("-o", "--output", help="file to write (default: standard output)")

    def handle(self, *args, slug, output, **options):
        review = Review.objects.filter(slug=slug).first()
        if review is None:
            raise CommandError(f"No review with slug {slug!r}.")
        if output is None:
            for chunk in handout_csv_chunks(review):
                self.stdout.write(chunk, ending="")
            return
        target = Path(output)
        partial = target.with_name(f".{target.name}.partial")
        try:
            # Written whole or not at all: an interrupted export never leaves half a log under the name.
            with partial.open("w", encoding="utf-8", newline="") as handle:
                for chunk in handout_csv_chunks(review):
                    handle.write(chunk)
            partial.replace(target)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise CommandError(f"Cannot write {output}: {error.strerror or error}") from None
        self.stderr.write(f"Hand-out log of {review.slug} written to {output}")
