"""Vector index: exact search below a size threshold, HNSW (usearch) above it.

Derived data, saved beside the store as plain arrays (``ids.npy``, ``vectors.npy``), usearch's own
file for the graph, and a JSON sidecar written last that names the files, so a crash mid-save
leaves the previous complete index readable. The sidecar records the model id: an index refuses
to serve another model's vectors ("Stationary Representations ... Model Replacements": vectors of
two models never mix; a new model gets its own index, switched to when complete). The HNSW graph
stores f16 vectors, half the memory of f32 at no measurable recall cost ("Experimental Analysis
of Large-scale Learnable Vector Storage Compression"); exact search and re-ranking use the f32 arrays.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from ..errors import PaperboyError

SIDECAR = "index.json"


class VectorIndexError(PaperboyError):
    """The saved index is missing, damaged, or belongs to another model."""


def _normalize(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norms, 1e-12)


class VectorIndex:
    """Cosine-similarity search over paper vectors of one model."""

    def __init__(self, model_id: str, dim: int, *, hnsw_threshold: int = 20_000, connectivity: int = 16,
                 expansion_add: int = 128, expansion_search: int = 64) -> None:
        self.model_id, self.dim, self.hnsw_threshold = model_id, dim, hnsw_threshold
        self.params = {"connectivity": connectivity, "expansion_add": expansion_add,
                       "expansion_search": expansion_search}
        self.synced = 0
        self._ids = np.zeros(0, dtype=np.int64)
        self._vecs = np.zeros((0, dim), dtype=np.float32)
        self._pos: dict[int, int] = {}
        self._hnsw = None

    def __len__(self) -> int:
        return len(self._ids)

    # -- updates --------------------------------------------------------------------------------

    def upsert(self, ids: np.ndarray | list[int], vectors: np.ndarray) -> None:
        """Add vectors; an id already present has its vector replaced."""
        ids = np.asarray(ids, dtype=np.int64)
        vecs = _normalize(vectors).reshape(len(ids), self.dim)
        if len(ids) != len(np.unique(ids)):  # keep the last vector of a repeated id
            last = {int(i): n for n, i in enumerate(ids)}
            keep = np.array(sorted(last.values()))
            ids, vecs = ids[keep], vecs[keep]
        old = np.array([self._pos[int(i)] for i in ids if int(i) in self._pos], dtype=np.int64)
        new_mask = np.array([int(i) not in self._pos for i in ids], dtype=bool)
        if len(old):
            self._vecs[old] = vecs[~new_mask]
        if new_mask.any():
            start = len(self._ids)
            self._ids = np.concatenate([self._ids, ids[new_mask]])
            self._vecs = np.concatenate([self._vecs, vecs[new_mask]])
            self._pos.update({int(i): start + n for n, i in enumerate(ids[new_mask])})
        if self._hnsw is not None:
            if len(old):
                self._hnsw.remove(ids[~new_mask])
            self._hnsw.add(ids, vecs, threads=0)
        elif len(self) >= self.hnsw_threshold:
            self._build_hnsw()

    def remove(self, ids: np.ndarray | list[int]) -> None:
        drop = {int(i) for i in ids if int(i) in self._pos}
        if not drop:
            return
        keep = np.array([int(i) not in drop for i in self._ids], dtype=bool)
        self._ids, self._vecs = self._ids[keep], self._vecs[keep]
        self._pos = {int(i): n for n, i in enumerate(self._ids)}
        if self._hnsw is not None:
            self._hnsw.remove(np.array(sorted(drop), dtype=np.int64))

    def _build_hnsw(self) -> None:
        from usearch.index import Index

        self._hnsw = Index(ndim=self.dim, metric="cos", dtype="f16", **self.params)
        if len(self):
            self._hnsw.add(self._ids, self._vecs, threads=0)

    # -- queries --------------------------------------------------------------------------------

    def vector(self, paper_id: int) -> np.ndarray | None:
        pos = self._pos.get(int(paper_id))
        return None if pos is None else self._vecs[pos]

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        return self._ids, self._vecs

    def search_many(self, queries: np.ndarray, k: int, exact: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(n, k) ids (-1 padded) and cosine scores, best first."""
        q = _normalize(np.atleast_2d(queries))
        k_eff = min(k, len(self))
        ids = np.full((len(q), k), -1, dtype=np.int64)
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        if k_eff == 0:
            return ids, scores
        use_exact = exact if exact is not None else self._hnsw is None
        if use_exact or self._hnsw is None:
            for start in range(0, len(q), 256):  # bounded memory: 256 x N scores at a time
                sims = q[start:start + 256] @ self._vecs.T
                top = np.argpartition(-sims, k_eff - 1, axis=1)[:, :k_eff]
                order = np.take_along_axis(sims, top, 1).argsort(axis=1)[:, ::-1]
                top = np.take_along_axis(top, order, 1)
                ids[start:start + 256, :k_eff] = self._ids[top]
                scores[start:start + 256, :k_eff] = np.take_along_axis(sims, top, 1)
        else:
            matches = self._hnsw.search(q, k_eff, threads=0)
            keys = np.atleast_2d(matches.keys).astype(np.int64)
            found = keys.shape[1]
            ids[:, :found] = keys
            pos = np.array([[self._pos.get(int(x), 0) for x in row] for row in keys])
            sims = np.einsum("nd,nkd->nk", q, self._vecs[pos])  # exact f32 scores for the f16 graph's picks
            sims[keys < 0] = -np.inf
            order = sims.argsort(axis=1)[:, ::-1]
            ids[:, :found] = np.take_along_axis(keys, order, 1)
            scores[:, :found] = np.take_along_axis(sims, order, 1)
        return ids, scores

    def search(self, query: np.ndarray, k: int, *, exact: bool | None = None,
               exclude: set[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Ids and cosine scores of the k nearest vectors to one query, best first."""
        extra = len(exclude) if exclude else 0
        ids, scores = self.search_many(query[None, :], k + extra, exact)
        ids, scores = ids[0], scores[0]
        keep = ids >= 0
        if exclude:
            keep &= ~np.isin(ids, np.fromiter(exclude, dtype=np.int64))
        return ids[keep][:k], scores[keep][:k]

    # -- persistence ----------------------------------------------------------------------------

    @staticmethod
    def exists(directory: Path) -> bool:
        return (directory / SIDECAR).exists()

    def save(self, directory: Path) -> None:
        """Write arrays under fresh names, then the sidecar naming them (atomic replace)."""
        directory.mkdir(parents=True, exist_ok=True)
        stamp = f"{time.time_ns()}"
        files = {"ids": f"ids-{stamp}.npy", "vectors": f"vectors-{stamp}.npy"}
        np.save(directory / files["ids"], self._ids)
        np.save(directory / files["vectors"], self._vecs)
        if self._hnsw is not None:
            files["hnsw"] = f"hnsw-{stamp}.usearch"
            self._hnsw.save(str(directory / files["hnsw"]))
        for name in files.values():
            with open(directory / name, "rb") as f:
                os.fsync(f.fileno())
        meta = {"model_id": self.model_id, "dim": self.dim, "count": len(self), "metric": "cos",
                "hnsw": self._hnsw is not None, "hnsw_threshold": self.hnsw_threshold, **self.params,
                "synced": self.synced, "files": files, "saved_at": time.time()}
        old = json.loads((directory / SIDECAR).read_text()).get("files", {}) if self.exists(directory) else {}
        tmp = directory / (SIDECAR + ".tmp")
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, directory / SIDECAR)
        for name in old.values():  # the previous generation, now unreferenced
            if name not in files.values():
                (directory / name).unlink(missing_ok=True)

    @classmethod
    def load(cls, directory: Path, model_id: str) -> "VectorIndex":
        try:
            meta = json.loads((directory / SIDECAR).read_text())
        except (OSError, ValueError) as e:
            raise VectorIndexError(f"no readable vector index in {directory}: {e}") from e
        if meta["model_id"] != model_id:
            raise VectorIndexError(f"index in {directory} holds vectors of model {meta['model_id']}, "
                                   f"not {model_id}: rebuild it with paperboy embed")
        vi = cls(model_id, meta["dim"], hnsw_threshold=meta["hnsw_threshold"], connectivity=meta["connectivity"],
                 expansion_add=meta["expansion_add"], expansion_search=meta["expansion_search"])
        try:
            vi._ids = np.load(directory / meta["files"]["ids"], allow_pickle=False)
            vi._vecs = np.load(directory / meta["files"]["vectors"], allow_pickle=False)
        except (OSError, ValueError, KeyError) as e:
            raise VectorIndexError(f"vector index in {directory} is damaged ({e}): rebuild with paperboy embed") from e
        vi._pos = {int(i): n for n, i in enumerate(vi._ids)}
        vi.synced = int(meta.get("synced", 0))
        if meta.get("hnsw"):
            from usearch.index import Index

            path = directory / meta["files"].get("hnsw", "")
            try:
                vi._hnsw = Index.restore(str(path))
            except Exception:  # usearch raises plain exceptions for a damaged file: rebuild instead
                vi._hnsw = None
            if vi._hnsw is None or len(vi._hnsw) != len(vi):
                vi._build_hnsw()
        return vi
