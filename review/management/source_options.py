"""The options ``import_records`` and ``count_records`` share: a source as the user describes it
(review.sources.SourceDetails), typed on the command line."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from review import sources
from review.models import Review


def add_source_arguments(parser, *, source_help):
    parser.add_argument("--source", "--database", dest="source", default="", help=source_help)
    parser.add_argument("--platform", default="", help="platform or interface, e.g. Ovid, EBSCOhost, Embase.com")
    parser.add_argument(
        "--source-type",
        dest="source_type",
        default="",
        choices=["", *sources.SOURCE_TYPES],
        help="database, register (ClinicalTrials.gov, ICTRP...) or other (citation searching, websites...)",
    )
    parser.add_argument("--date", dest="searched_on", default="", help="the date the search was run, YYYY-MM-DD")
    query = parser.add_mutually_exclusive_group()
    query.add_argument("--query", default="", help="the search strategy as run")
    query.add_argument("--query-file", dest="query_file", help="a text file holding the search strategy as run")
    parser.add_argument("--limits", default="", help="limits and restrictions applied (languages, dates, filters)")
    parser.add_argument("--user", help="username recorded as having run the import")


def source_details(options):
    """The SourceDetails the options give; CommandError naming what is wrong."""
    query = options["query"]
    if options.get("query_file"):
        try:
            query = Path(options["query_file"]).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"The query file {options['query_file']} cannot be read: {exc}") from None
    try:
        return sources.SourceDetails(
            database=options["source"] or "",
            platform=options["platform"],
            source_type=options["source_type"],
            searched_on=sources.parse_search_date(options["searched_on"]),
            query=query,
            limits=options["limits"],
        ).checked()
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def review_and_user(slug, username):
    review = Review.objects.filter(slug=slug).first()
    if review is None:
        raise CommandError(f"No review with slug {slug!r}.")
    run_by = None
    if username:
        run_by = get_user_model().objects.filter(username=username).first()
        if run_by is None:
            raise CommandError(f"No user named {username!r}.")
    return review, run_by
