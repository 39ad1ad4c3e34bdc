import pytest

from review.models import Record, Search
from screening.decisions import DecisionError, outcome_of, record_decision, resolve
from screening.models import Decision


@pytest.fixture
def record(review):
    search = Search.objects.create(review=review, kind="file", source="Embase")
    return Record.objects.create(review=review, search=search, source="Embase", title="Kratom use among veterans")


def test_a_changed_decision_keeps_its_history(record, bob):
    record_decision(record=record, reviewer=bob, stage="title_abstract", decision="include")
    record_decision(record=record, reviewer=bob, stage="title_abstract", decision="exclude", reason="animal study")
    rows = list(Decision.objects.filter(record=record, reviewer=bob).values_list("decision", "is_current"))
    assert rows == [("include", False), ("exclude", True)]
    record.refresh_from_db()
    assert record.ta_outcome == "exclude"


def test_full_text_exclusion_needs_a_reason(record, bob):
    record_decision(record=record, reviewer=bob, stage="title_abstract", decision="include")
    with pytest.raises(DecisionError, match="needs a reason"):
        record_decision(record=record, reviewer=bob, stage="full_text", decision="exclude")
    assert not Decision.objects.filter(stage="full_text").exists()


def test_full_text_only_for_records_included_at_title_abstract(record, bob):
    record_decision(record=record, reviewer=bob, stage="title_abstract", decision="exclude")
    with pytest.raises(DecisionError, match="included at title/abstract"):
        record_decision(record=record, reviewer=bob, stage="full_text", decision="include")


def test_not_retrieved_is_a_full_text_decision_only(record, bob):
    with pytest.raises(DecisionError, match="not a Title/abstract decision"):
        record_decision(record=record, reviewer=bob, stage="title_abstract", decision="not_retrieved")


def test_dual_screening_waits_for_both_votes_then_flags_disagreement(review, record, bob, carol, alice):
    review.title_abstract_reviewers = 2
    review.save()
    record_decision(record=record, reviewer=bob, stage="title_abstract", decision="include")
    record.refresh_from_db()
    assert record.ta_outcome == ""
    record_decision(record=record, reviewer=carol, stage="title_abstract", decision="exclude")
    record.refresh_from_db()
    assert record.ta_outcome == "conflict"
    resolve(record=record, stage="title_abstract", decision="include", user=alice, note="population fits")
    record.refresh_from_db()
    assert record.ta_outcome == "include"
    # the original votes stay
    assert Decision.objects.filter(record=record, is_current=True).count() == 2


def test_maybe_counts_as_include_unless_the_review_says_otherwise():
    assert outcome_of([("maybe", ""), ("include", "")], needed=2) == ("include", "")
    assert outcome_of([("maybe", ""), ("include", "")], needed=2, maybe_counts_as_include=False) == ("conflict", "")
    assert outcome_of([("exclude", "Wrong population"), ("exclude", "")], needed=2) == ("exclude", "Wrong population")
    assert outcome_of([("exclude", "")], needed=2) == ("", "")


def test_a_conflict_stays_open_when_a_vote_changes_to_agree_until_it_is_resolved(record, review, alice, bob, carol):
    """A changed vote that settles a disagreement would tell a blinded reviewer that the other
    vote was cast and which way (tests/screening/test_blinding_exact.py): only a resolution does."""
    from screening.review_settings import preview_update

    review.title_abstract_reviewers = 2
    review.save()
    ta = "title_abstract"
    record_decision(record=record, reviewer=bob, stage=ta, decision="include")
    record_decision(record=record, reviewer=carol, stage=ta, decision="exclude", reason="animal study")
    record_decision(record=record, reviewer=bob, stage=ta, decision="exclude", reason="animal study")
    record.refresh_from_db()
    assert record.ta_outcome == "conflict"
    # The settings preview counts by the same rule: nothing would move that a refresh keeps.
    assert preview_update(review, maybe_counts_as_include=False).outcomes == {}
    resolve(record=record, stage=ta, decision="exclude", reason="animal study", user=alice)
    record.refresh_from_db()
    assert record.ta_outcome == "exclude"


def test_votes_that_agree_from_the_start_settle_the_record(record, review, bob, carol):
    review.title_abstract_reviewers = 2
    review.save()
    record_decision(record=record, reviewer=bob, stage="title_abstract", decision="include")
    # bob changes his mind before carol votes: the votes never disagreed with both in.
    record_decision(record=record, reviewer=bob, stage="title_abstract", decision="exclude")
    record_decision(record=record, reviewer=carol, stage="title_abstract", decision="exclude")
    record.refresh_from_db()
    assert record.ta_outcome == "exclude"
