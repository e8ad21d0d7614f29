"""The vector index's HNSW graph (usearch), keyed by paper id. A saved graph is opened as a
read-only memory-mapped view: a serving process holds only the pages its searches touch, not the
graph (160 MB at 300,000 papers, ~1.4 GB at 2.7M). A view cannot change, so vectors added after
it was opened go to a small graph of their own, searched beside it; a removed or replaced paper's
old entry stays in the view, and the caller drops it (its row is gone or re-scored from the new
vector; a paper found in both is one hit). Saving writes one whole graph again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Maker = Callable[[], Any]  # a new empty usearch Index of the right kind


def _keys(m: Any) -> tuple[np.ndarray, np.ndarray]:
    """usearch matches as (keys, one row per query; hits per row)."""
    keys = np.asarray(m.keys).astype(np.int64)
    if keys.ndim == 1:  # one query: usearch answers Matches, trimmed to the hits found
        return keys[None, :], np.array([keys.size])
    return keys, np.asarray(m.counts)  # BatchMatches pad with key 0: only the first counts[i] are hits


class Graph:
    """``base`` (a usearch Index, or a view of a saved one), plus ``delta`` for a view's additions."""

    def __init__(self, base: Any, make: Maker, view_of: Path | None = None) -> None:
        self.base, self.make, self.view_of = base, make, view_of
        self.delta: Any = None
        self.outdated: set[int] = set()  # ids whose entry in the view is removed or replaced

    @classmethod
    def open(cls, path: Path, make: Maker) -> Graph | None:
        """The saved graph as a view (None if the file is missing); usearch's exceptions pass through."""
        from usearch.index import Index

        base = Index.restore(str(path), view=True)
        return None if base is None else cls(base, make, path)

    def __len__(self) -> int:
        return len(self.base) + (len(self.delta) if self.delta is not None else 0)

    @property
    def ndim(self) -> int:
        return int(self.base.ndim)

    def contains(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(self.base.contains(ids), bool)

    @property
    def expansion_search(self) -> int:
        return int(self.base.expansion_search)

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        for g in (self.base, self.delta):
            if g is not None:
                g.expansion_search = value

    def add(self, ids: np.ndarray, vecs: np.ndarray, replaced: np.ndarray) -> None:
        """Add these vectors; ``replaced``: which ids had a vector already (usearch refuses a key twice)."""
        if self.view_of is None:
            if replaced.any():
                self.base.remove(ids[replaced])
            self.base.add(ids, vecs, threads=0)
            return
        if self.delta is None:
            self.delta = self.make()
            self.delta.expansion_search = self.base.expansion_search
        again = np.asarray(self.delta.contains(ids), bool)
        if again.any():
            self.delta.remove(ids[again])
        self._outdate(ids[replaced])
        self.delta.add(ids, vecs, threads=0)

    def remove(self, ids: np.ndarray) -> None:
        if self.view_of is None:
            self.base.remove(ids)
            return
        if self.delta is not None and (here := np.asarray(self.delta.contains(ids), bool)).any():
            self.delta.remove(ids[here])
        self._outdate(ids)

    def _outdate(self, ids: np.ndarray) -> None:
        if len(ids):
            self.outdated.update(int(i) for i in ids[self.contains(ids)])

    def search(self, q: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(keys, valid) of up to ``count`` nearest per query from the graph and its additions; the
        same id found in both is valid once."""
        keys, counts = _keys(self.base.search(q, min(count, len(self.base)), threads=0))
        valid = np.arange(keys.shape[1]) < counts[:, None]
        if self.delta is None or not len(self.delta):
            return keys, valid
        more, n = _keys(self.delta.search(q, min(count, len(self.delta)), threads=0))
        keys = np.concatenate([keys, more], axis=1)
        valid = np.concatenate([valid, np.arange(more.shape[1]) < n[:, None]], axis=1)
        hits = np.where(valid, keys, -1)
        order = np.argsort(hits, axis=1, kind="stable")
        ordered = np.take_along_axis(hits, order, 1)
        repeat = np.zeros_like(valid)  # in id order: the same id as its left neighbour
        repeat[:, 1:] = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)
        dup = np.zeros_like(valid)
        np.put_along_axis(dup, order, repeat, 1)
        return keys, valid & ~dup

    def save(self, path: Path, vectors_of: Callable[[np.ndarray], np.ndarray], rebuild: Callable[[], Any]) -> None:
        """One whole graph at ``path``; ``vectors_of`` (ids -> f32 rows) gives a view's additions,
        ``rebuild`` a whole new graph when the viewed file is gone (another worker's save swept it)."""
        from usearch.index import Index

        if self.view_of is None or (self.delta is None and not self.outdated):
            self.base.save(str(path))
            return
        try:
            full = Index.restore(str(self.view_of))  # read whole: a view cannot change
        except Exception:  # noqa: BLE001 - usearch raises plain exceptions for an unreadable file
            full = None
        if full is None:
            rebuild().save(str(path))
            return
        if self.outdated:
            full.remove(np.fromiter(self.outdated, np.int64, len(self.outdated)))
        if self.delta is not None and len(self.delta):
            ids = np.asarray(self.delta.keys, np.int64)
            full.add(ids, vectors_of(ids), threads=0)
        full.save(str(path))
