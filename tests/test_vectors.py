"""Vector index: exact search is brute force; HNSW recall@10 >= 0.95 against it (oracle test)."""

import numpy as np
import pytest

from paperboy.index import vectors as vmod
from paperboy.index.vectors import VectorIndex, VectorIndexError


def clustered(n, dim=64, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(max(n // 400, 2), dim))
    return (centers[rng.integers(0, len(centers), n)] + 0.35 * rng.normal(size=(n, dim))).astype(np.float32)


def brute(x, q, k):
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    return np.argsort(-(qn @ xn.T), axis=1)[:, :k]


def test_exact_equals_brute_force():
    x = clustered(3000)
    vi = VectorIndex("m", 64)
    vi.upsert(np.arange(3000), x)
    q = clustered(50, seed=1)
    ids, scores = vi.search_many(q, 10)
    assert (ids == brute(x, q, 10)).all()
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_hnsw_recall_at_10():
    x = clustered(20_000)
    vi = VectorIndex("m", 64, hnsw_threshold=1000)
    vi.upsert(np.arange(len(x)), x)
    q = x[:200] + 0.1 * np.random.default_rng(2).normal(size=(200, 64)).astype(np.float32)
    exact, _ = vi.search_many(q, 10, exact=True)
    approx, _ = vi.search_many(q, 10, exact=False)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, approx)])
    print(f"HNSW recall@10 = {recall:.3f}")
    assert recall >= 0.95


@pytest.mark.parametrize("threshold", [10**9, 100])  # exact mode, HNSW mode
def test_incremental_upsert_and_remove(threshold):
    x = clustered(500)
    vi = VectorIndex("m", 64, hnsw_threshold=threshold)
    vi.upsert(np.arange(500), x)
    vi.upsert([3], x[10:11])  # 3 now sits where 10 is
    ids, _ = vi.search(x[10], 2)
    assert set(ids) == {3, 10}
    vi.remove([10, 3])
    ids, _ = vi.search(x[10], 20)
    assert 10 not in ids and 3 not in ids and len(vi) == 498
    ids, _ = vi.search(x[42], 5, exclude={42})
    assert 42 not in ids and len(ids) == 5
    big_ids, big_scores = vi.search_many(x[:2], 1000)
    assert (big_ids[:, 498:] == -1).all() and big_ids.shape == (2, 1000)


def test_save_load_round_trip_and_model_guard(tmp_path):
    x = clustered(2000)
    vi = VectorIndex("model-a", 64, hnsw_threshold=500)
    vi.upsert(np.arange(2000), x)
    vi.synced = 17
    vi.save(tmp_path)
    back = VectorIndex.load(tmp_path, "model-a")
    assert len(back) == 2000 and back.synced == 17
    for exact in (True, False):
        assert (back.search_many(x[:20], 10, exact)[0] == vi.search_many(x[:20], 10, exact)[0]).all()
    with pytest.raises(VectorIndexError, match="holds vectors of model model-a"):
        VectorIndex.load(tmp_path, "model-b")


def test_crash_mid_save_keeps_previous_index(tmp_path, monkeypatch):
    x = clustered(600)
    vi = VectorIndex("m", 64)
    vi.upsert(np.arange(300), x[:300])
    vi.save(tmp_path)
    vi.upsert(np.arange(300, 600), x[300:])
    real_replace = vmod.os.replace

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(vmod.os, "replace", crash)
    with pytest.raises(OSError):
        vi.save(tmp_path)
    monkeypatch.setattr(vmod.os, "replace", real_replace)
    assert len(VectorIndex.load(tmp_path, "m")) == 300
