"""Inter-rater agreement: Cohen's kappa, Fleiss' kappa and raw percent agreement (no ORM here)."""

from collections import Counter
from itertools import combinations


def cohen_kappa(pairs):
    """Cohen's kappa for a list of (rating_a, rating_b); None when undefined (no pairs)."""
    return cohen_kappa_table(Counter(pairs))


def cohen_kappa_table(table):
    """Cohen's kappa from a contingency table {(rating_a, rating_b): count}, as a database counts
    it; None when undefined (no pairs)."""
    n = sum(table.values())
    if not n:
        return None
    observed = sum(k for (a, b), k in table.items() if a == b) / n
    count_a, count_b = Counter(), Counter()
    for (a, b), k in table.items():
        count_a[a] += k
        count_b[b] += k
    expected = sum(count_a[c] * count_b[c] for c in count_a.keys() | count_b.keys()) / (n * n)
    if expected == 1:
        # Both raters used one and the same category throughout: perfect, if trivial, agreement.
        return 1.0 if observed == 1 else 0.0
    return (observed - expected) / (1 - expected)


def fleiss_kappa(items):
    """Fleiss' kappa for items each rated by the same number of raters.

    ``items`` is a list of rating lists (one list per record). Items with a different number of
    ratings than the most common count are left out, as the statistic requires.
    """
    if not items:
        return None
    raters = Counter(len(i) for i in items).most_common(1)[0][0]
    items = [i for i in items if len(i) == raters]
    if raters < 2 or not items:
        return None
    n_items = len(items)
    categories = sorted({r for i in items for r in i})
    totals = Counter()
    p_i = []
    for ratings in items:
        counts = Counter(ratings)
        totals.update(counts)
        p_i.append((sum(c * c for c in counts.values()) - raters) / (raters * (raters - 1)))
    p_bar = sum(p_i) / n_items
    p_e = sum((totals[c] / (n_items * raters)) ** 2 for c in categories)
    if p_e == 1:
        return 1.0 if p_bar == 1 else 0.0
    return (p_bar - p_e) / (1 - p_e)


def percent_agreement(items):
    """Share (0-100) of items with at least two ratings on which all raters agree."""
    rated = [i for i in items if len(i) >= 2]
    if not rated:
        return None
    return 100 * sum(len(set(i)) == 1 for i in rated) / len(rated)


COHEN_LABEL = "Cohen's kappa"
FLEISS_LABEL = "Fleiss' kappa"


def kappa_label(method, reviewer_sets, raters=None):
    """What the kappa figure is, said plainly: Cohen's only when every compared record had the very
    same two reviewers; otherwise Fleiss' kappa, saying whether the reviewers varied by record."""
    if method == "cohen":
        return COHEN_LABEL
    if method != "fleiss":
        return None
    if len(reviewer_sets) == 1:
        return f"{FLEISS_LABEL} (the same {raters} reviewers on every record)"
    return f"{FLEISS_LABEL} across varying reviewers ({raters} per record)"


def agreement(votes_by_record):
    """Agreement figures for one stage.

    ``votes_by_record``: {record_id: {reviewer: category}}. The records compared are those with at
    least two votes. Returns a dict with ``kappa``: Cohen's when every compared record has exactly
    the same two reviewers, else Fleiss' (over the records rated by the most common number of
    reviewers; ``kappa_records`` says how many), ``kappa_method`` ("cohen"/"fleiss"),
    ``kappa_label`` (what to call it), ``percent_agreement``, ``records_compared`` and ``pairs``:
    per reviewer pair, Cohen's kappa and percent agreement on the records both rated.
    """
    compared = [v for v in votes_by_record.values() if len(v) >= 2]
    reviewers = sorted({r for votes in compared for r in votes})
    items = [list(v.values()) for v in compared]
    pairs = []
    for a, b in combinations(reviewers, 2):
        both = [(v[a], v[b]) for v in compared if a in v and b in v]
        if both:
            pairs.append(
                {
                    "reviewers": [a, b],
                    "records": len(both),
                    "kappa": _round(cohen_kappa(both)),
                    "percent_agreement": _round(100 * sum(x == y for x, y in both) / len(both)),
                }
            )
    reviewer_sets = {frozenset(v) for v in compared}
    raters = None
    if len(reviewer_sets) == 1 and len(reviewers) == 2:
        first, second = reviewers
        kappa, method, used = cohen_kappa([(v[first], v[second]) for v in compared]), "cohen", len(compared)
        raters = 2
    else:
        kappa, method = fleiss_kappa(items), "fleiss"
        raters = Counter(len(i) for i in items).most_common(1)[0][0] if items else None
        used = sum(len(i) == raters for i in items)
    if kappa is None:
        method = None
    return {
        "kappa": _round(kappa),
        "kappa_method": method,
        "kappa_label": kappa_label(method, reviewer_sets, raters),
        "kappa_records": used if kappa is not None else 0,
        "percent_agreement": _round(percent_agreement(items)),
        "records_compared": len(items),
        "pairs": pairs,
    }


def _round(value):
    return None if value is None else round(value, 4)
