"""The storage interface. Everything above ``store/`` talks to this, never to SQL."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..models import Paper, PaperRecord


@dataclass(slots=True)
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


class Store(ABC):
    """A paper store. Backends: ``sqlite`` (default, one file) and, later, ``postgres``."""

    @abstractmethod
    def migrate(self) -> list[int]:
        """Apply pending schema migrations; return the versions applied."""

    @abstractmethod
    def schema_version(self) -> int:
        """The highest migration applied."""

    @abstractmethod
    def upsert_papers(self, records: Sequence[PaperRecord],
                      cursor: tuple[str, dict[str, Any]] | None = None) -> UpsertCounts:
        """Insert or merge records in one transaction, saving ``cursor`` (name, value) with them."""

    @abstractmethod
    def get_paper(self, ref: str) -> Paper | None:
        """A paper by arXiv id (any version, URL or ``arXiv:`` form), DOI, canonical id or row id."""

    @abstractmethod
    def get_papers(self, ids: Sequence[int]) -> dict[int, Paper]:
        """Papers by row id (without their source list), for rendering hits."""

    @abstractmethod
    def votes(self, ids: Sequence[int]) -> dict[int, int]:
        """Community votes per paper (for now: upvotes its sources reported, e.g. Hugging Face)."""

    @abstractmethod
    def max_rev(self) -> int:
        """The change counter: every insert or update of a paper takes the next value."""

    @abstractmethod
    def papers_since(self, rev: int, limit: int = 5000) -> list[dict[str, Any]]:
        """Papers changed after ``rev``, oldest change first: what derived indexes must (re)index."""

    @abstractmethod
    def embedding_hashes(self, model: str, ids: Sequence[int]) -> dict[int, str]:
        """Content hash of the stored vector of each paper that has one for ``model``."""

    @abstractmethod
    def vectors_by_hash(self, model: str, hashes: Sequence[str]) -> dict[str, bytes]:
        """Stored vectors (float32 bytes) whose text has one of these content hashes."""

    @abstractmethod
    def put_embeddings(self, model: str, rows: Sequence[tuple[int, str, bytes]],
                       cursor: tuple[str, dict[str, Any]] | None = None) -> None:
        """Save (paper id, content hash, float32 vector bytes) rows, each taking the next seq."""

    @abstractmethod
    def embeddings_since(self, model: str, seq: int, limit: int = 10000) -> list[tuple[int, int, bytes]]:
        """(paper id, seq, vector bytes) of vectors written after ``seq``, oldest first."""

    @abstractmethod
    def count_embeddings(self, model: str) -> int:
        """How many papers have a vector for ``model``."""

    @abstractmethod
    def get_cursor(self, name: str) -> dict[str, Any] | None:
        """A saved cursor's value (a JSON object), or None."""

    @abstractmethod
    def set_cursor(self, name: str, value: dict[str, Any]) -> None:
        """Save a cursor on its own (outside an upsert)."""

    @abstractmethod
    def start_run(self, source: str, target: str) -> int:
        """Record that an ingest or harvest started; returns the run id."""

    @abstractmethod
    def finish_run(self, run_id: int, status: str, counts: dict[str, int], errors: list[str]) -> None:
        """Record how a run ended."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """Counts for ``paperboy stats``: papers, per source, per year, per category, last runs."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
