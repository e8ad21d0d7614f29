"""Operator tools: an online backup of a store that is being written to."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time

from paperboy.models import PaperRecord
from paperboy.store.sqlite import SQLiteStore


def test_backup_while_a_writer_commits_is_consistent(tmp_path):
    path = tmp_path / "live.sqlite3"
    with SQLiteStore(path) as store:
        store.migrate()
    stop, written = threading.Event(), []

    def writer() -> None:
        with SQLiteStore(path) as w:
            i = 0
            while not stop.is_set() and i < 2000:
                w.upsert_papers([PaperRecord(source="t", source_id=f"p{i}-{j}", title=f"Paper {i} {j}",
                                             abstract="text") for j in range(10)])
                written.append(i)
                i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        while len(written) < 5:
            time.sleep(0.01)
        r = subprocess.run([sys.executable, "-m", "paperboy.cli", "backup", "--json", str(tmp_path / "b" / "copy.sqlite3")],
                           env={"PAPERBOY_STORE": f"sqlite:///{path}", "PATH": "/usr/bin:/bin",
                                "PAPERBOY_HOME": str(tmp_path)},
                           capture_output=True, text=True, timeout=120)
    finally:
        stop.set()
        t.join()
    assert r.returncode == 0, r.stderr
    copy = sqlite3.connect(tmp_path / "b" / "copy.sqlite3")
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    n = copy.execute("SELECT COUNT(*) FROM papers").fetchone()[0]
    assert n > 0 and n % 10 == 0  # whole transactions only
    assert not (tmp_path / "b" / "copy.sqlite3.partial").exists()
