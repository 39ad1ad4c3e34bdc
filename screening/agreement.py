"""Inter-rater agreement: Cohen's kappa, Fleiss' kappa and raw percent agreement (no ORM here)."""

from collections import Counter
from itertools import combinations


def cohen_kappa(pairs):
    """Cohen's kappa for a list of (rating_a, rating_b); None when undefined (no pairs)."""
    n = len(pairs)
    if not n:
        return None
    observed = sum(a == b for a, b in pairs) / n
    count_a = Counter(a for a, _ in pairs)
    count_b = Counter(b for _, b in pairs)
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


def agreement(votes_by_record):
    """Agreement figures for one stage.

    ``votes_by_record``: {record_id: {reviewer: category}}. Returns a dict with ``kappa`` (Cohen's
    when exactly two reviewers took part, else Fleiss'), ``kappa_method``, ``percent_agreement``,
    ``records_compared`` and ``pairs``: per reviewer pair, Cohen's kappa and percent agreement on
    the records both rated.
    """
    reviewers = sorted({r for votes in votes_by_record.values() for r in votes})
    items = [list(v.values()) for v in votes_by_record.values() if len(v) >= 2]
    pairs = []
    for a, b in combinations(reviewers, 2):
        both = [(v[a], v[b]) for v in votes_by_record.values() if a in v and b in v]
        if both:
            pairs.append(
                {
                    "reviewers": [a, b],
                    "records": len(both),
                    "kappa": _round(cohen_kappa(both)),
                    "percent_agreement": _round(100 * sum(x == y for x, y in both) / len(both)),
                }
            )
    if len(reviewers) == 2:
        both = [(v[reviewers[0]], v[reviewers[1]]) for v in votes_by_record.values() if len(v) == 2]
        kappa, method = cohen_kappa(both), "cohen"
    else:
        kappa, method = fleiss_kappa(items), "fleiss"
    return {
        "kappa": _round(kappa),
        "kappa_method": method if kappa is not None else None,
        "percent_agreement": _round(percent_agreement(items)),
        "records_compared": len(items),
        "pairs": pairs,
    }


def _round(value):
    return None if value is None else round(value, 4)
