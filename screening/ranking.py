"""Prioritised screening: a model that learns from a review's decisions and scores the records
still to screen. Pure: no ORM here (screening/retrain.py feeds it from the database, and
`manage.py simulate` from a labelled CSV, through the same functions).

Learner: ASReview LAB's default model (ELAS u4), reproduced exactly (same orders as ASReview's
own runs on the shared datasets): TF-IDF word 1-2-grams (sublinear tf, max_df 0.95), a linear SVM
(C=0.11) with the relevant class weighted to 9.8 times the irrelevant class's total weight and the
weights summing to the number of labels, highest score first. Added: the review's question and
criteria, as a fading extra relevant document (see CRITERIA_WEIGHT), and as the ranking before
both kinds of label exist.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

RELEVANT_WEIGHT = 9.8
# The review's criteria join the training set as one extra relevant document whose weight fades as
# real relevant records are found: worth one relevant record while there is one, a tenth of one
# when ten have been found (prior knowledge that the review's own decisions gradually replace).
CRITERIA_WEIGHT = 1.0


def document_text(title="", abstract="", keywords=()):
    """The text the model reads for one record."""
    return " ".join(part for part in (title or "", abstract or "", " ".join(keywords or ())) if part)


@dataclass
class Features:
    """What is computed once per set of records (at import), not at every retrain."""

    matrix: object  # scipy sparse, one row per record
    vectorizer: TfidfVectorizer
    criteria: object = None  # the review's question and criteria as one row of the same space, or None


def build_features(texts, criteria=""):
    """TF-IDF features for ``texts`` (one per record) and, if given, the review's criteria."""
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_df=0.95)
    matrix = vectorizer.fit_transform(texts)
    criteria_row = vectorizer.transform([criteria]) if criteria and criteria.strip() else None
    return Features(matrix=matrix, vectorizer=vectorizer, criteria=criteria_row)


@dataclass
class Model:
    """One retrain's result: a score per record and, once it has learnt, a weight per term."""

    scores: np.ndarray
    coef: np.ndarray | None = None  # one weight per column of Features.matrix (None: no learner yet)


def fit(features, labels, *, seed=0):
    """Train on ``labels`` (row index -> 1 relevant / 0 irrelevant) and score every row.

    With no relevant or no irrelevant label yet, records are scored by their similarity to the
    criteria (or all 0), and the criteria's terms serve as the weights.
    """
    n = features.matrix.shape[0]
    rows = np.fromiter(labels.keys(), dtype=np.int64, count=len(labels))
    y = np.fromiter((1 if labels[r] else 0 for r in rows), dtype=np.int64, count=len(rows))
    if len(set(y.tolist())) < 2:
        if features.criteria is None:
            return Model(scores=np.zeros(n))
        scores = (features.matrix @ features.criteria.T).toarray().ravel()
        return Model(scores=scores, coef=features.criteria.toarray().ravel())
    positives = int(y.sum())
    negatives = len(y) - positives
    # ASReview's balancer: relevant records carry RELEVANT_WEIGHT times the irrelevant ones' total
    # weight, and the weights sum to the number of labels (which sets the scale C acts on).
    weight = np.where(y == 1, 1.0, positives / (RELEVANT_WEIGHT * negatives))
    weight *= len(y) / weight.sum()
    matrix = features.matrix[rows]
    if features.criteria is not None:
        matrix = sp.vstack([matrix, features.criteria], format="csr")
        weight = np.append(weight, CRITERIA_WEIGHT / positives * weight[y == 1][0])
        y = np.append(y, 1)
    learner = LinearSVC(C=0.11, random_state=seed)
    learner.fit(matrix, y, sample_weight=weight)
    return Model(scores=learner.decision_function(features.matrix), coef=learner.coef_.ravel())


def score(features, labels, *, seed=0):
    """Scores for every row of ``features`` (higher: more likely relevant); see ``fit``."""
    return fit(features, labels, seed=seed).scores


def next_rows(scores, screened, k=1):
    """The ``k`` unscreened rows with the highest scores (ties: lowest row first)."""
    order = np.lexsort((np.arange(len(scores)), -np.asarray(scores)))
    screened = set(screened)
    return [int(i) for i in order if i not in screened][:k]
