import pytest

from review.article import Article
from review.importing import import_articles
from review.models import Event, Record, Search
from screening.blinding import lift_blinding
from screening.decisions import record_decision

TA, FT = "title_abstract", "full_text"


@pytest.fixture
def finished(review, bob):
    """A single-screened review whose title/abstract stage bob has finished; blinding lifted."""
    search = Search.objects.create(review=review, kind="file", source="Embase")
    records = [
        Record.objects.create(review=review, search=search, source="Embase", title=f"Kratom cohort {i}")
        for i in range(2)
    ]
    record_decision(record=records[0], reviewer=bob, stage=TA, decision="exclude")
    record_decision(record=records[1], reviewer=bob, stage=TA, decision="exclude")
    lift_blinding(review, stage=TA, by=review.memberships.get(role="owner").user)
    review.refresh_from_db()
    assert review.ta_blinding_lifted
    return review, records


def test_new_records_imported_after_a_lift_are_blinded_again(finished, alice):
    review, _ = finished
    search = Search(review=review, kind="file", source="Scopus", filename="more.ris")
    import_articles(search=search, articles=[Article(title="A new kratom trial", year=2024)], user=alice)
    review.refresh_from_db()
    assert not review.ta_blinding_lifted
    assert Event.objects.filter(review=review, kind="blinding", detail__restored=True).count() == 1


def test_a_changed_vote_reopening_the_stage_blinds_it_again(finished, carol):
    review, records = finished
    review.title_abstract_reviewers = 2
    review.save(update_fields=["title_abstract_reviewers"])
    record_decision(record=records[0], reviewer=carol, stage=TA, decision="include")  # now a conflict
    review.refresh_from_db()
    assert not review.ta_blinding_lifted


def test_an_include_reaching_full_text_blinds_a_lifted_full_text_stage(finished, bob):
    review, records = finished
    type(review).objects.filter(pk=review.pk).update(ft_blinding_lifted=True)
    record_decision(record=records[1], reviewer=bob, stage=TA, decision="include")
    review.refresh_from_db()
    assert not review.ft_blinding_lifted
    assert review.ta_blinding_lifted  # the title/abstract outcome is settled (include)
