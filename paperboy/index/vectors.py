"""Vector index: exact search below a size threshold, HNSW (usearch) above it.

Derived data, rebuilt from the store at will. Saved as plain arrays (``ids-G.npy``, ``vectors-G.npy``),
usearch's own graph file (``hnsw-G.usearch``) and, last, a JSON sidecar naming generation G's files:
a crash mid-save leaves the previous sidecar and its files intact. One writer per directory. The
sidecar records the model id, so vectors of two models never mix ("Stationary Representations ...
Model Replacements").

Compact, for all of arXiv on one machine (2.7M x 384 floats are 4.1 GB as f32):
- the vectors are kept as f16 (half of f32; exact search over them finds the same top 10 as over
  f32 in 99.97% of places, measured on 38,858 real papers), saved with spare rows and memory-mapped
  copy-on-write when loaded, so a serving process holds only the pages it touches and appends new
  vectors in place;
- the graph stores int8 (a quarter of f32; builds 4x faster than f16). Its picks are over-fetched 2x
  and re-scored exactly with the f16 rows: recall@10 against exact f32 search 0.997 on those papers
  ("Experimental Analysis of Large-scale Learnable Vector Storage Compression");
- paper id -> row is two sorted arrays (16 B a paper) instead of a dict (about 100 B a paper).
"""

from __future__ import annotations

import logging
import mmap
import os  # noqa: F401 - unused here; tests/test_vectors.py patches vectors.os.replace to crash a save
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PaperboyError
from .generations import GenerationError, GenerationMissing, load_generation, read_sidecar, save_generation
from .graph import Graph

log = logging.getLogger(__name__)
SIDECAR = "index.json"
DTYPE = np.float16  # how the vectors are kept; every product converts a block to f32 first (numpy has no f16 BLAS)
GRAPH_DTYPE = "i8"
OVERFETCH = 2  # graph picks per wanted neighbour, re-scored exactly
_SPEC = {"ids": (np.int64, ("count",)), "vectors": (DTYPE, ("capacity", "dim"))}  # str dims: the sidecar's
_SPEC_F32 = {"ids": (np.int64, ("count",)), "vectors": (np.float32, ("count", "dim"))}  # saved before f16
_PARAMS = ("connectivity", "expansion_add", "expansion_search")
REBUILD = "rebuild with paperboy embed --rebuild"  # derived data: the store holds every vector
_SCORE_BLOCK = 1 << 24  # floats in one exact-search score block (64 MiB), whatever the corpus size
_ROW_BLOCK = 1 << 15  # f16 rows converted to f32 at a time (48 MiB at 384 dimensions)
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


def f32_blocks(vecs: np.ndarray, block: int = _ROW_BLOCK):
    """(start, rows as f32) over ``vecs`` in blocks: products over f16 rows without a full f32 copy."""
    for s in range(0, len(vecs), block):
        yield s, np.asarray(vecs[s:s + block], np.float32)


def _unit_rows(vecs: np.ndarray) -> bool:
    """Every row finite with length 1 (checked in blocks: no full-size temporary)."""
    for _, b in f32_blocks(vecs):
        sq = np.einsum("ij,ij->i", b, b)
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


