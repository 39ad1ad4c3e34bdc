"""The hand-out in ranked, random and import order, and what the screening card shows of the model."""

import pytest

from review.models import Record, Stage
from screening import queue, retrain
from screening.models import HandOut, OrderPreference, RecordScore, ScreeningOrder
from tests.screening.test_retrain import IRRELEVANT, RELEVANT, add_records, vote

TA = Stage.TITLE_ABSTRACT


@pytest.fixture
def mixed(review):
    """Ten rat records then ten kratom records (import order puts the irrelevant ones first)."""
    pks = add_records(review, [f"{IRRELEVANT} {i}" for i in range(10)] + [f"{RELEVANT} {i}" for i in range(10)])
    review.question = "Does kratom relieve PTSD symptoms in veterans?"
    review.save()
    return review, pks


def screen_all(review, user):
    handed = []
    while (record := queue.next_record(review, user, TA)) is not None:
        handed.append(record.pk)
        vote(record.pk, user, "exclude")
    return handed


def test_with_its_question_the_review_hands_out_the_most_likely_relevant_first(mixed, bob):
    review, pks = mixed
    assert queue.order_for(review, bob, TA) == ScreeningOrder.RANKED
    run = retrain.retrain_now(review, TA)
    first = queue.next_record(review, bob, TA)
    assert first.pk in pks[10:]
    hand_out = HandOut.objects.get(record=first, reviewer=bob)
    scored = RecordScore.objects.get(run=run, record=first)
    assert (hand_out.order, hand_out.model_version, hand_out.rank, hand_out.score) == (
        "ranked",
        run.version,
        1,
        scored.score,
    )


def test_without_a_model_yet_ranked_order_falls_back_to_import_order(mixed, bob):
    review, pks = mixed
    assert queue.next_record(review, bob, TA).pk == pks[0]
    assert HandOut.objects.get(reviewer=bob).model_version is None


def test_records_imported_after_the_last_run_come_after_the_scored_ones(mixed, bob):
    review, pks = mixed
    retrain.retrain_now(review, TA)
    late = add_records(review, [f"{RELEVANT} imported late"])
    handed = screen_all(review, bob)
    assert handed[-1] == late[0]
    assert set(handed[:10]) == set(pks[10:])


def test_without_criteria_or_labels_the_default_is_import_order(review, bob):
    pks = add_records(review, ["b", "a", "c"])
    assert queue.order_for(review, bob, TA) == ScreeningOrder.IMPORT
    assert screen_all(review, bob) == pks


def test_one_include_and_one_exclude_make_ranked_the_default(review, bob, carol):
    pks = add_records(review, [RELEVANT, IRRELEVANT, RELEVANT + " again", IRRELEVANT + " again"])
    vote(pks[0], carol, "include")
    vote(pks[1], carol, "exclude")
    retrain.retrain_now(review, TA)
    assert queue.order_for(review, bob, TA) == ScreeningOrder.RANKED
    assert queue.next_record(review, bob, TA).pk == pks[2]


def test_random_order_is_stable_per_reviewer_and_differs_between_reviewers(mixed, bob, carol):
    review, pks = mixed
    queue.set_order(review, bob, "random")
    queue.set_order(review, carol, "random")
    bobs = list(queue.pending(review, bob, TA).values_list("pk", flat=True))
    assert bobs == list(queue.pending(review, bob, TA).values_list("pk", flat=True))
    assert sorted(bobs) == pks and bobs != pks
    assert bobs != list(queue.pending(review, carol, TA).values_list("pk", flat=True))


def test_no_reviewers_random_order_keeps_a_run_of_records_in_import_order():
    """Each reviewer's permutation multiplies record ids by their own multiplier modulo a prime.
    A small multiplier (P/29 for user #12, once) kept runs of 29 consecutive ids in import order,
    so "random" could hand out 20 records in import order; a test failed on PostgreSQL by chance."""
    from types import SimpleNamespace

    p = queue._PERMUTE_P
    in_import_order = []
    for user_pk in range(1, 3000):
        multiplier = queue._multiplier(SimpleNamespace(pk=user_pk))
        for start in (1, 500, 40_216, 1_234_567):
            keys = [pk * multiplier % p for pk in range(start, start + 12)]
            if keys == sorted(keys):
                in_import_order.append((user_pk, start))
    assert not in_import_order


