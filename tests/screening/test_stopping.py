"""The stopping rule: buscar's hypergeometric test, its random-sample phase and its estimate."""

import math

import numpy as np
import pytest
from scipy.stats import hypergeom

from screening import stopping


def buscar_by_the_formula(labels, n_total, recall_target):
    """Callaghan and Müller-Hansen's p-value written out over every suffix, as the paper states it."""
    labels = list(labels)
    found = sum(labels)
    needed = math.floor(found / recall_target + 1e-9) + 1
    p = []
    for start in range(len(labels)):
        urn = labels[start:]
        in_urn = sum(urn)
        population = len(urn) + n_total - len(labels)
        k = needed - (found - in_urn)
        p.append(0.0 if k > population else hypergeom.cdf(in_urn, population, k, len(urn)))
    return min(p)


def generated_orders(count, seed=7):
    """Screening orders from a model that finds relevant records ``bias`` times as readily."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n_total = int(rng.integers(20, 400))
        relevant = max(1, int(n_total * rng.uniform(0.01, 0.3)))
        weights = np.ones(n_total)
        weights[:relevant] = rng.uniform(1, 30)
        order = rng.choice(n_total, n_total, replace=False, p=weights / weights.sum())
        screened = int(rng.integers(1, n_total + 1))
        yield (order[:screened] < relevant).astype(int), n_total, float(rng.choice([0.8, 0.9, 0.95, 0.99]))


def test_the_p_value_is_buscars_minimum_over_every_run_of_recent_records():
    for labels, n_total, target in generated_orders(150):
        expected = buscar_by_the_formula(labels, n_total, target)
        assert stopping.p_value(labels, n_total, recall_target=target) == pytest.approx(expected, rel=1e-9, abs=1e-12)


# buscarpy 0.0.2's calculate_h0 on these sequences, computed in a throwaway virtualenv
# (pip install buscarpy==0.0.2; buscarpy.calculate_h0(labels, N, recall_target=target)).
BUSCARPY = [
    ([1, 1, 0, 1, 0, 0, 1] + [0] * 60, 100, 0.95, 0.3548387096774193),
    ([1] * 20 + [0] * 5 + [1] * 5 + [0] * 150, 300, 0.9, 0.0865683971715154),
    ([0, 1] * 10 + [0] * 40, 80, 0.8, 0.03331385154880187),
    ([1] * 9 + [0] * 400, 500, 0.95, 0.18533604887983704),
    ([1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1, 1] * 5 + [0] * 100, 400, 0.95, 0.49765747006767314),
]


@pytest.mark.parametrize("labels, n_total, target, expected", BUSCARPY)
def test_it_agrees_with_buscarpy(labels, n_total, target, expected):
    assert stopping.p_value(labels, n_total, recall_target=target) == pytest.approx(expected, rel=1e-9)


def test_it_agrees_with_buscarpy_itself_when_installed():
    buscarpy = pytest.importorskip("buscarpy", reason="buscarpy (pandas, matplotlib) is not a project dependency")
    for labels, n_total, target in generated_orders(100, seed=11):
        if stopping.p_value(labels, n_total, recall_target=target) == 0.0:
            continue  # buscarpy returns nan where the hypothesis cannot hold; we return 0
        expected = buscarpy.calculate_h0(labels, n_total, recall_target=target)
        assert stopping.p_value(labels, n_total, recall_target=target) == pytest.approx(expected, rel=1e-9)


def test_one_run_of_irrelevant_records_gives_the_chance_of_missing_the_one_record_that_would_break_the_target():
    # 18 relevant found, 100 irrelevant after them, 20 unscreened: recall < 95% needs one more
    # relevant record (18/19 < 95%), which a random draw of 100 from 120 misses with probability 20/120.
    assert stopping.p_value([1] * 18 + [0] * 100, 138) == pytest.approx(20 / 120)
    # With 19 found, 19/20 meets the target: two must be missing, missed with C(20,2)/C(120,2).
    assert stopping.p_value([1] * 19 + [0] * 100, 139) == pytest.approx(math.comb(20, 2) / math.comb(120, 2))


def test_it_never_stops_before_the_records_after_the_last_relevant_one_outnumber_the_rest_enough():
    labels = [1] * 9 + [0] * 100
    assert stopping.recommend(labels, 1000).stop is False
    assert stopping.recommend(labels, 109).stop is True  # everything screened: recall is 100%


def test_it_stops_once_a_long_run_of_irrelevant_records_follows_the_relevant_ones():
    advice = stopping.recommend([1] * 40 + [0] * 560, 700)
    assert advice.stop and advice.p_value < 0.05
    assert advice.estimated_remaining == 0 and advice.interval[0] == 0
    assert advice.method == stopping.RANKED and "95%" in advice.explanation


def test_the_upper_bound_on_what_remains_is_the_largest_count_the_test_cannot_reject():
    labels = [1] * 30 + [0] * 200
    advice = stopping.recommend(labels, 500, confidence=0.9)
    high = advice.interval[1]
    unscreened = 500 - len(labels)
    assert hypergeom.cdf(0, 200 + unscreened, high, 200) >= 0.1
    assert hypergeom.cdf(0, 200 + unscreened, high + 1, 200) < 0.1


def test_a_random_sample_estimates_what_remains_and_bounds_it_both_ways():
    # 50 ranked records, then 100 drawn at random from the 950 left, 4 of them relevant.
    labels = [1] * 20 + [0] * 30 + [1] * 4 + [0] * 96
    advice = stopping.recommend(labels, 1000, sampled_from=50)
    assert advice.method == stopping.SAMPLE and not advice.stop
    assert advice.estimated_remaining == round(4 * 850 / 100)
    low, high = advice.interval
    assert 0 < low < advice.estimated_remaining < high
    # low: the fewest relevant records in the 950 for which 4 or more in the sample stays plausible.
    assert hypergeom.sf(3, 950, low + 4, 100) >= 0.05 > hypergeom.sf(3, 950, low + 3, 100)
    assert hypergeom.cdf(4, 950, high + 4, 100) >= 0.05 > hypergeom.cdf(4, 950, high + 5, 100)


def test_the_sample_test_uses_only_the_sample():
    # 18 relevant then 300 irrelevant in ranked order, then a random sample of 50 (all irrelevant)
    # of the 62 then left. Read as one ranked order, the 350 irrelevant records in a row outweigh
    # the 12 unscreened; the sample alone (50 of 62) does not rule out one missing record.
    labels = [1] * 18 + [0] * 350
    assert stopping.p_value(labels, 380) == pytest.approx(12 / 362)
    assert stopping.recommend(labels, 380).stop is True
    assert stopping.p_value(labels, 380, sampled_from=318) == pytest.approx(12 / 62)
    assert stopping.recommend(labels, 380, sampled_from=318).stop is False


def test_records_to_sample_is_the_smallest_sample_that_would_recommend_stopping():
    needed = stopping.records_to_sample(19, 1000)
    assert stopping.recommend([1] * 19 + [0] * needed, 1019, sampled_from=19).stop
    assert not stopping.recommend([1] * 19 + [0] * (needed - 1), 1019, sampled_from=19).stop


def test_the_random_sample_test_keeps_its_guarantee_when_checked_after_every_record():
    # Screening in random order from the start: the sample test must stop short of 95% recall
    # in at most about 5% of runs, although it is looked at after every record.
    rng = np.random.default_rng(3)
    runs, misses = 200, 0
    for _ in range(runs):
        labels = rng.permutation([1] * 10 + [0] * 190)
        stop = stopping.simulate_stop_at(labels, sampled_from=0) or len(labels)
        misses += labels[:stop].sum() < 0.95 * 10
    assert misses / runs <= 0.08


def test_simulate_stop_at_is_the_first_check_that_says_stop():
    labels = [1] * 40 + [0] * 660
    stop = stopping.simulate_stop_at(labels)
    assert stopping.recommend(labels[:stop], 700).stop
    assert not stopping.recommend(labels[: stop - 1], 700).stop
    assert stopping.simulate_stop_at(labels, every=25) == math.ceil(stop / 25) * 25


def test_it_stops_at_the_latest_when_everything_is_screened():
    assert stopping.simulate_stop_at([0] * 10 + [1]) == 11
    assert stopping.simulate_stop_at([0] * 10 + [1], 12) is None


def test_nonsense_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="only 2 in all"):
        stopping.recommend([0, 0, 1], 2)
    with pytest.raises(ValueError, match="0 \\(irrelevant\\) or 1"):
        stopping.recommend([0, 2], 5)
    with pytest.raises(ValueError, match="recall_target"):
        stopping.recommend([0, 1], 5, recall_target=1)


def test_the_urns_it_skips_could_never_have_rejected():
    # Skipped urns hold at least their expected count plus one: their p must be at least 0.5.
    rng = np.random.default_rng(5)
    population = rng.integers(1, 3000, 20000)
    k = rng.integers(0, population + 1)
    size = rng.integers(0, population + 1)
    mean = k * size / population
    x = np.minimum(np.ceil(mean + 1), np.minimum(k, size)).astype(int)
    skipped = x >= mean + 1
    assert skipped.sum() > 1000
    assert (hypergeom.cdf(x[skipped], population[skipped], k[skipped], size[skipped]) >= 0.5).all()


def test_more_to_sample_is_the_fewest_further_irrelevant_draws_that_stop_it():
    rng = np.random.default_rng(3)
    for _ in range(40):
        n_total = int(rng.integers(100, 2000))
        before = int(rng.integers(10, n_total // 2))
        labels = list((rng.random(before) < 0.1).astype(int)) + list(rng.random(int(rng.integers(0, 30))) < 0.05)
        labels = [int(x) for x in labels]
        more = stopping.more_to_sample(labels, n_total, sampled_from=before)
        if more is None:
            padded = labels + [0] * (n_total - len(labels))
            assert stopping.p_value(padded, n_total, sampled_from=before) >= 0.05
            continue
        enough = labels + [0] * more
        assert stopping.recommend(enough, n_total, sampled_from=before).stop
        if more:
            assert not stopping.recommend(enough[:-1], n_total, sampled_from=before).stop
    # A fresh sample: the same as records_to_sample.
    assert stopping.more_to_sample([1] * 8 + [0] * 32, 400, sampled_from=40) == stopping.records_to_sample(8, 360)


def test_no_test_free_of_the_ranking_can_leave_more_than_the_uniform_samples_share():
    """most_left_unscreened: C(L, m) / C(R, m) <= 1 - confidence at L, not at L + 1 (m relevant to rule out)."""
    for relevant, remainder in [(9, 1621), (15, 243), (20, 932), (38, 4506), (80, 286), (96, 1079)]:
        m = stopping.relevant_needed(relevant, 0.95) - relevant
        left = stopping.most_left_unscreened(relevant, remainder)
        assert math.comb(left, m) / math.comb(remainder, m) < 0.05 <= math.comb(left + 1, m) / math.comb(remainder, m)
        assert abs(left / remainder - 0.05 ** (1 / m)) < 0.02


def test_simulate_stop_at_with_a_sample_matches_checking_each_prefix_by_hand():
    rng = np.random.default_rng(11)
    for _ in range(60):
        n_total = int(rng.integers(50, 500))
        labels = (rng.random(n_total) < rng.uniform(0.01, 0.2)).astype(int)
        switch = int(rng.integers(0, n_total))
        labels[:switch] = np.sort(labels[:switch])[::-1]
        target = float(rng.choice([0.8, 0.9, 0.95]))
        by_hand = next(
            (
                n
                for n in range(1, n_total + 1)
                if stopping.p_value(
                    labels[:n], n_total, recall_target=target, sampled_from=switch if n > switch else None
                )
                < 0.05
            ),
            None,
        )
        assert stopping.simulate_stop_at(labels, n_total, recall_target=target, sampled_from=switch) == by_hand
        sample_only = next(
            (
                n
                for n in range(switch + 1, n_total + 1)
                if stopping.p_value(labels[:n], n_total, recall_target=target, sampled_from=switch) < 0.05
            ),
            None,
        )
        assert (
            stopping.simulate_stop_at(labels, n_total, recall_target=target, sampled_from=switch, ranked_checks=False)
            == sample_only
        )


def test_the_ranked_phase_has_stalled_after_five_percent_or_fifty_irrelevant_in_a_row():
    assert not stopping.ranked_phase_stalled([1] + [0] * 49, 400)
    assert stopping.ranked_phase_stalled([1] + [0] * 50, 400)
    assert not stopping.ranked_phase_stalled([1] + [0] * 99, 2000)
    assert stopping.ranked_phase_stalled([0] * 100, 2000)
    assert not stopping.ranked_phase_stalled([0] * 99 + [1], 2000)


def test_percent_shows_a_target_as_set():
    assert [stopping.percent(x) for x in (0.95, 0.995, 0.5, 0.999)] == ["95%", "99.5%", "50%", "99.9%"]
