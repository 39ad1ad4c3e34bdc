"""When the rest can be left unscreened: the hypergeometric stopping test of Callaghan and
Müller-Hansen (2020), "Statistical stopping criteria for automated screening in systematic
reviews", Systematic Reviews 9:273 ("buscar"). Pure: no ORM here; callers pass the labels in the
order they were screened.

The null hypothesis is "recall is below the target": with ``r`` relevant records found, at least
``K = floor(r / target) + 1`` relevant records exist in all. Two ways to test it:

- Ranked phase (buscar with bias 1). Each run of the most recently screened records (every
  suffix of the screening order) is treated as a random sample drawn without replacement from
  itself plus the records not screened yet; the p-value is the smallest hypergeometric
  probability over those runs of finding as few relevant records as were found. The guarantee
  rests on one assumption: that the model put the records still unscreened no earlier than a
  random order would have, i.e. a relevant record left unscreened was not *less* likely to be
  shown in the recent run than an irrelevant one. This is the paper's "conservative" setting.
- Random-sample phase. Records drawn uniformly at random (without replacement) from everything
  left unscreened at one moment (``sampled_from``: how many had been screened when sampling
  began) are a true random sample of that remainder, so the hypergeometric test on the sample
  needs no assumption about the model.

Recommending a stop when ``p < 1 - confidence`` then means: if recall were below the target, a
sample this poor in relevant records would turn up with probability below ``1 - confidence``.

What is guaranteed, exactly (bench/stopping.py measures it): the random-sample test is exact for
one look and stayed within its 5% error in simulation when checked after every record. The
ranked test is buscar as published: it takes the smallest p over runs chosen after seeing where
the relevant records fell (a run that starts just after a relevant record is biased towards
holding none) and is checked after every record, so on an order no better than random (its
assumption holding with equality) it stops short of the target more often than 5% (8% of 360
shuffled runs of the shared datasets, 18% on Jeyaraman_2020); on a model's order it has been
conservative (every simulated run on the shared datasets reached the target).

How much any test free of the ranking can leave. Say ``r`` relevant records are found and a test
recommends stopping with ``L`` records unscreened. At the edge of the null hypothesis ``m =
relevant_needed(r) - r`` more relevant records exist, and a test that does not rest on the
ranking must hold whichever ``m`` of the ``R = N - r`` other records they are. Take them at random
among the ``R``: until one of them is screened, screening goes exactly as in the world where they
are irrelevant, so the test misses all of them with probability ``E[C(L, m)] / C(R, m)``; some
choice of ``m`` records does at least as badly. So a guarantee at ``confidence`` needs
``C(L, m) / C(R, m) <= 1 - confidence``, about ``L <= R (1 - confidence) ** (1 / m)``, whatever the
sampling design; a uniform sample attains it (``most_left_unscreened``). At 95%/95%, m is 1 up to
18 relevant records (at most 5% of R left), 2 from 19 (22%), 3 from 38 (37%), 5 to 6 at 80-96
(55-61%). R is the whole rest only if the ranking put every relevant record first; otherwise R is
what is left when the sample starts, which must come after (almost) every relevant record.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import hypergeom

RANKED = "ranked"
SAMPLE = "random sample"


@dataclass(frozen=True)
class StopAdvice:
    """The stopping test's answer after some records were screened."""

    stop: bool
    p_value: float  # for H0 "recall < recall_target"; stop when below 1 - confidence
    recall_target: float
    confidence: float
    method: str  # RANKED or SAMPLE
    screened: int
    relevant_found: int
    n_total: int
    estimated_remaining: int  # relevant records estimated to remain unscreened
    interval: tuple  # (low, high): relevant records remaining, at ``confidence``
    explanation: str

    @property
    def estimated_recall(self):
        total = self.relevant_found + self.estimated_remaining
        return self.relevant_found / total if total else None


def _check(labels, n_total, recall_target, confidence, sampled_from):
    labels = np.asarray(labels, dtype=np.int64).ravel()
    if not set(np.unique(labels).tolist()) <= {0, 1}:
        raise ValueError("labels must be 0 (irrelevant) or 1 (relevant).")
    if len(labels) > n_total:
        raise ValueError(f"{len(labels)} records screened but only {n_total} in all.")
    if not 0 < recall_target < 1:
        raise ValueError("recall_target must be between 0 and 1 (exclusive).")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1 (exclusive).")
    if sampled_from is not None and not 0 <= sampled_from <= len(labels):
        raise ValueError("sampled_from must be between 0 and the number of records screened.")
    return labels


