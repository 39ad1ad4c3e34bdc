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


def test_after_the_first_labels_the_criteria_still_lift_the_records_that_match_them():
    texts = [
        "kratom survey in veterans",  # 0 relevant (prior)
        "mouse liver enzyme study",  # 1 irrelevant (prior)
        "veterans survey of sleep habits",  # 2 like the include, off the question
        "kratom and ptsd symptoms",  # 3 on the question
    ]
    labels = {0: 1, 1: 0}
    plain = ranking.score(ranking.build_features(texts), labels)
    guided = ranking.score(ranking.build_features(texts, criteria="Does kratom relieve PTSD symptoms?"), labels)
    assert guided[3] - guided[2] > plain[3] - plain[2]
    assert ranking.next_rows(guided, screened=[0, 1]) == [3]


def test_the_criteria_count_less_once_relevant_records_are_found():
    texts = [f"kratom survey in veterans, wave {i}" for i in range(8)] + [
        "mouse liver enzyme study",
        "kratom and ptsd symptoms",
    ]
    plain = ranking.build_features(texts)
    guided = ranking.build_features(texts, criteria="Does kratom relieve PTSD symptoms?")

    def lift(labels):
        """How much the criteria raise record 9 (on the question) over record 7 (like the includes)."""
        with_criteria, without = ranking.score(guided, labels), ranking.score(plain, labels)
        return (with_criteria[9] - with_criteria[7]) - (without[9] - without[7])

    one_include = lift({0: 1, 8: 0})
    seven_includes = lift({**{i: 1 for i in range(7)}, 8: 0})
    assert one_include > seven_includes > 0


def test_exclusion_criteria_are_not_part_of_what_the_review_wants():
    wanted, excluded = ranking.split_criteria(
        "Question: does kratom relieve PTSD?\nInclude: trials in veterans.\nExclude: animal studies, reviews."
    )
    assert wanted == "does kratom relieve PTSD? trials in veterans."
    assert excluded == "animal studies, reviews."


def test_criteria_split_at_headings_on_lines_of_their_own_and_pico_labels():
    wanted, excluded = ranking.split_criteria(
        "## Inclusion criteria\n"
        "- Population: adults with asthma\n"
        "- control group given placebo\n"
        "Exclusion criteria\n"
        "- children\n"
        "- animal studies\n"
        "Outcomes: exacerbations\n"
        "Not eligible:\n"
        "1. letters"
    )
    assert wanted == "adults with asthma - control group given placebo exacerbations"
    assert excluded == "- children - animal studies 1. letters"


def test_criteria_split_at_sentences_that_say_what_they_exclude():
    wanted, excluded = ranking.split_criteria(
        "We included randomised trials of kratom in adults. Studies were excluded if they used animals. "
        "Reviews were also left out. Eligible outcomes: PTSD symptoms."
    )
    assert wanted == "We included randomised trials of kratom in adults. PTSD symptoms."
    assert excluded == "Studies were excluded if they used animals. Reviews were also left out."


def test_criteria_without_headings_are_all_wanted():
    assert ranking.split_criteria("Does kratom relieve PTSD symptoms?") == ("Does kratom relieve PTSD symptoms?", "")
    assert ranking.split_criteria("") == ("", "")


def test_the_words_of_the_exclusion_criteria_do_not_pull_records_up():
    texts = [
        "kratom survey in veterans",  # 0 relevant (prior)
        "mouse liver enzyme study",  # 1 irrelevant (prior)
        "narrative review of kratom in animal models",  # 2 what the review excludes
        "kratom and ptsd symptoms",  # 3 on the question
    ]
    criteria = "Question: Does kratom relieve PTSD symptoms?\nExclusion criteria: narrative review, animal models"
    features = ranking.build_features(texts, criteria=criteria)
    assert ranking.next_rows(ranking.score(features, {}), screened=[], k=1) == [3]
    assert ranking.next_rows(ranking.score(features, {0: 1, 1: 0}), screened=[0, 1]) == [3]
    # The same text read whole (the exclusion part as wanted, the old behaviour) puts record 2 first.
    naive = ranking.build_features(texts, criteria="Does kratom relieve PTSD symptoms? narrative review, animal models")
    assert ranking.next_rows(ranking.score(naive, {}), screened=[], k=1) == [2]
