"""Recommendations that explain themselves: the one implementation behind pages, API, feeds and email.

A reader is a mixture of interests ("kNN-Embed: Locally Smoothed Embedding Mixtures For
Multi-interest Candidate Retrieval"): their positives (saved or upvoted papers, plus an optional
interest statement) are clustered with spherical k-means, and candidates are retrieved around each
interest's centroid in proportion to its share of the library, so a reader with one big and one
small interest is not served only the big one. A per-reader logistic regression on embeddings
(positives against their negatives and a background sample, as arxiv-sanity-lite trains one SVM per
tag) re-scores the candidates, so "not interested" and thumbs-down steer what comes back. The final
list keeps each interest's proportional quota (diversity, measured with the Vendi score), and each
recommendation names the interest and the library papers it is closest to.

The strongest single signal is the reader's SVM (``index/tfidf.py`` ``train_svm``, after
arxiv-sanity-lite) on TF-IDF of title + abstract, the title's TF-IDF again and the embedding,
trained against a fixed sample of the corpus; its scaled score is the largest term of the final
score (issue 11). It ranks a bounded set, not the corpus (issue 14): the retrieved candidates, the
``recent`` newest papers by date (``services/recent_window.py``) and what the SVM itself would rank
high, found through the indexes: BM25 hits of its 30 strongest terms and the nearest papers to its
embedding weights (SVM_POOL papers each). Its top papers there join the candidates. On quant-ph
(38,858 papers, window 20,000) that set held all of the SVM's whole-corpus top 200 for 10 readers
(with 300 papers each: 91%; the window alone: ~50%); with a window as large as the corpus it is the
same as ranking the whole corpus (tested).

Exposure: the positives are the reader's own saves and upvotes, and paperboy keeps no log of what
it showed (impressions), so there is no exposure-biased click signal to correct; inverse-propensity
weighting ("Unbiased Recommender Learning from Missing-Not-At-Random Implicit Feedback") is not applied.

The reader's models (SVM, logistic regression, interests) are trained from their current library
and kept in a bounded cache (``services/reader_models.py``) keyed on exactly what they were trained
from and the index versions: a vote, save or dismissal changes the key, so the next list is
computed from a freshly trained model for that reader only. A request costs the same at 40k and at
2.7M papers: retrieval is ANN and BM25 per interest and for the SVM, which scores those and the window.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError
from ..index.lexical import STOP_WORDS
from .reader_models import ModelCache, reader_key
from .recent_window import RecentWindow

if TYPE_CHECKING:
    from ..index.tfidf import RowBlock, TfidfIndex
    from ..index.vectors import VectorIndex
    from ..store import Store

MAX_INTERESTS = 6
LEXICAL_TERMS = 8  # distinctive words per interest for its keyword query
SVM_CANDIDATES = 200  # top papers of the reader's TF-IDF SVM added to the candidates
DIGEST_REFERENCE = SVM_CANDIDATES * 20  # with given candidates: their SVM score is scaled over this many best
SVM_TERMS = 30  # the SVM's strongest terms, one BM25 query for the papers it would score highest
SVM_POOL = 2000  # papers retrieved for the SVM by those terms and by its embedding weights, each
NEGATIVE_WEIGHT = 3.0  # a dismissal says more than one random paper does
BACKGROUND = 500  # random corpus papers as weak negatives for the linear model
WORD = re.compile(r"[a-z][a-z0-9-]{2,}")
GENERIC = STOP_WORDS | {"using", "via", "based", "new", "study", "towards", "approach", "method", "methods",
                        "model", "models", "analysis", "results", "paper", "from", "with", "its", "our", "all", "need",
                        "report", "technical", "toward", "can", "how", "what", "when", "we", "you", "your"}


@dataclass
class Reader:
    """What the recommender knows about one reader."""

    positives: list[int]  # saved or upvoted papers
    negatives: list[int] = field(default_factory=list)  # thumbs-down and "not interested"
    statement: np.ndarray | None = None  # embedding of the reader's interest statement (cold start)
    exclude: set[int] = field(default_factory=set)  # never recommend (library, feedback, already sent)
    muted: set[str] = field(default_factory=set)  # interest keys not to retrieve for
    deleted: set[str] = field(default_factory=set)  # interest keys whose papers no longer count
    names: dict[str, str] = field(default_factory=dict)  # interest key -> the reader's name for it


@dataclass
class Interest:
    key: str  # stable across recomputation: "p<id of the member nearest the centroid>" or "statement"
    name: str
    members: list[int]
    weight: float
    centroid: np.ndarray
    muted: bool = False
    terms: list[str] = field(default_factory=list)  # distinctive title words, for lexical retrieval


@dataclass
class Recommendation:
    paper_id: int
    score: float
    similarity: float  # cosine to its interest's centroid
    probability: float  # the reader's linear model
    interest: str  # key
    because: list[tuple[int, float]] = field(default_factory=list)  # (library paper, cosine)
    matched_terms: list[str] = field(default_factory=list)
    keywords: float = 0.0  # 0..1: how strongly its words match the reader's (BM25 / TF-IDF model)


def spherical_kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 25) -> np.ndarray:
    """Cluster labels of unit vectors (k-means++ seeding, cosine assignment)."""
    rng = np.random.default_rng(seed)
    centers = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d = np.clip(1 - np.max(x @ np.array(centers).T, axis=1), 0, None)
        if d.sum() <= 0:
            break
        centers.append(x[rng.choice(len(x), p=d / d.sum())])
    c = np.array(centers)
    labels = np.zeros(len(x), np.int64)
    for _ in range(iters):
        new = np.argmax(x @ c.T, axis=1)
        if _ and np.array_equal(new, labels):
            break
        labels = new
        for j in range(len(c)):
            if (m := labels == j).any():
                v = x[m].sum(0)
                c[j] = v / (np.linalg.norm(v) or 1)
    return labels


def n_interests(n: int) -> int:
    return max(1, min(MAX_INTERESTS, round(math.sqrt(n / 2))))


def logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = 1e-2, iters: int = 200) -> np.ndarray:
    """Weighted L2 logistic regression by gradient descent (bias last); small, dense, deterministic."""
    xb = np.hstack([x, np.ones((len(x), 1), x.dtype)])
    theta = np.zeros(xb.shape[1], np.float64)
    wn = w / w.sum()
    lr = 4.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(xb @ theta)))
        grad = xb.T @ (wn * (p - y)) + l2 * np.r_[theta[:-1], 0.0]
        theta -= lr * grad
    return theta


def vendi(vectors: np.ndarray) -> float:
    """The Vendi score of a list: exp of the entropy of the eigenvalues of its similarity matrix / n
    (Friedman & Dieng); 1 = all the same, n = all orthogonal."""
    if len(vectors) == 0:
        return 0.0
    k = np.clip(vectors @ vectors.T, 0, None) / len(vectors)
    lam = np.linalg.eigvalsh(k)
    lam = lam[lam > 1e-12]
    return float(np.exp(-(lam * np.log(lam)).sum()))


def title_terms(title: str) -> set[str]:
    """A title's words and two-word phrases (no generic word in either)."""
    w = [x for x in WORD.findall(title.lower())]
    out = {x for x in w if x not in GENERIC}
    out |= {f"{a} {b}" for a, b in zip(w, w[1:]) if a not in GENERIC and b not in GENERIC}
    return out


