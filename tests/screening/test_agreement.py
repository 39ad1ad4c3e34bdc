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


def test_it_is_cohens_kappa_when_every_compared_record_has_the_same_two_reviewers():
    # bob and carol rate records 1-4 together; erin screened record 5 alone, so it is not compared
    # and must not turn the statistic into a many-rater one.
    votes = {
        1: {"bob": "i", "carol": "i"},
        2: {"bob": "e", "carol": "e"},
        3: {"bob": "i", "carol": "e"},
        4: {"bob": "e", "carol": "e"},
        5: {"erin": "i"},
    }
    result = agreement(votes)
    assert (result["kappa_method"], result["kappa_label"]) == ("cohen", "Cohen's kappa")
    pairs = [(v["bob"], v["carol"]) for v in votes.values() if len(v) == 2]
    assert result["kappa"] == pytest.approx(cohen_kappa(pairs), abs=1e-4)
    assert result["kappa_records"] == result["records_compared"] == 4


def test_it_says_so_when_the_reviewer_pairs_vary_across_records():
    votes = {
        1: {"bob": "i", "carol": "i"},
        2: {"bob": "e", "carol": "e"},
        3: {"bob": "i", "erin": "e"},
        4: {"carol": "e", "erin": "e"},
    }
    result = agreement(votes)
    assert result["kappa_method"] == "fleiss"
    assert not result["kappa_label"].startswith("Cohen")
    assert result["kappa_label"] == "Fleiss' kappa across varying reviewers (2 per record)"
    assert result["kappa"] == pytest.approx(fleiss_kappa([list(v.values()) for v in votes.values()]), abs=1e-4)


def test_three_reviewers_on_every_record_is_fleiss_with_the_same_reviewers():
    votes = {1: {"bob": "i", "carol": "i", "erin": "i"}, 2: {"bob": "e", "carol": "e", "erin": "i"}}
    result = agreement(votes)
    assert result["kappa_label"] == "Fleiss' kappa (the same 3 reviewers on every record)"


def test_no_compared_record_gives_no_kappa_and_no_label():
    result = agreement({1: {"bob": "i"}, 2: {"carol": "e"}})
    assert (result["kappa"], result["kappa_method"], result["kappa_label"]) == (None, None, None)
