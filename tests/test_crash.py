"""kill -9 in the middle of ingesting the 38,858 quant-ph records loses nothing committed, and a
rerun finishes with exactly 38,858 papers and no duplicates."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

from conftest import shared

QUANT_PH = 38_858


def count(db):
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as c:
            return c.execute("SELECT COUNT(*) FROM papers").fetchone()[0]
    except sqlite3.OperationalError:  # schema not created yet
        return 0


def test_kill_9_mid_ingest_then_rerun(tmp_path):
    path = shared("arxiv/quant_ph_records.jsonl.gz")
    db = tmp_path / "paperboy.sqlite3"
    cmd = [sys.executable, "-m", "paperboy.cli", "--home", str(tmp_path), "ingest", "-q", str(path)]
    env = {**os.environ, "PAPERBOY_BATCH_SIZE": "500"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while count(db) < 3000 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    committed = count(db)
    assert 3000 <= committed < QUANT_PH and committed % 500 == 0  # whole batches only

    rerun = subprocess.run(cmd + ["--json"], env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f'"resumed_from": {committed}' in rerun.stdout
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT COUNT(*) FROM papers").fetchone()[0] == QUANT_PH
        assert c.execute("SELECT COUNT(DISTINCT arxiv_id) FROM papers").fetchone()[0] == QUANT_PH
        assert c.execute("SELECT COUNT(*) FROM paper_sources").fetchone()[0] == QUANT_PH
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
