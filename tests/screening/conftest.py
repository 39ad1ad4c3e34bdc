import pytest

from review.models import Record, Search
from tests.screening.team import make_team


def dual_screened(review, records):
    """``review`` with two reviewers per title/abstract record and ``records`` unscreened records."""
    review.title_abstract_reviewers = 2
    review.save()
    search = Search.objects.create(review=review, kind="file", source="Embase")
    Record.objects.bulk_create(
        Record(review=review, search=search, source="Embase", title=f"Kratom and trauma, cohort {i}")
        for i in range(records)
    )
    return review


@pytest.fixture
def team(review, bob, carol):
    """The dual-screened kratom review of tests/screening/team.py."""
    return make_team(review, bob, carol)
