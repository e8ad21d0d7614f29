"""kill -9 in the middle of ingesting the 38,858 quant-ph records loses nothing committed, and a
rerun finishes with exactly 38,858 papers and no duplicates (on the test's store: SQLite, or
PostgreSQL with ``PAPERBOY_TEST_STORE=postgres``)."""

import os
import signal
import subprocess
import sys
import time

from conftest import shared
from paperboy.errors import StoreError
from paperboy.store import connect

QUANT_PH = 38_858


def count(store, table="papers"):
    try:
        return store.count_rows(table)
    except Exception:  # noqa: BLE001 - the writer has not created the schema yet (driver's own error)
        return 0


def test_kill_9_mid_ingest_then_rerun(tmp_path, store_url):
    path = shared("arxiv/quant_ph_records.jsonl.gz")
    cmd = [sys.executable, "-m", "paperboy.cli", "--home", str(tmp_path), "ingest", "-q", str(path)]
    env = {**os.environ, "PAPERBOY_BATCH_SIZE": "500"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    store = None
    while store is None and time.monotonic() < deadline:
        try:
            store = connect(store_url, tmp_path)
        except StoreError:
            time.sleep(0.05)
    while count(store) < 3000 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    committed = count(store)
    assert 3000 <= committed < QUANT_PH and committed % 500 == 0  # whole batches only

    rerun = subprocess.run(cmd + ["--json"], env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f'"resumed_from": {committed}' in rerun.stdout
    assert count(store) == QUANT_PH and count(store, "paper_sources") == QUANT_PH
    assert store.stats()["with_arxiv_id"] == QUANT_PH  # arxiv_id is UNIQUE: no paper twice
    assert store.check() == []  # the database's own check, foreign keys, paperboy's invariants
    store.close()
