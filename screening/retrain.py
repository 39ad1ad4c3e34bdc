"""Retraining the prioritisation model from a review's decisions and storing its scores.

The one home of "which decisions train it" (``training_labels``) and of model versions. The
retrain task (screening/tasks.py), ``manage.py rank``, the benchmark and the tests all call
``retrain``; the web pages only read the latest finished run (``latest_run``) and never wait.

Versions: ``start_run`` takes the next version number under the review's row lock; ``retrain``
stores a run's scores only if no newer version has stored its own (under the same lock), so a
newer model never loses to an older one that happened to finish later.

Blinding: a record that still waits for another reviewer's vote, but already has one, is scored
by a model that did not see the votes of any such record, so its score tells nobody how it was
voted. (Records a reviewer has voted on are never ranked for, nor shown a score to, that reviewer.)
"""

import dataclasses
import hashlib
import json
import logging
import re
import tempfile
import time
import unicodedata
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Max
from django.utils import timezone
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from review.models import Record, Review, Stage
from screening import ranking, stages
from screening.models import Choice, Decision, RankingRun, RecordScore, Resolution

log = logging.getLogger(__name__)
Outcome = Record.Outcome
# Retrain after this many new votes or resolutions at a stage.
RETRAIN_EVERY = 5
# Terms kept per run to explain a record's score on its card.
TERMS_KEPT = 400


@dataclass
class TrainingData:
    labels: dict = field(default_factory=dict)  # record pk -> 1 (relevant) / 0 (irrelevant)
    # Records still waiting for a vote that already have one (dual screening): their own votes must
    # not shape their scores.
    partial: set = field(default_factory=set)
    to_score: list = field(default_factory=list)  # record pks still waiting for a vote, in pk order


def criteria_text(review):
    """The review's question and criteria: the model's prior knowledge. The question and inclusion
    criteria under their headings; every line of the exclusion criteria marked "Exclude:", so that
    ranking.split_criteria keeps them out of what the review wants whatever headings they hold."""
    parts = []
    if review.question.strip():
        parts.append(f"Question:\n{review.question.strip()}")
    if review.inclusion_criteria.strip():
        parts.append(f"Inclusion criteria:\n{review.inclusion_criteria.strip()}")
    parts += [f"Exclude: {line.strip()}" for line in review.exclusion_criteria.splitlines() if line.strip()]
    return "\n".join(parts)


def _vote_label(decision, review):
    side = stages.counts_as(decision, maybe_counts_as_include=review.maybe_counts_as_include)
    if side == Choice.INCLUDE:
        return 1
    if side == Choice.EXCLUDE:
        return 0
    return None  # a "maybe" that does not count as include, "not retrieved": no evidence either way


def training_labels(review, stage):
    """Which decisions train the model at ``stage``.

    Reconciled outcomes first; where a record is not reconciled yet, its current votes (any vote
    on the include side makes it relevant: a conflict may well be an include). At title/abstract,
    a record excluded at full text counts as irrelevant whatever its first-stage outcome.
    """
    stage = Stage(stage)
    field_name = stages.OUTCOME_FIELD[stage]
    data = TrainingData()
    records = stages.in_stage(review, stage).order_by("pk").values_list("pk", field_name, "ft_outcome")
    unreconciled = []
    for pk, outcome, ft_outcome in records.iterator(chunk_size=5000):
        if stage == Stage.TITLE_ABSTRACT and ft_outcome == Outcome.EXCLUDE:
            data.labels[pk] = 0
        elif outcome in stages.UNRECONCILED:
            unreconciled.append(pk)
            if outcome == Outcome.PENDING:
                data.to_score.append(pk)
        elif (label := _vote_label(outcome, review)) is not None:
            data.labels[pk] = label
        if outcome == Outcome.PENDING and pk in data.labels:
            # Excluded at full text but pending here (a changed vote): still to screen, known irrelevant.
            data.to_score.append(pk)
    if unreconciled:
        votes = Decision.objects.filter(record__review=review, stage=stage, is_current=True)
        votes = votes.filter(
            record__in=stages.in_stage(review, stage).filter(**{f"{field_name}__in": stages.UNRECONCILED})
        )
        by_record = {}
        for pk, decision in votes.values_list("record_id", "decision"):
            label = _vote_label(decision, review)
            if label is not None:
                by_record[pk] = max(by_record.get(pk, 0), label)
        pending = set(data.to_score)
        for pk, label in by_record.items():
            data.labels.setdefault(pk, label)
            if pk in pending:
                data.partial.add(pk)
    return data


