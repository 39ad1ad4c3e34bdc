from django.core.management.base import BaseCommand, CommandError

from transfer.importing import TransferError, import_review


class Command(BaseCommand):
    help = (
        "Import a review file written by export_review as a new review. People are matched to accounts "
        "here by email address, then username; anyone else gets a new inactive account without a password."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--slug", help="the new review's slug (default: the file's)")

    def handle(self, *args, file, slug, **options):
        try:
            result = import_review(source=file, slug=slug)
        except (TransferError, FileNotFoundError) as e:
            raise CommandError(str(e)) from None
        rows = ", ".join(f"{n} {name}" for name, n in result.counts.items() if n)
        self.stdout.write(f"Imported {result.review.slug}: {rows}.")
        for label, names in (
            ("Matched by email address", result.users_matched_by_email),
            ("Matched by username", result.users_matched_by_username),
            ("New inactive accounts (activate them, or set a password, to let these people in)", result.users_created),
        ):
            if names:
                self.stdout.write(f"{label}: {', '.join(names)}")
