"""record_decision works out the record's outcome from the votes it read under the lock (one query
fewer per decision than re-reading them): it must always store what refresh_outcomes would."""

import random
from datetime import timedelta

from django.utils import timezone

from review.models import Record
from screening.decisions import record_decision, resolve, settled_outcomes
from tests.screening.conftest import dual_screened

TA, FT = "title_abstract", "full_text"


def test_bob_carol_and_alices_votes_always_store_the_outcome_a_full_refresh_computes(review, alice, bob, carol):
    dual_screened(review, 12)
    records = list(Record.objects.filter(review=review).order_by("pk"))
    rng = random.Random(9)
    start = timezone.now()
    for step in range(60):
        record = rng.choice(records)
        person = rng.choice([alice, bob, carol])
        # Now and then a vote stored with an earlier time (an import of past decisions).
        at = start - timedelta(minutes=rng.randint(1, 50)) if step % 7 == 3 else None
        try:
            record_decision(
                record=record, reviewer=person, stage=TA, decision=rng.choice(["include", "exclude", "maybe"]), at=at
            )
        except ValueError:
            continue  # the record already had both votes: refused, nothing stored
        if step == 30:
            resolve(record=record, stage=TA, decision="include", user=alice)
        stored = dict(Record.objects.filter(review=review).values_list("pk", "ta_outcome"))
        expected = {pk: outcome for pk, (outcome, _) in settled_outcomes(review, list(stored), TA).items()}
        assert stored == expected, f"step {step}"


def test_bob_changing_his_vote_before_carols_leaves_the_record_waiting_then_agreeing(review, bob, carol):
    dual_screened(review, 1)
    (record,) = Record.objects.filter(review=review)
    record_decision(record=record, reviewer=bob, stage=TA, decision="include")
    record_decision(record=record, reviewer=bob, stage=TA, decision="exclude")
    record.refresh_from_db()
    assert record.ta_outcome == ""  # his first vote is superseded: one vote of two
    record_decision(record=record, reviewer=carol, stage=TA, decision="exclude")
    record.refresh_from_db()
    assert record.ta_outcome == "exclude"


def test_a_full_text_exclusion_stores_its_reason_as_a_full_refresh_would(review, bob, carol):
    review.full_text_reviewers = 2
    review.save()
    dual_screened(review, 1)
    review.title_abstract_reviewers = 1
    review.save()
    (record,) = Record.objects.filter(review=review)
    record_decision(record=record, reviewer=bob, stage=TA, decision="include")
    record_decision(record=record, reviewer=bob, stage=FT, decision="exclude", reason="Wrong population")
    record_decision(record=record, reviewer=carol, stage=FT, decision="exclude", reason="Wrong outcome")
    record.refresh_from_db()
    assert (record.ft_outcome, record.ft_reason) == settled_outcomes(review, [record.pk], FT)[record.pk]
    assert record.ft_outcome == "exclude"
