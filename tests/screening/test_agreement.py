import pytest
from sklearn.metrics import cohen_kappa_score

from screening.agreement import agreement, cohen_kappa, fleiss_kappa, percent_agreement


def test_cohen_kappa_matches_the_hand_computed_value():
    # alice includes 10 of 100, bob 3 of those 10, the other 90 are joint excludes
    pairs = [("include", "include")] * 3 + [("include", "exclude")] * 7 + [("exclude", "exclude")] * 90
    po, pe = 0.93, 0.10 * 0.03 + 0.90 * 0.97
    assert cohen_kappa(pairs) == pytest.approx((po - pe) / (1 - pe))


def test_cohen_kappa_agrees_with_scikit_learn_on_three_categories():
    a = ["include", "exclude", "maybe", "exclude", "include", "exclude", "maybe", "exclude", "exclude", "include"]
    b = ["include", "exclude", "exclude", "exclude", "maybe", "exclude", "maybe", "include", "exclude", "include"]
    assert cohen_kappa(list(zip(a, b))) == pytest.approx(cohen_kappa_score(a, b))


def test_fleiss_kappa_on_the_wikipedia_style_worked_example():
    # 4 items, 3 raters, computed by hand: P_i = [1, 1/3, 1/3, 1]; P_bar = 2/3;
    # p_inc = 6/12, p_exc = 6/12 -> P_e = 0.5; kappa = (2/3 - 1/2) / (1/2) = 1/3
    items = [["i", "i", "i"], ["i", "i", "e"], ["e", "e", "i"], ["e", "e", "e"]]
    assert fleiss_kappa(items) == pytest.approx(1 / 3)


def test_percent_agreement_ignores_singly_rated_records():
    assert percent_agreement([["i", "i"], ["i", "e"], ["e"], ["e", "e"]]) == pytest.approx(200 / 3)
    assert percent_agreement([["i"]]) is None


def test_agreement_reports_each_reviewer_pair():
    votes = {1: {"bob": "i", "carol": "i", "erin": "e"}, 2: {"bob": "e", "carol": "e"}, 3: {"bob": "i", "erin": "i"}}
    result = agreement(votes)
    assert result["kappa_method"] == "fleiss"
    pairs = {tuple(p["reviewers"]): p for p in result["pairs"]}
    assert pairs[("bob", "carol")]["records"] == 2 and pairs[("bob", "carol")]["percent_agreement"] == 100
    assert pairs[("bob", "erin")]["percent_agreement"] == 50
    assert ("carol", "erin") in pairs and pairs[("carol", "erin")]["records"] == 1
