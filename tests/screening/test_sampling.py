"""The stopping rule's settings and its random-sample phase (screening/sampling.py): settable
target and confidence, the sample's permutation in the queue for every reviewer, the prefix rule,
records that join the stage later, the owner-only views, the audit trail, blinding and the race
between two owners starting a sample at once."""

import re
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from review.models import Event, Record, Search
from screening import progress_report, queue, sampling, stopping
from screening.decisions import record_decision
from screening.models import HandOut, HandOutOrder, OrderPreference, RandomSample, SampleRecord, ScreeningOrder
from tests.concurrent import at_once
from tests.screening.team import TA

PG_ONLY = "the concurrency proof runs in the PostgreSQL pass of `make test` (DATABASE_URL=postgres://...)"
START = timezone.now() - timedelta(days=1)


def records(review, n, source="Embase"):
    search = Search.objects.create(review=review, kind="file", source=source)
    Record.objects.bulk_create(
        Record(review=review, search=search, source=source, title=f"Kratom and trauma, cohort {i}") for i in range(n)
    )
    return list(Record.objects.for_review(review).filter(search=search).order_by("pk"))


def screen(recs, user, decisions, *, minute=0):
    for i, (record, decision) in enumerate(zip(recs, decisions, strict=True)):
        record_decision(
            record=record, reviewer=user, stage=TA, decision=decision, at=START + timedelta(minutes=minute + i)
        )


def permutation(sample):
    return list(SampleRecord.objects.filter(sample=sample).order_by("position").values_list("record_id", flat=True))


def take(review, user):
    """The record ``user`` is handed next, voted exclude straight away (so the next one comes)."""
    record = queue.next_record(review, user, TA)
    record_decision(record=record, reviewer=user, stage=TA, decision="exclude")
    return record.pk


def stopping_events(review):
    return [e.detail for e in Event.objects.filter(review=review, kind=Event.Kind.SETTINGS) if "stopping" in e.detail]


# Settings ---------------------------------------------------------------------------------------


def test_the_targets_default_to_95_and_95_and_the_ones_set_are_used(review, alice, bob):
    recs = records(review, 200)
    screen(recs[:40], bob, ["include"] * 10 + ["exclude"] * 30)
    default = progress_report.stage_progress(review, TA)
    assert (default.advice.recall_target, default.advice.confidence) == (0.95, 0.95)

    sampling.set_targets(review, TA, recall_target=0.9, confidence=0.8, by=alice)
    chosen = progress_report.stage_progress(review, TA)
    assert (chosen.advice.recall_target, chosen.advice.confidence) == (0.9, 0.8)
    labels = progress_report.screened_labels(review, TA)
    assert chosen.advice.p_value == stopping.recommend(labels, 200, recall_target=0.9, confidence=0.8).p_value
    # Keyword arguments still override, for callers that ask about other targets.
    assert progress_report.stage_progress(review, TA, recall_target=0.99).advice.recall_target == 0.99
    # The other stage keeps the defaults.
    assert sampling.targets(review, "full_text") == sampling.Targets(0.95, 0.95)


def test_alice_setting_the_targets_is_audited_with_old_and_new(client, review, alice):
    records(review, 10)
    client.force_login(alice)
    url = reverse("screening:stopping_targets", args=[review.slug, TA])
    response = client.post(url, {"recall_target": "97.5", "confidence": "99"})
    assert response.status_code == 302 and response["Location"].endswith("#stopping-title_abstract")
    assert sampling.targets(review, TA) == sampling.Targets(0.975, 0.99)
    [event] = stopping_events(review)
    assert event == {
        "stage": TA.value,
        "stopping": "targets",
        "old": {"recall_target": 0.95, "confidence": 0.95},
        "new": {"recall_target": 0.975, "confidence": 0.99},
    }
    page = client.get(reverse("review:detail", args=[review.slug])).content.decode()
    assert 'name="recall_target" min="50" max="99.9" step="0.1" value="97.5"' in page
    assert "97.5% of the relevant records" in page


