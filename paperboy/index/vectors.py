"""Vector index: exact search below a size threshold, HNSW (usearch) above it.

Derived data, rebuilt from the store at will. Saved as plain arrays (``ids-G.npy``, ``vectors-G.npy``),
usearch's own graph file (``hnsw-G.usearch``) and, last, a JSON sidecar naming generation G's files:
a crash mid-save leaves the previous sidecar and its files intact. One writer per directory. The
sidecar records the model id, so vectors of two models never mix ("Stationary Representations ...
Model Replacements"). The graph stores f16, half of f32's memory for no measurable recall loss
("Experimental Analysis of Large-scale Learnable Vector Storage Compression"); its picks are re-scored
with the f32 arrays, which also serve exact search.
"""

from __future__ import annotations

import logging
import os  # noqa: F401 - unused here; tests/test_vectors.py patches vectors.os.replace to crash a save
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PaperboyError
from .generations import GenerationError, GenerationMissing, load_generation, save_generation

log = logging.getLogger(__name__)
SIDECAR = "index.json"
_SPEC = {"ids": (np.int64, ("count",)), "vectors": (np.float32, ("count", "dim"))}  # "count", "dim": the sidecar's
_PARAMS = ("connectivity", "expansion_add", "expansion_search")
REBUILD = "rebuild with paperboy embed --rebuild"  # derived data: the store holds every vector
_SCORE_BLOCK = 1 << 25  # floats in one exact-search score block (128 MiB), whatever the corpus size
_NORM_TOL = 1e-3  # saved vectors are unit length (normalized on upsert); float32 rounding is far below this


class VectorIndexError(PaperboyError):
    """The saved index is damaged or belongs to another model, or vectors have the wrong shape."""


class VectorIndexMissing(VectorIndexError, FileNotFoundError):
    """No saved index in the directory."""


def _normalize(v: Any, dim: int) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    if v.ndim != 2 or v.shape[1] != dim:
        raise VectorIndexError(f"expected vectors of dimension {dim}, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise VectorIndexError("vectors contain NaN or infinity")
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)  # cosine = dot product


def _unit_rows(vecs: np.ndarray, block: int = 65536) -> bool:
    """Every row finite with length 1 (checked in blocks: no full-size temporary)."""
    for s in range(0, len(vecs), block):
        sq = np.einsum("ij,ij->i", vecs[s:s + block], vecs[s:s + block])
        if not np.all(np.abs(sq - 1.0) <= _NORM_TOL):  # NaN fails the comparison
            return False
    return True


def _sidecar_params(d: Path, meta: dict[str, Any]) -> dict[str, int]:
    try:
        return {k: int(meta[k]) for k in ("dim", "hnsw_threshold", *_PARAMS)}
    except (KeyError, TypeError, ValueError) as e:
        raise _damaged(d, f"sidecar without {e}") from e


def _damaged(directory: Path, why: object) -> VectorIndexError:
    return VectorIndexError(f"vector index in {directory} is damaged ({why}): {REBUILD}")


