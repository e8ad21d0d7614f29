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


def sync_vectors(store: Store, directory: Path, model_id: str, hnsw_threshold: int,
                 chunk: int = 50_000) -> VectorIndex | None:
    """Load the saved index, add the vectors written since it was saved, save it; None if empty.

    The index is derived data: a damaged one is removed and rebuilt from the stored embeddings."""
    vi = None
    if VectorIndex.exists(directory):
        try:
            vi = VectorIndex.load(directory, model_id, hnsw_threshold=hnsw_threshold)
        except VectorIndexError as e:
            log.warning("rebuilding the vector index: %s", e)
            shutil.rmtree(directory)
    changed = False
    while rows := store.embeddings_since(model_id, vi.synced if vi else 0, chunk):
        dim = len(rows[0][2]) // 4
        if vi is None:
            vi = VectorIndex(model_id, dim, hnsw_threshold=hnsw_threshold)
        mat = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), dim)
        vi.upsert(np.array([r[0] for r in rows], dtype=np.int64), mat)
        vi.synced = rows[-1][1]
        changed = True
    if vi is not None and changed:
        vi.save(directory)
    return vi
