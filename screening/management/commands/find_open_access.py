"""Find open-access full texts in PubMed Central for a review's full-text records (as the web's job does)."""

from django.core.management.base import BaseCommand, CommandError

from review import fulltexts, pubmed
from review.models import Review
from screening.fulltext_tasks import records_to_search


class Command(BaseCommand):
    help = "Ask PubMed Central for open-access PDFs of the records at full text that have a PMID and no PDF."

    def add_arguments(self, parser):
        parser.add_argument("slug")

    def handle(self, *args, slug, **options):
        review = Review.objects.filter(slug=slug).first()
        if review is None:
            raise CommandError(f"No review {slug!r}.")
        ids = records_to_search(review)
        try:
            result = fulltexts.find_open_access(review, ids)
        except pubmed.PubMedError as error:
            raise CommandError(str(error)) from None
        for note in result.notes:
            self.stdout.write(note)
        self.stdout.write(result.summary())
