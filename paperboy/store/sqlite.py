"""SQLite backend: one file, WAL, foreign keys, busy timeout, ``BEGIN IMMEDIATE`` for writes."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .sql import CREATE_MIGRATIONS, SELECT_VERSION, SQLStore

# synchronous=NORMAL is durable against a crashed process in WAL mode; a 32 MB page cache keeps
# index lookups of big ingests in memory (bounded, whatever the input size).
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=ON", "PRAGMA synchronous=NORMAL",
           "PRAGMA cache_size=-32000")


class SQLiteStore(SQLStore):
    """The embedded default store: ``PAPERBOY_HOME/paperboy.sqlite3``."""

    def __init__(self, path: Path | str, busy_timeout: float = 30.0) -> None:
        self.path, self.busy_timeout = Path(path), busy_timeout
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None,
                                        check_same_thread=False)
            for pragma in PRAGMAS:
                self.conn.execute(pragma)
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"cannot open the SQLite store at {self.path}: {e}") from e
        self.conn.row_factory = sqlite3.Row
        # The web app may reach one store from the event loop and from worker threads: a write
        # transaction must not take in another thread's statements, so transactions are serialized.
        self._tx_lock = threading.RLock()

    _integrity_errors = (sqlite3.IntegrityError,)

    @contextmanager
    def _write(self, lock: str | None = "writer") -> Iterator[sqlite3.Connection]:
        """One write transaction; ``BEGIN IMMEDIATE`` takes SQLite's one write lock up front, which
        implies whichever finer ``lock`` a PostgreSQL transaction names."""
        with self._tx_lock:
            self._begin()
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def _begin(self) -> None:
        """``BEGIN IMMEDIATE``, retried while SQLite answers busy at once: when another thread has a
        read open on this shared connection and another process wrote meanwhile, SQLite returns
        SQLITE_BUSY without waiting (the busy timeout only covers waiting for another writer); the
        read ends within milliseconds, so a short retry gets the lock."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def migrate(self) -> list[int]:
        try:
            self.conn.execute(CREATE_MIGRATIONS)
            with self._write() as c:
                return self._apply_migrations(c, lambda sql: sql.format(pk="INTEGER PRIMARY KEY"))
        except sqlite3.Error as e:
            raise StoreError(f"cannot migrate the store at {self.path}: {e}") from e

    def schema_version(self) -> int:
        self.conn.execute(CREATE_MIGRATIONS)
        return int(self.conn.execute(SELECT_VERSION).fetchone()[0])

    def own_changes(self) -> int:
        return int(self.conn.total_changes)  # SQLite counts them for free

    def stats(self) -> dict[str, Any]:
        return super().stats() | {"path": str(self.path)}

    def backup(self, dest: Path | str) -> dict[str, Any]:
        """A consistent copy of the live file at ``dest`` (the online backup API), written beside
        it first and renamed, so a crash never leaves a half backup under the final name."""
        dest = Path(dest)
        tmp = dest.with_name(dest.name + ".partial")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp.unlink(missing_ok=True)
            with sqlite3.connect(tmp) as target:
                self.conn.backup(target, pages=1024)
                papers = target.execute("SELECT COUNT(*) FROM papers").fetchone()[0]
            target.close()
            tmp.replace(dest)
        except (sqlite3.Error, OSError) as e:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot back up the store to {dest}: {e}") from e
        return {"path": str(dest), "papers": papers, "bytes": dest.stat().st_size}

    def _columns(self, table: str) -> list[str]:
        return [r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")]

    def _engine_check(self) -> list[str]:
        problems = [r[0] for r in self.conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
        for table, rowid, parent, _ in self.conn.execute("PRAGMA foreign_key_check"):
            problems.append(f"{table} row {rowid} points to a missing {parent} row")
        return problems

    def close(self) -> None:
        self.conn.close()
