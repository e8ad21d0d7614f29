"""`paperboy store copy` moves an instance between backends and back with every row intact, resumes an
interrupted copy, refuses a target that is not empty; `paperboy store check` finds damage."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from paperboy.errors import StoreError
from paperboy.store import open_store
from paperboy.store.base import TABLES
from paperboy.store.copy import copy_store
from pgserver import fresh_database


def everything(store) -> dict[str, list[tuple]]:
    return {t: store.table_rows(t, None, 10**9) for t, _ in TABLES}


@pytest.fixture
def instance(engine):
    """The test instance with a community on it: members, votes, comments, a submission, a library,
    a profile, interests, a digest in the ledger, an audit entry, a job."""
    s = engine.store
    pids = [p["id"] for p in s.papers_since(0, 10)]
    alice, bob = s.create_user("alice", "a@example.org", "h"), s.create_user("bob", None, "h")
    s.create_session("sess", alice, 1)
    s.create_api_token(bob, "t", "tok")
    for uid in (alice, bob):
        s.set_vote(uid, pids[0], True)
    cid = s.add_comment(pids[1], bob, "nice \u2028 paper")
    s.submit(pids[2], alice, "2026-12-01")
    s.save(alice, pids[3], "reading")
    s.set_feedback(alice, pids[4], "up")
    s.update_profile(alice, statement="quantum error correction", digest="daily", include_terms=["qubit"])
    s.set_interest_pref(alice, "k1", name="codes", members=[pids[3]])
    s.record_digest(alice, "2026-12-01", [pids[5]], [pids[6]])
    s.audit(None, "hide", "comment", cid, "spam?")
    s.enqueue_job("submit", "2401.00001", {"user_id": alice})
    return engine


def test_round_trip_sqlite_postgres_sqlite_keeps_every_row(instance, tmp_path):
    src = instance.store
    before = everything(src)
    assert all(before[t] for t in ("papers", "embeddings", "users", "votes", "digests", "sent", "jobs"))
    with fresh_database() as url:
        with open_store(url, tmp_path) as pg:
            counts = copy_store(src, pg, page=7)  # small pages: many commits, keys across pages
            assert {t: c["target"] for t, c in counts.items()} == {t: len(r) for t, r in before.items()}
            assert pg.check() == []
            back = open_store(f"sqlite:///{tmp_path / 'back.sqlite3'}", tmp_path)
            copy_store(pg, back)
            assert everything(back) == before  # every row, every column, ids kept
            # the copy is a working store: identities go on after the copied ids
            assert pg.create_user("carol", None, "h") > max(r[0] for r in before["users"])
            assert back.check() == []
            back.close()


def test_interrupted_copy_resumes_and_a_full_target_is_refused(instance, tmp_path):
    src = instance.store
    with fresh_database() as url, open_store(url, tmp_path) as pg:
        seen = []

        def crash(table: str, n: int) -> None:
            seen.append(table)
            if table == "embeddings" and seen.count("embeddings") == 2:
                raise KeyboardInterrupt  # Ctrl-C (or kill) in the middle of a table

        with pytest.raises(KeyboardInterrupt):
            copy_store(src, pg, page=5, progress=crash)
        assert 0 < pg.count_rows("embeddings") < src.count_rows("embeddings")
        assert pg.count_rows("users") == 0  # tables after the break were not started
        counts = copy_store(src, pg, page=5)
        assert counts["papers"]["copied"] == 0 and counts["embeddings"]["copied"] < src.count_rows("embeddings")
        assert everything(pg) == everything(src)
    with open_store(f"sqlite:///{tmp_path / 'used.sqlite3'}", tmp_path) as used:
        used.set_cursor("harvest", {"token": "x"})  # a store already in use, not an interrupted copy
        with pytest.raises(StoreError, match="not empty"):
            copy_store(src, used)


def test_cli_copy_and_check(instance, tmp_path):
    home = instance.settings["home"]
    cli = [sys.executable, "-m", "paperboy.cli", "--home", str(home)]
    source = instance.settings["store"]
    with fresh_database() as url:
        done = subprocess.run([*cli, "store", "copy", "--json", source, url], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        counts = json.loads(done.stdout)
        assert counts["papers"]["target"] == instance.store.count_rows("papers") > 0
        done = subprocess.run([*cli, "store", "check", url], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.startswith("ok:"), done.stdout + done.stderr
        again = subprocess.run([*cli, "store", "copy", source, f"sqlite:///{tmp_path / 'x.sqlite3'}"],
                               capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
    damaged = tmp_path / "x.sqlite3"
    with sqlite3.connect(damaged) as c:  # a paper whose sources are gone, and a broken JSON column
        c.execute("PRAGMA foreign_keys=OFF")
        pid = c.execute("SELECT MIN(id) FROM papers").fetchone()[0]
        c.execute("DELETE FROM paper_sources WHERE paper_id = ?", (pid,))
        c.execute("UPDATE papers SET authors = '[not json' WHERE id = ?", (pid,))
        c.execute("INSERT INTO votes (user_id, paper_id, created_at) VALUES (999999, ?, 'now')", (pid,))
    done = subprocess.run([*cli, "store", "check", "--json", f"sqlite:///{damaged}"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    problems = json.loads(done.stdout)["problems"]
    assert any("without any source" in p for p in problems)
    assert any("JSON that does not parse" in p for p in problems)
    assert any("missing users row" in p for p in problems)
    bad = subprocess.run([*cli, "store", "check", "mysql://x"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "unsupported store URL" in bad.stderr
