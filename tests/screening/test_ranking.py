"""The ranking model on small corpora whose relevant records share words."""

from screening import ranking

TEXTS = [
    "kratom use and ptsd symptoms in veterans",  # 0 relevant (prior)
    "mouse model of liver enzyme kinetics",  # 1 irrelevant (prior)
    "kratom mitragynine for trauma and ptsd",  # 2 relevant
    "enzyme kinetics in rat hepatocytes",  # 3 irrelevant
    "self-reported kratom dependence and ptsd",  # 4 relevant
    "hepatocyte culture in mice",  # 5 irrelevant
]


def test_after_one_include_and_one_exclude_the_records_like_the_include_come_first():
    features = ranking.build_features(TEXTS)
    scores = ranking.score(features, {0: 1, 1: 0})
    assert set(ranking.next_rows(scores, screened=[0, 1], k=2)) == {2, 4}


def test_before_any_label_the_review_criteria_rank_the_records():
    features = ranking.build_features(TEXTS, criteria="Does kratom relieve PTSD symptoms?")
    scores = ranking.score(features, {})
    assert set(ranking.next_rows(scores, screened=[], k=3)) == {0, 2, 4}


def test_without_criteria_or_both_kinds_of_label_every_record_scores_the_same():
    features = ranking.build_features(TEXTS)
    assert set(ranking.score(features, {0: 1}).tolist()) == {0.0}
