"""Variants of the ranking model tried for issue 7 (bench/README.md, "Tried and not kept").

    nice -n 10 .venv/bin/python bench/ranking_variants.py '{"split":1}'                 # the kept recipe
    nice -n 10 .venv/bin/python bench/ranking_variants.py '{"split":1,"title2":1}' --seeds 1

A standalone copy of simulate's replay loop (retrain after every label, highest score first) with
switches: knn/knn_k/fuse (max or top-k cosine to the includes found, fused by z-scores, "rrf" or "rank"),
sgd (a logistic-loss SGD learner fused likewise), lr (liblinear logistic regression: too slow),
rocchio (criteria + mean include as a query, rank-fused, fading as 1/includes found),
split (exclusion criteria left out, ranking.split_criteria), authors/journal (surnames
and journal as tokens), title2 (title counted twice), excl_w (exclusion text as an irrelevant
document of that weight), pseudo (random unlabelled records as irrelevant while fewer real ones),
char (a char_wb 3-5-gram SVM, z-scored, added at that weight), nb (multinomial NB likewise),
multi (the wanted criteria as one relevant document per phrase). With {"split":1} it gives the
same orders as bench/run_screening.py --in-process. Prints per-dataset loss ratio to ELAS u4 /
WSS@95 difference. Scratch-quality on purpose: the model itself lives in screening/ranking.py.
"""

# ruff: noqa
import csv, json, re, sys, time, statistics, importlib.util, argparse
from pathlib import Path
import numpy as np, scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
spec = importlib.util.spec_from_file_location("s", SHARED / "bench/screening.py")
S = importlib.util.module_from_spec(spec)
spec.loader.exec_module(S)
csv.field_size_limit(10**9)
ELAS = {}
for line in (SHARED / "bench/asreview_elas_u4.jsonl").read_text().splitlines():
    r = json.loads(line)
    ELAS[(r["dataset"], r["seed"])] = r

sys.path.insert(0, str(ROOT))
from screening.ranking import split_criteria


def surname(name):
    name = name.strip()
    if "," in name:
        name = name.split(",")[0]
    else:
        name = name.split()[-1] if name.split() else ""
    return re.sub(r"\W", "", name.lower())


def text_of(row, V):
    t = " ".join(p for p in (row["title"], row["abstract"]) if p)
    if V.get("title2"):
        t = (row["title"] or "") + " " + t
    if V.get("authors"):
        au = [surname(a) for a in (row.get("authors") or "").split(";") if a.strip()]
        t += " " + " ".join("au" + a for a in au if a)
    if V.get("journal") and row.get("journal"):
        t += " jr" + re.sub(r"\W", "", row["journal"].lower())
    return t


def build(rows, criteria, V):
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_df=0.95)
    X = vec.fit_transform([text_of(r, V) for r in rows])
    if V.get("drop_generic"):  # leave out the generic PICO parts: outcomes, designs, language
        generic = re.compile(
            r"^\s*[-*]?\s*(outcomes?|study designs?|designs?|types? of stud\w*|language|publication)\b[^:]*:", re.I
        )
        criteria = "\n".join(line for line in criteria.splitlines() if not generic.match(line))
    inc, exc = split_criteria(criteria) if V.get("split") else (criteria, "")
    C = vec.transform([inc]) if inc else None
    if V.get("multi") and inc:
        chunks = [
            c.strip() for c in re.split(r"(?<=[.;?!])\s+|,\s+(?:or\s+|and\s+)?|\s+-\s+", inc) if len(c.split()) >= 2
        ]
        C = vec.transform([inc] + chunks) if V.get("multi") == 2 else vec.transform(chunks)
        print(len(chunks), "chunks", file=sys.stderr)
    E = vec.transform([exc]) if exc and V.get("excl_w") else None
    extra = {}
    if V.get("char"):
        cv = TfidfVectorizer(
            analyzer=V.get("char_an", "char_wb"),
            ngram_range=tuple(V.get("char_ng", (3, 5))),
            sublinear_tf=True,
            max_df=0.95,
            min_df=2,
            max_features=V.get("char_max"),
        )
        extra["char"] = cv.fit_transform([text_of(r, V) for r in rows])
        extra["charC"] = cv.transform([inc]) if inc else None
    return dict(X=X, C=C, E=E, **extra)


