"""Papers, their sources, embeddings, cursors and ingest runs: the part of the Store interface that
ingest, indexing and search use. See ``base.py`` for how the parts combine."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..models import Paper, PaperRecord
from ..records import PaperText


@dataclass(slots=True)
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


class PaperStore(ABC):
    """Papers merged from every source, the change counter, vectors per (paper, model), cursors, runs."""

    # -- papers ---------------------------------------------------------------------------------

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
    def paper_page(self, after: tuple[str | None, int] | None, limit: int) -> list[Paper]:
        """All public papers (not known only from library uploads), newest first: dated ones by
        (submitted, id) descending, then undated ones by id descending. ``after`` is the
        (submitted, id) of the last paper of the previous page (None: the first page); at most
        ``limit`` papers (without their source list). Keyset paging: stable while papers are added."""

    @abstractmethod
    def paper_ids_by_source(self, source: str, source_ids: Sequence[str]) -> dict[str, int]:
        """Paper row id per source id of ``source``, for the ids that source has delivered."""

    @abstractmethod
    def votes(self, ids: Sequence[int]) -> dict[int, int]:
        """Upvotes per paper: the most any source reported (Hugging Face) plus members' votes."""

    @abstractmethod
    def source_upvotes(self, ids: Sequence[int]) -> dict[int, int]:
        """Upvotes per paper as its sources reported them (the most of any source), without members'."""

    @abstractmethod
    def max_rev(self) -> int:
        """The change counter: every insert or update of a paper takes the next value."""

    @abstractmethod
    def uploads_only(self, ids: Sequence[int]) -> set[int]:
        """Those of ``ids`` known only from members' library uploads (source ``upload``): anyone's
        metadata, kept out of public search and similar papers until another source confirms it."""

    @abstractmethod
    def own_changes(self) -> int:
        """A number that grows with every row this store object (this process's connection) wrote:
        derived indexes look again at once after a write made here, not after their throttle."""

    @abstractmethod
    def papers_since(self, rev: int, limit: int = 5000) -> list[PaperText]:
        """Papers changed after ``rev``, oldest change first: what derived indexes must (re)index."""

    # -- embeddings -----------------------------------------------------------------------------

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

    # -- cursors and runs -----------------------------------------------------------------------

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
