"""Similar papers measured on topic folders (``eval/topics.py``): two papers are related when they
share a folder.

Every embedded paper gets a list of its ``k`` most similar others from each method. Precision,
recall (hits / related papers) and binary nDCG@k are averaged over the papers that have a related
paper; hubness is read off the k-occurrence N_k (how many lists a paper is in, over all lists): its
skewness, its maximum and the share of papers in no list at all.

Methods: ``paperboy`` (``services/similar.py`` through the engine, as paper pages list them),
``cosine`` (plain cosine of the same embeddings), ``tfidf`` (cosine of arxiv-sanity-lite's TF-IDF
features) and ``arxiv-sanity`` (its per-paper ranking: a linear SVM with the paper as the only
positive against every other paper, C = 0.01, balanced classes; one fit per paper).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..index.tfidf import PARAMS

METHODS = ("paperboy", "cosine", "tfidf", "arxiv-sanity")
_BLOCK = 1024  # query rows per exact score block


def related(ids: np.ndarray, folders: dict[str, list[int]]) -> list[set[int]]:
    """For each row of ``ids``, the rows of the papers that share a folder with it."""
    pos = {int(i): n for n, i in enumerate(ids)}
    out: list[set[int]] = [set() for _ in ids]
    for members in folders.values():
        rows = {pos[p] for p in members if p in pos}
        for r in rows:
            out[r] |= rows
    for r, s in enumerate(out):
        s.discard(r)
    return out


def list_metrics(lists: Sequence[Sequence[int]], rel: list[set[int]], k: int) -> dict[str, float]:
    """P@k, R@k, nDCG@k over rows with related papers; N_k skewness, max and never-listed share over
    all lists. ``lists[r]``: the rows listed for row r, best first."""
    p = r = nd = 0.0
    queries = 0
    occ = np.zeros(len(lists), np.int64)
    for row, top in enumerate(lists):
        top = list(top)[:k]
        occ[top] += 1
        if not rel[row]:
            continue
        queries += 1
        hits = [1.0 if j in rel[row] else 0.0 for j in top]
        p += sum(hits) / k
        r += sum(hits) / len(rel[row])
        ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(rel[row]))))
        nd += sum(h / math.log2(i + 2) for i, h in enumerate(hits)) / ideal
    sd = occ.std()
    return {"precision": p / max(queries, 1), "recall": r / max(queries, 1), "ndcg": nd / max(queries, 1),
            "skewness": float(((occ - occ.mean()) ** 3).mean() / sd ** 3) if sd > 0 else 0.0,
            "max_occurrence": int(occ.max()) if len(occ) else 0, "never_listed": float((occ == 0).mean()),
            "queries": queries}


def top_k(score_rows: Callable[[np.ndarray], np.ndarray], n: int, k: int) -> list[list[int]]:
    """Each row's k best other rows by ``score_rows(rows) -> (len(rows), n)`` scores, in blocks."""
    out: list[list[int]] = []
    for s in range(0, n, _BLOCK):
        rows = np.arange(s, min(s + _BLOCK, n))
        sc = np.asarray(score_rows(rows), np.float64)
        sc[np.arange(len(rows)), rows] = -np.inf  # not its own neighbour
        kk = min(k, n - 1)
        part = np.argpartition(-sc, kk - 1, axis=1)[:, :kk]
        for i, cand in enumerate(part):
            out.append(cand[np.argsort(-sc[i, cand], kind="stable")].tolist())
    return out


def asl_features(texts: list[str]) -> Any:
    """arxiv-sanity-lite's TF-IDF matrix (compute.py: min_df 5, max_df 0.1; min_df 1 below 500 papers,
    where 5 would leave little vocabulary)."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
    except ImportError as e:
        raise ConfigError("eval similar needs scikit-learn: pip install 'paperboy[embed]'") from e
    return TfidfVectorizer(**PARAMS, min_df=5 if len(texts) >= 500 else 1, max_df=0.1).fit_transform(texts)


def asl_lists(x: Any, k: int, progress: Callable[[int], None]) -> list[list[int]]:
    """arxiv-sanity-lite's similar papers for every row: its svm_rank with the paper as positive."""
    from sklearn import svm

    out = []
    for row in range(x.shape[0]):
        y = np.zeros(x.shape[0])
        y[row] = 1
        clf = svm.LinearSVC(class_weight="balanced", verbose=False, max_iter=10000, tol=1e-6, C=0.01)
        s = clf.fit(x, y).decision_function(x)
        s[row] = -np.inf
        top = np.argpartition(-s, k)[:k] if k < len(s) else np.arange(len(s))
        out.append(top[np.argsort(-s[top], kind="stable")].tolist())
        progress(1)
    return out


def evaluate(engine: Any, folders: dict[str, list[int]], k: int = 10, methods: Sequence[str] = METHODS,
             progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Metrics per method (see the module docstring) over the engine's embedded papers."""
    if unknown := [m for m in methods if m not in METHODS]:
        raise ConfigError(f"unknown method(s) {', '.join(unknown)}: use {', '.join(METHODS)}")
    if k < 1:
        raise ConfigError("k must be at least 1")
    progress = progress or (lambda n: None)
    vectors = engine.vectors()
    if vectors is None or len(vectors) <= k:
        raise ConfigError(f"eval similar needs more than k = {k} embedded papers")
    ids, mat = vectors.matrix()
    ids, mat = np.asarray(ids), np.asarray(mat, np.float32)
    rel = related(ids, folders)
    pos = {int(i): n for n, i in enumerate(ids)}
    lists: dict[str, list[list[int]]] = {}
    if "paperboy" in methods:
        service = engine.similar_service(vectors)
        lists["paperboy"] = [[pos[j] for j, _, _ in service.neighbours(int(i), k)] for i in ids]
    if "cosine" in methods:
        lists["cosine"] = top_k(lambda rows: mat[rows] @ mat.T, len(ids), k)
    if {"tfidf", "arxiv-sanity"} & set(methods):
        papers: dict[int, Any] = {}
        for s in range(0, len(ids), 5000):
            papers.update(engine.store.get_papers([int(i) for i in ids[s:s + 5000]]))
        x = asl_features([f"{papers[int(i)].title}. {papers[int(i)].abstract or ''}" if int(i) in papers else ""
                          for i in ids])
        if "tfidf" in methods:
            lists["tfidf"] = top_k(lambda rows: (x[rows] @ x.T).toarray(), len(ids), k)
        if "arxiv-sanity" in methods:
            lists["arxiv-sanity"] = asl_lists(x, k, progress)
    return {"papers": len(ids), "folders": len(folders), "k": k,
            "methods": {m: list_metrics(lists[m], rel, k) for m in METHODS if m in lists}}