def terms(titles: Sequence[str], background: Counter[str], n_background: int, n: int = 3,
          min_count: int = 1) -> list[str]:
    """A group of papers' most distinctive title words and phrases: frequent in the group, rare in
    a background sample of titles (a phrase is worth its two words)."""
    counts = Counter(w for t in titles for w in title_terms(t))
    scored = {w: c * (1 + w.count(" ")) * math.log((n_background + 1) / (background.get(w, 0) + 1))
              for w, c in counts.items() if c >= min_count}
    return sorted(scored, key=lambda w: (-scored[w], w))[:n]


def describe(titles: Sequence[str], background: Counter[str], n_background: int, n: int = 3) -> str:
    """A name for a group of papers: its most distinctive title words."""
    return ", ".join(terms(titles, background, n_background, n)) or "papers"


class Recommender:
    """Per-reader recommendations over a vector index (anything with ``vector``, ``vectors``,
    ``search``, ``matrix`` and ``dim``, like ``index.vectors.VectorIndex``). ``tfidf`` gives the TF-IDF index of the SVM
    (None: no SVM), ``recent`` the bounded window of newest papers it also scores (None: the
    candidates only), ``models`` the cache of reader models (it must not outlive these vectors)."""

    def __init__(self, vectors, titles: Callable[[list[int]], dict[int, str]], *, pool: int = 200,
                 model_weight: float = 0.3, lexical: Callable[[list[str], int], list[tuple[int, float]]] | None = None,
                 lexical_weight: float = 0.5, tfidf: Callable[[], TfidfIndex | None] | None = None,
                 sparse_weight: float = 3.0, quota_share: float = 0.6, seed: int = 0,
                 recent: RecentWindow | None = None, models: ModelCache | None = None) -> None:
        self.vectors, self.titles, self.pool, self.model_weight = vectors, titles, pool, model_weight
        self.lexical, self.lexical_weight = lexical, lexical_weight
        self.tfidf, self.sparse_weight, self.quota_share = tfidf, sparse_weight, quota_share
        self.recent, self.models = recent, models if models is not None else ModelCache()
        self._window: tuple[tuple[int, int], RowBlock, np.ndarray, set[int]] | None = None  # keyed (window, TF-IDF)
        ids, mat = vectors.matrix()
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(ids), size=min(BACKGROUND, len(ids)), replace=False) if len(ids) else []
        self._background = (np.asarray(ids)[pick], np.asarray(mat)[pick].astype(np.float32))
        sample = self.titles([int(i) for i in self._background[0]])
        self._bg_words = Counter(w for t in sample.values() for w in title_terms(t))
        self._bg_n = max(len(sample), 1)

    def _vecs(self, ids: Sequence[int]) -> tuple[list[int], np.ndarray]:
        """(the ids that have a vector, their vectors), in one lookup."""
        ids = [int(i) for i in ids]
        has, x = self.vectors.vectors(ids)
        return [i for i, ok in zip(ids, has.tolist()) if ok], x

    def interests(self, reader: Reader) -> list[Interest]:
        """The reader's interests, largest first (muted ones included and marked)."""
        ids, x = self._vecs(reader.positives)
        titles = self.titles(ids) if ids else {}
        key = reader_key("interests", ids, "\n".join(titles.get(i, "") for i in ids))  # names come from titles
        clusters = self.models.get(key, lambda: self._clusters(ids, x, titles))
        out = [replace(i, members=list(i.members), terms=list(i.terms)) for i in clusters]  # copies: weights change
        if reader.statement is not None:
            out.append(Interest("statement", "your interest statement", [], 1.0,
                                reader.statement / (np.linalg.norm(reader.statement) or 1)))
        out = [i for i in out if i.key not in reader.deleted]
        total = sum(i.weight for i in out) or 1.0
        for i in out:
            i.weight /= total
            i.name = reader.names.get(i.key, i.name)
            i.muted = i.key in reader.muted
        return sorted(out, key=lambda i: -i.weight)

    def _clusters(self, ids: list[int], x: np.ndarray, titles: dict[int, str]) -> list[Interest]:
        """The library's clusters (``ids``, their vectors and titles) as interests (unnormalised
        weights, default names)."""
        out: list[Interest] = []
        if len(ids):
            labels = spherical_kmeans(x, n_interests(len(ids)))
            for j in np.unique(labels):
                m = np.flatnonzero(labels == j)
                c = x[m].sum(0)
                c /= np.linalg.norm(c) or 1
                medoid = ids[m[int(np.argmax(x[m] @ c))]]
                member_titles = [titles.get(ids[i], "") for i in m]
                name = describe(member_titles, self._bg_words, self._bg_n)
                words = terms(member_titles, self._bg_words, self._bg_n, LEXICAL_TERMS, min_count=min(2, len(m)))
                out.append(Interest(f"p{medoid}", name, [ids[i] for i in m], len(m), c, terms=words))
        return out

    def recommend(self, reader: Reader, k: int = 20, keep: Callable[[list[int]], dict[int, list[str]]] | None = None,
                  candidates: Sequence[int] | None = None) -> tuple[list[Recommendation], list[Interest]]:
        """The top ``k`` for a reader and the interests they came from. ``keep`` filters candidates
        by the reader's rules: it returns the kept ids with the include terms each matched.
        ``candidates`` ranks a given set (e.g. a digest's new papers) instead of retrieving."""
        interests = self.interests(reader)
        active = [i for i in interests if not i.muted]
        if not active:
            return [], interests
        total = sum(i.weight for i in active)
        blocked = set(reader.exclude) | set(reader.positives) | set(reader.negatives)
        cand: set[int] = set()
        if candidates is not None:
            cand = {int(i) for i in candidates} - blocked
        lex: dict[int, float] = {}  # candidate -> its best normalized BM25 score for an interest's terms
        if candidates is not None:
            for it in active if self.lexical else []:
                self._lexical_scores(it, len(cand) + len(blocked), lex, keep=cand)
        else:
            for it in active:  # kNN-Embed: retrieve for each interest in proportion to its weight
                n = max(10, math.ceil(self.pool * it.weight / total))
                ids, _ = self.vectors.search(it.centroid, n, exclude=blocked)
                cand.update(int(i) for i in ids)
                if self.lexical:  # and by the interest's words, which embeddings blur
                    cand.update(i for i in self._lexical_scores(it, n + len(blocked), lex) if i not in blocked)
        svm = self._svm(reader, cand, blocked, given=candidates is not None)
        if candidates is None:
            cand |= set(svm)
        cids, cx = self._vecs(sorted(cand))
        if not cids:
            return [], interests
        matched = keep(cids) if keep else {i: [] for i in cids}
        sel = [n for n, i in enumerate(cids) if i in matched]
        cids, cx = [cids[n] for n in sel], cx[sel]
        if not cids:
            return [], interests
        centroids = np.array([i.centroid for i in active])
        sims = cx @ centroids.T
        assigned, best = np.argmax(sims, axis=1), np.max(sims, axis=1)
        prob = self._model(reader, cx)
        score = best + self.model_weight * (prob - 0.5)
        score += self.lexical_weight * np.array([lex.get(i, 0.0) for i in cids])
        score += self.sparse_weight * np.array([svm.get(i, 0.0) for i in cids])
        recs = [Recommendation(i, float(score[n]), float(best[n]), float(prob[n]), active[assigned[n]].key,
                               matched_terms=matched.get(i, [])) for n, i in enumerate(cids)]
        for r in recs:
            r.score += 0.05 * len(r.matched_terms)
            r.keywords = max(lex.get(r.paper_id, 0.0), svm.get(r.paper_id, 0.0))
        chosen = self._quotas(recs, active, k, self.quota_share)
        self._explain(chosen, active)
        return chosen, interests

    def _lexical_scores(self, it: Interest, n: int, into: dict[int, float], keep: set[int] | None = None) -> list[int]:
        """BM25 hits for an interest's distinctive words, scores scaled to 0..1 into ``into``."""
        if not it.terms or self.lexical is None:
            return []
        hits = self.lexical(it.terms, n)
        top = max((s for _, s in hits), default=0.0) or 1.0
        for i, s in hits:
            if keep is None or i in keep:
                into[i] = max(into.get(i, 0.0), s / top)
        return [i for i, _ in hits]

    def _svm(self, reader: Reader, cand: set[int], blocked: set[int], given: bool) -> dict[int, float]:
        """The reader's SVM scores (0..1) over a bounded set: the candidates, the recent window and
        the papers BM25 finds for the SVM's strongest terms and ANN for its embedding weights; its top
        SVM_CANDIDATES there, or (``given``: ranking given candidates) the candidates' scores scaled
        over the DIGEST_REFERENCE best of candidates and window; {} without TF-IDF."""
        from ..index.tfidf import top_scaled

        tfidf = self._tfidf()
        if tfidf is None or not reader.positives:
            return {}
        model = self.models.get(reader_key("svm", reader.positives, reader.negatives, tfidf.version),
                                lambda: tfidf.train_svm(reader.positives, reader.negatives, self._dense))
        if model is None:
            return {}
        window, wx, inside = self._window_block(tfidf)
        pool = set(cand)
        if not given:  # and what the SVM itself would rank high, found through the indexes: its words, its direction
            if self.lexical is not None and (words := tfidf.strongest_terms(model, SVM_TERMS)):
                pool.update(i for i, _ in self.lexical(words, SVM_POOL + len(blocked)))
            if model.dense is not None and (norm := float(np.linalg.norm(model.dense))) > 0:
                found, _ = self.vectors.search(model.dense / norm, SVM_POOL, exclude=blocked)
                pool.update(int(i) for i in found if i >= 0)
        try:
            extra = tfidf.block(sorted(pool - inside))
            ids = np.r_[window.ids, extra.ids]
            d = np.r_[tfidf.decision(model, window, wx), tfidf.decision(model, extra, self._dense(extra.ids))]
        except ValueError:  # the rows changed under this request (the web's follower synced TF-IDF): skip it once
            return {}
        d[np.isin(ids, np.fromiter(blocked, np.int64, len(blocked)))] = -np.inf
        if not given:
            return top_scaled(ids, d, SVM_CANDIDATES)
        scaled = top_scaled(ids, d, DIGEST_REFERENCE)
        return {i: s for i, s in scaled.items() if i in cand}

    def _tfidf(self) -> TfidfIndex | None:
        try:
            return self.tfidf() if self.tfidf is not None else None
        except ConfigError:  # no scikit-learn: recommendations go without the TF-IDF model
            return None

    def _dense(self, ids: np.ndarray) -> np.ndarray:
        """Unit vectors of ``ids``, zeros for a paper without one (the SVM's embedding block)."""
        has, x = self.vectors.vectors(ids)
        out = np.zeros((len(has), self.vectors.dim), np.float32)
        out[has] = x
        return out

    def _window_block(self, tfidf: TfidfIndex) -> tuple[RowBlock, np.ndarray, set[int]]:
        """The recent window's TF-IDF rows, vectors and ids, cut once per window and TF-IDF version."""
        version, ids = self.recent.current() if self.recent is not None else (0, np.zeros(0, np.int64))
        key = (version, tfidf.version)
        if (w := self._window) is None or w[0] != key:
            block = tfidf.block(ids)
            self._window = w = (key, block, self._dense(block.ids), set(block.ids.tolist()))
        return w[1], w[2], w[3]

    def _model(self, reader: Reader, cx: np.ndarray) -> np.ndarray:
        """The reader's linear model: P(positive) for each candidate."""
        statement = None if reader.statement is None else np.asarray(reader.statement, np.float32)
        theta = self.models.get(reader_key("logistic", reader.positives, reader.negatives, statement),
                                lambda: self._train_logistic(reader))
        return 1 / (1 + np.exp(-(np.hstack([cx, np.ones((len(cx), 1))]) @ theta)))

    def _train_logistic(self, reader: Reader) -> np.ndarray:
        _, pos = self._vecs(reader.positives)
        _, neg = self._vecs(reader.negatives)
        if reader.statement is not None:
            pos = np.vstack([pos, reader.statement[None, :]]) if len(pos) else reader.statement[None, :]
        bg = self._background[1]
        x = np.vstack([a for a in (pos, neg, bg) if len(a)]).astype(np.float64)
        y = np.r_[np.ones(len(pos)), np.zeros(len(neg) + len(bg))]
        w = np.r_[np.full(len(pos), 1.0 / max(len(pos), 1)), np.full(len(neg), NEGATIVE_WEIGHT / max(len(pos), 1)),
                  np.full(len(bg), 1.0 / len(bg) if len(bg) else 0)]
        return logistic(x, y, w)

    @staticmethod
    def _quotas(recs: list[Recommendation], active: list[Interest], k: int, share: float = 1.0) -> list[Recommendation]:
        """Each interest gets its proportional part of ``share`` * k slots (largest remainder),
        filled with its best candidates; the other slots go to the best of the rest."""
        total = sum(i.weight for i in active)
        k_all, k = k, int(round(k * share))
        raw = {i.key: k * i.weight / total for i in active}
        slots = {key: int(v) for key, v in raw.items()}
        for key in sorted(raw, key=lambda key: -(raw[key] - slots[key]))[:k - sum(slots.values())]:
            slots[key] += 1
        ranked = sorted(recs, key=lambda r: -r.score)
        chosen, rest = [], []
        for r in ranked:
            if slots.get(r.interest, 0) > 0:
                slots[r.interest] -= 1
                chosen.append(r)
            else:
                rest.append(r)
        chosen += rest[:k_all - len(chosen)]
        return sorted(chosen, key=lambda r: -r.score)

    def _explain(self, recs: list[Recommendation], active: list[Interest]) -> None:
        members = {i.key: self._vecs(i.members) for i in active}
        for r in recs:
            ids, x = members[r.interest]
            v = self.vectors.vector(r.paper_id)
            if len(ids) and v is not None:
                s = x @ v
                top = np.argsort(-s)[:2]
                r.because = [(ids[t], float(s[t])) for t in top]


