"""One home per screening rule: a conflict resolved as "maybe" goes where the review says maybes go."""

import pytest
from django.urls import reverse

from review.models import Record
from screening import queue, stages
from screening.blinding import lift_blinding
from screening.decisions import DecisionError, record_decision, record_decisions, resolve
from screening.models import Decision
from screening.prisma import compute
from tests.screening.team import FT, TA, vote
from tests.screening.test_queue import import_ris, unique_pks


@pytest.fixture
def disputed(review, alice, bob, carol):
    """Dual title/abstract screening; bob includes one record, carol excludes it, alice says maybe.
    Every other record both exclude, so title/abstract is otherwise done."""
    review.title_abstract_reviewers = 2
    review.save()
    import_ris(review, "baseline_endnote.ris", "EndNote")
    record, *rest = (Record.objects.get(pk=pk) for pk in unique_pks(review))
    for user in (bob, carol):
        record_decisions(review, TA, [Decision(record=r, reviewer=user, decision="exclude") for r in rest])
    vote(record, bob, "include")
    vote(record, carol, "exclude")
    assert record.ta_outcome == Record.Outcome.CONFLICT
    resolve(record=record, stage=TA, decision="maybe", user=alice)
    record.refresh_from_db()
    return record


def test_a_conflict_resolved_as_maybe_goes_on_to_full_text_and_the_review_completes(
    client, review, disputed, alice, bob
):
    assert review.maybe_counts_as_include
    counts = compute(review)
    assert counts.reports_sought == 1 and not counts.undecided_maybe
    # Sought for full text, so it is in the full-text queue and bob can screen it there.
    assert list(queue.pending(review, bob, FT)) == [disputed]
    client.force_login(bob)
    response = client.get(reverse("screening:screen", args=[review.slug, FT]))
    assert response.context["record"] == disputed
    assert response.context["progress"]["total"] == 1
    dashboard = client.get(reverse("review:detail", args=[review.slug])).context["status"]
    assert dashboard[TA]["included"] == 1 and dashboard[FT]["eligible"] == 1
    record_decision(record=disputed, reviewer=bob, stage=FT, decision="include")

    counts = compute(review)
    assert counts.is_complete
    assert counts.reports_sought == counts.reports_assessed + counts.reports_not_retrieved == 1
    assert counts.studies_included == 1
    lift_blinding(review, stage=TA, by=alice)
    lift_blinding(review, stage=FT, by=alice)
    review.refresh_from_db()
    assert review.ta_blinding_lifted and review.ft_blinding_lifted
    # The study reaches the extraction table.
    client.force_login(alice)
    assert client.get(reverse("screening:extraction_entry", args=[review.slug, disputed.pk])).status_code == 200


def test_a_resolved_maybe_waits_where_maybe_does_not_count_as_include(client, review, alice, bob, carol):
    review.maybe_counts_as_include = False
    review.save()
    review.title_abstract_reviewers = 2
    review.save()
    import_ris(review, "baseline_endnote.ris", "EndNote")
    record = Record.objects.get(pk=unique_pks(review)[0])
    vote(record, bob, "include")
    vote(record, carol, "exclude")
    resolve(record=record, stage=TA, decision="maybe", user=alice)
    counts = compute(review)
    assert (counts.reports_sought, counts.undecided_maybe) == (0, 1)
    assert not counts.is_complete
    assert not stages.in_stage(review, FT).exists()
    with pytest.raises(DecisionError, match="Only records included at title/abstract go on to full-text"):
        record_decision(record=record, reviewer=bob, stage=FT, decision="include")
    client.force_login(alice)
    dashboard = client.get(reverse("review:detail", args=[review.slug])).context["status"]
    assert (dashboard[TA]["included"], dashboard[TA]["maybe"], dashboard[FT]["eligible"]) == (0, 1, 0)
