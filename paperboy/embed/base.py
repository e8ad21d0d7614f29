"""The embedder interface, the text a paper is embedded as, and its content hash."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import numpy as np


def paper_text(title: str, abstract: str) -> str:
    """Title and abstract, one line each. The model's tokenizer truncates it at its max_seq_length
    (256 word pieces for all-MiniLM-L6-v2, about 180 words), so long abstracts lose their tail."""
    return f"{title.strip()}\n{abstract.strip()}".strip()


def content_hash(text: str) -> str:
    """Cache key of a text's vector: papers whose text did not change are never re-embedded."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:20]


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices of the texts, longest first, cut into batches of ``batch_size``: a batch is padded to
    its longest text, so texts of like length batch together (ties keep their order, so the same input
    always gives the same batches). The caller puts each batch's rows back at these indices."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    size = max(1, batch_size)
    return [order[i:i + size] for i in range(0, len(order), size)]


class Embedder(ABC):
    """Turns texts into L2-normalized float32 vectors; ``model_id`` names the vector space."""

    model_id: str
    dim: int

    @abstractmethod
    def encode(self, texts: Sequence[str], *, batch_size: int = 32,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        """(len(texts), dim) float32, rows of unit length."""

    def encode_query(self, text: str) -> np.ndarray:
        """One query vector (dim,)."""
        return self.encode([text])[0]