def decisions_count(review, stage):
    """Votes and resolutions ever made at ``stage`` (grows with every new or changed one)."""
    votes = Decision.objects.filter(record__review=review, stage=stage).count()
    return votes + Resolution.objects.filter(record__review=review, stage=stage).count()


# Features ---------------------------------------------------------------------------------------

_FEATURES = {}  # (review pk, stage) -> (key, record pks, Features): one per process


def _cache_dir():
    return Path(settings.DATA_DIR) / "cache" / "ranking"


def forget_review(review_pk):
    """Drop a deleted review's features from this process's memory and from the disk cache (other
    processes' memory holds them until they restart: keyed by a pk never used again)."""
    for key in [key for key in _FEATURES if key[0] == review_pk]:
        del _FEATURES[key]
    for pattern in (f"review{review_pk}-*", f".review{review_pk}-*"):
        for path in _cache_dir().glob(pattern):
            path.unlink(missing_ok=True)


def _features_key(pks, criteria):
    digest = hashlib.sha256(np.asarray(pks, dtype=np.int64).tobytes())
    digest.update(criteria.encode())
    digest.update(getattr(ranking, "FEATURES_VERSION", "1").encode())
    return digest.hexdigest()


def _cache_path(review, stage, key):
    return _cache_dir() / f"review{review.pk}-{stage}-{key[:24]}.npz"


def _cached_features(review, stage, key):
    """The features stored under ``key``, from this process's memory or the disk cache, or None."""
    cached = _FEATURES.get((review.pk, stage))
    if cached and cached[0] == key:
        return cached[2]
    path = _cache_path(review, stage, key)
    if path.exists():
        try:
            return load_features(path)
        except Exception:  # a truncated, stale or foreign file: rebuild it
            log.warning("Ignoring unreadable features cache %s", path)
    return None


def stage_texts(review, stage):
    """(record pks, the text the model reads for each) for the records taking part in ``stage``,
    in pk order, from one query (no list of 100,000 pks sent back to the database)."""
    pks, texts = [], []
    document_text = ranking.document_text
    rows = stages.in_stage(review, stage).order_by("pk").values_list("pk", "title", "abstract", "keywords")
    for pk, title, abstract, keywords in rows.iterator(chunk_size=5000):
        pks.append(pk)
        texts.append(document_text(title, abstract, keywords))
    return pks, texts


def features_for(review, stage, *, timings=None):
    """(record pks, Features) for the records taking part in ``stage``, computed once per record set
    and criteria: kept in memory and on disk (``DATA_DIR/cache/ranking``), rebuilt when they change.

    The import of new records builds them in the background (screening.tasks.prepare_ranking), so
    the retrain that follows finds them here. ``timings`` (a dict), if given, receives the seconds
    spent reading the texts ("texts") and building ("build") when they had to be built.
    """
    criteria = criteria_text(review)
    pks = list(stages.in_stage(review, stage).order_by("pk").values_list("pk", flat=True))
    key = _features_key(pks, criteria)
    features = _cached_features(review, stage, key)
    if features is None:
        started = time.perf_counter()
        # Read again with the texts: records arriving in between give a new key, never a mismatch.
        pks, texts = stage_texts(review, stage)
        key = _features_key(pks, criteria)
        read = time.perf_counter()
        features = ranking.build_features(texts, criteria)
        if timings is not None:
            timings.update(texts=read - started, build=time.perf_counter() - read)
        _store_features(_cache_path(review, stage, key), review, stage, features)
    _FEATURES[(review.pk, stage)] = (key, pks, features)
    return pks, features


class Unstorable(ValueError):
    """Features holding something the disk cache does not store as plain arrays."""


_PARAM_TYPES = (str, int, float, bool, type(None))


