import pytest

from tests.screening.team import make_team


@pytest.fixture
def team(review, bob, carol):
    """The dual-screened kratom review of tests/screening/team.py."""
    return make_team(review, bob, carol)