class IdRows:
    """paper id -> row as two arrays sorted by id: 16 bytes a paper, where a dict of Python ints
    costs about 100 (266 MB at 2.7M papers, measured). The pair is replaced as one tuple and read
    once per lookup: request threads look up while the follower upserts."""

    def __init__(self, keys: np.ndarray | None = None, rows: np.ndarray | None = None) -> None:
        self.kr = (np.empty(0, np.int64) if keys is None else keys, np.empty(0, np.int64) if rows is None else rows)

    @property
    def keys(self) -> np.ndarray:
        return self.kr[0]

    def __len__(self) -> int:
        return len(self.kr[0])

    def get(self, ids: np.ndarray) -> np.ndarray:
        """The row of each id, -1 where unknown."""
        keys, rows = self.kr
        ids = np.asarray(ids, np.int64)
        if not len(keys):
            return np.full(ids.shape, -1, np.int64)
        at = np.minimum(np.searchsorted(keys, ids), len(keys) - 1)
        return np.where(keys[at] == ids, rows[at], -1)

    def set(self, ids: np.ndarray, rows: np.ndarray) -> None:
        """Point unique ``ids`` at ``rows`` (known ids move, new ones are inserted)."""
        ids, rows = np.asarray(ids, np.int64), np.asarray(rows, np.int64)
        if not len(ids):
            return
        keys, old = self.kr
        at = np.searchsorted(keys, ids)
        known = at < len(keys)
        known[known] = keys[at[known]] == ids[known]
        old = old.copy()
        old[at[known]] = rows[known]
        if (~known).any():
            order = np.argsort(ids[~known], kind="stable")
            new, new_rows = ids[~known][order], rows[~known][order]
            where = np.searchsorted(keys, new)
            keys, old = np.insert(keys, where, new), np.insert(old, where, new_rows)
        self.kr = (keys, old)

    def drop(self, ids: np.ndarray) -> None:
        keys, rows = self.kr
        at = np.searchsorted(keys, ids)
        ok = at < len(keys)
        ok[ok] = keys[at[ok]] == ids[ok]
        self.kr = (np.delete(keys, at[ok]), np.delete(rows, at[ok]))

    @classmethod
    def of(cls, ids: np.ndarray, rows: np.ndarray | None = None) -> "IdRows":
        """Each of ``ids`` at its ``rows`` (default: its position)."""
        order = np.argsort(ids, kind="stable").astype(np.int64)
        return cls(np.asarray(ids, np.int64)[order], order if rows is None else np.asarray(rows, np.int64)[order])


