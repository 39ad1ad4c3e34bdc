"""Replay a labelled screening dataset through the ranking model, as the screening page would.

The labels answer each query and nothing else: the model sees the prior records' labels, ranks
the rest, the top record's label is revealed, the model retrains, and so on until every record
is screened. Features are built once (as at import); every retrain goes through
``ranking.score`` and every pick through ``ranking.next_rows``, the functions the web uses.
"""

import csv
import json
import os
import time

from django.core.management.base import BaseCommand, CommandError

from screening import ranking, stopping

csv.field_size_limit(10**9)


def read_dataset(path):
    """Rows of a labelled dataset CSV (``record_id, title, abstract, [keywords,] label_included``)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise CommandError(f"Cannot read {path}: {error.strerror}.") from error
    if not rows:
        raise CommandError(f"{path} holds no records.")
    missing = {"record_id", "label_included"} - set(rows[0])
    if missing:
        raise CommandError(f"{path} lacks the column(s): {', '.join(sorted(missing))}.")
    return rows


def dataset_texts(rows):
    """What the model reads for each row: title, abstract and keywords/MeSH terms where present."""
    texts = []
    for row in rows:
        keywords = [k for k in (row.get("keywords") or "").replace(";", "\n").splitlines() if k.strip()]
        texts.append(ranking.document_text(row.get("title"), row.get("abstract"), keywords))
    return texts


def replay(features, answer, priors, *, seed=0, progress=None):
    """Screen every row in the model's order; ``answer(row)`` reveals a row's label (0/1).

    Returns the screening order (row indices, priors first) and the labels revealed, in order.
    """
    labels = {row: answer(row) for row in priors}
    order = list(priors)
    total = features.matrix.shape[0]
    while len(order) < total:
        scores = ranking.score(features, labels, seed=seed)
        (row,) = ranking.next_rows(scores, labels.keys(), k=1)
        labels[row] = answer(row)
        order.append(row)
        if progress is not None:
            progress(len(order), total, sum(labels.values()))
    return order, [labels[row] for row in order]


def stopping_point(labels_in_order, total):
    """How many records had been screened when the stopping rule first said stop (None: never):
    screening/stopping.py's test at recall target 0.95 and 95% confidence, checked after every
    record as the screening page would."""
    return stopping.simulate_stop_at(labels_in_order, total, recall_target=0.95, confidence=0.95)


class Command(BaseCommand):
    help = "Replay a labelled dataset through the ranking model; last stdout line: JSON order and stop point."

    def add_arguments(self, parser):
        parser.add_argument("dataset", help="CSV with record_id, title, abstract, label_included")
        parser.add_argument("--prior", nargs="+", required=True, metavar="ID", help="record_ids screened first")
        parser.add_argument("--seed", type=int, default=0)
        criteria = parser.add_mutually_exclusive_group()
        criteria.add_argument("--criteria", default="", help="the review's question and criteria")
        criteria.add_argument(
            "--criteria-file",
            # ../shared/bench/screening.py passes only --prior and --seed; bench/run_screening.py
            # hands each review's criteria over through this variable.
            default=os.environ.get("SIEVE_SIMULATE_CRITERIA_FILE") or None,
            help="a text file holding the question and criteria (default: $SIEVE_SIMULATE_CRITERIA_FILE)",
        )

    def handle(self, *args, dataset, prior, seed, criteria, criteria_file, **options):
        rows = read_dataset(dataset)
        if criteria_file and not criteria:
            try:
                with open(criteria_file, encoding="utf-8") as handle:
                    criteria = handle.read()
            except OSError as error:
                raise CommandError(f"Cannot read {criteria_file}: {error.strerror}.") from error
        index = {row["record_id"]: i for i, row in enumerate(rows)}
        unknown = [record_id for record_id in prior if record_id not in index]
        if unknown:
            raise CommandError(f"No record with record_id {', '.join(unknown)} in {dataset}.")
        priors = list(dict.fromkeys(index[record_id] for record_id in prior))

        started = time.perf_counter()
        features = ranking.build_features(dataset_texts(rows), criteria=criteria)
        gold = [1 if row["label_included"].strip() == "1" else 0 for row in rows]

        def progress(screened, total, found):
            if screened % 100 == 0 or screened == total:
                elapsed = time.perf_counter() - started
                self.stderr.write(f"{screened}/{total} screened, {found} relevant found, {elapsed:.1f} s")

        order, labels = replay(features, gold.__getitem__, priors, seed=seed, progress=progress)
        result = {"order": [rows[i]["record_id"] for i in order], "stop_at": stopping_point(labels, len(rows))}
        self.stdout.write(json.dumps(result))
