"""A real, throwaway PostgreSQL server for the tests: ``PAPERBOY_TEST_PG`` (an admin URL, set by
``.ci/run``, which starts one cluster for the whole run), or else one cluster started here from the
Debian ``postgresql`` package's binaries, as a non-root user, on a free port, and stopped at exit.
Each test gets its own fresh database (``fresh_database``).

Where neither is available the PostgreSQL variants are skipped, except under CI (``CI`` set): there a
missing server is an error, so a CI run cannot pass without testing the PostgreSQL backend.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support import free_port

_server: dict[str, object] = {}


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_user() -> list[str]:
    """initdb and the server refuse to run as root: run them as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return []
    pwd.getpwnam("postgres")
    return ["runuser", "-u", "postgres", "--"]


class Cluster:
    """A throwaway cluster: initdb in a temp dir, then ``start`` / ``stop`` (a server going away and
    coming back, as in a restart) and ``destroy``."""

    def __init__(self) -> None:
        bindir = _bindir()
        if bindir is None:
            raise FileNotFoundError("no PostgreSQL server binaries (Debian: apt install postgresql)")
        self.bindir, self.prefix = bindir, _as_user()
        self.base = Path(tempfile.mkdtemp(prefix="paperboy-pg-"))
        self.data, self.sock = self.base / "data", self.base / "sock"
        self.sock.mkdir()
        if self.prefix:
            shutil.chown(self.base, "postgres")
            shutil.chown(self.sock, "postgres")
        self.port = free_port()
        self.url = f"postgresql://paperboy@127.0.0.1:{self.port}/postgres"
        subprocess.run([*self.prefix, str(bindir / "initdb"), "-D", str(self.data), "-U", "paperboy", "--auth=trust",
                        "--encoding=UTF8", "--locale=C.UTF-8"], check=True, capture_output=True)
        self.start()

    def _ctl(self, *args: str, check: bool = True) -> None:
        subprocess.run([*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args],
                       check=check, capture_output=True)

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
        self._ctl("-l", str(self.base / "log"), "-o", opts, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "stop", check=False)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


def start_cluster() -> tuple[str, Callable[[], None]]:
    """A new cluster, started; (admin URL, destroy)."""
    cluster = Cluster()
    return cluster.url, cluster.destroy


def admin_url() -> str:
    """The admin URL of the test server, started once per test run."""
    if "url" not in _server:
        url = os.environ.get("PAPERBOY_TEST_PG")
        if not url:
            try:
                url, stop = start_cluster()
            except (FileNotFoundError, KeyError, subprocess.CalledProcessError) as e:
                if os.environ.get("CI"):
                    raise RuntimeError(f"CI needs a PostgreSQL server for the tests: {e}") from e
                pytest.skip(f"no PostgreSQL server for the tests: {e}")
            import atexit

            atexit.register(stop)
        _server["url"] = url
    return str(_server["url"])


def _admin(sql: str) -> None:
    import psycopg

    for attempt in range(50):  # a dropped test database may still have a closing connection
        try:
            with psycopg.connect(admin_url(), autocommit=True) as conn:
                conn.execute(sql)
            return
        except psycopg.errors.ObjectInUse:
            time.sleep(0.1)


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new empty database on the test server (its URL), dropped afterwards."""
    name = "t_" + uuid.uuid4().hex[:16]
    _admin(f"CREATE DATABASE {name}")
    base = admin_url().rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
