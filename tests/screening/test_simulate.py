"""`manage.py simulate`: replaying a labelled dataset through the ranking model."""

import csv
import json
import random
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from screening import stopping
from tests.shared import shared

DONNERS = shared("datasets", "Donners_2021.csv")


def _rows(path):
    csv.field_size_limit(10**9)
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _priors(rows, seed):
    rng = random.Random(seed)
    included = [r["record_id"] for r in rows if r["label_included"] == "1"]
    excluded = [r["record_id"] for r in rows if r["label_included"] != "1"]
    return [rng.choice(included), rng.choice(excluded)]


def _simulate(path, *args):
    out, err = StringIO(), StringIO()
    call_command("simulate", str(path), *args, stdout=out, stderr=err)
    return json.loads(out.getvalue().strip().splitlines()[-1]), err.getvalue()


def _toy_dataset(tmp_path):
    # Twelve relevant records about one topic hidden among 48 about others, relevant ones last in
    # import order: a model that learns puts them far earlier than import order would.
    topics = ["liver enzyme kinetics in rats", "crop yield and soil nitrogen", "bridge steel fatigue"]
    rows = []
    for i in range(48):
        rows.append((f"{topics[i % 3]} study {i}", f"We measured {topics[i % 3]} in sample {i}.", 0))
    for i in range(12):
        rows.append((f"kratom use and ptsd symptoms, survey {i}", f"Kratom users reported ptsd relief {i}.", 1))
    path = tmp_path / "toy.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["record_id", "title", "abstract", "label_included"])
        for n, (title, abstract, label) in enumerate(rows, 1):
            writer.writerow([f"r{n}", title, abstract, label])
    return path


def test_the_order_lists_every_record_once_priors_first():
    rows = _rows(DONNERS)
    priors = _priors(rows, 1)
    result, progress = _simulate(DONNERS, "--prior", *priors, "--seed", "1")
    assert result["order"][:2] == priors
    assert sorted(result["order"]) == sorted(r["record_id"] for r in rows)
    assert "screened" in progress
    assert result["stop_at"] is None or 2 <= result["stop_at"] <= len(rows)


def test_the_same_seed_gives_the_same_order():
    priors = _priors(_rows(DONNERS), 2)
    first, _ = _simulate(DONNERS, "--prior", *priors, "--seed", "2")
    second, _ = _simulate(DONNERS, "--prior", *priors, "--seed", "2")
    assert first == second


def test_the_model_finds_the_relevant_records_of_a_toy_corpus_first(tmp_path):
    path = _toy_dataset(tmp_path)
    result, _ = _simulate(path, "--prior", "r49", "r1", "--seed", "1")
    relevant = {f"r{n}" for n in range(49, 61)}
    # the two priors, then the eleven other relevant records before any irrelevant one
    assert set(result["order"][:13]) == relevant | {"r1"}


def test_the_criteria_alone_find_relevant_records_when_the_priors_are_irrelevant(tmp_path):
    path = _toy_dataset(tmp_path)
    result, _ = _simulate(path, "--prior", "r1", "r2", "--criteria", "Does kratom relieve PTSD?")
    relevant = {f"r{n}" for n in range(49, 61)}
    assert result["order"][2] in relevant


def test_the_criteria_can_come_from_a_file(tmp_path):
    path = _toy_dataset(tmp_path)
    criteria = tmp_path / "criteria.txt"
    criteria.write_text("Question: does kratom relieve PTSD symptoms?", encoding="utf-8")
    from_file, _ = _simulate(path, "--prior", "r1", "r2", "--criteria-file", str(criteria))
    inline, _ = _simulate(path, "--prior", "r1", "r2", "--criteria", criteria.read_text())
    assert from_file == inline


def test_an_unknown_prior_is_a_clear_error():
    with pytest.raises(CommandError, match="No record with record_id nope"):
        _simulate(DONNERS, "--prior", "nope", "--seed", "1")


def test_a_file_without_labels_is_a_clear_error(tmp_path):
    path = tmp_path / "unlabelled.csv"
    path.write_text("record_id,title\n1,Kratom\n", encoding="utf-8")
    with pytest.raises(CommandError, match="label_included"):
        _simulate(path, "--prior", "1")


def test_stop_at_is_where_the_stopping_rule_first_says_stop_on_the_order_screened(tmp_path):
    # 12 relevant records among 400: found first, so the rule can stop well before the end.
    topics = ["liver enzyme kinetics in rats", "crop yield and soil nitrogen", "bridge steel fatigue"]
    path = tmp_path / "stop.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["record_id", "title", "abstract", "label_included"])
        for i in range(388):
            writer.writerow([f"r{i + 1}", f"{topics[i % 3]} study {i}", f"We measured {topics[i % 3]} ({i}).", 0])
        for i in range(12):
            writer.writerow([f"r{389 + i}", f"kratom use and ptsd, survey {i}", f"Kratom users and ptsd {i}.", 1])
    labels = {r["record_id"]: int(r["label_included"]) for r in _rows(path)}

    result, _ = _simulate(path, "--prior", "r389", "r1", "--seed", "1")

    screened = [labels[record_id] for record_id in result["order"]]
    assert result["stop_at"] == stopping.simulate_stop_at(screened, len(screened))
    assert result["stop_at"] is not None and 14 <= result["stop_at"] < len(screened)
