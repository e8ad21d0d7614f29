"""Storage backends behind one interface; chosen by the ``store`` setting."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .base import (
    CommunityStore,
    JobStore,
    LibraryStore,
    PaperStore,
    Store,
    UpsertCounts,
)

__all__ = ["CommunityStore", "JobStore", "LibraryStore", "PaperStore", "Store", "UpsertCounts", "connect",
           "open_store"]


def connect(url: str, home: Path, pool_size: int = 10) -> Store:
    """The store named by a URL, not migrated: ``sqlite`` (the default file in home),
    ``sqlite:///path/to/file.sqlite3``, or ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DB``."""
    if url in ("", "sqlite") or url.startswith("sqlite:///"):
        from .sqlite import SQLiteStore

        return SQLiteStore(home / "paperboy.sqlite3" if url in ("", "sqlite") else Path(url[len("sqlite:///"):]))
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url, pool_size=pool_size)
    raise ConfigError(f"unsupported store URL {url!r}: use 'sqlite', 'sqlite:///PATH' or "
                      "'postgresql://USER[:PASSWORD]@HOST[:PORT]/DB'")


def open_store(url: str, home: Path, pool_size: int = 10) -> Store:
    """Open and migrate the store named by a URL (see ``connect``)."""
    store = connect(url, home, pool_size)
    store.migrate()
    return store
