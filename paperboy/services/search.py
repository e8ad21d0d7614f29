"""Hybrid search: BM25 and dense retrieval fused, with a query-dependent relevance cut-off.

- Fusion (hybrid retrieval, BM25 + dense): reciprocal rank fusion (Cormack et al., k=60) or
  normalized-score fusion (min-max per list, weighted by ``alpha``); the settings' defaults (score
  fusion, alpha 0.4) were chosen on long claims, short keyword queries and title lookups alike
  (benchmarks/search_types.py, docs/settings.md).
- Relevance cut-off, after "Relevance Filtering for Embedding-based Retrieval": a raw cosine score
  means different things for different queries, so each query's scores are calibrated against
  that query's own background: the mean and spread of its similarity to a fixed random sample of
  the corpus. A hit must stand ``z_min`` standard deviations above that background and reach an
  absolute floor ``min_cosine`` (which protects small, single-topic corpora, where the background
  itself is on topic). A query about nothing in the corpus then returns few or no results instead
  of the k nearest. Both were set on SciFact (benchmarks/cutoff.py).
- Exact title first (issue 11): in bm25 and hybrid, a query whose text is a paper's title
  (``normalize.title_key`` equality, one term lookup in the lexical index) puts that paper first,
  whatever the fusion and the cut-off say. Fused scores alone put it first for 95-99.9% of title
  queries in hybrid (SciFact and topic-folder titles); with the rule 100%, at no change on claims or keyword
  queries and ~0.01 ms per query (benchmarks/search_types.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..embed import Embedder
from ..index.lexical import LexicalIndex
from ..index.vectors import VectorIndex
from ..models import Paper
from ..query import Query, QueryError, parse_query
from ..store import Store

MODES = ("hybrid", "bm25", "dense")
SORTS = ("relevance", "date", "votes")
MAX_RESULTS = 1000  # page * per_page
FUSIONS = ("rrf", "score")
RRF_K = 60
BACKGROUND_SAMPLE = 2000


@dataclass
class Hit:
    paper: Paper
    score: float
    bm25: float | None = None
    dense: float | None = None
    z: float | None = None  # calibrated dense score: standard deviations above the query's background


@dataclass
class SearchResult:
    query: str
    mode: str
    sort: str
    page: int
    per_page: int
    total: int  # exact when the search counted matches, else how many ranked results there are
    hits: list[Hit] = field(default_factory=list)
    cut: int = 0  # candidates dropped by the relevance cut-off
    took_ms: float = 0.0
    exact_total: bool = True  # False: ``total`` is a lower bound, more pages may follow


class Searcher:
    """One search implementation for every front end (CLI, web, API, eval)."""

    def __init__(self, store: Store, lexical: LexicalIndex, vectors: VectorIndex | None,
                 embedder: Embedder | None, *, fusion: str = "rrf", alpha: float = 0.5,
                 z_min: float = 1.0, min_cosine: float = 0.25, lexical_slack: float = 0.05,
                 candidates: int = 100, max_query: int = 1000, exact_title_first: bool = True,
                 topic_members: Any = None) -> None:
        self.store, self.lexical, self.vectors, self.embedder = store, lexical, vectors, embedder
        self.fusion, self.alpha, self.z_min, self.min_cosine = fusion, alpha, z_min, min_cosine
        self.lexical_slack, self.exact_title_first = lexical_slack, exact_title_first
        self.candidates, self.max_query = candidates, max_query
        self.topic_members = topic_members  # topic:NAME -> its paper ids (services/topics.py), or None
        self._background: np.ndarray | None = None

    # -- building blocks ------------------------------------------------------------------------

    def background(self) -> np.ndarray:
        """A fixed random sample of corpus vectors (seeded, so results are repeatable)."""
        if self._background is None:
            assert self.vectors is not None
            ids, mat = self.vectors.matrix()
            rng = np.random.default_rng(0)
            pick = rng.choice(len(ids), size=min(BACKGROUND_SAMPLE, len(ids)), replace=False)
            self._background = mat[np.sort(pick)].astype(np.float32)
            self.vectors.release()  # the sample is copied: its pages may leave the resident set
        return self._background

    def calibrate(self, qvec: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Cosine scores to z-scores against this query's similarity to the background sample."""
        bg = self.background() @ qvec
        return (scores - float(bg.mean())) / max(float(bg.std()), 1e-6)

    def bm25(self, q: Query, k: int, count: bool = False) -> tuple[list[tuple[int, float]], int | None]:
        query = self.lexical.build(q)
        return self.lexical.search(query, k, count) if query is not None else ([], 0)

    def exact_title(self, q: Query) -> list[int]:
        """Papers whose title is the query's text (normalized) and that meet its constraints."""
        text = q.free_text()
        ids = self.lexical.title_matches(text) if text else []
        if not ids:
            return []
        ok = self.lexical.constrain(q, ids)
        return [i for i in ids if i in ok]

    def has_vectors(self) -> bool:
        return self.vectors is not None and self.embedder is not None and len(self.vectors) > 0

    def dense(self, q: Query, qvec: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(id, cosine) of dense hits that satisfy the query's constraints, best first."""
        assert self.vectors is not None
        ids, scores = self.vectors.search(qvec, k)
        ok = self.lexical.constrain(q, [int(i) for i in ids])
        return [(int(i), float(s)) for i, s in zip(ids, scores) if int(i) in ok]

    def cosines(self, qvec: np.ndarray, ids: list[int]) -> dict[int, float]:
        """Cosine of the query with given papers' stored vectors (BM25 hits the dense list missed)."""
        assert self.vectors is not None
        out = {}
        for i in ids:
            v = self.vectors.vector(i)
            if v is not None:
                out[i] = float(v @ qvec)
        return out

    def rank(self, q: Query, mode: str, k: int, cutoff: bool = True,
             count: bool = False) -> tuple[list[dict[str, Any]], int | None, int]:
        """Ranked candidates [{id, score, bm25, dense, z}], the match count (None when not counted
        or not countable) and how many were cut."""
        dense_ok = mode != "bm25" and self.has_vectors() and bool(q.free_text())
        if mode == "dense" and not dense_ok:
            return [], 0, 0
        lex, total = self.bm25(q, k, count) if mode != "dense" else ([], None)
        qvec = self.embedder.encode_query(q.free_text()) if dense_ok else None  # type: ignore[union-attr]
        den = self.dense(q, qvec, k) if qvec is not None else []
        rows = {i: {"id": i, "bm25": s, "dense": None, "z": None} for i, s in lex}
        for i, s in den:
            rows.setdefault(i, {"id": i, "bm25": None, "dense": None, "z": None})["dense"] = s
        exact = self.exact_title(q) if mode != "dense" and self.exact_title_first else []
        for i in exact:  # found by its title even when neither list reached it
            rows.setdefault(i, {"id": i, "bm25": None, "dense": None, "z": None})
        if qvec is not None:  # calibrate every candidate, BM25-only ones included
            missing = [i for i, r in rows.items() if r["dense"] is None]
            for i, s in self.cosines(qvec, missing).items():
                rows[i]["dense"] = s
            known = [i for i, r in rows.items() if r["dense"] is not None]
            z = self.calibrate(qvec, np.array([rows[i]["dense"] for i in known], dtype=np.float32))
            for i, zz in zip(known, z):
                rows[i]["z"] = float(zz)
        if mode == "bm25" or qvec is None:
            scores = dict(lex)
        elif mode == "dense":
            scores = dict(den)
        elif self.fusion == "rrf":
            scores = {}
            for ranked in ([i for i, _ in lex], [i for i, _ in den]):
                for r, i in enumerate(ranked):
                    scores[i] = scores.get(i, 0.0) + 1.0 / (RRF_K + r + 1)
        else:
            scores = {i: (1 - self.alpha) * v for i, v in _minmax(dict(lex)).items()}
            for i, v in _minmax(dict(den)).items():
                scores[i] = scores.get(i, 0.0) + self.alpha * v
        cut = 0
        if cutoff and qvec is not None and mode != "bm25" and not _required(q):
            keep = {i for i in scores if i in exact or self._relevant(rows[i])}
            cut = len(scores) - len(keep)
            scores = {i: s for i, s in scores.items() if i in keep}
        ranked = sorted(scores, key=lambda i: -scores[i])
        if exact:  # the exact-title papers first, in their fused order, at the top score
            top = scores[ranked[0]] if ranked else 0.0
            first, promoted = sorted(exact, key=lambda i: -scores.get(i, float("-inf"))), set(exact)
            ranked = first + [i for i in ranked if i not in promoted]
            scores.update({i: top for i in first})
        out = [{**rows[i], "score": scores[i]} for i in ranked]
        if len(lex) < k and (mode == "bm25" or qvec is None):
            total = len(out)  # the lexical list is complete: every match is ranked
        return out, (None if mode == "dense" or cut or total is None else max(total, len(out))), cut

    def _relevant(self, row: dict[str, Any]) -> bool:
        """Above the query's background by ``z_min`` and above the floor; the floor is
        ``lexical_slack`` lower for a candidate that also matches the query's words."""
        if row["z"] is None:  # no vector (yet: ingested, not embedded): its words alone decide
            return row["bm25"] is not None
        floor = self.min_cosine - (self.lexical_slack if row["bm25"] is not None else 0.0)
        return row["z"] >= self.z_min and row["dense"] >= floor

    def _topic_ids(self, names: list[str]) -> set[int]:
        """The papers of any of the topics named (topic:NAME, issue 13); QueryError for an unknown one."""
        if self.topic_members is None:
            raise QueryError("topic: needs a topic model: run `paperboy topics fit`")
        out: set[int] = set()
        for name in names:
            out |= self.topic_members(name)
        return out

    # -- the entry point ------------------------------------------------------------------------

    def search(self, text: str, *, mode: str = "hybrid", sort: str | None = None, page: int = 1,
               per_page: int = 20, count: bool = False) -> SearchResult:
        """One page of results. ``count`` asks for the exact number of keyword matches, which
        costs a visit to each of them (several ms at 1M papers for common words)."""
        started = time.perf_counter()
        if mode not in MODES:
            raise QueryError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        if page < 1 or not 1 <= per_page <= 100:
            raise QueryError("page must be >= 1 and per_page between 1 and 100")
        if page * per_page > MAX_RESULTS:  # deeper pages would ask the index for millions of hits
            raise QueryError(f"results go {MAX_RESULTS} deep: ask for page {MAX_RESULTS // per_page} at most, "
                             "or narrow the query")
        q = parse_query(text, max_length=self.max_query)
        if q.topics:
            q.only_ids = self._topic_ids(q.topics)
        sort = q.sort or sort or ("relevance" if q.has_text else "date")
        if sort not in SORTS:
            raise QueryError(f"unknown sort {sort!r}: use one of {', '.join(SORTS)}")
        want = page * per_page
        if q.has_text:
            rows, counted, cut = self.rank(q, mode, max(self.candidates, want), count=count)
        else:  # only filters: newest first
            ids, counted = self.lexical.filtered_ids(q, want if sort == "date" else 1000)
            rows = [{"id": i, "score": 0.0, "bm25": None, "dense": None, "z": None} for i in ids]
            cut = 0
        if sort != "relevance" and rows:
            papers = self.store.get_papers([r["id"] for r in rows])
            if sort == "date":
                rows.sort(key=lambda r: papers[r["id"]].submitted or "", reverse=True)
            else:
                votes = self.store.votes([r["id"] for r in rows])
                rows.sort(key=lambda r: -votes.get(r["id"], 0))
        if rows:  # members' uploads alone do not make a paper public (their metadata is anyone's)
            hidden = self.store.uploads_only([r["id"] for r in rows])
            rows = [r for r in rows if r["id"] not in hidden] if hidden else rows
        window = rows[(page - 1) * per_page: want]
        papers = self.store.get_papers([r["id"] for r in window])
        hits = [Hit(papers[r["id"]], r["score"], r["bm25"], r["dense"], r["z"]) for r in window if r["id"] in papers]
        total = counted if counted is not None else len(rows)
        return SearchResult(text, mode, sort, page, per_page, total, hits, cut,
                            round((time.perf_counter() - started) * 1000, 2), counted is not None)


def _minmax(scores: dict[int, float]) -> dict[int, float]:
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    return {i: (s - lo) / (hi - lo) if hi > lo else 1.0 for i, s in scores.items()}


def _required(q: Query) -> bool:
    """Phrases, fielded clauses and ids are explicit constraints: what meets them is relevant."""
    return bool(q.ids) or any((c.phrase or c.field) and not c.negate for c in q.clauses)
