"""Prioritised screening: a model that learns from a review's decisions and scores the records
still to screen. Pure: no ORM here (screening/retrain.py feeds it from the database, and
`manage.py simulate` from a labelled CSV, through the same functions).

Learner: ASReview LAB's default model (ELAS u4), reproduced exactly (same orders as ASReview's
own runs on the shared datasets): TF-IDF word 1-2-grams (sublinear tf, max_df 0.95), a linear SVM
(C=0.11) with the relevant class weighted to 9.8 times the irrelevant class's total weight and the
weights summing to the number of labels, highest score first. Added: the review's question and
inclusion criteria, as a fading extra relevant document (see CRITERIA_WEIGHT), and as the ranking
before both kinds of label exist. Exclusion criteria are left out of that document
(``split_criteria``): they name what the review does not want ("animal studies", "reviews"), and
as words of a relevant document they would pull exactly those records up.
"""

import re
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
# Bump when what build_features computes changes (screening/retrain.py keys its cache on it).
FEATURES_VERSION = "2"

# Criteria headings, as reviewers type them: "Exclusion criteria:", "## Exclude", "Not eligible",
# "Population:", "Inclusion criteria" on a line of its own, "Question: ..." before its text.
_HEADING_WORD = re.compile(
    r"inclu|exclu|eligib|question|objective|\baims?\b|population|participant|patient|intervention|"
    r"exposure|compar|control|outcome|design|types? of|setting|\bpico|criteri|context|condition|"
    r"language|publication|timing",
    re.IGNORECASE,
)
_EXCLUSION = re.compile(r"exclu|not\s+eligible|ineligible|not\s+(?:be\s+)?included", re.IGNORECASE)
_BULLET = r"(?:#+|[*\-\u2022>]+|\(?\d+[.)]|\(?[a-z][.)])?\s*"
_LABELLED = re.compile(rf"^\s*{_BULLET}([A-Za-z][\w /()&,'\-]{{0,60}}?)\s*:\s*(.*)$", re.DOTALL)
# A sentence that opens by saying what it excludes or includes ("Studies were excluded if ...",
# "We included randomised trials ...", "Ineligible: ...").
_LEAD = re.compile(
    r"^\W*(?:(?:we|studies|trials|articles|papers|records|reports|participants|patients|people)\s+"
    r"(?:were|are|was|will\s+be|must\s+be|should\s+be)?\s*)?"
    r"(exclu\w*|not\s+eligible|ineligible|inclu\w*|eligible)\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.;!?])\s+(?=[A-Z(])")


def _is_heading(line):
    """A heading on a line of its own: "Exclusion criteria", "## Outcomes", "Not eligible:" (a list
    item such as "- control group" is not one, unless it ends with a colon)."""
    stripped = line.strip()
    bare = stripped.lstrip("#").strip().rstrip(":").strip()
    if not bare or len(bare) > 60 or len(bare.split()) > 6 or bare.endswith("."):
        return False
    if re.match(r"[*\-\u2022>]|\(?\d+[.)]", stripped) and not stripped.endswith(":"):
        return False
    return bool(_HEADING_WORD.search(bare))


def split_criteria(text):
    """(what the review wants, what it excludes): ``text`` split at its exclusion headings.

    A section starts at a heading line ("Exclusion criteria", "## Inclusion"), a labelled line or
    sentence ("Exclude: ...", "Population: ...") or a sentence that opens with what it excludes or
    includes ("Studies were excluded if ..."); it runs until the next one. Headings that name no
    exclusion (question, PICO parts, inclusion) start a wanted section. Text before any heading is
    wanted. The headings themselves are dropped.
    """
    wanted, excluded = [], []
    excluding = False
    for line in (text or "").splitlines():
        labelled = _LABELLED.match(line)
        if not (labelled and labelled.group(2).strip()) and _is_heading(line):
            excluding = bool(_EXCLUSION.search(line))
            continue
        for sentence in _SENTENCE.split(line):
            labelled = _LABELLED.match(sentence)
            lead = _LEAD.match(sentence)
            if labelled and _HEADING_WORD.search(labelled.group(1)):
                excluding = bool(_EXCLUSION.search(labelled.group(1)))
                sentence = labelled.group(2)
            elif lead:
                excluding = bool(_EXCLUSION.search(lead.group(1)))
            (excluded if excluding else wanted).append(sentence.strip())
    return " ".join(p for p in wanted if p), " ".join(p for p in excluded if p)


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
    """TF-IDF features for ``texts`` (one per record) and, if given, the review's question and
    inclusion criteria (``criteria`` less its exclusion sections, see ``split_criteria``)."""
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_df=0.95)
    matrix = vectorizer.fit_transform(texts)
    wanted, _ = split_criteria(criteria)
    criteria_row = vectorizer.transform([wanted]) if wanted else None
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