class VectorIndex:
    """Cosine-similarity search over the paper vectors of one model."""

    def __init__(self, model_id: str, dim: int, *, hnsw_threshold: int = 20_000, connectivity: int = 16,
                 expansion_add: int = 128, expansion_search: int = 128) -> None:
        self.model_id, self.dim, self.hnsw_threshold = model_id, int(dim), int(hnsw_threshold)
        self.params = dict(zip(_PARAMS, (connectivity, expansion_add, expansion_search)))
        self.synced = 0  # the caller's change counter, saved in the sidecar
        self._n = 0  # rows 0.._n of the buffers are live; spare capacity makes appends amortized O(1)
        self._ids, self._vecs = np.empty(0, np.int64), np.empty((0, self.dim), np.float32)
        self._pos: dict[int, int] = {}  # paper id -> row
        self._hnsw: Any = None  # usearch Index keyed by paper id, once len >= hnsw_threshold

    def __len__(self) -> int:
        return self._n

    def upsert(self, ids: np.ndarray | list[int], vectors: np.ndarray) -> None:
        """Add vectors (L2-normalized here); an id already present has its vector replaced."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        vecs = _normalize(vectors, self.dim)
        if len(ids) != len(vecs) or (ids < 0).any():
            raise VectorIndexError(f"need one non-negative id per vector ({len(ids)} ids, {len(vecs)} vectors)")
        _, last = np.unique(ids[::-1], return_index=True)
        if len(last) < len(ids):  # a repeated id keeps its last vector
            keep = np.sort(len(ids) - 1 - last)
            ids, vecs = ids[keep], vecs[keep]
        pos = np.fromiter((self._pos.get(i, -1) for i in ids.tolist()), np.int64, len(ids))
        old = pos >= 0
        self._vecs[pos[old]] = vecs[old]
        if n_new := int((~old).sum()):
            self._reserve(self._n + n_new)
            end = self._n + n_new
            self._ids[self._n:end], self._vecs[self._n:end] = ids[~old], vecs[~old]
            self._pos.update(zip(ids[~old].tolist(), range(self._n, end)))
            self._n = end
        if self._hnsw is not None:
            if old.any():  # usearch refuses duplicate keys: drop the old vector first
                self._hnsw.remove(ids[old])
            self._hnsw.add(ids, vecs, threads=0)
        elif self._n >= self.hnsw_threshold:
            self._build_hnsw()

    def remove(self, ids: np.ndarray | list[int]) -> None:
        """Drop these ids (unknown ids are ignored); the last rows move into the holes."""
        wanted = np.asarray(ids, dtype=np.int64).reshape(-1).tolist()
        pos = np.array(sorted({self._pos.pop(i) for i in wanted if i in self._pos}), dtype=np.int64)
        if not len(pos):
            return
        gone = self._ids[pos].copy()
        m = self._n - len(pos)
        holes, tail = pos[pos < m], np.arange(m, self._n)
        movers = tail[~np.isin(tail, pos)]  # as many as there are holes
        self._ids[holes], self._vecs[holes] = self._ids[movers], self._vecs[movers]
        self._pos.update(zip(self._ids[holes].tolist(), holes.tolist()))
        self._n = m
        if self._hnsw is not None:
            self._hnsw.remove(gone)

    def _reserve(self, need: int) -> None:
        if need <= len(self._ids):
            return
        cap = max(need, len(self._ids) * 5 // 4, 1024)  # grow by 25%: bounded slack for a 1M x 384 index
        ids, vecs = np.empty(cap, np.int64), np.empty((cap, self.dim), np.float32)
        ids[:self._n], vecs[:self._n] = self._ids[:self._n], self._vecs[:self._n]
        self._ids, self._vecs = ids, vecs

    def _build_hnsw(self) -> None:
        from usearch.index import Index

        self._hnsw = Index(ndim=self.dim, metric="cos", dtype="f16", **self.params)
        if self._n:  # one batch add on all cores (threads=0)
            self._hnsw.add(self._ids[:self._n], self._vecs[:self._n], threads=0)

    def vector(self, paper_id: int) -> np.ndarray | None:
        pos = self._pos.get(int(paper_id))
        return None if pos is None else self._vecs[pos].copy()

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, normalized vectors) of every stored paper: read-only views, valid until the next update."""
        ids, vecs = self._ids[:self._n], self._vecs[:self._n]
        ids.flags.writeable = vecs.flags.writeable = False
        return ids, vecs

    def search_many(self, queries: np.ndarray, k: int, exact: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(n, k) ids (-1 padded) and cosine scores (-inf padded), best first. ``exact=None``: exact
        below ``hnsw_threshold``, else HNSW (exact anyway while there is no graph yet)."""
        q = _normalize(np.atleast_2d(queries), self.dim)
        k = max(int(k), 0)
        ids, scores = np.full((len(q), k), -1, np.int64), np.full((len(q), k), -np.inf, np.float32)
        kk = min(k, self._n)
        if kk and len(q):
            if exact is None:  # asking for (nearly) everything: a graph walk may miss some
                exact = self._n < self.hnsw_threshold or kk * 2 >= self._n
            (self._exact if exact or self._hnsw is None else self._approx)(q, kk, ids, scores)
        return ids, scores

    def _exact(self, q: np.ndarray, kk: int, ids: np.ndarray, scores: np.ndarray) -> None:
        vecs = self._vecs[:self._n]
        step = max(1, _SCORE_BLOCK // self._n)
        for s in range(0, len(q), step):
            sims = q[s:s + step] @ vecs.T
            top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
            top_s = np.take_along_axis(sims, top, 1)
            order = np.argsort(-top_s, axis=1, kind="stable")
            ids[s:s + step, :kk] = self._ids[np.take_along_axis(top, order, 1)]
            scores[s:s + step, :kk] = np.take_along_axis(top_s, order, 1)

    def _approx(self, q: np.ndarray, kk: int, ids: np.ndarray, scores: np.ndarray) -> None:
        m = self._hnsw.search(q, kk, threads=0)
        keys = np.asarray(m.keys).astype(np.int64)
        if keys.ndim == 1:  # one query: usearch answers Matches, trimmed to the hits found
            keys, counts = keys[None, :], np.array([keys.size])
        else:  # BatchMatches pad with key 0: only the first counts[i] are hits
            counts = np.asarray(m.counts)
        pos = np.array([self._pos.get(i, -1) for i in keys.ravel().tolist()], np.int64).reshape(keys.shape)
        valid = (np.arange(keys.shape[1]) < counts[:, None]) & (pos >= 0)
        sims = np.einsum("nd,nkd->nk", q, self._vecs[np.maximum(pos, 0)])  # exact f32 scores for f16 picks
        sims = np.where(valid, sims, -np.inf).astype(np.float32)
        order, w = np.argsort(-sims, axis=1, kind="stable"), keys.shape[1]
        ids[:, :w] = np.take_along_axis(np.where(valid, keys, -1), order, 1)
        scores[:, :w] = np.take_along_axis(sims, order, 1)

    def search(self, query: np.ndarray, k: int, *, exact: bool | None = None,
               exclude: set[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Ids and cosine scores of the k nearest vectors to one query, best first, minus ``exclude``."""
        extra = sum(1 for i in exclude if int(i) in self._pos) if exclude else 0
        ids, scores = self.search_many(np.asarray(query, np.float32).reshape(1, -1), k + extra, exact)
        keep = ids[0] >= 0
        if extra:
            keep &= ~np.isin(ids[0], np.fromiter(exclude, np.int64, len(exclude)))  # type: ignore[arg-type]
        return ids[0][keep][:k], scores[0][keep][:k]

    @staticmethod
    def exists(directory: Path) -> bool:
        return (Path(directory) / SIDECAR).is_file()

    def save(self, directory: Path) -> None:
        """Write a new generation of files, then the sidecar naming it; then delete older generations."""
        graph = {"hnsw": ("usearch", lambda p: self._hnsw.save(str(p)))} if self._hnsw is not None else {}
        meta = {"model_id": self.model_id, "dim": self.dim, "count": self._n, "metric": "cos",
                "hnsw": self._hnsw is not None, "hnsw_dtype": "f16", "hnsw_threshold": self.hnsw_threshold,
                **self.params, "synced": self.synced}
        save_generation(Path(directory), SIDECAR, {"ids": self._ids[:self._n], "vectors": self._vecs[:self._n]},
                        meta, files=graph)

    @classmethod
    def load(cls, directory: Path, model_id: str, *, dim: int | None = None,
             hnsw_threshold: int | None = None) -> "VectorIndex":
        """Load the saved index of ``model_id``; VectorIndexMissing (a FileNotFoundError) if none is saved."""
        d = Path(directory)

        def check(meta: dict[str, Any]) -> None:  # before reading the arrays: they may be large
            if meta.get("model_id") != model_id:
                raise VectorIndexError(f"index holds vectors of model {meta.get('model_id')}, "
                                       f"not {model_id}: {REBUILD}")
            if dim is not None and (saved := _sidecar_params(d, meta)["dim"]) != dim:
                raise VectorIndexError(f"index holds {saved}-dimensional vectors, not {dim}: {REBUILD}")

        try:
            arrays, meta = load_generation(d, SIDECAR, _SPEC, check=check)
        except GenerationMissing as e:
            raise VectorIndexMissing(f"no vector index in {d}") from e
        except GenerationError as e:
            raise _damaged(d, e) from e
        ids, vecs, params = arrays["ids"], arrays["vectors"], _sidecar_params(d, meta)
        n = len(ids)
        if n and not _unit_rows(vecs):  # NaN, infinity, zeros or garbage pass every shape check
            raise _damaged(d, "vectors that are not finite unit vectors")
        if hnsw_threshold is not None:
            params["hnsw_threshold"] = hnsw_threshold
        vi = cls(model_id, **params)
        vi._ids, vi._vecs, vi._n, vi.synced = ids, vecs, n, int(meta.get("synced", 0))
        vi._pos = dict(zip(ids.tolist(), range(n)))
        if len(vi._pos) != n:
            raise _damaged(d, "repeated ids")
        if meta.get("hnsw"):
            vi._hnsw = vi._restore_hnsw(d, meta["files"].get("hnsw"))
        if vi._hnsw is None and n >= vi.hnsw_threshold:
            vi._build_hnsw()
        return vi

    def _restore_hnsw(self, d: Path, name: str | None) -> Any:
        """usearch's saved graph, or None (logged) if missing or not matching the arrays."""
        from usearch.index import Index

        try:
            index = Index.restore(str(d / name)) if name else None  # None for a missing file
            why = ("file missing" if index is None
                   else f"{len(index)} x {index.ndim} vectors" if (len(index), index.ndim) != (self._n, self.dim)
                   else "ids differ" if not np.all(index.contains(self._ids[:self._n])) else "")
        except Exception as e:  # usearch raises plain exceptions (ValueError, RuntimeError) for a damaged file
            index, why = None, f"unreadable: {e}"
        if why:
            log.warning("HNSW graph %s in %s not usable (%s): rebuilding it from the arrays", name, d, why)
            return None
        index.expansion_search = self.params["expansion_search"]  # a search-time knob: not always in the file
        return index
