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


def start_cluster() -> tuple[str, Callable[[], None]]:
    """initdb + pg_ctl start in a temp dir; (admin URL, stop)."""
    bindir = _bindir()
    if bindir is None:
        raise FileNotFoundError("no PostgreSQL server binaries (Debian: apt install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="paperboy-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    prefix = _as_user()
    if prefix:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
    port = free_port()
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "paperboy", "--auth=trust",
                    "--encoding=UTF8", "--locale=C.UTF-8"], check=True, capture_output=True)
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-o", opts,
                    "-w", "start"], check=True, capture_output=True)

    def stop() -> None:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)

    return f"postgresql://paperboy@127.0.0.1:{port}/postgres", stop


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
