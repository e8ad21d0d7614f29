"""What only the PostgreSQL backend has to get right (the shared behaviour is the contract suite's):
a deadlock PostgreSQL breaks is retried, text with NUL is kept, a bad URL or a dead server is one clear
error that never shows the password, and two hosts migrating at once migrate once."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from paperboy.errors import StoreError
from paperboy.models import PaperRecord
from paperboy.store.migrations import LATEST
from paperboy.store.postgres import PostgresStore, lock_key, redact
from pgserver import fresh_database
from support import free_port


@pytest.fixture
def pg():
    with fresh_database() as url:
        store = PostgresStore(url, pool_size=4)
        store.migrate()
        yield store, url
        store.close()


def test_a_deadlock_postgresql_breaks_is_retried(pg):
    """Another client holds a user row and then wants the writer lock a store write holds while it
    waits for that row: PostgreSQL aborts the store's transaction (it waited first); the store runs
    it again, and both finish."""
    store, url = pg
    uid = store.create_user("alice", None, "h")
    done: list[object] = []
    with psycopg.connect(url) as other:
        other.execute("UPDATE users SET role = 'member' WHERE id = %s", (uid,))  # holds the row
        t = threading.Thread(target=lambda: done.append(store.set_suspended(uid, True)))
        t.start()
        time.sleep(0.4)  # the store's write holds the writer lock and waits for the row
        other.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("writer"),))  # a cycle
        other.commit()
        t.join(30)
    assert done == [True]
    assert store.account(uid)["suspended_at"] is not None


def test_nul_in_text_is_dropped_not_refused(pg):
    store, _ = pg
    store.upsert_papers([PaperRecord(source="t", source_id="a\0b", title="Nul\0 title", abstract="x\0y")])
    paper = store.get_papers([1])[1]
    assert (paper.title, paper.abstract) == ("Nul title", "xy")
    assert store.paper_ids_by_source("t", ["a\0b"]) == {"ab": 1}  # looked up the same way it was stored
    uid = store.create_user("bob", None, "h")
    assert store.add_comment(1, uid, "hello\0") and store.comments(1)[0]["body"] == "hello"


def test_unreachable_server_and_bad_password_never_leak_the_password():
    url = f"postgresql://paperboy:s3cret-pw@127.0.0.1:{free_port()}/nowhere"
    with pytest.raises(StoreError) as e:
        PostgresStore(url, timeout=2)
    assert "s3cret-pw" not in str(e.value) and "paperboy:***@127.0.0.1" in str(e.value)
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"


def test_hosts_starting_together_migrate_once():
    with fresh_database() as url:
        stores = [PostgresStore(url, pool_size=2) for _ in range(4)]
        applied: list[list[int]] = []
        threads = [threading.Thread(target=lambda s=s: applied.append(s.migrate())) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(map(len, applied)) == [0, 0, 0, LATEST]  # one migrated, the others found it done
        assert all(s.schema_version() == LATEST for s in stores)
        for s in stores:
            s.close()


def test_backup_is_a_pg_dump_that_pg_restore_reads(pg, tmp_path):
    import shutil
    import subprocess

    store, url = pg
    if shutil.which("pg_dump") is None:
        pytest.fail("pg_dump is missing: apt-get install postgresql-client (CI installs postgresql)")
    store.upsert_papers([PaperRecord(source="t", source_id="1", title="Backed up")])
    info = store.backup(tmp_path / "pb.dump")
    assert info["papers"] == 1 and info["bytes"] > 0 and not (tmp_path / "pb.dump.partial").exists()
    listing = subprocess.run(["pg_restore", "--list", str(tmp_path / "pb.dump")], capture_output=True, text=True)
    assert listing.returncode == 0 and "TABLE DATA public papers" in listing.stdout
    with fresh_database() as other:
        restored = subprocess.run(["pg_restore", "--no-owner", f"--dbname={other}", str(tmp_path / "pb.dump")],
                                  capture_output=True, text=True)
        assert restored.returncode == 0, restored.stderr
        with PostgresStore(other, pool_size=2) as copy:
            assert copy.check() == [] and copy.get_papers([1])[1].title == "Backed up"


def test_no_sql_literal_holds_what_translate_rewrites():
    """``translate`` turns every ``?`` into a placeholder and doubles every ``%``: that is only right
    while no string literal in the store's SQL holds either, which this keeps true."""
    import importlib
    import re

    for name in ("sql", "community", "library", "jobs", "tables", "migrations"):
        module = importlib.import_module(f"paperboy.store.{name}")
        def strings(v):
            if isinstance(v, str):
                yield v
            elif isinstance(v, dict):
                yield from (s for x in v.values() for s in strings(x))
            elif isinstance(v, list | tuple):
                yield from (s for x in v for s in strings(x))

        texts = [s for k, v in vars(module).items() if k.isupper() for s in strings(v)]
        assert texts, name
        for text in texts:
            for literal in re.findall(r"'[^']*'", text):
                assert "?" not in literal and "%" not in literal, (name, literal)


def test_a_database_that_goes_away_is_a_503_and_comes_back(built_home, store_url, tmp_path):
    """The database stops (a restart, a failover) under a running site: pages, the API and /healthz
    answer 503 with Retry-After (not a hang, not a 500), later calls fail at once instead of each
    waiting out the pool, and everything works again once the database is back."""
    from fastapi.testclient import TestClient

    from paperboy.engine import Engine
    from paperboy.store import open_store
    from paperboy.store.copy import copy_store
    from paperboy.web.app import create_app
    from pgserver import Cluster

    cluster = Cluster()
    try:
        url = cluster.url.rsplit("/", 1)[0] + "/pb"
        with psycopg.connect(cluster.url, autocommit=True) as c:
            c.execute("CREATE DATABASE pb")
        with open_store(store_url, built_home) as src, open_store(url, tmp_path, 2) as dst:
            copy_store(src, dst)
        with Engine.from_settings(home=built_home, store=url, secret_key="k") as e, TestClient(create_app(e)) as c:
            assert c.get("/api/daily_papers").status_code == 200
            assert c.get("/api/search", params={"q": "quantum", "mode": "bm25"}).json()["total"] > 0
            cluster.stop()
            for path in ("/healthz", "/api/daily_papers", "/", "/api/search?q=quantum&mode=bm25"):
                r = c.get(path)
                assert r.status_code == 503, (path, r.status_code, r.text[:200])
            r = c.get("/api/daily_papers")
            assert r.headers["retry-after"] == "10" and "cannot be reached" in r.json()["error"]["message"]
            assert "postgresql://paperboy@127.0.0.1" in r.json()["error"]["message"]
            start = time.monotonic()
            assert c.get("/api/trending").status_code == 503
            assert time.monotonic() - start < 3  # at once, not after the pool's 5 s wait: the store is known to be down
            cluster.start()
            deadline = time.monotonic() + 30
            while c.get("/api/daily_papers").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert c.get("/api/daily_papers").status_code == 200 and c.get("/healthz").status_code == 200
    finally:
        cluster.destroy()
