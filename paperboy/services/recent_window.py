"""The newest papers by date, kept up to date cheaply: the bounded window the reader's SVM scores
besides its retrieved candidates (``services/recommend.py``), so a request never scores the corpus.

The window is read once from the store (newest first, as the paper list pages do), then follows
the store's changes: papers changed since (``papers_since``) enter when they are newer than its
oldest, and the oldest drop out. A change larger than the window itself (a bulk ingest) reads it
afresh instead.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..store import Store

CHUNK = 5000


class RecentWindow:
    """The ``size`` newest papers (by submitted date, then id) of a store."""

    def __init__(self, store: Store, size: int) -> None:
        self.store, self.size = store, max(int(size), 0)
        self.rev = -1
        self.version = 0  # bumped whenever the window's papers change
        self._dates: dict[int, str] = {}
        self._ids = np.zeros(0, np.int64)
        self._lock = threading.Lock()

    def current(self) -> tuple[int, np.ndarray]:
        """(version, ids newest first) as of the store now."""
        rev = self.store.max_rev()
        if rev == self.rev or not self.size:
            return self.version, self._ids
        with self._lock:
            if rev != self.rev:
                if self.rev < 0 or not self._follow(rev):
                    self._reload()
                self.rev = rev
                self._order()
            return self.version, self._ids

    def _reload(self) -> None:
        papers = self.store.paper_page(None, self.size)
        self._dates = {p.id: p.submitted or "" for p in papers}

    def _follow(self, rev: int) -> bool:
        """Merge the papers changed since; False when there were too many (read afresh instead)."""
        since, seen = self.rev, 0
        while since < rev and (papers := self.store.papers_since(since, CHUNK)):
            seen += len(papers)
            if seen > self.size:
                return False
            oldest = min(self._dates.values(), default="") if len(self._dates) >= self.size else None
            uploads = self.store.uploads_only([int(p["id"]) for p in papers])  # as the reload's paper_page
            for p in papers:
                date = p.get("submitted") or ""
                if int(p["id"]) in uploads:
                    self._dates.pop(int(p["id"]), None)
                elif oldest is None or date >= oldest:
                    self._dates[int(p["id"])] = date
                else:
                    self._dates.pop(int(p["id"]), None)  # its date moved back out of the window
            since = papers[-1]["rev"]
        return True

    def _order(self) -> None:
        ranked = sorted(self._dates.items(), key=lambda x: (x[1], x[0]), reverse=True)[:self.size]
        self._dates = dict(ranked)
        ids = np.array([i for i, _ in ranked], np.int64)
        if not np.array_equal(ids, self._ids):
            self._ids = ids
            self.version += 1
