"""The maintenance part of the Store interface: whole tables row by row, for ``paperboy store copy``
(moving a laptop instance to a server, resumably) and ``paperboy store check`` (integrity).

Tables are named by ``TABLES``, parents before children, each with its key columns: copying in
this order satisfies every foreign key, and keyset pages (``key > after``) make a copy resumable.
Rate events and login failures (abuse-control counters of the last hours) are not copied.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("papers", ("id",)),
    ("paper_sources", ("source", "source_id")),
    ("cursors", ("name",)),
    ("ingest_runs", ("id",)),
    ("embeddings", ("model", "paper_id")),
    ("users", ("id",)),
    ("sessions", ("token_hash",)),
    ("api_tokens", ("id",)),
    ("votes", ("user_id", "paper_id")),
    ("comments", ("id",)),
    ("submissions", ("paper_id",)),
    ("saves", ("user_id", "paper_id", "folder")),
    ("feedback", ("user_id", "paper_id")),
    ("profiles", ("user_id",)),
    ("interest_prefs", ("user_id", "key")),
    ("digests", ("id",)),
    ("sent", ("user_id", "paper_id")),
    ("audit_log", ("id",)),
    ("jobs", ("id",)),
    ("follows", ("user_id", "author_key")),
)


class TableStore(ABC):
    """Raw rows of whole tables (maintenance only: the services never use these)."""

    @abstractmethod
    def table_columns(self, table: str) -> list[str]:
        """The columns of one of ``TABLES``, in schema order."""

    @abstractmethod
    def table_rows(self, table: str, after: Sequence[Any] | None, limit: int) -> list[tuple[Any, ...]]:
        """Up to ``limit`` rows (all columns, schema order) whose key is greater than ``after``, by key."""

    @abstractmethod
    def load_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                  after: Sequence[Any] | None = None) -> int:
        """Insert rows as they are (ids kept), skipping keys already present, and record ``after``
        (the last key copied) as the table's copy progress in the same transaction; returns the rows
        inserted."""

    @abstractmethod
    def copy_progress(self) -> dict[str, list[Any]]:
        """The last key copied into each table so far (``load_rows``' ``after``); empty before a copy."""

    @abstractmethod
    def count_rows(self, table: str) -> int:
        """Rows in one of ``TABLES``."""

    @abstractmethod
    def check(self) -> list[str]:
        """Integrity problems found (none: an empty list): the database's own check, foreign keys,
        and paperboy's invariants (every paper has a source, revisions and sequence numbers unique,
        one vector size per model, JSON columns that parse)."""
