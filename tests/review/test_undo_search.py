"""Undoing a PubMed search (review/removal.py): alice's search of the stand-in NCBI server."""

import pytest

from review import removal
from review.importing import run_search
from review.models import Record, Search
from tests import eutils_server as stand_in

eutils_server = stand_in.eutils_server  # the fixture, where pytest looks for it


@pytest.fixture(autouse=True)
def quick(settings):
    settings.NCBI_EMAIL = "alice@example.org"
    settings.NCBI_API_KEY = "alices-key"
    settings.NCBI_BATCH_SIZE = 3


def test_an_undone_search_is_fetched_again_when_it_is_rerun(eutils_server, review, alice):
    first = run_search(review=review, query="biopython", user=alice)
    assert first.added == Record.objects.filter(review=review).count() > 0

    removal.undo_import(first.search, user=alice)

    assert not Record.objects.filter(review=review).exists()
    first.search.refresh_from_db()
    assert first.search.undone_records == first.added
    assert "were removed" in " ".join(first.search.log_notes())
    # Its PMIDs no longer count as "already in the review": a new run brings them back.
    again = run_search(review=review, query="biopython", user=alice)
    assert (again.added, again.skipped) == (first.added, 0)
    assert list(Search.objects.filter(review=review).active()) == [again.search]