def save_features(handle, features):
    """Write ``features`` (a ranking.Features) to ``handle`` as plain arrays (numpy's .npz, never a
    pickle): sparse matrices as their CSR parts, a TF-IDF vectorizer as its parameters, terms and
    idf. Raises Unstorable for anything else (the caller then keeps the features in memory only)."""
    arrays, spec = {}, {}
    for item in dataclasses.fields(features):
        name, value = item.name, getattr(features, item.name)
        if value is None:
            spec[name] = {"kind": "none"}
        elif sp.issparse(value):
            csr = value.tocsr()
            arrays |= {f"{name}.data": csr.data, f"{name}.indices": csr.indices, f"{name}.indptr": csr.indptr}
            kind = "csr_array" if isinstance(value, sp.sparray) else "csr_matrix"
            spec[name] = {"kind": kind, "shape": list(csr.shape)}
        elif isinstance(value, np.ndarray) and value.dtype != object:
            arrays[name] = value
            spec[name] = {"kind": "ndarray"}
        elif isinstance(value, TfidfVectorizer):
            params = value.get_params()
            params["dtype"] = np.dtype(params["dtype"]).name
            params["ngram_range"] = list(params["ngram_range"])
            if not all(isinstance(v, _PARAM_TYPES) for k, v in params.items() if k != "ngram_range"):
                raise Unstorable(f"{name}: a vectorizer with callables or a fixed vocabulary")
            names = _vectorizer_terms(value)
            blob = "\n".join(names.tolist())
            if blob.count("\n") != max(len(names) - 1, 0):
                raise Unstorable(f"{name}: a term holds a line break")
            arrays[f"{name}.terms"] = np.frombuffer(blob.encode(), dtype=np.uint8)
            arrays[f"{name}.idf"] = value.idf_
            spec[name] = {"kind": "tfidf", "params": params}
        else:
            raise Unstorable(f"{name}: {type(value).__name__}")
    meta = json.dumps({"class": type(features).__name__, "fields": spec}).encode()
    np.savez(handle, **{"meta": np.frombuffer(meta, dtype=np.uint8)}, **arrays)


def load_features(path):
    """The ranking.Features that ``save_features`` wrote to ``path`` (never unpickles anything)."""
    with np.load(path, allow_pickle=False) as stored:
        meta = json.loads(stored["meta"].tobytes())
        if meta["class"] != ranking.Features.__name__:
            raise Unstorable(meta["class"])
        values = {}
        for name, spec in meta["fields"].items():
            kind = spec["kind"]
            if kind == "none":
                values[name] = None
            elif kind in ("csr_matrix", "csr_array"):
                parts = (stored[f"{name}.data"], stored[f"{name}.indices"], stored[f"{name}.indptr"])
                values[name] = getattr(sp, kind)(parts, shape=tuple(spec["shape"]))
            elif kind == "ndarray":
                values[name] = stored[name]
            elif kind == "tfidf":
                params = dict(spec["params"], dtype=np.dtype(spec["params"]["dtype"]).type)
                params["ngram_range"] = tuple(params["ngram_range"])
                vectorizer = TfidfVectorizer(**params)
                blob = stored[f"{name}.terms"].tobytes().decode()
                terms = blob.split("\n") if blob else []
                vectorizer.vocabulary_ = dict(zip(terms, range(len(terms))))
                vectorizer.fixed_vocabulary_ = False
                vectorizer.idf_ = stored[f"{name}.idf"]
                names = np.empty(len(terms), dtype=object)
                names[:] = terms
                _remember_terms(vectorizer, names)
                values[name] = vectorizer
            else:
                raise Unstorable(kind)
    return ranking.Features(**values)


def _store_features(path, review, stage, features):
    """Write ``features`` to ``path`` through a temporary file of this writer's own, renamed into
    place: two workers building at once each rename a whole file, and a reader sees the old file
    or a new one, never half of one. Then drop the review's caches for other record sets."""
    partial = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp", delete=False
        ) as handle:
            partial = Path(handle.name)
            save_features(handle, features)
        partial.replace(path)
        partial = None
        for pattern in ("*.npz", "*.pickle"):  # .pickle: caches written before 2026-11
            for old in path.parent.glob(f"review{review.pk}-{stage}-{pattern}"):
                if old != path:
                    old.unlink(missing_ok=True)
    except (OSError, Unstorable) as error:  # a read-only data directory only costs speed
        log.warning("Could not cache features in %s: %s", path, error)
    finally:
        if partial is not None:
            partial.unlink(missing_ok=True)


# Terms that explain a score -----------------------------------------------------------------------


_NAMES = {}  # id(vectorizer) -> (weak reference to it, its terms by column): built once per process


def _term_names(features):
    return _vectorizer_terms(features.vectorizer)


def _vectorizer_terms(vectorizer):
    """The term of each column (sklearn's get_feature_names_out sorts them: 0.5 s at 100,000 records)."""
    cached = _NAMES.get(id(vectorizer))
    if cached and cached[0]() is vectorizer:
        return cached[1]
    vocabulary = vectorizer.vocabulary_
    names = np.empty(len(vocabulary), dtype=object)
    names[np.fromiter(vocabulary.values(), dtype=np.int64, count=len(vocabulary))] = list(vocabulary)
    _remember_terms(vectorizer, names)
    return names


