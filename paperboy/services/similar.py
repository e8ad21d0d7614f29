"""Similar papers: embedding neighbours, fused with TF-IDF and re-ranked to reduce hubness.

In high-dimensional embedding spaces a few points ("hubs", typically near the data mean) are the
nearest neighbour of very many others, so the same papers crowd every similar-papers list. Each paper's
hub score is its local density, the mean cosine to its ``bank_k`` nearest other papers (the corpus is
its own query bank), and it is subtracted, in part, from every similarity to that paper: the target
side of CSLS ("Word Translation Without Parallel Data", Conneau et al., ICLR 2018; the query side is
the same for one query's whole list, so it cannot change the order). Embedding and lexical neighbours
are partly complementary, so the TF-IDF cosine of the two papers (the features arxiv-sanity-lite
ranks by) is added:

    r(y) = mean_{q in NN_K(y), q != y} cos(q, y)                              (hub score, K = ``bank_k``)
    score(x, y) = cos(x, y) + lexical_weight * tfidf(x, y) - hub_weight * r(y)

and x's top ``candidates`` neighbours by cosine are re-ranked by ``score`` (100 cosine candidates did as
well as adding the top 100 by TF-IDF). On 2,026 papers in 45 human-curated topic folders
(``paperboy eval similar``) plain cosine gave P@10 0.826 at N10 skewness 1.81, this score with the
default weights 0.5 / 0.5 about a point more precision at skewness below 0.8, while the inverted
softmax of QB-Norm (Bogolin et al., CVPR 2022), subtracted whole, gave 0.768 at 0.81: a full
correction removes hubs but buries true neighbours that are merely popular.

Hub scores cost one K-nearest-neighbour search per paper, batched: exact matrix products in blocks up to
~100k papers (38,858 papers: ~10 s on 2 cores), the HNSW graph's batch search above. They are cached
next to the vector index as ``.npy`` arrays plus a JSON sidecar (no pickle), written as a new generation
with the sidecar last, like the vector index itself (``index/generations.py``). Papers added or changed
since are scored incrementally (a change is seen through the projections of each vector on a few fixed
random probes); old papers' scores then ignore the newcomers among their neighbours, so everything is
recomputed once the index has grown by more than ``FULL_GROWTH`` since the last full computation, or
when the model or ``bank_k`` differ.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import ConfigError
from ..index.generations import GenerationError, GenerationMissing, load_generation, save_generation
from ..index.vectors import VectorIndex, f32_blocks

log = logging.getLogger(__name__)
SIDECAR = "hubness.json"
FULL_GROWTH = 0.2  # recompute every hub score once the index has grown by more than this
PROBES = 4  # random projections per vector: a changed vector changes them (all 4 within 1e-5: ~1e-10)
_PROBE_ATOL = 1e-5  # BLAS may round one dot product differently between runs: far below a real change
_BANK_CHUNK = 4096  # bank queries per HNSW batch search
_SCORE_BLOCK = 1 << 23  # floats in one exact score block (32 MiB)
_EXACT_PAIRS = 10_000_000_000  # exact up to this many (query, bank) pairs: 100k papers, ~1 min on 2 cores
# the cache's arrays, "count" rows each (hub-{name}-{generation}.npy)
_SPEC = {"ids": (np.int64, ("count",)), "h": (np.float64, ("count",)), "probe": (np.float32, ("count", PROBES))}


class HubScores(NamedTuple):
    """Hub score h of each scored paper, sorted by id; ``probe``: the vector's probe projections."""

    ids: np.ndarray  # int64, strictly increasing
    h: np.ndarray  # float64: mean cosine to the paper's bank_k nearest others
    probe: np.ndarray  # float32, (n, PROBES)


Lexical = Callable[[int, np.ndarray], np.ndarray]  # (paper, candidate ids) -> TF-IDF cosines


