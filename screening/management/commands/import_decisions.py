from django.core.management.base import BaseCommand, CommandError

from review.models import Review
from screening.decision_import import DecisionImportError, import_decisions


class Command(BaseCommand):
    help = (
        "Load screening decisions made elsewhere from a CSV (columns: pmid or doi or title, reviewer, stage, "
        "decision, reason; optional note, date). Validates every row first; imports all or nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("file")

    def handle(self, *args, slug, file, **options):
        review = Review.objects.filter(slug=slug).first()
        if review is None:
            raise CommandError(f"No review with slug {slug!r}.")
        try:
            result = import_decisions(review=review, path=file)
        except FileNotFoundError as exc:
            raise CommandError(f"{file}: no such file") from exc
        except DecisionImportError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(result.summary())
