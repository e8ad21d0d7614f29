"""Embeddings: vectors per (paper, model), computed only for new or changed text."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..store import Store
from .base import Embedder, content_hash, length_batches, paper_text

__all__ = ["BACKENDS", "Chunk", "Embedder", "content_hash", "length_batches", "make_embedder", "paper_text",
           "embed_pending", "plan_chunk"]

BACKENDS = ("torch", "onnx-fp32", "onnx-int8")


def make_embedder(settings: Mapping[str, Any]) -> Embedder:
    """The embedder ``embed_backend`` names: sentence-transformers on torch, or the bundled model on
    ONNX Runtime (its file exported once into ``<home>/models``). Each has its own model id."""
    backend = settings.get("embed_backend", "torch")
    if backend not in BACKENDS:
        raise ConfigError(f"embed_backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend == "torch":
        from .sbert import SbertEmbedder

        return SbertEmbedder(settings["embed_model"], settings["embed_device"])
    from .onnx import OnnxEmbedder

    return OnnxEmbedder(settings["embed_model"], backend.split("-", 1)[1], models_dir=Path(settings["home"]) / "models")


@dataclass
class Chunk:
    """What one chunk of changed papers needs: ``todo`` papers whose stored vector is missing or for
    other text (with their hashes), ``known`` vectors already stored for some of those hashes, and
    ``new`` hashes (first seen order) whose ``texts`` need the model."""

    todo: list[tuple[int, str]]
    known: dict[str, bytes]
    new: list[str]
    texts: dict[str, str]

    @property
    def reused(self) -> int:
        fresh = set(self.new)
        return sum(h not in fresh for _, h in self.todo)


def plan_chunk(store: Store, model: str, papers: list[dict], skip: set[str] | frozenset[str] = frozenset()) -> Chunk:
    """Hash a chunk's texts and find what the model must embed (``skip``: hashes being embedded
    already, by an earlier chunk not committed yet)."""
    texts = {p["id"]: paper_text(p["title"], p["abstract"]) for p in papers}
    hashes = {pid: content_hash(t) for pid, t in texts.items()}
    stored = store.embedding_hashes(model, list(texts))
    todo = [(pid, hashes[pid]) for pid in texts if stored.get(pid) != hashes[pid]]
    known = store.vectors_by_hash(model, [h for _, h in todo])
    new = list(dict.fromkeys(h for _, h in todo if h not in known and h not in skip))
    fresh = set(new)
    return Chunk(todo, known, new, {h: texts[pid] for pid, h in todo if h in fresh})


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
        c = plan_chunk(store, model, papers)
        if c.new:
            vecs = embedder.encode([c.texts[h] for h in c.new], batch_size=batch_size, progress=progress)
            c.known.update({h: v.astype(np.float32).tobytes() for h, v in zip(c.new, vecs)})
        rev = papers[-1]["rev"]
        store.put_embeddings(model, [(pid, h, c.known[h]) for pid, h in c.todo], cursor=(name, {"rev": rev}))
        counts["seen"] += len(papers)
        counts["embedded"] += len(c.new)
        counts["reused"] += c.reused
        counts["unchanged"] += len(papers) - len(c.todo)
    return counts
