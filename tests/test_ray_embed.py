"""Embedding on Ray Data (issue 10): a real local Ray, the real model, real SQLite homes.

One Ray instance per module (start-up costs seconds); the CLI runs in subprocesses that join it
with ``--address``, so a killed driver leaves no Ray of its own behind.
"""

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from conftest import DATA
from paperboy.embed import embed_pending
from paperboy.embed.sbert import SbertEmbedder
from paperboy.engine import Engine
from paperboy.errors import ConfigError
from paperboy.store.sqlite import SQLiteStore

ray = pytest.importorskip("ray")
from paperboy.embed.ray_batch import embed_pending_ray

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
FILES = ("quant_ph_excerpt.jsonl", "kaggle_excerpt.jsonl", "hf_daily.json")
PAPERBOY = [sys.executable, "-m", "paperboy.cli"]


@pytest.fixture(scope="module")
def ray_address():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1"}})
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@contextmanager
def opened(home):
    s = SQLiteStore(home / "paperboy.sqlite3")
    try:
        yield s
    finally:
        s.close()


def vectors(home):
    """(paper id, content hash, vector bytes) in the order they were written."""
    with opened(home) as s:
        rows = s.embeddings_since(MODEL, 0)
        hashes = s.embedding_hashes(MODEL, [r[0] for r in rows])
        return [(pid, hashes[pid], vec) for pid, _seq, vec in rows]


def cursor(home):
    with opened(home) as s:
        return s.get_cursor(f"embed:{MODEL}")


def fresh_home(tmp_path, name, files=FILES):
    home = tmp_path / name
    with Engine.from_settings(home=home) as e:
        for f in files:
            e.ingest(DATA / f)
    return home


def test_ray_embedding_equals_plain_vector_for_vector(built, ray_address, tmp_path):
    home = fresh_home(tmp_path, "ray")
    with Engine.from_settings(home=home) as e:
        counts = e.embed(batch_engine="ray")
        assert e.vectors() is not None and len(e.vectors()) == counts["seen"]  # the index followed
    assert counts == built[1]  # same counts as the plain loop
    plain, on_ray = vectors(built[0]), vectors(home)
    assert len(plain) == len(on_ray) == 56
    assert on_ray == plain  # same papers, same order, the same bytes
    assert ray.is_initialized()  # the module's Ray was used, not shut down


def test_killed_ray_job_resumes_without_re_embedding_committed_shards(ray_address, tmp_path):
    # Shards of 4 papers, one model batch each: the plain loop with the same sizes is the reference
    # (sentence-transformers pads a batch to its longest text, so batch composition moves floats ~1e-7).
    plain_home, home = (fresh_home(tmp_path, n, FILES[:1]) for n in ("plain", "ray"))
    with opened(plain_home) as store:
        plain_counts = embed_pending(store, SbertEmbedder(), batch_size=4, chunk=4)
    assert plain_counts["embedded"] == 40
    script = ("import sys; from paperboy.embed.ray_batch import embed_pending_ray; "
              "from paperboy.embed.sbert import SbertEmbedder; from paperboy.store.sqlite import SQLiteStore; "
              "s = SQLiteStore(sys.argv[1]); s.migrate(); "
              "embed_pending_ray(s, SbertEmbedder(), batch_size=4, chunk=4, address=sys.argv[2], actors=1)")
    job = subprocess.Popen([sys.executable, "-c", script, str(home / "paperboy.sqlite3"), ray_address],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300  # the first shard commits within seconds; a busy machine needed over 60
    while cursor(home) is None and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    job.send_signal(signal.SIGKILL)  # no chance to clean up: what a lost node or OOM kill looks like
    job.wait()
    assert job.returncode == -signal.SIGKILL, job.stderr.read().decode()[-2000:]
    committed = len(vectors(home))
    assert 0 < committed < 40 and committed % 4 == 0  # whole shards only, and not all of them
    assert cursor(home)["rev"] > 0
    with opened(home) as store:
        counts = embed_pending_ray(store, SbertEmbedder(), batch_size=4, chunk=4, address=ray_address)
    assert counts["embedded"] == 40 - committed  # the committed shards went nowhere near the model
    assert counts["seen"] == 40 - committed
    assert vectors(home) == vectors(plain_home)


def test_cli_embed_on_ray_end_to_end(ray_address, tmp_path):
    home = fresh_home(tmp_path, "cli", FILES[1:])
    run = [*PAPERBOY, "--home", str(home), "embed", "--engine", "ray", "--address", ray_address, "--json"]
    first = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    counts = json.loads(first.stdout)
    assert counts["embedded"] == counts["vectors"] == 16 and counts["model"] == MODEL
    again = json.loads(subprocess.run(run, capture_output=True, text=True, timeout=120, check=True).stdout)
    assert (again["seen"], again["embedded"], again["vectors"]) == (0, 0, 16)  # the cursor is past them all

    bad = subprocess.run([*PAPERBOY, "--home", str(home), "embed", "--engine", "spark"], capture_output=True, text=True)
    assert bad.returncode == 2 and "'spark' is not one of 'local', 'ray'" in bad.stderr
    env = {**os.environ, "PAPERBOY_BATCH_ENGINE": "spark"}
    bad = subprocess.run([*PAPERBOY, "--home", str(home), "embed"], capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "batch_engine must be 'local' or 'ray', not 'spark'" in bad.stderr


def test_missing_ray_names_the_extra(monkeypatch, store):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` does without the extra
    with pytest.raises(ConfigError, match=r"pip install 'paperboy\[ray\]'"):
        embed_pending_ray(store, SbertEmbedder())