class SimilarPapers:
    """Nearest papers by cosine, optionally re-ranked by ``score`` (module docstring). ``lexical``
    gives TF-IDF cosines between a paper and candidates (0 for papers it does not know); without it
    the lexical term is left out."""

    def __init__(self, vectors: VectorIndex, cache_dir: Path | None, *, bank_k: int = 50,
                 hub_weight: float = 0.5, lexical_weight: float = 0.5, candidates: int = 100,
                 lexical: Lexical | None = None) -> None:
        if bank_k < 1 or candidates < 1 or not 0 <= hub_weight <= 10 or not 0 <= lexical_weight <= 10:
            raise ConfigError(f"similar papers need bank_k >= 1, candidates >= 1 and weights in 0..10, not "
                              f"{bank_k}, {candidates}, {hub_weight}, {lexical_weight}")
        self.vectors, self.cache_dir = vectors, Path(cache_dir) if cache_dir is not None else None
        self.bank_k, self.candidates = int(bank_k), int(candidates)
        self.hub_weight, self.lexical_weight, self.lexical = float(hub_weight), float(lexical_weight), lexical
        self._probes = np.random.default_rng(20230101).standard_normal((vectors.dim, PROBES)).astype(np.float32)
        self._probes /= np.linalg.norm(self._probes, axis=0)
        self._scores: HubScores | None = None
        self._full_count = 0  # index size at the last full computation
        self._lock = threading.Lock()  # web requests share one instance: compute and save once
        self.last_refresh: dict[str, Any] = {}  # the last hub_scores(): source, scored, full, method, seconds
        self._method = ""  # how the last _compute searched the bank: exact, hnsw

    def _params(self) -> dict[str, Any]:
        return {"model_id": self.vectors.model_id, "dim": self.vectors.dim, "bank_k": self.bank_k,
                "hub": "mean-cosine", "probes": PROBES}

    def hub_scores(self) -> HubScores:
        """h(y) for every paper in the index: kept in memory, loaded from the cache, scored for
        papers added or changed since, or computed from scratch (see the module docstring)."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> HubScores:
        t0 = time.perf_counter()
        source = "memory"
        if self._scores is None:
            self._scores, self._full_count = self._load()
            source = "cache"
        ids, mat = self.vectors.matrix()
        probe = np.vstack([b @ self._probes for _, b in f32_blocks(mat)]) if len(mat) else np.zeros((0, PROBES), np.float32)
        old = self._scores
        h = np.empty(len(ids), np.float64)
        if old is None or len(ids) > (1 + FULL_GROWTH) * self._full_count:
            full, todo, stale = True, np.arange(len(ids)), True
        else:
            pos = np.minimum(np.searchsorted(old.ids, ids), max(len(old.ids) - 1, 0))
            known = np.zeros(len(ids), bool) if not len(old.ids) else (
                (old.ids[pos] == ids) & np.all(np.abs(old.probe[pos] - probe) <= _PROBE_ATOL, axis=1))
            h[known] = old.h[pos[known]]
            todo = np.flatnonzero(~known)
            full, stale = False, len(todo) > 0 or len(old.ids) != len(ids)  # new, changed or removed papers
        if stale:
            h[todo] = self._compute(todo, mat, ids)
            order = np.argsort(ids, kind="stable")
            self._scores = HubScores(ids[order].copy(), h[order], probe[order])
            if full:
                self._full_count = len(ids)
            try:
                self._save(self._scores)
            except OSError as e:  # a cache: serve the scores anyway
                log.warning("could not cache hub scores in %s: %s", self.cache_dir, e)
            source = "computed"
        self.vectors.release()  # the probes read every row: those pages may leave the resident set
        self.last_refresh = {"source": source, "scored": len(todo), "full": full,
                             "method": self._method if len(todo) else "", "seconds": time.perf_counter() - t0}
        assert self._scores is not None
        return self._scores

    def _compute(self, rows: np.ndarray, mat: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """h for the papers in these rows of ``mat`` (every vector: the bank), in batches."""
        k = min(self.bank_k, len(mat) - 1)
        out = np.zeros(len(rows))  # a paper alone in the index is nobody's hub
        if k < 1 or not len(rows):
            return out
        self._method = "exact"
        if len(mat) >= self.vectors.hnsw_threshold and len(rows) * len(mat) > _EXACT_PAIRS:
            self._method = "hnsw"
            for s in range(0, len(rows), _BANK_CHUNK):  # the HNSW graph: n log n, not n^2
                r = rows[s:s + _BANK_CHUNK]
                nids, sims = self.vectors.search_many(mat[r], k + 1)
                keep = (nids >= 0) & (nids != ids[r][:, None])  # a paper is not in its own bank
                keep &= np.cumsum(keep, axis=1) <= k
                out[s:s + len(r)] = _mean(np.where(keep, sims, np.nan))
            return out
        # Exact: score blocks of one reused buffer, partitioned in place (fresh 100 MB blocks cost more
        # in page faults than the partition itself); every row is complete, so no merging is needed.
        mat = np.asarray(mat, np.float32)  # at most ~100k papers here (_EXACT_PAIRS): one f32 copy
        step = max(1, _SCORE_BLOCK // len(mat))
        buf = np.empty((min(step, len(rows)), len(mat)), np.float32)
        for s in range(0, len(rows), step):
            r = rows[s:s + step]
            block = buf[:len(r)]
            np.matmul(mat[r], mat.T, out=block)
            np.minimum(block, 1.0, out=block)  # f16 rows: an exact copy's cosine may come out at 1.0002
            block[np.arange(len(r)), r] = -np.inf  # a paper is not in its own bank
            block.partition(len(mat) - k, axis=1)
            out[s:s + len(r)] = _mean(block[:, len(mat) - k:])
        return out

    def neighbours(self, paper_id: int, k: int = 10, hubness: bool = True) -> list[tuple[int, float, float]]:
        """(id, cosine, score) of the k papers most similar to ``paper_id``, best first; ``score`` is
        the fused, hub-corrected score (``hubness``) or the cosine itself. [] when the paper has no vector."""
        v = self.vectors.vector(paper_id)
        if v is None or k <= 0:
            return []
        if not hubness:
            ids, cos = self.vectors.search(v, k, exclude={int(paper_id)})
            return [(int(i), float(c), float(c)) for i, c in zip(ids, cos)]
        ids, cos = self.vectors.search(v, max(k, self.candidates), exclude={int(paper_id)})
        score = cos.astype(np.float64) - self.hub_weight * self._lookup(ids)
        if self.lexical is not None and self.lexical_weight and len(ids):
            score += self.lexical_weight * np.asarray(self.lexical(int(paper_id), ids), np.float64)
        order = np.argsort(-score, kind="stable")[:k]
        return [(int(ids[j]), float(cos[j]), float(score[j])) for j in order]

    def _lookup(self, ids: np.ndarray) -> np.ndarray:
        """Hub scores of these ids; refreshes (scoring newcomers) when one of them is not scored yet."""
        pos = _positions(self._scores, ids)
        if pos is None:
            pos = _positions(self.hub_scores(), ids)
            if pos is None:
                raise AssertionError("hub_scores() scores every paper in the index")
        assert self._scores is not None
        return self._scores.h[pos]

    # -- the cache: arrays of one generation, then the sidecar naming them (the commit point) --------

    def _load(self) -> tuple[HubScores | None, int]:
        if self.cache_dir is None:
            return None, 0
        d = self.cache_dir
        try:
            arrays, meta = load_generation(d, SIDECAR, _SPEC)
            if not isinstance(meta.get("params"), dict):
                raise ValueError(f"{SIDECAR} has no parameters")
            if meta["params"] != self._params():
                ours = self._params()
                other = {k: meta["params"].get(k) for k in ours if meta["params"].get(k) != ours[k]}
                # another model or dimension is a cache that does not belong here; other bank_k or
                # the hub score is a changed setting
                (log.warning if {"model_id", "dim"} & other.keys() else log.info)(
                    "hub scores in %s are for other parameters %s: recomputing", d, other)
                return None, 0
            ids, h, probe = arrays["ids"], arrays["h"], arrays["probe"]
            if np.any(np.diff(ids) <= 0) or np.isnan(h).any() or not np.isfinite(probe).all():
                raise ValueError("ids not increasing, or NaN in the scores or probes")
            return HubScores(ids, h, probe), int(meta["full_count"])
        except GenerationMissing:  # no cache yet
            return None, 0
        except (GenerationError, ValueError, KeyError, TypeError) as e:  # derived data: recompute, never fail
            log.warning("hub score cache in %s is damaged (%s): recomputing", d, e)
            return None, 0

    def _save(self, scores: HubScores) -> None:
        if self.cache_dir is not None:
            meta = {"params": self._params(), "count": len(scores.ids), "full_count": self._full_count}
            save_generation(self.cache_dir, SIDECAR, scores._asdict(), meta, prefix="hub-")


def _mean(sims: np.ndarray) -> np.ndarray:
    """Per row: the mean of the finite entries (0 for a row with none)."""
    sims = sims.astype(np.float64)
    ok = np.isfinite(sims)
    n = ok.sum(axis=1)
    return np.where(n > 0, np.where(ok, sims, 0.0).sum(axis=1) / np.maximum(n, 1), 0.0)


def _positions(scores: HubScores | None, ids: np.ndarray) -> np.ndarray | None:
    """Rows of ``ids`` in ``scores``, or None if one of them is not there."""
    if scores is None or (not len(scores.ids) and len(ids)):
        return None
    pos = np.minimum(np.searchsorted(scores.ids, ids), max(len(scores.ids) - 1, 0))
    return pos if (scores.ids[pos] == ids).all() else None