def build_recommender(vectors: VectorIndex | None, store: Store, *,
                      keyword_hits: Callable[[list[str], int], list[tuple[int, float]]] | None = None,
                      tfidf: Callable[[], Any] | None = None, recent_window: int = 20_000, model_cache: int = 256,
                      previous: Recommender | None = None) -> Recommender | None:
    """The recommender that pages, API, feeds, digests and ``paperboy eval recs`` all use (the one
    place it is put together; ``Engine.recommender`` keeps it while the vectors stay the same):
    titles from the store, BM25 hits of an interest's words (``keyword_hits``), the reader's
    TF-IDF SVM (``tfidf``: the TF-IDF index) over candidates and the ``recent_window`` newest
    papers, and a cache of ``model_cache`` reader models. ``previous`` (the recommender of the
    vectors before) hands over its recent window, which follows the store. None without vectors."""
    if vectors is None or len(vectors) == 0:
        return None

    def titles(ids: list[int]) -> dict[int, str]:
        return {i: p.title for i, p in store.get_papers(ids).items()}
    recent = previous.recent if previous is not None and previous.recent is not None else None
    if recent is None or recent.store is not store or recent.size != recent_window:
        recent = RecentWindow(store, recent_window)
    # a new cache: reader models depend on the vectors (the embedding block, the logistic's background)
    return Recommender(vectors, titles, lexical=keyword_hits, tfidf=tfidf, recent=recent, models=ModelCache(model_cache))