def relevant_needed(relevant_found, recall_target):
    """The fewest relevant records in all for which ``relevant_found`` misses the target."""
    # buscar's k_hat; the epsilon guards against r / target landing just below a whole number.
    return math.floor(relevant_found / recall_target + 1e-9) + 1


def _ranked_urns(labels, n_total):
    """(relevant in urn, urn size, population) for the suffixes worth testing.

    For a fixed count of relevant records in a suffix, the longer suffix always gives the
    smaller p-value (more draws, same successes, same unscreened rest), so only the suffixes
    starting at the beginning or just after a relevant record can be the minimum; testing
    those r + 1 suffixes gives exactly buscar's minimum over all N suffixes.
    """
    n = len(labels)
    unscreened = n_total - n
    starts = np.concatenate(([0], np.flatnonzero(labels) + 1))
    starts = starts[starts < n]
    after = np.concatenate((np.cumsum(labels[::-1])[::-1], [0]))  # relevant from position i on
    x = after[starts]
    size = n - starts
    return x, size, size + unscreened


def _tail_p(x, size, population, k):
    """P(at most ``x`` relevant in ``size`` draws | ``k`` relevant among ``population``)."""
    x, size, population, k = np.broadcast_arrays(x, size, population, k)
    p = np.ones(x.shape)
    possible = k <= population  # otherwise the hypothesis cannot hold: p = 0
    p[~possible] = 0.0
    test = possible & (k > x)
    p[test] = hypergeom.cdf(x[test], population[test], k[test], size[test])
    return p


def _min_tail_p(x, size, population, k, exact=True):
    """The smallest ``_tail_p`` over the urns given.

    A hypergeometric median lies within one of the mean, so an urn holding at least its
    expected count plus one has p >= 0.5 and cannot be the one that rejects: those are skipped
    (on 100,000 records most of several hundred urns are), and computed only when ``exact`` and
    no other urn falls below 0.5.
    """
    x, size, population, k = np.broadcast_arrays(x, size, population, k)
    low = x < k * size / np.maximum(population, 1) + 1
    best = _tail_p(x[low], size[low], population[low], k[low]).min(initial=1.0)
    if best < 0.5 or not exact or low.all():
        return float(best)
    return float(_tail_p(x, size, population, k).min())


def p_value(labels, n_total, *, recall_target=0.95, sampled_from=None):
    """p-value for H0 "recall < ``recall_target``" after screening ``labels`` (in order).

    ``sampled_from=None``: the ranked-phase test (buscar, bias 1). ``sampled_from=s``: the
    records after the first ``s`` were drawn uniformly at random from the ``n_total - s`` then
    left, and the test uses that sample alone.
    """
    return _p_value(_check(labels, n_total, recall_target, 0.5, sampled_from), n_total, recall_target, sampled_from)


def _p_value(labels, n_total, recall_target, sampled_from):
    if len(labels) == 0:
        return 1.0
    needed = relevant_needed(int(labels.sum()), recall_target)
    if sampled_from is None:
        x, size, population = _ranked_urns(labels, n_total)
    else:
        sample = labels[sampled_from:]
        x = np.array([int(sample.sum())])
        size = np.array([len(sample)])
        population = np.array([n_total - sampled_from])
        if size[0] == 0:
            return 1.0
    k = needed - (int(labels.sum()) - x)  # relevant the urn's population must hold under H0
    return _min_tail_p(x, size, population, k)


def _remaining_p(labels, n_total, sampled_from, remaining):
    """p-value for "at least ``remaining`` relevant records are still unscreened" (exact below 0.5)."""
    if sampled_from is None:
        x, size, population = _ranked_urns(labels, n_total)
    else:
        sample = labels[sampled_from:]
        x, size, population = int(sample.sum()), len(sample), n_total - sampled_from
    return _min_tail_p(x, size, population, remaining + np.asarray(x), exact=False)