@pytest.mark.parametrize(
    "posted, named",
    [
        ({"recall_target": "100", "confidence": "95"}, "Recall target"),
        ({"recall_target": "95", "confidence": "49.9"}, "Confidence"),
        ({"recall_target": "ninety", "confidence": "95"}, "Recall target"),
        ({"recall_target": "95"}, "Confidence"),
    ],
)
def test_a_target_outside_50_to_99_9_is_refused_naming_the_field(client, review, alice, posted, named):
    client.force_login(alice)
    url = reverse("screening:stopping_targets", args=[review.slug, TA])
    response = client.post(url, posted, follow=True)
    text = response.content.decode()
    assert "Stopping rule not changed." in text and named in text
    assert sampling.targets(review, TA) == sampling.Targets(0.95, 0.95)
    assert stopping_events(review) == []


def test_set_targets_refuses_values_outside_the_range_and_writes_nothing(review, alice):
    with pytest.raises(ValueError, match="Recall target must be between 50% and 99.9%"):
        sampling.set_targets(review, TA, recall_target=1.0, confidence=0.95, by=alice)
    assert stopping_events(review) == []


@pytest.mark.parametrize("name", ["stopping_targets", "sample_start", "sample_end"])
def test_only_owners_change_the_stopping_rule(client, review, bob, dave, erin, name):
    records(review, 5)
    url = reverse(f"screening:{name}", args=[review.slug, TA])
    posted = {"recall_target": "90", "confidence": "90"}
    for user, status in ((bob, 403), (erin, 403), (dave, 404)):
        client.force_login(user)
        assert client.post(url, posted).status_code == status
        assert client.get(url).status_code == 405
    assert not RandomSample.objects.exists()
    assert sampling.targets(review, TA) == sampling.Targets(0.95, 0.95)


# Starting and ending a sample ---------------------------------------------------------------------


def test_the_sample_is_a_permutation_of_exactly_the_records_left_and_is_audited(review, alice, bob):
    recs = records(review, 30)
    screen(recs[:10], bob, ["include"] * 3 + ["exclude"] * 7)
    sample = sampling.start_sample(review, TA, by=alice)
    left = {r.pk for r in recs[10:]}
    order = permutation(sample)
    assert sorted(order) == sorted(left)
    assert (sample.sampled_from, sample.remainder) == (10, 20)
    assert (sample.recall_target, sample.confidence, sample.started_by) == (0.95, 0.95, alice)
    # The stored seed reproduces the stored order.
    assert stopping.draw_permutation(left, sample.seed) == order
    [event] = stopping_events(review)
    assert event["stopping"] == "sample started" and event["seed"] == sample.seed and event["remainder"] == 20


def test_each_sample_draws_a_fresh_seed(review, alice):
    records(review, 50)
    first = sampling.start_sample(review, TA, by=alice)
    sampling.end_sample(review, TA, by=alice)
    second = sampling.start_sample(review, TA, by=alice)
    assert first.seed != second.seed and permutation(first) != permutation(second)


def test_the_permutation_puts_every_record_first_equally_often():
    """Uniform: over 6,000 seeds each of 6 ids comes first about 1,000 times (chi-square, 5 df)."""
    ids = [11, 12, 13, 14, 15, 16]
    firsts = Counter(stopping.draw_permutation(ids, f"{seed:032x}")[0] for seed in range(6000))
    chi2 = sum((firsts[i] - 1000) ** 2 / 1000 for i in ids)
    assert set(firsts) == set(ids)
    assert chi2 < 20.5  # p = 0.001 at 5 degrees of freedom


def test_a_sample_cannot_start_twice_or_with_nothing_left_or_end_when_none_runs(review, alice, bob):
    recs = records(review, 4)
    with pytest.raises(sampling.SamplingError, match="No random sample is running"):
        sampling.end_sample(review, TA, by=alice)
    sampling.start_sample(review, TA, by=alice)
    with pytest.raises(sampling.SamplingError, match="already running"):
        sampling.start_sample(review, TA, by=alice)
    sampling.end_sample(review, TA, by=alice)
    screen(recs, bob, ["exclude"] * 4)
    with pytest.raises(sampling.SamplingError, match="nothing left to sample"):
        sampling.start_sample(review, TA, by=alice)
    assert RandomSample.objects.count() == 1


