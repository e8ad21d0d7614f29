"""Storage backends behind one interface; chosen by the ``store`` setting."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .base import CommunityStore, JobStore, LibraryStore, PaperStore, Store, UpsertCounts

__all__ = ["CommunityStore", "JobStore", "LibraryStore", "PaperStore", "Store", "UpsertCounts", "open_store"]


def open_store(url: str, home: Path) -> Store:
    """Open (and migrate) the store named by a URL: ``sqlite`` (default file in home),
    ``sqlite:///path/to/file.sqlite3``. PostgreSQL is planned behind the same interface."""
    from .sqlite import SQLiteStore

    if url in ("", "sqlite"):
        store: Store = SQLiteStore(home / "paperboy.sqlite3")
    elif url.startswith("sqlite:///"):
        store = SQLiteStore(Path(url[len("sqlite:///"):]))
    else:
        raise ConfigError(f"unsupported store URL {url!r}: use 'sqlite' or 'sqlite:///PATH'")
    store.migrate()
    return store
