import json

from django.core.management.base import BaseCommand, CommandError

from review.models import Review, Stage
from screening.status import review_status


class Command(BaseCommand):
    help = "Screening status of a review: counts, conflicts, agreement (kappa) per stage."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print JSON")

    def handle(self, *args, slug, as_json, **options):
        review = Review.objects.filter(slug=slug).first()
        if review is None:
            raise CommandError(f"No review with slug {slug!r}.")
        status = review_status(review)
        if as_json:
            self.stdout.write(json.dumps(status, indent=2))
            return
        self.stdout.write(f"{review.title}: {status['records']} records, {status['duplicates']} duplicates")
        for stage in Stage:
            s = status[stage.value]
            kappa = "n/a" if s["kappa"] is None else f"{s['kappa']:.3f} ({s['kappa_label']})"
            agree = "n/a" if s["percent_agreement"] is None else f"{s['percent_agreement']:.1f}%"
            self.stdout.write(
                f"{stage.label}: {s['screened']}/{s['eligible']} screened, {s['included']} included, "
                f"{s['excluded']} excluded, conflicts {s['conflicts_open']} open / {s['conflicts_resolved']} resolved, "
                f"kappa {kappa}, agreement {agree}"
            )