def test_alice_starts_and_ends_the_sample_from_the_dashboard(client, review, alice, bob):
    recs = records(review, 300)
    screen(recs[:60], bob, ["include"] * 5 + ["exclude"] * 55)
    client.force_login(alice)
    dashboard = reverse("review:detail", args=[review.slug])
    page = client.get(dashboard).content.decode()
    to_sample = stopping.records_to_sample(5, 240)
    assert "Check with a random sample" in page
    assert f"about {to_sample} of them" in page

    client.post(reverse("screening:sample_start", args=[review.slug, TA]))
    sample = sampling.open_sample(review, TA)
    page = client.get(dashboard).content.decode()
    assert "Random-sample test" in page and "End the random sample" in page
    assert "The sample covers the records that existed, unscreened, when it began." in page

    client.post(reverse("screening:sample_end", args=[review.slug, TA]))
    sample.refresh_from_db()
    assert sample.ended_at is not None and sample.ended_by == alice
    assert [e["stopping"] for e in stopping_events(review)] == ["sample started", "sample ended"]
    assert "Check with a random sample" in client.get(dashboard).content.decode()


# The queue ----------------------------------------------------------------------------------------


def test_every_reviewer_gets_the_samples_order_whatever_order_they_chose(review, alice, bob, carol):
    recs = records(review, 12)
    OrderPreference.objects.create(review=review, user=bob, order=ScreeningOrder.IMPORT)
    OrderPreference.objects.create(review=review, user=carol, order=ScreeningOrder.RANDOM)
    sample = sampling.start_sample(review, TA, by=alice)
    order = permutation(sample)
    assert order != [r.pk for r in recs]  # 1 in 479,001,600 that a fair shuffle leaves the import order

    handed = [take(review, bob) if i % 2 == 0 else take(review, carol) for i in range(12)]
    assert handed == order
    hand_outs = HandOut.objects.order_by("pk")
    assert {h.order for h in hand_outs} == {HandOutOrder.SAMPLE}
    assert [h.rank for h in hand_outs] == list(range(1, 13))

    # Ended: bob is back to import order.
    sampling.end_sample(review, TA, by=alice)
    assert queue._order(Record.objects.for_review(review), review, bob, TA).first().pk == recs[0].pk


def test_under_dual_screening_both_reviewers_follow_the_same_permutation(review, alice, bob, carol):
    review.title_abstract_reviewers = 2
    review.save()
    records(review, 8)
    order = permutation(sampling.start_sample(review, TA, by=alice))
    assert [take(review, bob) for _ in range(8)] == order
    assert [take(review, carol) for _ in range(8)] == order


# The prefix rule ----------------------------------------------------------------------------------


def test_the_test_uses_the_settled_prefix_only_so_a_held_record_never_biases_it(review, alice, bob, carol):
    recs = records(review, 40)
    screen(recs[:10], bob, ["include"] * 4 + ["exclude"] * 6)
    sample = sampling.start_sample(review, TA, by=alice)
    order = permutation(sample)
    held = queue.next_record(review, bob, TA)  # bob is shown position 1 and leaves it
    assert held.pk == order[0]
    # carol screens on: she is handed positions 2.. (bob's claim holds position 1).
    for expected in order[1:6]:
        assert take(review, carol) == expected

    progress = sampling.sample_progress(review, TA, sample)
    assert (progress.sampled, progress.settled_beyond) == (0, 5)
    labels_before = [1] * 4 + [0] * 6
    assert progress.advice.p_value == stopping.recommend(labels_before, 40, sampled_from=10).p_value

    record_decision(record=held, reviewer=bob, stage=TA, decision="include")
    progress = sampling.sample_progress(review, TA, sample)
    assert (progress.sampled, progress.relevant_in_sample, progress.settled_beyond) == (6, 1, 0)
    expected = stopping.recommend(labels_before + [1, 0, 0, 0, 0, 0], 40, sampled_from=10)
    assert progress.advice == expected
    assert progress_report.stage_progress(review, TA).advice == expected


def test_a_conflict_holds_the_prefix_like_a_missing_vote(review, alice, bob, carol):
    review.title_abstract_reviewers = 2
    review.save()
    records(review, 10)
    sample = sampling.start_sample(review, TA, by=alice)
    first, second = (Record.objects.get(pk=pk) for pk in permutation(sample)[:2])
    for record in (first, second):
        record_decision(record=record, reviewer=bob, stage=TA, decision="exclude")
    record_decision(record=second, reviewer=carol, stage=TA, decision="exclude")
    waiting = sampling.sample_progress(review, TA, sample)
    record_decision(record=first, reviewer=carol, stage=TA, decision="include")  # a conflict
    disputed = sampling.sample_progress(review, TA, sample)
    assert waiting.advice == disputed.advice
    assert (disputed.sampled, disputed.settled_beyond) == (0, 1)


