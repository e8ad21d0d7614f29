"""Per-reader models kept between requests: trained once, used until what they were trained from changes.

A reader's models (the TF-IDF SVM, the embedding logistic regression, the clustering into interests)
depend only on their positives, negatives and interest statement and on the index rows they were
trained on. ``ModelCache`` keys each model on a digest of exactly those inputs (``reader_key``) plus
the index version, so a vote, save or dismissal makes a new key for that reader alone (their next
request trains a new model; no other reader's is touched), a changed index makes new keys for all,
and a stale model can never be found. The cache is a bounded LRU in memory: a process that restarts
trains each reader once more. Two requests of one reader at once may both train (same result).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def reader_key(kind: str, *parts: Sequence[int] | np.ndarray | str | int | None) -> tuple[str, bytes]:
    """A compact key: ``kind`` and a digest of ``parts`` (id lists in their order, an embedding,
    a version); different inputs give different keys."""
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        if p is None:
            h.update(b"N")
        elif isinstance(p, (str, int)):
            h.update(b"S" + str(p).encode() + b"\0")
        else:
            a = np.ascontiguousarray(p)
            h.update(b"A" + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return kind, h.digest()


class ModelCache:
    """A thread-safe LRU of trained models, ``size`` entries at most (0: nothing is kept)."""

    def __init__(self, size: int = 256) -> None:
        self.size = max(int(size), 0)
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable, train: Callable[[], T]) -> T:
        """The model under ``key``, trained by ``train()`` (outside the lock) when not kept."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]  # type: ignore[return-value]
            self.misses += 1
        model = train()
        if self.size:
            with self._lock:
                self._items[key] = model
                self._items.move_to_end(key)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return model

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