def _remember_terms(vectorizer, names):
    for key in [key for key, (ref, _) in _NAMES.items() if ref() is None]:
        del _NAMES[key]
    _NAMES[id(vectorizer)] = (weakref.ref(vectorizer), names)


def term_weights(features, coef, n=TERMS_KEPT):
    """{term: weight} for the ``n`` terms whose weight in the ranking model (``coef``, one per
    column of the features; None before it has learnt) raises a record's score most."""
    if coef is None:
        return {}
    top = np.argsort(-coef, kind="stable")[:n]
    names = _term_names(features)
    return {str(names[i]): round(float(coef[i]), 6) for i in top if coef[i] > 0}


_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def _fold(text):
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in text if not unicodedata.combining(c))


def terms_in(record, terms, n=6):
    """The ``n`` heaviest of ``terms`` (a run's {term: weight}) that occur in ``record``'s text."""
    if not terms:
        return []
    tokens = _TOKEN.findall(_fold(ranking.document_text(record.title, record.abstract, record.keywords)))
    present = set(tokens) | {f"{a} {b}" for a, b in zip(tokens, tokens[1:])}
    found = sorted((term for term in terms if term in present), key=lambda t: (-terms[t], t))
    chosen = []
    for term in found:
        words = term.split()
        if all(word in ENGLISH_STOP_WORDS for word in words):
            continue  # "and", "of the": true, but highlighting every "and" explains nothing
        if any(term in other.split() for other in chosen):
            continue  # a chosen bigram already says this word
        # A bigram says its words: it takes the place of a unigram chosen before it.
        chosen = [other for other in chosen if other not in words] + [term]
        if len(chosen) == n:
            break
    return chosen


# Runs ---------------------------------------------------------------------------------------------


def latest_run(review, stage):
    """The newest run whose scores are stored, or None."""
    return (
        RankingRun.objects.filter(review=review, stage=stage, status=RankingRun.Status.DONE)
        .order_by("-version")
        .first()
    )


def start_run(review, stage):
    """A new queued run with the next version number (taken under the review's row lock)."""
    with transaction.atomic():
        Review.objects.select_for_update().filter(pk=review.pk).values("pk").first()
        top = RankingRun.objects.filter(review=review, stage=stage).aggregate(v=Max("version"))["v"] or 0
        return RankingRun.objects.create(review=review, stage=stage, version=top + 1)


def needs_retrain(review, stage):
    """True when no run is queued and none has run yet, or RETRAIN_EVERY votes or resolutions were
    made since the last run read its labels.

    Asked on every decision, so it never counts the review's votes (a quarter of a second at
    100,000 records): one query reads the last run and whether one is queued, a second looks for
    RETRAIN_EVERY votes (through the (stage, created_at) index) or resolutions (few) made since
    that run started. A vote stored with an earlier time (an import of past decisions) is not
    counted here; the next run still trains on it.
    """
    runs = RankingRun.objects.filter(review=review, stage=stage).exclude(status=RankingRun.Status.FAILED)
    last = (
        runs.order_by("-version")
        .annotate(queued=Exists(runs.filter(status=RankingRun.Status.QUEUED)))
        .values("queued", "started_at", "created_at")
        .first()
    )
    if last is None:
        return stages.in_stage(review, stage).exists()
    if last["queued"]:
        return False  # it reads the labels when it starts, so it will see these decisions too
    since = last["started_at"] or last["created_at"]
    made = Decision.objects.filter(record__review=review, stage=stage, created_at__gte=since)
    resolved = Resolution.objects.filter(record__review=review, stage=stage, created_at__gte=since)
    made = made.order_by().values("pk").union(resolved.order_by().values("pk"), all=True)
    return len(made[:RETRAIN_EVERY]) >= RETRAIN_EVERY


def _score_rows(features, labels_by_row, partial_rows, seed):
    """Every row's score, and the weights of the model that never saw a vote on a record still
    waiting for another vote (it scores those records, and its words are the ones shown)."""
    model = ranking.fit(features, labels_by_row, seed=seed)
    scores = np.asarray(model.scores, dtype=float)
    blind = model
    if partial_rows:
        blind = ranking.fit(
            features, {r: label for r, label in labels_by_row.items() if r not in partial_rows}, seed=seed
        )
        rows = np.fromiter(partial_rows, dtype=np.int64)
        scores[rows] = np.asarray(blind.scores, dtype=float)[rows]
    return scores, blind.coef