def test_a_sample_record_that_leaves_the_stage_counts_as_settled_and_irrelevant(review, alice):
    recs = records(review, 6)
    sample = sampling.start_sample(review, TA, by=alice)
    first = Record.objects.get(pk=permutation(sample)[0])
    first.duplicate_of = next(r for r in recs if r.pk != first.pk)
    first.save(update_fields=["duplicate_of"])
    progress = sampling.sample_progress(review, TA, sample)
    assert (progress.sampled, progress.relevant_in_sample) == (1, 0)


# Records that join the stage after the start --------------------------------------------------------


def test_records_imported_after_the_start_are_handed_out_first_and_block_a_stop_until_screened(review, alice, bob):
    recs = records(review, 200)
    screen(recs[:20], bob, ["include"] * 4 + ["exclude"] * 16)
    sample = sampling.start_sample(review, TA, by=alice)
    order = permutation(sample)
    # Screen the sample until the test says stop.
    n = 0
    while not sampling.sample_progress(review, TA, sample).advice.stop:
        record_decision(record=Record.objects.get(pk=order[n]), reviewer=bob, stage=TA, decision="exclude")
        n += 1
    assert n < len(order)
    late = records(review, 3, source="Update search")
    progress = progress_report.stage_progress(review, TA)
    assert progress.sample.outside_waiting == 3
    assert progress.advice.stop is False
    assert progress.recommendation.startswith("Keep screening: 3 records joined this stage after the random sample")
    # They come first, in import order, before the rest of the sample.
    assert [take(review, bob) for _ in range(4)] == [r.pk for r in late] + [order[n]]
    late_hand_outs = HandOut.objects.filter(record__in=late).values_list("order", "rank")
    assert list(late_hand_outs) == [(HandOutOrder.SAMPLE, None)] * 3
    assert HandOut.objects.get(record_id=order[n]).rank == n + 1
    progress = progress_report.stage_progress(review, TA)
    assert progress.sample.outside_waiting == 0 and progress.advice.stop is True
    assert progress.sample.outside_settled == 23


def test_a_relevant_record_imported_later_counts_as_found_once_screened(review, alice, bob):
    recs = records(review, 100)
    screen(recs[:10], bob, ["include"] * 2 + ["exclude"] * 8)
    sample = sampling.start_sample(review, TA, by=alice)
    [late] = records(review, 1, source="Update search")
    record_decision(record=late, reviewer=bob, stage=TA, decision="include")
    progress = sampling.sample_progress(review, TA, sample)
    # Labels: the 11 settled outside records (3 relevant), no sample yet; population 11 + 90.
    assert progress.advice == stopping.recommend([1, 1] + [0] * 8 + [1], 101, sampled_from=11)


# What the dashboard and the screening page say ------------------------------------------------------


def test_the_screening_page_says_the_samples_order_overrides_the_chosen_one(client, review, alice, bob):
    records(review, 5)
    client.force_login(bob)
    url = reverse("screening:screen", args=[review.slug, TA])
    assert "A random sample of the records left is being screened" not in client.get(url).content.decode()
    sampling.start_sample(review, TA, by=alice)
    assert "A random sample of the records left is being screened" in client.get(url).content.decode()


def test_the_panel_shows_both_tests_and_the_estimate_from_the_sample(client, review, alice, bob):
    recs = records(review, 300)
    screen(recs[:30], bob, ["include"] * 6 + ["exclude"] * 24)
    sample = sampling.start_sample(review, TA, by=alice)
    for pk in permutation(sample)[:50]:
        record_decision(record=Record.objects.get(pk=pk), reviewer=bob, stage=TA, decision="exclude")
    progress = progress_report.stage_progress(review, TA)
    s = progress.sample
    assert (s.sampled, s.relevant_in_sample) == (50, 0)
    assert progress.advice.method == stopping.SAMPLE and progress.ranked_advice.method == stopping.RANKED
    assert s.more_to_sample == stopping.more_to_sample([1] * 6 + [0] * 24 + [0] * 50, 300, sampled_from=30)
    client.force_login(bob)
    panel = re.search(
        r'<section class="card stopping".*?</section>',
        client.get(reverse("review:detail", args=[review.slug])).content.decode(),
        re.S,
    ).group(0)
    low, high = s.advice.interval
    assert f'{s.advice.estimated_remaining} <span class="muted small">({low}–{high} at 95% confidence)' in panel
    assert "50 of 270" in panel and "Ranked test" in panel and "Random-sample test" in panel
    methods = progress_report.methods_paragraph(review)
    assert "a uniform random sample of the 270 records then left unscreened" in methods
    assert "on the first 50 records of that order (0 relevant)" in methods


