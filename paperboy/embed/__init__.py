"""Embeddings: vectors per (paper, model), computed only for new or changed text."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..store import Store
from .base import Embedder, content_hash, paper_text

__all__ = ["Embedder", "content_hash", "paper_text", "embed_pending"]


def embed_pending(store: Store, embedder: Embedder, *, batch_size: int = 32, chunk: int = 512,
                  progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Embed every paper changed since the last run whose text has no vector yet.

    A vector already stored for the same text (same content hash) is reused instead of
    recomputed. Each chunk commits with the cursor, so an interrupted run resumes.
    """
    model = embedder.model_id
    name = f"embed:{model}"
    rev = (store.get_cursor(name) or {}).get("rev", 0)
    counts = {"seen": 0, "embedded": 0, "reused": 0, "unchanged": 0}
    while papers := store.papers_since(rev, chunk):
        texts = {p["id"]: paper_text(p["title"], p["abstract"]) for p in papers}
        hashes = {pid: content_hash(t) for pid, t in texts.items()}
        stored = store.embedding_hashes(model, list(texts))
        todo = [pid for pid in texts if stored.get(pid) != hashes[pid]]
        known = store.vectors_by_hash(model, [hashes[p] for p in todo])
        new_hashes = list(dict.fromkeys(hashes[p] for p in todo if hashes[p] not in known))
        fresh = set(new_hashes)
        by_hash = {hashes[p]: texts[p] for p in todo if hashes[p] in fresh}
        if new_hashes:
            vecs = embedder.encode([by_hash[h] for h in new_hashes], batch_size=batch_size, progress=progress)
            known.update({h: v.astype(np.float32).tobytes() for h, v in zip(new_hashes, vecs)})
        rows = [(pid, hashes[pid], known[hashes[pid]]) for pid in todo]
        rev = papers[-1]["rev"]
        store.put_embeddings(model, rows, cursor=(name, {"rev": rev}))
        counts["seen"] += len(papers)
        counts["embedded"] += len(new_hashes)
        counts["reused"] += sum(hashes[p] not in fresh for p in todo)
        counts["unchanged"] += len(papers) - len(todo)
    return counts