def _store_scores(run, record_ids, scores, ranks):
    """Insert ``run``'s RecordScore rows with one COPY (PostgreSQL) or one executemany (others).

    The ORM's bulk_create builds a model instance per row: seconds at 100,000 records.
    """
    table = connection.ops.quote_name(RecordScore._meta.db_table)
    columns = ", ".join(
        connection.ops.quote_name(RecordScore._meta.get_field(name).column)
        for name in ("run", "record", "score", "rank")
    )
    record_ids, scores, ranks = record_ids.tolist(), [float(s) for s in scores], ranks.tolist()
    if not record_ids:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Derived data: a crash before the WAL is flushed only loses scores the next retrain
            # recomputes, so this transaction need not wait for the disk (0.7 s at 100,000 rows).
            cursor.execute("SET LOCAL synchronous_commit = off")
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in zip(record_ids, scores, ranks):
                    copy.write_row((run.pk, *row))
        else:
            cursor.executemany(
                f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s)",
                [(run.pk, r, s, k) for r, s, k in zip(record_ids, scores, ranks)],
            )


def retrain(run, *, seed=0):
    """Train ``run`` on the current decisions and store every pending record's score and rank.

    Returns the run, DONE, or SUPERSEDED when a newer version stored its scores first.
    """
    review, stage = run.review, Stage(run.stage)
    started = time.perf_counter()
    RankingRun.objects.filter(pk=run.pk).update(status=RankingRun.Status.RUNNING, started_at=timezone.now())
    seen = decisions_count(review, stage)
    data = training_labels(review, stage)
    pks, features = features_for(review, stage)
    row_of = {pk: row for row, pk in enumerate(pks)}
    labels_by_row = {row_of[pk]: label for pk, label in data.labels.items() if pk in row_of}
    partial_rows = {row_of[pk] for pk in data.partial if pk in row_of}
    scores, blind_coef = _score_rows(features, labels_by_row, partial_rows, seed)
    to_score = np.fromiter((row_of[pk] for pk in data.to_score if pk in row_of), dtype=np.int64)
    # Highest score first; ties in import order.
    order = to_score[np.lexsort((to_score, -scores[to_score]))] if len(to_score) else to_score
    # The words shown on a card never learn from votes on records still waiting for another vote.
    terms = term_weights(features, blind_coef)
    relevant = sum(labels_by_row.values())
    with transaction.atomic():
        Review.objects.select_for_update().filter(pk=review.pk).values("pk").first()
        newer = RankingRun.objects.filter(
            review=review, stage=stage, version__gt=run.version, status=RankingRun.Status.DONE
        ).exists()
        run.decisions_seen = seen
        run.relevant_labels = relevant
        run.irrelevant_labels = len(labels_by_row) - relevant
        run.used_criteria = features.criteria is not None
        run.finished_at = timezone.now()
        if newer:
            run.status = RankingRun.Status.SUPERSEDED
        else:
            RecordScore.objects.filter(run__review=review, run__stage=stage).delete()
            record_ids = np.asarray(pks, dtype=np.int64)[order]
            _store_scores(run, record_ids, scores[order], np.arange(1, len(order) + 1))
            run.status = RankingRun.Status.DONE
            run.scored = len(order)
            run.terms = terms
            # Older runs keep their figures, not their scores (the hand-outs keep what was shown).
            RankingRun.objects.filter(
                review=review, stage=stage, version__lt=run.version, status__in=[RankingRun.Status.DONE]
            ).update(status=RankingRun.Status.SUPERSEDED)
        run.seconds = time.perf_counter() - started
        run.save()
    return run


def fail(run, error):
    RankingRun.objects.filter(pk=run.pk).update(
        status=RankingRun.Status.FAILED, error=str(error)[:2000], finished_at=timezone.now()
    )


def retrain_now(review, stage, *, seed=0):
    """Start a run and train it here (``manage.py rank``, the benchmark)."""
    return retrain(start_run(review, stage), seed=seed)


def has_prior_knowledge(review, stage):
    """True when ranking has something to go on: the review's criteria, or a relevant and an
    irrelevant label in the latest run (exclusion criteria alone rank nothing)."""
    if ranking.split_criteria(criteria_text(review))[0]:
        return True
    run = latest_run(review, stage)
    return bool(run and run.relevant_labels and run.irrelevant_labels)


def band(rank, scored):
    """ "high", "medium" or "low": the record's rank percentile among the records still to screen."""
    if not rank or not scored:
        return None
    share = rank / scored
    if share <= 0.1:
        return "high"
    if share <= 0.4:
        return "medium"
    return "low"