# Blinding -----------------------------------------------------------------------------------------


def test_bob_cannot_tell_carols_disagreement_from_her_missing_vote_during_a_sample(client, review, alice, bob, carol):
    review.title_abstract_reviewers = 2
    review.save()
    records(review, 30)
    sample = sampling.start_sample(review, TA, by=alice)
    first = Record.objects.get(pk=permutation(sample)[0])
    record_decision(record=first, reviewer=bob, stage=TA, decision="include")
    urls = [
        reverse("review:detail", args=[review.slug]),
        reverse("screening:screen", args=[review.slug, TA]),
        reverse("screening:methods_text", args=[review.slug]),
        reverse("screening:recall_curve", args=[review.slug, TA, "svg"]),
    ]
    csrf = re.compile(r"\b[A-Za-z0-9]{64}\b")
    client.force_login(bob)

    def seen():
        return [csrf.sub("", client.get(url).content.decode()) for url in urls]

    before = seen()
    record_decision(record=first, reviewer=carol, stage=TA, decision="exclude")
    assert seen() == before


# Concurrency --------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_owners_starting_a_sample_at_once_make_one_sample(review, alice, bob):
    if connection.vendor != "postgresql":
        pytest.skip(PG_ONLY)
    records(review, 300)
    failures = []
    for attempt in range(5):
        results = at_once(*(lambda: sampling.start_sample(review, TA, by=alice) for _ in range(2)))
        started = [r for r in results if isinstance(r, RandomSample)]
        refused = [r for r in results if isinstance(r, sampling.SamplingError)]
        open_samples = RandomSample.objects.filter(review=review, stage=TA, ended_at__isnull=True)
        if len(started) != 1 or len(refused) != 1 or open_samples.count() != 1:
            failures.append((attempt, results))
        elif SampleRecord.objects.filter(sample=started[0]).count() != 300:
            failures.append((attempt, "permutation incomplete"))
        sampling.end_sample(review, TA, by=alice)
    assert failures == []
    assert RandomSample.objects.count() == 5


def test_more_sample_records_all_irrelevant_bring_the_stop(review, alice, bob):
    """The panel's "further sample records needed" is exact: that many irrelevant ones stop it, one fewer does not."""
    recs = records(review, 400)
    screen(recs[:40], bob, ["include"] * 8 + ["exclude"] * 32)
    sample = sampling.start_sample(review, TA, by=alice)
    needed = sampling.sample_progress(review, TA, sample).more_to_sample
    order = permutation(sample)
    for pk in order[: needed - 1]:
        record_decision(record=Record.objects.get(pk=pk), reviewer=bob, stage=TA, decision="exclude")
    assert not sampling.sample_progress(review, TA, sample).advice.stop
    record_decision(record=Record.objects.get(pk=order[needed - 1]), reviewer=bob, stage=TA, decision="exclude")
    assert sampling.sample_progress(review, TA, sample).advice.stop
    assert needed == stopping.records_to_sample(8, 360)


def test_the_dashboard_suggests_a_sample_once_ranked_screening_has_stalled(client, review, alice, bob):
    recs = records(review, 400)
    screen(recs[:59], bob, ["include"] * 10 + ["exclude"] * 49)
    client.force_login(alice)
    dashboard = reverse("review:detail", args=[review.slug])
    assert "Suggested now" not in client.get(dashboard).content.decode()
    screen(recs[59:60], bob, ["exclude"], minute=60)  # 50 irrelevant in a row: max(50, 5% of 400)
    assert "Suggested now</strong>: 50 irrelevant records in a row" in client.get(dashboard).content.decode()
    sampling.start_sample(review, TA, by=alice)
    assert "Suggested now" not in client.get(dashboard).content.decode()