def _last_true(predicate, low, high):
    """The largest n in [low, high] with ``predicate(n)``, for a predicate true up to some n
    and false after it (``low`` must satisfy it). Galloping then bisection: few evaluations,
    all near ``low``, where hypergeometric tails are cheap even on 100,000 records."""
    step = 1
    while low < high:
        probe = min(low + step, high)
        if not predicate(probe):
            high = probe - 1
            break
        low, step = probe, step * 2
    while low < high:
        middle = (low + high + 1) // 2
        if predicate(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _remaining_low(labels, n_total, sampled_from, alpha):
    """Lower bound on relevant records left: only a random sample can show that some remain."""
    if sampled_from is None:
        return 0
    sample = labels[sampled_from:]
    x, size, population = int(sample.sum()), len(sample), n_total - sampled_from
    if x == 0:
        return 0
    # The fewest relevant records k in the remainder for which finding x or more in the sample
    # is not rejected (P(X >= x | k) >= alpha); that probability grows with k.
    most = population - (size - x)
    rejected = _last_true(lambda k: hypergeom.sf(x - 1, population, k, size) < alpha, x - 1, most)
    return rejected + 1 - x


def estimate_remaining(labels, n_total, *, confidence=0.95, sampled_from=None):
    """(estimate, (low, high)) of the relevant records still unscreened.

    ``high`` is the largest count the stopping test cannot reject at ``confidence`` (so "more than
    ``high`` remain" is rejected). The estimate: from a random sample, the sample's share of
    relevant records scaled to the rest; from the ranked order alone, the largest count the test
    gives p >= 0.5 (the ranked order carries no unbiased estimate, so this errs high).
    """
    labels = _check(labels, n_total, 0.5, confidence, sampled_from)
    unscreened = n_total - len(labels)

    def plausible(level):
        return _last_true(lambda k: _remaining_p(labels, n_total, sampled_from, k) >= level, 0, unscreened)

    high = plausible(1 - confidence)
    low = _remaining_low(labels, n_total, sampled_from, 1 - confidence)
    sample = labels[sampled_from:] if sampled_from is not None else ()
    if len(sample):
        estimate = round(int(sample.sum()) * unscreened / len(sample))
    else:
        estimate = plausible(0.5)
    return min(max(estimate, low), high), (low, high)


def recommend(labels, n_total, *, recall_target=0.95, confidence=0.95, sampled_from=None):
    """The stopping advice for a stage after screening ``labels`` (1 relevant, 0 not) in order.

    ``labels`` lists every screened record of the stage once, in screening order; ``n_total``
    counts the records in the stage, screened or not. ``sampled_from``: see ``p_value``.
    """
    labels = _check(labels, n_total, recall_target, confidence, sampled_from)
    p = p_value(labels, n_total, recall_target=recall_target, sampled_from=sampled_from)
    estimate, interval = estimate_remaining(labels, n_total, confidence=confidence, sampled_from=sampled_from)
    stop = p < 1 - confidence
    method = RANKED if sampled_from is None else SAMPLE
    return StopAdvice(
        stop=stop,
        p_value=p,
        recall_target=recall_target,
        confidence=confidence,
        method=method,
        screened=len(labels),
        relevant_found=int(labels.sum()),
        n_total=n_total,
        estimated_remaining=estimate,
        interval=interval,
        explanation=explain(recall_target, confidence, method),
    )


def percent(fraction):
    """95% or 99.5%: a recall target or confidence as set (one decimal at most, none when whole)."""
    return f"{100 * fraction:.1f}".rstrip("0").rstrip(".") + "%"


def explain(recall_target=0.95, confidence=0.95, method=RANKED):
    """The one sentence the dashboard shows beside the recommendation."""
    basis = (
        "treating the most recently screened records as a random draw from them plus the unscreened ones, "
        "which holds if the ranking is no worse than random order"
        if method == RANKED
        else "from a uniform random sample of the records left unscreened"
    )
    return (
        f"Stopping is recommended when a hypergeometric test (Callaghan and Müller-Hansen 2020), {basis}, "
        f"rejects at {percent(confidence)} confidence that fewer than {percent(recall_target)} of the relevant records "
        "have been found."
    )


def records_to_sample(relevant_found, unscreened, *, recall_target=0.95, confidence=0.95):
    """How many of the ``unscreened`` records a uniform random sample must hold, all irrelevant,
    for the sample test to recommend stopping (for the dashboard: "screen N at random")."""
    k = relevant_needed(relevant_found, recall_target) - relevant_found
    if k > unscreened:
        return 0
    alpha = 1 - confidence
    # P(no relevant record in a sample of n) shrinks as n grows: find the first n below alpha.
    return _last_true(lambda n: hypergeom.pmf(0, unscreened, k, n) >= alpha, 0, unscreened) + 1


def draw_permutation(record_ids, seed):
    """The ids in the order a numpy generator seeded with ``seed`` (hex) shuffles them: a uniform
    random permutation. The ids are sorted first, so the same ids and seed give the same order."""
    ids = np.array(sorted(record_ids), dtype=np.int64)
    return np.random.default_rng(int(seed, 16)).permutation(ids).tolist()


def more_to_sample(labels, n_total, *, sampled_from, recall_target=0.95, confidence=0.95):
    """How many more records of a running random sample, all irrelevant, the sample test needs
    before it recommends stopping (0: it already does; None: no number of them would do, which
    happens only when the remainder is exhausted first)."""
    labels = _check(labels, n_total, recall_target, confidence, sampled_from)
    alpha = 1 - confidence
    left = n_total - len(labels)

    def still_short(extra):
        more = np.concatenate((labels, np.zeros(extra, dtype=np.int64)))
        return _p_value(more, n_total, recall_target, sampled_from) >= alpha

    if not still_short(0):
        return 0
    if still_short(left):
        return None
    # Each irrelevant draw lowers the p-value (same count found, a larger sample).
    return _last_true(still_short, 0, left) + 1


def most_left_unscreened(relevant, remainder, *, recall_target=0.95, confidence=0.95):
    """The most records a random sample of ``remainder`` records (all irrelevant) can leave
    unscreened when ``relevant`` relevant records are known outside it: ``remainder`` less
    ``records_to_sample``. With ``m = relevant_needed(relevant) - relevant`` relevant records to
    rule out, it is about ``remainder * (1 - confidence) ** (1 / m)``."""
    return remainder - records_to_sample(relevant, remainder, recall_target=recall_target, confidence=confidence)


# The ranked phase has stalled after this share of all records (and at least STALL_FLOOR) screened
# in a row without a relevant one: the point the dashboard suggests a random sample.
STALL_SHARE = 0.05
STALL_FLOOR = 50


def ranked_phase_stalled(labels, n_total):
    """Whether the last ``max(STALL_FLOOR, STALL_SHARE * n_total)`` records screened were all
    irrelevant (a heuristic for *when* to start a random sample; it guarantees nothing)."""
    window = max(STALL_FLOOR, int(STALL_SHARE * n_total))
    labels = np.asarray(labels, dtype=np.int64).ravel()
    return len(labels) >= window and not labels[len(labels) - window :].any()


def simulate_stop_at(
    labels, n_total=None, *, recall_target=0.95, confidence=0.95, sampled_from=None, every=1, ranked_checks=True
):
    """How many records had been screened when the rule first said stop (None: never).

    ``labels`` is a whole simulated screening order (1 relevant, 0 not); the rule is checked
    after every ``every`` records (and after the last), as the screening page would.
    ``sampled_from``: the records after the first ``sampled_from`` were a random sample of the
    remainder (checks before that use the ranked test, unless ``ranked_checks`` is False; from
    then on, the sample test).
    """
    n_total = len(labels) if n_total is None else n_total
    labels = _check(labels, n_total, recall_target, confidence, sampled_from)
    alpha = 1 - confidence
    checkpoints = list(range(every, len(labels) + 1, every))
    if not checkpoints or checkpoints[-1] != len(labels):
        checkpoints.append(len(labels))
    ranked = [n for n in checkpoints if (sampled_from is None or n <= sampled_from) and ranked_checks]
    for n in ranked:
        if _p_value(labels[:n], n_total, recall_target, None) < alpha:
            return n
    sampled = np.array([n for n in checkpoints if sampled_from is not None and n > sampled_from], dtype=np.int64)
    if len(sampled):
        # The sample test at every checkpoint at once: one urn each, so a vectorised tail.
        found = np.concatenate(([0], np.cumsum(labels)))
        before = found[sampled_from]
        needed = np.floor(found[sampled] / recall_target + 1e-9).astype(np.int64) + 1
        p = _tail_p(
            found[sampled] - before,
            sampled - sampled_from,
            np.full(len(sampled), n_total - sampled_from),
            needed - before,
        )
        hits = np.flatnonzero(p < alpha)
        if len(hits):
            return int(sampled[hits[0]])
    return None
