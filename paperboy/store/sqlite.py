"""SQLite backend: one file, WAL, foreign keys, busy timeout, ``BEGIN IMMEDIATE`` for writes."""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .sql import CREATE_MIGRATIONS, SELECT_VERSION, SQLStore

# synchronous=NORMAL is durable against a crashed process in WAL mode. The opening thread's
# connection (the CLI's, which ingests) keeps a 32 MB page cache, so index lookups of big ingests
# stay in memory; the other threads' (a server's request threads) keep 8 MB each.
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=ON", "PRAGMA synchronous=NORMAL")
CACHE_KB = 32000
THREAD_CACHE_KB = 8000


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (the store closes every thread's at ``close``)."""


class SQLiteStore(SQLStore):
    """The embedded default store: ``PAPERBOY_HOME/paperboy.sqlite3``.

    Each thread reads and writes through a connection of its own. A connection shared by threads
    mixes their statements: a read left open by one thread pins the snapshot another thread's write
    must start from (SQLite then answers busy without waiting, for as long as the read lasts), and
    reads in one thread see another thread's uncommitted writes."""

    def __init__(self, path: Path | str, busy_timeout: float = 30.0) -> None:
        self.path, self.busy_timeout = Path(path), busy_timeout
        self._local = threading.local()
        self._all: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._all_lock = threading.Lock()  # threads come and go: the set changes while it is read
        self._closed = False
        self._commits = 0  # write transactions committed by this process (``own_changes``)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot open the SQLite store at {self.path}: {e}") from e
        self._local.conn = self._connect(CACHE_KB)
        # One write transaction at a time in this process: writers queue here instead of polling
        # SQLite's lock (other processes still wait on that, up to the busy timeout).
        self._tx_lock = threading.RLock()

    def _connect(self, cache_kb: int) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                   check_same_thread=False, factory=_Connection)
            for pragma in (*PRAGMAS, f"PRAGMA cache_size=-{cache_kb}"):
                conn.execute(pragma)
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"cannot open the SQLite store at {self.path}: {e}") from e
        conn.row_factory = sqlite3.Row
        with self._all_lock:
            self._all.add(conn)
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on its first use; closed when the thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:  # as a closed connection answers: using a closed store is a bug
                raise sqlite3.ProgrammingError(f"the SQLite store at {self.path} is closed")
            conn = self._local.conn = self._connect(THREAD_CACHE_KB)
        return conn

    _integrity_errors = (sqlite3.IntegrityError,)

    @contextmanager
    def _write(self, lock: str | None = "writer") -> Iterator[sqlite3.Connection]:
        """One write transaction; ``BEGIN IMMEDIATE`` takes SQLite's one write lock up front, which
        implies whichever finer ``lock`` a PostgreSQL transaction names."""
        conn = self.conn
        with self._tx_lock:
            self._begin(conn)
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            self._commits += 1

    def _begin(self, conn: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``, retried until the busy timeout in the lock states where SQLite answers
        busy at once instead of calling its busy handler."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
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
        # counted here, not by SQLite: its counts are per connection, and a thread's go when it ends
        return self._commits

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
        """Close every thread's connection; the store cannot be used after."""
        self._closed = True
        self._local = threading.local()
        with self._all_lock:
            conns = list(self._all)
        for conn in conns:
            conn.close()
