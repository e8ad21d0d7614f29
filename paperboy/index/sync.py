"""Bring the vector index up to date with the embeddings in the store (a cheap delta by seq)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from ..store import Store
from .vectors import VectorIndex, VectorIndexError

log = logging.getLogger(__name__)


def vector_dir(home: Path, model_id: str) -> Path:
    return home / "index" / "vectors" / model_id.replace("/", "__")


def stored_dim(store: Store, model_id: str) -> int | None:
    """The dimension of the model's vectors in the store (one indexed row), None if it has none."""
    rows = store.embeddings_since(model_id, 0, 1)
    return len(rows[0][2]) // 4 if rows else None


def behind(store: Store, vi: VectorIndex | None, model_id: str) -> bool:
    """Whether the store holds vectors written after ``vi`` was synced (one indexed row)."""
    return bool(store.embeddings_since(model_id, vi.synced if vi is not None else 0, 1))


def apply_new(store: Store, vi: VectorIndex | None, model_id: str, hnsw_threshold: int,
              chunk: int = 50_000, expansion_search: int = 128) -> tuple[VectorIndex | None, int]:
    """Add the vectors written since ``vi.synced`` to ``vi`` in place (a new index when None);
    returns the index and how many vectors were added or replaced."""
    done = 0
    while rows := store.embeddings_since(model_id, vi.synced if vi else 0, chunk):
        dim = len(rows[0][2]) // 4
        if vi is None:
            vi = VectorIndex(model_id, dim, hnsw_threshold=hnsw_threshold, expansion_search=expansion_search)
        mat = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), dim)
        vi.upsert(np.array([r[0] for r in rows], dtype=np.int64), mat)
        vi.synced = rows[-1][1]
        done += len(rows)
    return vi, done


def sync_vectors(store: Store, directory: Path, model_id: str, hnsw_threshold: int,
                 chunk: int = 50_000, expansion_search: int = 128) -> VectorIndex | None:
    """Load the saved index, add the vectors written since it was saved, save it; None if empty.

    The index is derived data: one that is damaged, holds another model's vectors or vectors of
    another dimension than the store's is removed (one warning) and rebuilt from the stored embeddings."""
    vi = None
    if VectorIndex.exists(directory):
        try:
            vi = VectorIndex.load(directory, model_id, dim=stored_dim(store, model_id),
                                  hnsw_threshold=hnsw_threshold, expansion_search=expansion_search)
        except VectorIndexError as e:
            log.warning("rebuilding the vector index from the store: %s", e)
            shutil.rmtree(directory, ignore_errors=True)
    vi, done = apply_new(store, vi, model_id, hnsw_threshold, chunk, expansion_search)
    if vi is not None and (done or vi.rebuilt):  # a converted or re-built index is saved once, not redone per load
        vi.save(directory)
        vi.rebuilt = False
    return vi
