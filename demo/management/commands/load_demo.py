from django.core.management.base import BaseCommand, CommandError

from demo import reviews
from demo.dataset import DATASET_NAME, DemoDataError
from demo.load import load_demo


class Command(BaseCommand):
    help = (
        "Load the demo: users alice, bob, carol and victor, the review 'Kratom for PTSD symptoms' "
        "(searched on PubMed when it answers) and 'PTSD symptom trajectories' (4,544 SYNERGY records, "
        "downloaded once from PyPI and cached, part-screened). Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-search", action="store_true", help="do not run the kratom PubMed search")
        parser.add_argument(
            "--dataset",
            metavar="CSV",
            help=f"use this copy of {DATASET_NAME} (with a label_included column) instead of downloading it",
        )
        parser.add_argument("--cache-dir", help="where the downloaded dataset is kept (default: DATA_DIR/cache)")
        parser.add_argument(
            "--url", default=reviews.BASE_URL, help="where the server will run (for the addresses printed)"
        )

    def handle(self, *args, no_search, dataset, cache_dir, url, **options):
        try:
            result = load_demo(search=not no_search, dataset=dataset, cache_dir=cache_dir, base_url=url)
        except DemoDataError as exc:
            raise CommandError(
                f"The demo dataset is not available: {exc}\nThe first run needs PyPI (the file is then kept in "
                "DATA_DIR/cache); or pass --dataset with a copy of van_de_Schoot_2018.csv."
            ) from exc
        for message in result.messages:
            self.stdout.write(message)
        self.stdout.write(self.style.SUCCESS(f"\nDemo ready at {url}"))
        self.stdout.write(f"Sign in with password {reviews.PASSWORD!r} as:")
        for username, (role, _) in reviews.PEOPLE.items():
            self.stdout.write(f"  {username:<7} {role.label.lower()}")
        self.stdout.write("(an account that existed before load_demo keeps its own password)")
