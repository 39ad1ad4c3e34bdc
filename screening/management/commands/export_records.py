import sys

from django.core.management.base import BaseCommand, CommandError

from review.models import Membership, Review
from screening.records_out import FORMATS, OUTCOMES, STAGE_NAMES, ExportError, export, select, stage_named


class Command(BaseCommand):
    help = (
        "Write a review's records as RIS (EndNote, Zotero, Mendeley), CSV or XLSX. --outcome included "
        "takes the records included at full text (or at the stages given with --stage); excluded, those "
        "excluded at either stage (or at those given)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The review's slug")
        parser.add_argument("--format", default="ris", choices=FORMATS)
        parser.add_argument("--outcome", default="all", choices=OUTCOMES)
        parser.add_argument("--stage", nargs="+", default=[], choices=STAGE_NAMES, help="ta, ft (one or both)")
        parser.add_argument(
            "--with-decisions", action="store_true", help="Add outcomes and votes (RIS: N1 notes and an LB label)"
        )
        parser.add_argument(
            "--as", dest="as_user", default="", help="Show the votes as this member sees them (default: all votes)"
        )
        parser.add_argument("-o", "--output", default="-", help="File to write; '-' (default) for standard output")

    def handle(self, *args, slug, format, outcome, stage, with_decisions, as_user, output, **options):
        review = Review.objects.filter(slug=slug).first()
        if review is None:
            raise CommandError(f"No review with slug {slug!r}.")
        membership = None
        if as_user:
            membership = Membership.objects.filter(review=review, user__username=as_user).first()
            if membership is None:
                raise CommandError(f"{as_user!r} is not a member of {review.slug}.")
        try:
            records = select(review, outcome=outcome, at=[stage_named(s) for s in stage])
            pieces = export(review, records, format, membership=membership, with_decisions=with_decisions)
        except ExportError as exc:
            raise CommandError(str(exc)) from exc
        if output == "-":
            if format == "xlsx" and sys.stdout.isatty():
                raise CommandError("XLSX is binary: give a file with -o FILE.")
            for piece in pieces:
                sys.stdout.buffer.write(piece)
            sys.stdout.flush()
            return
        try:
            with open(output, "wb") as fh:
                for piece in pieces:
                    fh.write(piece)
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror}") from exc
        self.stderr.write(f"Wrote {outcome} records of {review.slug} to {output}")
