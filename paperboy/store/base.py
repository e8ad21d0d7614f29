"""The storage interface. Everything above ``store/`` talks to this, never to SQL.

``Store`` combines one small ABC per concern, each in its own module:

- ``PaperStore`` (``interfaces_papers.py``): papers and sources, the change counter, embeddings,
  cursors, ingest runs;
- ``CommunityStore`` (``interfaces_community.py``): users, sessions, API tokens, login failures and
  rate limits, votes, comments, submissions, the audit log, the daily lists;
- ``LibraryStore`` (``interfaces_library.py``): saves, feedback, profiles, interest preferences,
  digests and the sent ledger;
- ``JobStore`` (``interfaces_jobs.py``): the leased job queue;
- ``TableStore`` (``interfaces_tables.py``): whole tables row by row, for ``store copy`` and ``check``;

plus the lifecycle methods below. A backend implements all of them (``SQLiteStore`` does, through
its mixins; ``PostgresStore`` shares their SQL) and must pass ``tests/test_store_contract.py``; a
test there fails when code above ``store/`` calls a store method this interface does not declare.

Most methods still return plain dicts. Both backends shape them with the same code (``sql.py`` and
the mixins run unchanged on SQLite and PostgreSQL), so the shapes cannot drift between them; typed
records (``models.User``, ``Digest``, ``Job`` ...) are still to come.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any

from .interfaces_community import CommunityStore
from .interfaces_jobs import JobStore
from .interfaces_library import LibraryStore
from .interfaces_papers import PaperStore, UpsertCounts
from .interfaces_tables import TABLES, TableStore

__all__ = ["TABLES", "CommunityStore", "JobStore", "LibraryStore", "PaperStore", "Store", "TableStore",
           "UpsertCounts"]


class Store(PaperStore, CommunityStore, LibraryStore, JobStore, TableStore):
    """A paperboy store. Backends: ``sqlite`` (default, one file) and ``postgres`` (a community's)."""

    @abstractmethod
    def migrate(self) -> list[int]:
        """Apply pending schema migrations; return the versions applied (none the second time)."""

    @abstractmethod
    def schema_version(self) -> int:
        """The highest migration applied."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """Counts for ``paperboy stats``: papers, per source, per year, per category, last runs."""

    @abstractmethod
    def backup(self, dest: Path | str) -> dict[str, Any]:
        """A consistent copy of the whole store at ``dest`` (path, papers, bytes), never half written."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