def test_import_order_ignores_the_model(mixed, bob):
    review, pks = mixed
    retrain.retrain_now(review, TA)
    queue.set_order(review, bob, "import")
    assert screen_all(review, bob) == pks
    assert set(HandOut.objects.filter(reviewer=bob).values_list("order", flat=True)) == {"import"}


def test_under_dual_screening_both_reviewers_get_records_in_ranked_order(mixed, bob, carol):
    review, pks = mixed
    review.title_abstract_reviewers = 2
    review.save()
    retrain.retrain_now(review, TA)
    bobs_first, carols_first = queue.next_record(review, bob, TA), queue.next_record(review, carol, TA)
    # Two votes are needed: both may hold the top record at once.
    assert bobs_first == carols_first and bobs_first.pk in pks[10:]
    assert set(screen_all(review, bob)[:10]) == set(pks[10:])


def test_bob_chooses_his_order_and_it_is_remembered(client, mixed, bob):
    review, pks = mixed
    retrain.retrain_now(review, TA)
    client.force_login(bob)
    page = client.get(f"/r/{review.slug}/screen/{TA}/").content.decode()
    assert 'value="ranked" selected' in page
    response = client.post(f"/r/{review.slug}/screen/{TA}/order/", {"order": "import"})
    assert response.status_code == 302
    assert OrderPreference.objects.get(review=review, user=bob).order == "import"
    page = client.get(f"/r/{review.slug}/screen/{TA}/").content.decode()
    assert 'value="import" selected' in page and f"Record #{pks[0]}" in page
    assert client.post(f"/r/{review.slug}/screen/{TA}/order/", {"order": "<b>"}).status_code == 400


def test_erin_the_viewer_cannot_choose_an_order(client, mixed, erin):
    review, _ = mixed
    client.force_login(erin)
    assert client.post(f"/r/{review.slug}/screen/{TA}/order/", {"order": "random"}).status_code == 403
    assert not OrderPreference.objects.exists()


def test_the_card_shows_the_band_and_the_words_that_raised_the_score(client, mixed, bob):
    review, pks = mixed
    retrain.retrain_now(review, TA)
    client.force_login(bob)
    page = client.get(f"/r/{review.slug}/screen/{TA}/").content.decode()
    assert "High likelihood of relevance" in page
    assert '<mark class="kw-model">kratom</mark>' in page
    # The lowest-ranked record reads "low".
    last = RecordScore.objects.order_by("-rank").first().record_id
    page = client.get(f"/r/{review.slug}/screen/{TA}/?record={last}").content.decode()
    assert "Low likelihood of relevance" in page


def test_carol_sees_no_score_on_a_record_she_has_voted_on(client, mixed, bob, carol):
    # Its score may have learnt bob's vote on it: on her revisit the card shows no model output.
    review, pks = mixed
    review.title_abstract_reviewers = 2
    review.save()
    target = pks[12]
    vote(target, carol, "include")
    vote(target, bob, "exclude")
    retrain.retrain_now(review, TA)
    client.force_login(carol)
    page = client.get(f"/r/{review.slug}/screen/{TA}/?record={target}").content.decode()
    # The card on screen, not the prefetched next card (a record she has still to screen) after it.
    card = page.split('<template class="next-card"')[0]
    assert f"Record #{target}" in card
    assert "likelihood of relevance" not in card and "kw-model" not in card


def test_model_words_are_escaped_and_never_break_an_entity(mixed):
    from screening.templatetags.highlight import highlight_marks

    html = str(highlight_marks("Tom & Jerry's <b>amp</b> test", ((), (), ("amp", "x27", "lt", "test"))))
    assert html == (
        'Tom &amp; Jerry&#x27;s &lt;b&gt;<mark class="kw-model">amp</mark>&lt;/b&gt; <mark class="kw-model">test</mark>'
    )


def test_the_claim_and_lock_rules_still_hold_in_ranked_order(mixed, bob, carol):
    review, pks = mixed
    retrain.retrain_now(review, TA)
    # Single screening: carol never gets the record bob holds.
    bobs = queue.next_record(review, bob, TA)
    carols = queue.next_record(review, carol, TA)
    assert bobs != carols
    assert Record.objects.filter(claims__isnull=False).count() == 2