def svm(X, C_row, E_row, rows, y, V, pos, C=0.11):
    weight = np.where(y == 1, 1.0, pos / (9.8 * (len(y) - pos)))
    weight *= len(y) / weight.sum()
    M = X[rows]
    yy = y
    w_pos = weight[y == 1][0]
    cw = V.get("crit_w", 1.0)
    if C_row is not None and cw:
        fade = cw / pos if V.get("fade", True) else cw
        k = C_row.shape[0]
        M = sp.vstack([M, C_row], format="csr")
        weight = np.append(weight, np.full(k, fade * w_pos * V.get("multi_w", 1.0) / k))
        yy = np.append(yy, np.ones(k, dtype=int))
    if E_row is not None:
        M = sp.vstack([M, E_row], format="csr")
        weight = np.append(weight, V["excl_w"] / pos * w_pos)
        yy = np.append(yy, 0)
    npseudo = V.get("pseudo", 0)
    if npseudo:
        real_neg = int((y == 0).sum())
        k = max(0, npseudo - real_neg)
        if k:
            labelled = set(rows.tolist())
            pool = [r for r in V["_pseudo_order"] if r not in labelled][:k]
            pw = V.get("pseudo_w", 1.0) * weight[np.where(y == 0)[0][0]] if (y == 0).any() else 1.0
            M = sp.vstack([M, X[pool]], format="csr")
            weight = np.append(weight, np.full(len(pool), pw))
            yy = np.append(yy, np.zeros(len(pool), dtype=int))
    l = LinearSVC(C=C, random_state=V.get("seed", 0))
    l.fit(M, yy, sample_weight=weight)
    return l.decision_function(X)


def z(s):
    sd = s.std()
    return (s - s.mean()) / (sd if sd > 0 else 1)


def ranks(s):
    r = np.empty(len(s))
    r[np.argsort(-s, kind="stable")] = np.arange(len(s))
    return r


def fuse(a, b, w, how):
    if how == "rrf":
        k = 60.0
        return 1.0 / (k + ranks(a)) + w / (k + ranks(b))
    if how == "rank":
        return -(ranks(a) + w * ranks(b))
    return z(a) + w * z(b)


def scores(F, labels, V, rng):
    rows = np.fromiter(labels.keys(), dtype=np.int64)
    y = np.array([labels[r] for r in rows])
    pos = int(y.sum())
    s = svm(F["X"], F["C"], F["E"], rows, y, V, pos)
    if V.get("char"):
        s2 = svm(F["char"], F["charC"], None, rows, y, V, pos)
        s = z(s) + V["char"] * z(s2)
    if V.get("knn"):
        # nearest-include similarity: each record's max (or top-k mean) cosine to the relevant
        # records found so far (TF-IDF rows are L2-normalised, so one sparse matmul)
        P = F["X"][rows[y == 1]]
        sim = (F["X"] @ P.T).toarray()
        k = min(V.get("knn_k", 1), sim.shape[1])
        if k == 1:
            nn = sim.max(axis=1)
        else:
            nn = -np.sort(-sim, axis=1)[:, :k].mean(axis=1)
        s = fuse(s, nn, V["knn"], V.get("fuse", "z"))
    if V.get("lr"):
        from sklearn.linear_model import LogisticRegression

        weight = np.where(y == 1, 1.0, pos / (9.8 * (len(y) - pos)))
        weight *= len(y) / weight.sum()
        M = F["X"][rows]
        yy = y
        if F["C"] is not None:
            M = sp.vstack([M, F["C"]], format="csr")
            weight = np.append(weight, 1.0 / pos * weight[y == 1][0])
            yy = np.append(yy, 1)
        lr = LogisticRegression(C=V.get("lr_C", 1.0), solver="liblinear")
        lr.fit(M, yy, sample_weight=weight)
        s = fuse(s, lr.decision_function(F["X"]), V["lr"], V.get("fuse", "z"))
    if V.get("sgd"):
        # a second learner on the same features: logistic loss by SGD (fixed seed), rank-fused
        from sklearn.linear_model import SGDClassifier

        weight = np.where(y == 1, 1.0, pos / (9.8 * (len(y) - pos)))
        weight *= len(y) / weight.sum()
        M = F["X"][rows]
        yy = y
        if F["C"] is not None:
            M = sp.vstack([M, F["C"]], format="csr")
            weight = np.append(weight, 1.0 / pos * weight[y == 1][0])
            yy = np.append(yy, 1)
        g = SGDClassifier(loss="log_loss", alpha=V.get("sgd_alpha", 1e-4), max_iter=20, tol=None, random_state=0)
        g.fit(M, yy, sample_weight=weight)
        s = fuse(s, g.decision_function(F["X"]), V["sgd"], V.get("fuse", "z"))
    if V.get("rocchio"):
        # Rocchio query: criteria + mean of found includes; fused by rank, fading as includes accrue
        P = F["X"][rows[y == 1]]
        q = np.asarray(P.mean(axis=0)).ravel()
        if F["C"] is not None:
            q = q + np.asarray(F["C"].toarray()).ravel() * V.get("roc_c", 1.0)
        if V.get("roc_neg"):
            N = F["X"][rows[y == 0]]
            q = q - V["roc_neg"] * np.asarray(N.mean(axis=0)).ravel()
        r = F["X"] @ q
        w = V["rocchio"] / pos if V.get("roc_fade", True) else V["rocchio"]
        s = fuse(s, np.asarray(r).ravel(), w, V.get("fuse", "rrf"))
    if V.get("nb"):
        from sklearn.naive_bayes import MultinomialNB

        weight = np.where(y == 1, 1.0, pos / (9.8 * (len(y) - pos)))
        M = F["X"][rows]
        yy = y
        if F["C"] is not None:
            M = sp.vstack([M, F["C"]], format="csr")
            weight = np.append(weight, 1.0 / pos)
            yy = np.append(yy, 1)
        nb = MultinomialNB(alpha=V.get("nb_alpha", 3.822))
        nb.fit(M, yy, sample_weight=weight)
        lp = F["X"] @ (nb.feature_log_prob_[1] - nb.feature_log_prob_[0])
        s = z(s) + V["nb"] * z(np.asarray(lp).ravel())
    return s