class VectorIndex:
    """Cosine-similarity search over the paper vectors of one model."""

    def __init__(self, model_id: str, dim: int, *, hnsw_threshold: int = 20_000, connectivity: int = 16,
                 expansion_add: int = 128, expansion_search: int = 128) -> None:
        self.model_id, self.dim, self.hnsw_threshold = model_id, int(dim), int(hnsw_threshold)
        self.params = dict(zip(_PARAMS, (connectivity, expansion_add, expansion_search)))
        self.synced = 0  # the caller's change counter, saved in the sidecar
        self.rebuilt = False  # loaded from an older format or with its graph rebuilt: worth saving
        self._n = 0  # rows 0.._n of the buffers are live; spare capacity makes appends amortized O(1)
        self._ids, self._vecs = np.empty(0, np.int64), np.empty((0, self.dim), DTYPE)
        self._rows = IdRows()  # paper id -> row
        self._f32: np.ndarray | None = None  # an f32 copy while small enough to search exactly (see _dense)
        self._writes = 0  # bumped before and after every change: a copy made across one is not kept
        self._hnsw: Graph | None = None  # the HNSW graph (graph.py), once len >= hnsw_threshold

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
        pos = self._rows.get(ids)
        old = pos >= 0
        self._writes += 1
        self._f32 = None
        self._vecs[pos[old]] = vecs[old]
        if n_new := int((~old).sum()):
            self._reserve(self._n + n_new)
            end = self._n + n_new
            self._ids[self._n:end], self._vecs[self._n:end] = ids[~old], vecs[~old]
            self._rows.set(ids[~old], np.arange(self._n, end))
            self._n = end
        self._writes += 1
        if self._hnsw is not None:
            self._hnsw.add(ids, vecs, old)
        elif self._n >= self.hnsw_threshold:
            self._build_hnsw()

    def remove(self, ids: np.ndarray | list[int]) -> None:
        """Drop these ids (unknown ids are ignored); the last rows move into the holes."""
        wanted = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
        pos = np.sort(self._rows.get(wanted))
        pos = pos[pos >= 0]
        if not len(pos):
            return
        gone = self._ids[pos].copy()
        self._writes += 1
        self._f32 = None
        self._rows.drop(gone)
        m = self._n - len(pos)
        holes, tail = pos[pos < m], np.arange(m, self._n)
        movers = tail[~np.isin(tail, pos)]  # as many as there are holes
        self._ids[holes], self._vecs[holes] = self._ids[movers], self._vecs[movers]
        self._rows.set(self._ids[holes], holes)
        self._n = m
        self._writes += 1
        if self._hnsw is not None:
            self._hnsw.remove(gone)

    def _reserve(self, need: int) -> None:
        if need <= len(self._ids) and need <= len(self._vecs):
            return
        cap = max(need, len(self._ids) * 5 // 4, 1024)  # grow by 25%: bounded slack for a 1M x 384 index
        ids, vecs = np.zeros(cap, np.int64), np.zeros((cap, self.dim), DTYPE)  # calloc: untouched rows cost nothing
        ids[:self._n], vecs[:self._n] = self._ids[:self._n], self._vecs[:self._n]
        self._ids, self._vecs = ids, vecs

    def _new_graph(self) -> Any:
        from usearch.index import Index

        return Index(ndim=self.dim, metric="cos", dtype=GRAPH_DTYPE, **self.params)

    def _whole_graph(self) -> Any:
        """A new graph of every row."""
        graph = self._new_graph()
        for s, b in f32_blocks(self._vecs[:self._n], 1 << 17):  # batch adds on all cores (threads=0)
            graph.add(self._ids[s:s + len(b)], b, threads=0)
        return graph

    def _build_hnsw(self) -> None:
        self._hnsw = Graph(self._whole_graph(), self._new_graph)

    def release(self) -> None:
        """After a pass over every row (hub scores, a background sample): the rows read from the
        memory-mapped file leave the resident set again; what this process changed stays."""
        _advise(self._vecs, MADV_PAGEOUT)

    def vector(self, paper_id: int) -> np.ndarray | None:
        """The paper's unit vector as f32, None if it has none."""
        pos = int(self._rows.get(np.array([int(paper_id)]))[0])
        return None if pos < 0 else self._vecs[pos].astype(np.float32)

    def vectors(self, paper_ids: np.ndarray | list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(which of ``paper_ids`` have a vector, as a bool mask; their unit vectors as f32, in the
        order given): one lookup for many papers, where ``vector`` per paper costs a call each."""
        pos = self._rows.get(np.asarray(paper_ids, np.int64).reshape(-1))
        return pos >= 0, self._vecs[pos[pos >= 0]].astype(np.float32)

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, unit vectors) of every stored paper: read-only views, valid until the next update.
        The vectors are f16 (``DTYPE``): convert the rows a product needs, or use ``f32_blocks``."""
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

    def _dense(self) -> np.ndarray | None:
        """All vectors as f32, kept while the index is below the HNSW threshold (30 MB at 20,000
        papers): converting f16 costs more than the product itself, at every query."""
        if self._n > self.hnsw_threshold:
            return None
        dense = self._f32
        if dense is None:
            before = self._writes
            dense = self._vecs[:self._n].astype(np.float32)
            if self._writes == before and before % 2 == 0:  # no change began or ended meanwhile
                self._f32 = dense
        return dense

    def _exact(self, q: np.ndarray, kk: int, ids: np.ndarray, scores: np.ndarray) -> None:
        """Blocks of queries against blocks of rows, keeping each query's best ``kk`` so far."""
        dense = self._dense()
        rows = self._n if dense is not None else min(self._n, _ROW_BLOCK)
        step = max(1, _SCORE_BLOCK // rows)
        for s in range(0, len(q), step):
            qb = q[s:s + step]
            best_s = np.full((len(qb), 0), -np.inf, np.float32)
            best_r = np.zeros((len(qb), 0), np.int64)
            blocks = [(0, dense)] if dense is not None else f32_blocks(self._vecs[:self._n], rows)
            for start, block in blocks:
                sims = np.concatenate([best_s, qb @ block.T], axis=1)
                cand = np.concatenate([best_r, np.broadcast_to(np.arange(start, start + len(block)),
                                                               (len(qb), len(block)))], axis=1)
                if sims.shape[1] > kk:
                    top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
                    sims, cand = np.take_along_axis(sims, top, 1), np.take_along_axis(cand, top, 1)
                best_s, best_r = sims, cand
            # ties broken by row, as one stable sort over the whole corpus would
            order = np.lexsort((best_r, -best_s), axis=1)
            ids[s:s + step, :kk] = self._ids[np.take_along_axis(best_r, order, 1)]
            scores[s:s + step, :kk] = np.minimum(np.take_along_axis(best_s, order, 1), 1.0)  # see _approx

    def _approx(self, q: np.ndarray, kk: int, ids: np.ndarray, scores: np.ndarray) -> None:
        assert self._hnsw is not None
        keys, found = self._hnsw.search(q, min(self._n, kk * OVERFETCH))
        pos = self._rows.get(keys)
        valid = found & (pos >= 0)  # a removed paper's entry may stay in a memory-mapped graph
        picked = self._vecs[np.maximum(pos, 0)].astype(np.float32)  # exact scores for the int8 picks
        sims = np.where(valid, np.einsum("nd,nkd->nk", q, picked), -np.inf).astype(np.float32)
        order = np.argsort(-sims, axis=1, kind="stable")[:, :kk]
        w = order.shape[1]
        ids[:, :w] = np.take_along_axis(np.where(valid, keys, -1), order, 1)
        # an f16 row's length is 1 only within 2.5e-4: a paper's cosine to itself or to its exact copy
        # may come out at 1.0002; a cosine is at most 1
        scores[:, :w] = np.minimum(np.take_along_axis(sims, order, 1), 1.0)

    def search(self, query: np.ndarray, k: int, *, exact: bool | None = None,
               exclude: set[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Ids and cosine scores of the k nearest vectors to one query, best first, minus ``exclude``."""
        ex = np.fromiter(exclude, np.int64, len(exclude)) if exclude else np.empty(0, np.int64)
        extra = int((self._rows.get(ex) >= 0).sum()) if len(ex) else 0
        ids, scores = self.search_many(np.asarray(query, np.float32).reshape(1, -1), k + extra, exact)
        keep = ids[0] >= 0
        if extra:
            keep &= ~np.isin(ids[0], ex)
        return ids[0][keep][:k], scores[0][keep][:k]

    @staticmethod
    def exists(directory: Path) -> bool:
        return (Path(directory) / SIDECAR).is_file()

    def save(self, directory: Path) -> None:
        """Write a new generation of files, then the sidecar naming it; then delete older generations.
        The vectors file has spare zero rows (an eighth more, at least 1024; sparse on disk), so the
        process that maps it can append that many before it needs a copy in memory."""
        cap = self._n + max(1024, self._n // 8)

        def write_vectors(path: Path) -> None:
            out = np.lib.format.open_memmap(path, mode="w+", dtype=DTYPE, shape=(cap, self.dim))
            for s in range(0, self._n, _ROW_BLOCK):
                out[s:min(s + _ROW_BLOCK, self._n)] = self._vecs[s:min(s + _ROW_BLOCK, self._n)]
            out.flush()
            del out

        def vectors_of(ids: np.ndarray) -> np.ndarray:
            return self._vecs[self._rows.get(ids)].astype(np.float32)

        graph = self._hnsw
        files = {"vectors": ("npy", write_vectors)}
        if graph is not None:
            files["hnsw"] = ("usearch", lambda p: graph.save(p, vectors_of, self._whole_graph))
        meta = {"model_id": self.model_id, "dim": self.dim, "count": self._n, "capacity": cap, "metric": "cos",
                "vector_dtype": np.dtype(DTYPE).name, "hnsw": self._hnsw is not None, "hnsw_dtype": GRAPH_DTYPE,
                "hnsw_threshold": self.hnsw_threshold, **self.params, "synced": self.synced}
        gen = save_generation(Path(directory), SIDECAR, {"ids": self._ids[:self._n]}, meta, files=files)
        if graph is not None:  # serve from the new file, mapped: the old one is swept, a built graph freed
            self._hnsw = Graph.open(Path(directory) / f"hnsw-{gen}.usearch", self._new_graph) or graph
            self._hnsw.expansion_search = self.params["expansion_search"]

    @classmethod
    def load(cls, directory: Path, model_id: str, *, dim: int | None = None, hnsw_threshold: int | None = None,
             expansion_search: int | None = None) -> "VectorIndex":
        """Load the saved index of ``model_id``; VectorIndexMissing (a FileNotFoundError) if none is saved.
        The vectors are memory-mapped copy-on-write; an index saved as f32 (before f16) is read and
        converted, and its graph rebuilt."""
        d = Path(directory)
        arrays, meta, legacy = _read(d, model_id, dim)
        ids, vecs, params = arrays["ids"], arrays["vectors"], _sidecar_params(d, meta)
        n = len(ids)
        if n and not _unit_rows(vecs[:n]):  # NaN, infinity, zeros or garbage pass every shape check
            raise _damaged(d, "vectors that are not finite unit vectors")
        if legacy:
            vecs = vecs.astype(DTYPE)
        else:
            _advise(vecs, mmap.MADV_DONTNEED)  # a mapped index holds only what searches touch
        if hnsw_threshold is not None:
            params["hnsw_threshold"] = hnsw_threshold
        if expansion_search is not None:  # a search-time knob: the saved graph takes it
            params["expansion_search"] = expansion_search
        vi = cls(model_id, **params)
        vi._ids = np.zeros(len(vecs), np.int64)
        vi._ids[:n] = ids
        vi._vecs, vi._n, vi.synced = vecs, n, int(meta.get("synced", 0))
        vi._rows = IdRows.of(ids)
        if n > 1 and (vi._rows.keys[1:] == vi._rows.keys[:-1]).any():
            raise _damaged(d, "repeated ids")
        if meta.get("hnsw") and meta.get("hnsw_dtype") == GRAPH_DTYPE:
            vi._hnsw = vi._restore_hnsw(d, meta["files"].get("hnsw"))
        if vi._hnsw is None and n >= vi.hnsw_threshold:
            vi._build_hnsw()
            vi.rebuilt = True
        vi.rebuilt |= legacy
        return vi

    def _restore_hnsw(self, d: Path, name: str | None) -> Any:
        """usearch's saved graph, memory-mapped (``graph.py``), or None (logged) if missing or not
        matching the arrays."""
        try:
            index = Graph.open(d / name, self._new_graph) if name else None  # None for a missing file
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


class _FormatChanged(GenerationError):
    """Another process saved the index in the new format between our two reads of the sidecar."""


def _read(d: Path, model_id: str, dim: int | None) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """(arrays, sidecar, saved as f32 before f16) of the saved index; the vectors memory-mapped."""
    for attempt in range(3):
        try:
            legacy = "capacity" not in read_sidecar(d, SIDECAR)
        except GenerationMissing as e:
            raise VectorIndexMissing(f"no vector index in {d}") from e
        except GenerationError as e:
            raise _damaged(d, e) from e

        def check(meta: dict[str, Any]) -> None:  # before reading the arrays: they may be large
            if meta.get("model_id") != model_id:
                raise VectorIndexError(f"index holds vectors of model {meta.get('model_id')}, "
                                       f"not {model_id}: {REBUILD}")
            if dim is not None and (saved := _sidecar_params(d, meta)["dim"]) != dim:
                raise VectorIndexError(f"index holds {saved}-dimensional vectors, not {dim}: {REBUILD}")
            if ("capacity" not in meta) != legacy:
                raise _FormatChanged("saved again while loading")
            if not legacy and not 0 <= meta.get("count", -1) <= meta.get("capacity", -1):
                raise GenerationError("count beyond capacity")

        try:
            arrays, meta = load_generation(d, SIDECAR, _SPEC_F32 if legacy else _SPEC, check=check,
                                           mmap=() if legacy else ("vectors",))
            return arrays, meta, legacy
        except _FormatChanged:  # another worker converted it meanwhile: read its save
            if attempt == 2:
                raise _damaged(d, "saved again while loading, three times") from None
        except GenerationMissing as e:
            raise VectorIndexMissing(f"no vector index in {d}") from e
        except GenerationError as e:
            raise _damaged(d, e) from e
    raise AssertionError("unreachable")


MADV_PAGEOUT = getattr(mmap, "MADV_PAGEOUT", 21 if sys.platform == "linux" else None)  # Linux 5.4+


def _advise(vecs: np.ndarray, advice: int | None) -> None:
    """madvise over a memory-mapped array (nothing for one in memory; advice only: a refusal is ignored).

    At load, DONTNEED: the pages the check read leave this process's resident set and stay in the
    page cache; nothing was changed yet. Later (``release``), PAGEOUT: clean pages (rows as saved)
    are reclaimed, dirty ones (rows changed or appended here, copy-on-write) stay, as they cannot be
    dropped without swap, where DONTNEED would throw the changes away."""
    m = getattr(vecs, "_mmap", None)
    if m is not None and hasattr(m, "madvise") and advice is not None:
        try:
            m.madvise(advice)
        except (OSError, ValueError):  # an older kernel refuses PAGEOUT
            pass
