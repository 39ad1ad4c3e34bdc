"""Progress figures agree between the dashboard, the screening page and the stopping panel, in the
states that once differed; and the figures' denominators move only when records join or leave
the stage (issue 10)."""

import re

import pytest
from django.urls import reverse

from review.importing import merge
from review.models import Record, Search
from screening import progress_report, queue
from screening.decisions import record_decision
from tests.screening.conftest import dual_screened

TA = "title_abstract"
TEAM = re.compile(r"Team: (\d+) of (\d+) records? decided")
MINE = re.compile(r"You: (\d+) screened, (\d+) left for you")


def figures(client, review):
    """(team figures, bob's figures) read off the dashboard's title/abstract card and the screening
    page's progress bar, and the stopping panel's (screened, of)."""
    dashboard = client.get(reverse("review:detail", args=[review.slug])).content.decode()
    card = dashboard.split('id="h-title_abstract"')[1].split('id="h-full_text"')[0]
    screen = client.get(reverse("screening:screen_progress", args=[review.slug, TA])).content.decode()
    stopping = progress_report.stage_progress(review, TA)
    return {
        "dashboard": (TEAM.search(card).groups(), MINE.search(card).groups()),
        "screening page": (TEAM.search(screen).groups(), MINE.search(screen).groups()),
        "stopping panel": ((str(stopping.screened), str(stopping.n_total)), None),
    }


def assert_agree(client, review, team, mine):
    shown = figures(client, review)
    assert shown["dashboard"] == shown["screening page"] == (team, mine)
    assert shown["stopping panel"][0] == team


@pytest.fixture
def dual(review):
    return dual_screened(review, 6)


def records(review):
    return list(Record.objects.filter(review=review).order_by("pk"))


def test_a_record_one_reviewer_of_two_voted_on_is_decided_nowhere(client, dual, bob, carol):
    first, second, *_ = records(dual)
    record_decision(record=first, reviewer=bob, stage=TA, decision="exclude")
    record_decision(record=second, reviewer=bob, stage=TA, decision="include")
    record_decision(record=second, reviewer=carol, stage=TA, decision="include")
    client.force_login(bob)
    # Two screened by bob; one decided (both votes in), one waiting for carol's.
    assert_agree(client, dual, team=("1", "6"), mine=("2", "4"))


def test_a_conflict_is_not_decided_anywhere(client, dual, bob, carol):
    first, *_ = records(dual)
    record_decision(record=first, reviewer=bob, stage=TA, decision="include")
    record_decision(record=first, reviewer=carol, stage=TA, decision="exclude")
    client.force_login(bob)
    assert_agree(client, dual, team=("0", "6"), mine=("1", "5"))


def test_a_duplicate_leaves_every_denominator_alike(client, dual, alice, bob, carol):
    first, second, *_ = records(dual)
    record_decision(record=first, reviewer=bob, stage=TA, decision="exclude")
    record_decision(record=first, reviewer=carol, stage=TA, decision="exclude")
    merge(second, into=first, user=alice)
    client.force_login(bob)
    assert_agree(client, dual, team=("1", "5"), mine=("1", "4"))


def test_records_imported_mid_stage_join_every_denominator_alike(client, dual, bob, carol):
    first, *_ = records(dual)
    record_decision(record=first, reviewer=bob, stage=TA, decision="exclude")
    record_decision(record=first, reviewer=carol, stage=TA, decision="exclude")
    client.force_login(bob)
    assert_agree(client, dual, team=("1", "6"), mine=("1", "5"))
    search = Search.objects.create(review=dual, kind="file", source="Scopus")
    Record.objects.bulk_create(
        Record(review=dual, search=search, source="Scopus", title=f"Kratom dependence {i}") for i in range(3)
    )
    assert_agree(client, dual, team=("1", "9"), mine=("1", "8"))


def test_bobs_figures_have_no_denominator_that_shrinks_with_others_work(client, review, alice, bob, carol):
    """Two votes per record among three screeners: the records alice and carol settle between them
    leave bob's queue. His figures count what he did and what is left for him; the one "of M"
    shown is the stage's, which their work does not move."""
    dual_screened(review, 6)
    client.force_login(bob)
    before = figures(client, review)["screening page"]
    first, second, *_ = records(review)
    for record in (first, second):
        record_decision(record=record, reviewer=alice, stage=TA, decision="exclude")
        record_decision(record=record, reviewer=carol, stage=TA, decision="exclude")
    after = figures(client, review)["screening page"]
    assert before == (("0", "6"), ("0", "6"))
    assert after == (("2", "6"), ("0", "4"))
    assert queue.progress(review, bob, TA)["total"] == 6
