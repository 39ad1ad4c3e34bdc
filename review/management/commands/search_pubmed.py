from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from review.importing import run_search
from review.models import Review
from review.pubmed import PubMedError


class Command(BaseCommand):
    help = (
        "Search PubMed and add the records found to a review (PMIDs PubMed already brought, by an earlier "
        "search or an imported PubMed file, are skipped)."
    )

    def add_arguments(self, parser):
        parser.add_argument("review", help="the review's slug")
        parser.add_argument("query", help="a PubMed query, as typed on pubmed.ncbi.nlm.nih.gov")
        parser.add_argument("--mindate", help="earliest publication date: YYYY, YYYY/MM or YYYY/MM/DD")
        parser.add_argument("--maxdate", help="latest publication date: YYYY, YYYY/MM or YYYY/MM/DD")
        parser.add_argument("--max", type=int, dest="max_records", help="fetch at most this many records")
        parser.add_argument("--user", help="username to log as the one who ran the search")

    def handle(self, *args, review, query, mindate, maxdate, max_records, user, **options):
        try:
            target = Review.objects.get(slug=review)
        except Review.DoesNotExist:
            raise CommandError(f"No review with the slug {review!r}.") from None
        run_by = None
        if user:
            run_by = get_user_model().objects.filter(username=user).first()
            if run_by is None:
                raise CommandError(f"No user called {user!r}.")
        try:
            result = run_search(
                review=target,
                query=query,
                mindate=mindate,
                maxdate=maxdate,
                max_records=max_records,
                user=run_by,
                progress=self._progress if options["verbosity"] > 0 else None,
            )
        except PubMedError as exc:
            raise CommandError(str(exc)) from None
        search = result.search
        lines = [
            f"Query translation: {search.query_translation or '(none)'}",
            f"Hits: {search.hits}",
            f"Fetched: {search.fetched}",
            f"Added: {result.added}",
            f"Duplicates: {result.duplicates}",
            f"Already in the review (skipped): {result.skipped}",
        ]
        if search.mindate or search.maxdate:
            lines.insert(1, f"Publication dates: {search.mindate or '…'} to {search.maxdate or '…'}")
        warnings = [f"Warning: {warning}" for warning in result.warnings]
        self.stdout.write("\n".join(lines + search.log_notes() + warnings))

    def _progress(self, fetched, hits):
        self.stderr.write(f"Fetched {fetched:,} of {hits:,} records", ending="\r" if fetched < hits else "\n")
