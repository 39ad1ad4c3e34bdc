"""Which decisions train the prioritisation model, model versions, and the retrain task."""

from types import SimpleNamespace

import pytest
from django.core.management import call_command

from review.models import Record, Search, Stage
from screening import ranking, retrain, tasks
from screening.decisions import record_decision, resolve
from screening.models import RankingRun, RecordScore

TA, FT = Stage.TITLE_ABSTRACT, Stage.FULL_TEXT
RELEVANT = "Kratom (mitragynine) use among veterans with PTSD symptoms: a cohort study"
IRRELEVANT = "Liver enzyme activity in rats fed a high-fat diet"


def add_records(review, titles):
    search = Search.objects.create(review=review, kind="file", source="Embase")
    made = Record.objects.bulk_create(Record(review=review, search=search, source="Embase", title=t) for t in titles)
    return [r.pk for r in made]


def vote(pk, user, decision, stage=TA, reason=""):
    return record_decision(
        record=Record.objects.get(pk=pk), reviewer=user, stage=stage, decision=decision, reason=reason
    )


@pytest.fixture
def immediate_tasks(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture
def mixed(review):
    """Ten kratom records and ten rat records, alternating, none screened."""
    pks = add_records(review, [f"{RELEVANT} {i}" if i % 2 == 0 else f"{IRRELEVANT} {i}" for i in range(20)])
    return review, pks


def test_reconciled_outcomes_and_full_text_exclusions_train_it(mixed, bob, alice):
    review, pks = mixed
    vote(pks[0], bob, "include")
    vote(pks[1], bob, "exclude")
    vote(pks[2], bob, "include")
    vote(pks[2], bob, "include", stage=FT)
    vote(pks[4], bob, "include")
    vote(pks[4], bob, "exclude", stage=FT, reason="Wrong population")
    data = retrain.training_labels(review, TA)
    assert data.labels == {pks[0]: 1, pks[1]: 0, pks[2]: 1, pks[4]: 0}
    assert data.partial == set()
    assert data.to_score == [pk for pk in pks if pk not in (pks[0], pks[1], pks[2], pks[4])]
    # At full text only the records sent on take part.
    assert retrain.training_labels(review, FT).labels == {pks[2]: 1, pks[4]: 0}


def test_single_votes_train_it_until_the_record_is_reconciled(mixed, bob, carol, alice):
    review, pks = mixed
    review.title_abstract_reviewers = 2
    review.save()
    vote(pks[0], bob, "include")  # waits for carol's vote
    vote(pks[1], bob, "exclude")
    vote(pks[1], carol, "include")  # a conflict: may well be an include
    vote(pks[3], bob, "exclude")
    vote(pks[3], carol, "exclude")
    data = retrain.training_labels(review, TA)
    assert data.labels == {pks[0]: 1, pks[1]: 1, pks[3]: 0}
    assert data.partial == {pks[0]}
    assert pks[0] in data.to_score and pks[1] not in data.to_score
    resolve(record=Record.objects.get(pk=pks[1]), stage=TA, decision="exclude", user=alice)
    assert retrain.training_labels(review, TA).labels[pks[1]] == 0


def test_a_retrain_ranks_every_pending_record_most_relevant_first(mixed, bob):
    review, pks = mixed
    vote(pks[0], bob, "include")
    vote(pks[1], bob, "exclude")
    run = retrain.retrain_now(review, TA)
    assert run.status == RankingRun.Status.DONE and run.version == 1
    assert (run.relevant_labels, run.irrelevant_labels, run.scored) == (1, 1, 18)
    ranked = list(RecordScore.objects.filter(run=run).order_by("rank").values_list("record_id", "rank", "score"))
    assert [rank for _, rank, _ in ranked] == list(range(1, 19))
    scores = [score for _, _, score in ranked]
    assert scores == sorted(scores, reverse=True)
    top = {record for record, rank, _ in ranked if rank <= 9}
    assert top == {pk for pk in pks[2:] if pks.index(pk) % 2 == 0}
    assert "kratom" in run.terms and "rats" not in run.terms


def test_the_review_criteria_rank_records_before_any_label(mixed):
    review, pks = mixed
    review.question = "Does kratom relieve PTSD symptoms in veterans?"
    review.save()
    run = retrain.retrain_now(review, TA)
    assert run.used_criteria and run.relevant_labels == 0
    first_ten = set(RecordScore.objects.filter(run=run, rank__lte=10).values_list("record_id", flat=True))
    assert first_ten == set(pks[0::2])


def test_the_review_exclusion_criteria_never_count_as_what_it_wants(review):
    review.question = "Does kratom relieve PTSD symptoms?"
    review.inclusion_criteria = "Population: veterans\nDesign: cohort studies"
    # Headings inside the exclusion field (a pasted PICO list) do not turn its lines into wanted text.
    review.exclusion_criteria = "Population: rats\nOutcomes: liver enzymes"
    wanted, excluded = ranking.split_criteria(retrain.criteria_text(review))
    assert wanted == "Does kratom relieve PTSD symptoms? veterans cohort studies"
    assert excluded == "Population: rats Outcomes: liver enzymes"


def test_the_review_exclusion_criteria_do_not_rank_the_records_they_describe_first(mixed):
    review, pks = mixed
    review.exclusion_criteria = IRRELEVANT
    review.save()
    assert not retrain.has_prior_knowledge(review, TA)  # exclusion criteria alone rank nothing
    run = retrain.retrain_now(review, TA)
    assert not run.used_criteria
    assert not RecordScore.objects.filter(run=run, rank=1, record_id__in=pks[1::2]).exists()
    review.question = "Does kratom relieve PTSD symptoms in veterans?"
    review.save()
    run = retrain.retrain_now(review, TA)
    first_ten = set(RecordScore.objects.filter(run=run, rank__lte=10).values_list("record_id", flat=True))
    assert first_ten == set(pks[0::2])


def test_a_newer_model_never_loses_to_an_older_one_that_finishes_later(mixed, bob):
    review, pks = mixed
    vote(pks[0], bob, "include")
    vote(pks[1], bob, "exclude")
    older, newer = retrain.start_run(review, TA), retrain.start_run(review, TA)
    assert (older.version, newer.version) == (1, 2)
    vote(pks[2], bob, "exclude")  # only the newer run has seen this when it finishes
    assert retrain.retrain(newer).status == RankingRun.Status.DONE
    assert retrain.retrain(older).status == RankingRun.Status.SUPERSEDED
    assert retrain.latest_run(review, TA) == newer
    assert set(RecordScore.objects.values_list("run_id", flat=True)) == {newer.pk}
    # In order, the later one wins and the earlier one keeps its figures but not its scores.
    third = retrain.retrain_now(review, TA)
    newer.refresh_from_db()
    assert third.version == 3 and newer.status == RankingRun.Status.SUPERSEDED
    assert set(RecordScore.objects.values_list("run_id", flat=True)) == {third.pk}


def test_a_vote_never_shapes_its_own_score_while_another_reviewer_has_yet_to_vote(mixed, bob, carol):
    # Under dual screening carol must not learn bob's vote on a record from its score or words.
    review, pks = mixed
    review.title_abstract_reviewers = 2
    review.save()
    for pk, decision in ((pks[0], "include"), (pks[1], "exclude"), (pks[3], "exclude")):
        vote(pk, bob, decision)
        vote(pk, carol, decision)
    target = pks[5]  # a rat record

    def seen_by_carol(decision):
        vote(target, bob, decision)
        run = retrain.retrain_now(review, TA)
        return RecordScore.objects.get(run=run, record_id=target).score, run.terms

    assert seen_by_carol("include") == seen_by_carol("exclude")


def test_a_retrain_is_enqueued_when_none_has_run_and_after_every_few_decisions(mixed, bob, immediate_tasks):
    review, pks = mixed
    first = tasks.request_retrain(review, TA)
    assert first is not None and RankingRun.objects.get(pk=first.pk).status == RankingRun.Status.DONE
    assert tasks.request_retrain(review, TA) is None
    for pk in pks[: retrain.RETRAIN_EVERY - 1]:
        vote(pk, bob, "exclude")
    assert tasks.request_retrain(review, TA) is None
    vote(pks[retrain.RETRAIN_EVERY], bob, "include")
    second = tasks.request_retrain(review, TA)
    assert second.version == 2
    assert retrain.latest_run(review, TA).relevant_labels == 1


def test_a_queued_retrain_is_not_queued_twice(mixed, bob, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    review, pks = mixed
    assert tasks.request_retrain(review, TA) is not None
    for pk in pks[:10]:
        vote(pk, bob, "exclude")
    assert tasks.request_retrain(review, TA) is None
    assert RankingRun.objects.filter(review=review).count() == 1


def test_voting_on_the_screening_page_retrains_in_the_background(client, mixed, bob, immediate_tasks):
    review, pks = mixed
    client.force_login(bob)
    client.get(f"/r/{review.slug}/screen/{TA}/")
    assert retrain.latest_run(review, TA).version == 1
    for _ in range(retrain.RETRAIN_EVERY):
        # The card on screen: the older of bob's two claims (the newer one is the prefetched card).
        record = Record.objects.filter(claims__reviewer=bob).order_by("claims__pk").first()
        client.post(f"/r/{review.slug}/screen/{TA}/{record.pk}/decide/", {"decision": "exclude"}, follow=True)
    assert retrain.latest_run(review, TA).version == 2


def test_rank_command_retrains_now_and_prints_the_time(mixed, bob, capsys):
    review, pks = mixed
    vote(pks[0], bob, "include")
    call_command("rank", review.slug)
    out = capsys.readouterr().out
    assert "model version 1 done, 19 records scored from 1 relevant and 0 irrelevant labels" in out
    assert out.rstrip().endswith(" s")


def test_each_stored_score_is_the_model_score_of_its_own_record(mixed, bob):
    # The scores are written in one COPY / executemany: every column must land on the right record.
    review, pks = mixed
    vote(pks[0], bob, "include")
    vote(pks[1], bob, "exclude")
    vote(pks[3], bob, "exclude")
    run = retrain.retrain_now(review, TA)
    rows, features = retrain.features_for(review, TA)
    expected = ranking.score(features, {rows.index(pks[0]): 1, rows.index(pks[1]): 0, rows.index(pks[3]): 0})
    stored = dict(RecordScore.objects.filter(run=run).values_list("record_id", "score"))
    assert set(stored) == set(pks) - {pks[0], pks[1], pks[3]}
    for pk, value in stored.items():
        assert value == pytest.approx(float(expected[rows.index(pk)]))
    by_rank = sorted(stored, key=lambda pk: (-stored[pk], pk))
    assert list(RecordScore.objects.filter(run=run).order_by("rank").values_list("record_id", flat=True)) == by_rank


def test_a_run_with_nothing_left_to_screen_stores_no_scores_and_clears_the_old_ones(review, bob):
    pks = add_records(review, [RELEVANT, IRRELEVANT])
    first = retrain.retrain_now(review, TA)
    assert RecordScore.objects.filter(run=first).count() == 2
    vote(pks[0], bob, "include")
    vote(pks[1], bob, "exclude")
    second = retrain.retrain_now(review, TA)
    assert second.status == RankingRun.Status.DONE and second.scored == 0
    assert not RecordScore.objects.exists()


def test_the_terms_of_a_run_are_named_as_the_vectorizer_names_them():
    features = ranking.build_features([RELEVANT, IRRELEVANT, "kratom withdrawal in veterans"], "kratom PTSD")
    names = retrain._term_names(features)
    assert list(names) == list(features.vectorizer.get_feature_names_out())
    assert retrain._term_names(features) is names  # built once per set of features
    weights = retrain.term_weights(features, ranking.fit(features, {0: 1, 1: 0}).coef)
    assert "kratom" in weights and "rats" not in weights


# The words that raised a record's score: one home, term_weights (kept per run) and terms_in (per card).
WORDS_TEXTS = [
    "kratom use and ptsd symptoms in veterans",  # 0 relevant (prior)
    "mouse model of liver enzyme kinetics",  # 1 irrelevant (prior)
    "kratom mitragynine for trauma and ptsd",  # 2
    "enzyme kinetics in rat hepatocytes",  # 3
    "self-reported kratom dependence and ptsd",  # 4
]


def words_of(row, features, coef, n=6):
    record = SimpleNamespace(title=WORDS_TEXTS[row], abstract="", keywords=[])
    return retrain.terms_in(record, retrain.term_weights(features, coef), n=n)


def test_the_words_that_raised_a_record_are_the_ones_it_shares_with_the_includes():
    features = ranking.build_features(WORDS_TEXTS)
    model = ranking.fit(features, {0: 1, 1: 0})
    words = words_of(4, features, model.coef)
    said = {word for term in words for word in term.split()}
    assert {"kratom", "ptsd"} <= said
    assert not {"self", "reported", "dependence"} & said  # in no labelled record
    assert "and" not in words  # a stop word alone explains nothing (and would light up every "and")
    # A bigram says its words: none of them is listed again on its own.
    assert not [w for w in words if any(w != t and w in t.split() for t in words)]
    weights = retrain.term_weights(features, model.coef)
    assert all(weights[word] > 0 for word in words)
    assert [weights[word] for word in words] == sorted((weights[word] for word in words), reverse=True)
    assert words_of(3, features, model.coef) == []  # nothing in it raised its score
    assert len(words_of(4, features, model.coef, n=1)) == 1


def test_before_any_learner_the_criteria_words_explain_the_ranking():
    features = ranking.build_features(WORDS_TEXTS, criteria="Does kratom relieve PTSD symptoms?")
    assert set(words_of(2, features, ranking.fit(features, {}).coef)) == {"kratom", "ptsd"}
    plain = ranking.build_features(WORDS_TEXTS)
    assert words_of(2, plain, ranking.fit(plain, {}).coef) == []


def test_features_are_cached_on_disk_as_arrays_and_come_back_the_same(tmp_path):
    texts = [RELEVANT, IRRELEVANT, "Kratom withdrawal in veterans: a survey", "Diet and liver enzymes in rats"]
    features = ranking.build_features(texts, "kratom PTSD veterans")
    path = tmp_path / "features.npz"
    with path.open("wb") as handle:
        retrain.save_features(handle, features)
    loaded = retrain.load_features(path)
    assert type(loaded.matrix) is type(features.matrix)
    assert (loaded.matrix != features.matrix).nnz == 0 and (loaded.criteria != features.criteria).nnz == 0
    assert list(retrain._term_names(loaded)) == list(features.vectorizer.get_feature_names_out())
    new = ["kratom use and liver diet in veterans"]
    assert (loaded.vectorizer.transform(new) != features.vectorizer.transform(new)).nnz == 0
    assert list(ranking.score(loaded, {0: 1, 1: 0})) == list(ranking.score(features, {0: 1, 1: 0}))


def test_a_retrain_from_the_disk_cache_gives_the_same_scores_and_never_unpickles(mixed, bob, monkeypatch):
    review, pks = mixed
    vote(pks[0], bob, "include")
    vote(pks[1], bob, "exclude")
    first = retrain.retrain_now(review, TA)
    before = list(RecordScore.objects.filter(run=first).order_by("rank").values_list("record_id", "score"))
    retrain._FEATURES.clear()
    monkeypatch.setattr(ranking, "build_features", lambda *args: pytest.fail("features rebuilt"))
    monkeypatch.setattr("pickle.load", lambda *args: pytest.fail("unpickled"))
    second = retrain.retrain_now(review, TA)
    after = list(RecordScore.objects.filter(run=second).order_by("rank").values_list("record_id", "score"))
    assert after == before and second.terms == first.terms


def test_an_unreadable_features_cache_is_rebuilt(mixed, bob):
    review, pks = mixed
    first = retrain.retrain_now(review, TA)
    retrain._FEATURES.clear()
    cached = list(retrain._cache_dir().glob(f"review{review.pk}-*.npz"))
    assert cached
    for path in cached:
        path.write_bytes(b"not an npz file")
    second = retrain.retrain_now(review, TA)
    assert second.scored == first.scored == len(pks)
