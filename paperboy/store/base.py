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