def replay(F, gold, priors, V, seed):
    labels = {r: gold[r] for r in priors}
    order = list(priors)
    n = len(gold)
    rng = np.random.default_rng(seed)
    while len(order) < n:
        s = scores(F, labels, V, rng)
        o = np.lexsort((np.arange(n), -s))
        nxt = next(int(i) for i in o if int(i) not in labels)
        labels[nxt] = gold[nxt]
        order.append(nxt)
    return [labels[r] for r in order]


def run(V, datasets, seeds):
    out = []
    for d in datasets:
        rows = list(csv.DictReader(open(SHARED / "datasets" / f"{d}.csv", newline="")))
        cf = Path(V.get("critdir", ROOT / "bench/criteria")) / f"{d}.txt"
        crit = cf.read_text() if cf.exists() and not V.get("nocrit") else ""
        gold = [1 if r["label_included"] == "1" else 0 for r in rows]
        F = build(rows, crit, V)
        V["_pseudo_order"] = np.random.default_rng(0).permutation(len(rows)).tolist()
        for s in seeds:
            t = time.time()
            labs = replay(F, gold, list(S.priors(rows, s)), V, s)
            m = S.metrics(labs, len(rows))
            e = ELAS[(d, s)]
            out.append(
                dict(
                    d=d,
                    s=s,
                    loss=m["loss"],
                    wss=m["wss95"],
                    eloss=e["loss"],
                    ewss=e["wss95"],
                    sec=round(time.time() - t, 1),
                )
            )
            print(json.dumps(out[-1]), file=sys.stderr, flush=True)
    return out


def summary(name, out):
    ds = sorted(set(o["d"] for o in out))
    lines = []
    L = []
    W = []
    EL = []
    EW = []
    per = []
    for d in ds:
        oo = [o for o in out if o["d"] == d]
        l = statistics.mean(o["loss"] for o in oo)
        el = statistics.mean(o["eloss"] for o in oo)
        w = statistics.mean(o["wss"] for o in oo)
        ew = statistics.mean(o["ewss"] for o in oo)
        L.append(l)
        EL.append(el)
        W.append(w)
        EW.append(ew)
        per.append(f"{d[:6]} {l / el:.3f}/{w - ew:+.3f}")
    print(
        f"{name:40} ratio {statistics.mean(L) / statistics.mean(EL):.3f} meanratio {statistics.mean(l / e for l, e in zip(L, EL)):.3f} wss {statistics.mean(W):.4f} vs {statistics.mean(EW):.4f} | "
        + " ".join(per),
        flush=True,
    )


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("variant")
    p.add_argument("--name", default=None)
    p.add_argument(
        "--datasets", nargs="+", default=["Chou_2004", "Donners_2021", "Jeyaraman_2020", "Nelson_2002", "Oud_2018"]
    )
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    a = p.parse_args()
    V = json.loads(a.variant)
    out = run(V, a.datasets, a.seeds)
    V.pop("_pseudo_order", None)
    summary(a.name or a.variant, out)
