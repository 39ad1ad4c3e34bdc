import time

from django.core.management.base import BaseCommand, CommandError

from review.models import Review, Stage
from screening import retrain


class Command(BaseCommand):
    help = "Retrain a review's prioritisation model now and store its scores (for scripts and cron)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--stage", choices=Stage.values, default=Stage.TITLE_ABSTRACT)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, slug, stage, seed, **options):
        review = Review.objects.filter(slug=slug).first()
        if review is None:
            raise CommandError(f"No review with slug {slug!r}.")
        started = time.perf_counter()
        run = retrain.retrain_now(review, stage, seed=seed)
        seconds = time.perf_counter() - started
        self.stdout.write(
            f"{review.slug} {Stage(stage).label}: model version {run.version} {run.status}, "
            f"{run.scored} records scored from {run.relevant_labels} relevant and {run.irrelevant_labels} "
            f"irrelevant labels{' and the review criteria' if run.used_criteria else ''}, in {seconds:.2f} s"
        )
