import pytest

from review.importers import ris
from review.importing import import_articles
from review.models import Record, Search, Stage
from screening import queue
from screening.decisions import record_decision
from screening.models import Decision
from tests.shared import shared

TA, FT = Stage.TITLE_ABSTRACT, Stage.FULL_TEXT


def import_ris(review, name, source):
    path = shared("fixtures", "exports", name)
    with open(path, encoding="utf-8-sig") as fh:
        import_articles(
            search=Search(review=review, kind="file", source=source, filename=name), articles=ris.parse(fh, name=name)
        )


@pytest.fixture
def imported(review):
    """The same 100 records exported by EndNote and by Zotero: the Zotero copies are duplicates."""
    import_ris(review, "baseline_endnote.ris", "EndNote")
    import_ris(review, "baseline_zotero.ris", "Zotero")
    return review


def unique_pks(review):
    return list(Record.objects.for_review(review).unique().order_by("pk").values_list("pk", flat=True))


def vote(pk, user, decision, stage=TA, reason=""):
    record_decision(record=Record.objects.get(pk=pk), reviewer=user, stage=stage, decision=decision, reason=reason)


def test_it_never_offers_a_duplicate(imported, bob):
    uniques = unique_pks(imported)
    assert Record.objects.for_review(imported).duplicates().exists()
    offered = list(queue.pending(imported, bob, TA).values_list("pk", flat=True))
    assert offered == uniques


def test_bob_moves_on_after_voting_and_carol_skips_his_records_in_single_screening(imported, bob, carol):
    first, second, third = unique_pks(imported)[:3]
    assert queue.next_record(imported, bob, TA).pk == first
    vote(first, bob, "include")
    assert queue.next_record(imported, bob, TA).pk == second
    # One vote is all a record needs: carol gets neither bob's screened record nor the one
    # bob has on screen now (he holds its only open vote).
    assert queue.next_record(imported, carol, TA).pk == third
    # Reloading gives bob the record he holds, not a new one.
    assert queue.next_record(imported, bob, TA).pk == second
    vote(third, carol, "exclude")
    vote(second, bob, "exclude")
    fourth = unique_pks(imported)[3]
    assert queue.next_record(imported, bob, TA).pk == fourth


def test_dual_screening_offers_each_record_to_two_reviewers_only(imported, alice, bob, carol):
    imported.title_abstract_reviewers = 2
    imported.save()
    first, second = unique_pks(imported)[:2]
    vote(first, bob, "include")
    assert queue.next_record(imported, bob, TA).pk == second
    assert queue.next_record(imported, carol, TA).pk == first
    vote(first, carol, "exclude")
    # Two votes in: alice, the third member, is not asked.
    assert queue.next_record(imported, alice, TA).pk == second


def test_full_text_offers_only_title_abstract_includes(imported, bob, carol):
    first, second, third = unique_pks(imported)[:3]
    assert queue.next_record(imported, bob, FT) is None
    vote(first, bob, "exclude")
    vote(second, bob, "include")
    vote(third, carol, "maybe")
    # Maybe counts as include (the review's default), so the third record goes on too.
    assert list(queue.pending(imported, bob, FT).values_list("pk", flat=True)) == [second, third]
    vote(second, bob, "include", stage=FT)
    assert queue.next_record(imported, bob, FT).pk == third


def test_progress_counts_mine_and_the_teams(imported, bob, carol, django_assert_num_queries):
    uniques = unique_pks(imported)
    for pk in uniques[:5]:
        vote(pk, bob, "include")
    for pk in uniques[5:7]:
        vote(pk, carol, "exclude")
    with django_assert_num_queries(2):
        counts = queue.progress(imported, bob, TA)
    assert counts["total"] == len(uniques)
    assert counts["mine_done"] == 5
    assert counts["team_done"] == 7
    # Carol's two records need nobody else, so bob has the rest to do.
    assert counts["mine_total"] == len(uniques) - 2
    assert counts["team_left"] == len(uniques) - 7


def test_progress_under_dual_screening_waits_for_the_second_vote(imported, alice, bob, carol):
    imported.title_abstract_reviewers = 2
    imported.save()
    uniques = unique_pks(imported)
    vote(uniques[0], bob, "include")
    vote(uniques[0], carol, "include")
    vote(uniques[1], bob, "include")
    counts = queue.progress(imported, carol, TA)
    assert (counts["mine_done"], counts["mine_total"], counts["team_done"]) == (1, len(uniques), 1)
    # Alice is not needed on the record bob and carol both screened.
    counts = queue.progress(imported, alice, TA)
    assert (counts["mine_done"], counts["mine_total"], counts["team_done"]) == (0, len(uniques) - 1, 1)
    assert counts["mine_total"] == queue.pending(imported, alice, TA).count()


def test_previous_decision_walks_back_through_my_votes_only(imported, bob, carol):
    first, second, third = unique_pks(imported)[:3]
    vote(first, bob, "include")
    vote(second, carol, "exclude")
    vote(third, bob, "exclude")
    latest = queue.previous_decision(imported, bob, TA)
    assert latest.record_id == third
    assert queue.previous_decision(imported, bob, TA, before=latest).record_id == first
    # Changing a vote makes it the latest one; the superseded row stays in history.
    vote(first, bob, "exclude")
    assert queue.previous_decision(imported, bob, TA).record_id == first
    assert Decision.objects.filter(record_id=first, reviewer=bob).count() == 2
