"""Vector index: exact search is brute force over the stored (f16) vectors, and finds what exact f32
search finds; HNSW recall@10 >= 0.95 against it (oracle tests)."""

import logging

import numpy as np
import pytest

from paperboy.index import vectors as vmod
from paperboy.index.vectors import VectorIndex, VectorIndexError, VectorIndexMissing


def clustered(n, dim=64, seed=0, spread=0.35):
    """Gaussian clusters around random centres: lumpy, like real text embeddings."""
    rng = np.random.RandomState(seed)
    centers = rng.normal(size=(max(n // 400, 2), dim))
    return (centers[rng.randint(0, len(centers), n)] + spread * rng.normal(size=(n, dim))).astype(np.float32)


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def stored(x):
    """The vectors as the index keeps them: normalized, then rounded to f16."""
    return vmod._normalize(x, x.shape[1]).astype(vmod.DTYPE).astype(np.float32)


def brute(ids, x, q, k, compact=True):
    sims = unit(np.atleast_2d(q)) @ (stored(x) if compact else unit(x)).T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return ids[order], np.take_along_axis(sims, order, 1)


@pytest.mark.parametrize("threshold", [10**9, 1000])  # exact search, HNSW re-scored from f16
def test_compact_vectors_find_what_exact_f32_search_finds(threshold):
    x, ids = clustered(6200, dim=128), np.arange(6000)
    x, q = x[:6000], x[6000:]  # 200 held-out points of the same clusters
    vi = VectorIndex("m", 128, hnsw_threshold=threshold)
    vi.upsert(ids, x)
    assert vi.matrix()[1].dtype == np.float16 and vi.matrix()[1].nbytes == 6000 * 128 * 2
    want, want_scores = brute(ids, x, q, 10, compact=False)  # exact search over f32
    got, scores = vi.search_many(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, want)])
    print(f"recall@10 against exact f32 = {recall:.4f}")
    assert recall >= (0.99 if threshold > 6000 else 0.95)
    assert np.abs(scores[:, 0] - want_scores[:, 0]).max() < 2e-3  # cosines within f16 rounding
    assert vi.vector(5).dtype == np.float32
    assert np.allclose(vi.vector(5), unit(x[5]), atol=1e-3)


def test_exact_equals_brute_force():
    x, ids = clustered(3000), np.arange(5, 3005)
    vi = VectorIndex("m", 64)
    vi.upsert(ids, x)
    q = clustered(50, seed=1)
    got, scores = vi.search_many(q, 10)
    want, want_scores = brute(ids, x, q, 10)
    assert (got == want).all() and np.allclose(scores, want_scores, atol=1e-5)
    one, one_scores = vi.search(q[0] * 7.0, 10)  # queries are normalized too
    assert (one == want[0]).all() and one.dtype == np.int64 and one_scores.dtype == np.float32


@pytest.mark.parametrize("threshold", [10**9, 100])  # one f32 copy of all rows; f16 rows converted in blocks
def test_exact_search_in_blocks(monkeypatch, threshold):
    monkeypatch.setattr(vmod, "_SCORE_BLOCK", 3000 * 7)  # 7 queries per score block
    monkeypatch.setattr(vmod, "_ROW_BLOCK", 256)  # above the threshold: 12 row blocks, merged per query
    x, q = clustered(3000), clustered(50, seed=1)
    vi = VectorIndex("m", 64, hnsw_threshold=threshold)
    vi.upsert(np.arange(3000), x)
    got, scores = vi.search_many(q, 10, exact=True)
    want, want_scores = brute(np.arange(3000), x, q, 10)
    assert (got == want).all() and np.allclose(scores, want_scores, atol=1e-6)


def test_hnsw_recall_at_10():
    x = clustered(20_200)
    vi = VectorIndex("m", 64, hnsw_threshold=1000)
    vi.upsert(np.arange(20_000), x[:20_000])
    assert vi._hnsw is not None
    q = x[20_000:]  # 200 held-out points of the same clusters
    exact, _ = vi.search_many(q, 10, exact=True)
    approx, scores = vi.search_many(q, 10)  # exact=None: HNSW above the threshold
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, approx)])
    print(f"HNSW recall@10 = {recall:.3f}")
    assert recall >= 0.95
    assert np.all(np.diff(scores, axis=1) <= 0)  # re-scored from the f16 rows, best first


@pytest.mark.parametrize("threshold", [10**9, 100])  # exact mode, HNSW mode
def test_incremental_upsert_and_remove(threshold):
    x = clustered(500)
    vi = VectorIndex("m", 64, hnsw_threshold=threshold)
    vi.upsert(np.arange(500), x)
    vi.upsert([3], x[10:11])  # 3 now sits where 10 is
    ids, _ = vi.search(x[10], 2)
    assert set(ids) == {3, 10} and len(vi) == 500
    assert np.allclose(vi.vector(3), stored(x[10:11])[0], atol=1e-7)
    vi.remove([10, 3, 10, 12345])  # repeats and unknown ids are ignored
    ids, _ = vi.search(x[10], 20)
    assert 10 not in ids and 3 not in ids and len(vi) == 498 and vi.vector(10) is None
    ids, _ = vi.search(x[42], 5, exclude={42, 999_999})
    assert 42 not in ids and len(ids) == 5
    vi.upsert([3], x[3:4])  # back, at its old place
    assert vi.search(x[3], 1)[0][0] == 3
    big_ids, big_scores = vi.search_many(x[:2], 1000)
    assert big_ids.shape == big_scores.shape == (2, 1000)
    assert (big_ids[:, 499:] == -1).all() and np.isneginf(big_scores[:, 499:]).all()
    assert set(big_ids[0, :499]) == set(range(500)) - {10}


@pytest.mark.parametrize("threshold", [10**9, 300])
def test_random_updates_match_a_dict_model(threshold):
    """Random upserts/removes (swap-delete moves rows around) against a plain dict of id -> vector."""
    rng = np.random.RandomState(7)
    vi, model = VectorIndex("m", 16, hnsw_threshold=threshold), {}
    for _ in range(40):
        ids = rng.randint(0, 800, rng.randint(1, 60))
        vecs = rng.normal(size=(len(ids), 16)).astype(np.float32)
        vi.upsert(ids, vecs)
        model.update({int(i): v for i, v in zip(ids, vecs)})  # a repeated id keeps its last vector
        gone = rng.randint(0, 800, rng.randint(0, 30))
        vi.remove(gone)
        for i in gone:
            model.pop(int(i), None)
    assert len(vi) == len(model) and (vi._hnsw is not None) == (threshold == 300)
    ids, mat = vi.matrix()
    assert sorted(ids.tolist()) == sorted(model) and not mat.flags.writeable
    assert all(np.allclose(mat[n], stored(model[int(i)][None])[0], atol=1e-7) for n, i in enumerate(ids))
    keys = np.array(sorted(model))
    q = rng.normal(size=(20, 16)).astype(np.float32)
    want = brute(keys, np.array([model[i] for i in keys]), q, 5)[0]
    assert (vi.search_many(q, 5, exact=True)[0] == want).all()
    found = vi.search_many(q, 50)[0]
    assert set(found[found >= 0].tolist()) <= set(model)  # removed ids are never returned


def test_shapes_padding_and_bad_input():
    vi = VectorIndex("m", 8, hnsw_threshold=3)
    ids, scores = vi.search_many(np.ones((4, 8)), 5)  # empty index
    assert ids.shape == (4, 5) and (ids == -1).all()
    assert len(vi.search(np.ones(8), 5)[0]) == 0
    vi.upsert([100, 200, 300, 400], np.eye(4, 8))  # HNSW active; no id 0 anywhere
    for exact in (True, False):
        ids, scores = vi.search_many(np.eye(3, 8), 6, exact=exact)
        assert ids.shape == scores.shape == (3, 6) and (ids[:, 4:] == -1).all() and ids[0, 0] == 100
        assert ids.dtype == np.int64 and scores.dtype == np.float32
        one, one_scores = vi.search(np.eye(1, 8)[0], 10, exact=exact)
        assert len(one) == 4 and one[0] == 100 and one_scores[0] == pytest.approx(1.0)
    assert vi.search_many(np.eye(2, 8), 0)[0].shape == (2, 0)
    with pytest.raises(VectorIndexError):
        vi.upsert([1], np.ones((1, 7)))
    with pytest.raises(VectorIndexError):
        vi.upsert([1, 2], np.ones((1, 8)))
    with pytest.raises(VectorIndexError):
        vi.search(np.ones(9), 3)


def test_save_load_round_trip_and_guards(tmp_path, caplog):
    x = clustered(2000)
    vi = VectorIndex("model-a", 64, hnsw_threshold=500, expansion_search=80)
    vi.upsert(np.arange(2000), x)
    vi.remove(np.arange(0, 2000, 7))
    vi.synced = 17
    assert not VectorIndex.exists(tmp_path)
    vi.save(tmp_path)
    assert VectorIndex.exists(tmp_path)
    with caplog.at_level(logging.WARNING):
        back = VectorIndex.load(tmp_path, "model-a")
    assert not caplog.records  # the saved graph was restored, not rebuilt
    assert len(back) == len(vi) and back.synced == 17 and back.params == vi.params
    assert back._hnsw.expansion_search == 80
    for exact in (True, False):
        a, b = back.search_many(x[:50], 10, exact), vi.search_many(x[:50], 10, exact)
        assert (a[0] == b[0]).all() and np.array_equal(a[1], b[1])
    back.upsert([0], x[1:2])  # a loaded index keeps updating
    assert set(back.search(x[1], 2)[0]) == {0, 1}
    with pytest.raises(VectorIndexError, match="holds vectors of model model-a, not model-b"):
        VectorIndex.load(tmp_path, "model-b")
    with pytest.raises(VectorIndexError, match="dimensional"):
        VectorIndex.load(tmp_path, "model-a", dim=384)
    with pytest.raises(FileNotFoundError):
        VectorIndex.load(tmp_path / "nowhere", "model-a")
    with pytest.raises(VectorIndexMissing):
        VectorIndex.load(tmp_path / "nowhere", "model-a")


def test_damaged_graph_is_rebuilt_and_damaged_arrays_refused(tmp_path, caplog):
    x = clustered(800)
    vi = VectorIndex("m", 64, hnsw_threshold=100)
    vi.upsert(np.arange(800), x)
    vi.save(tmp_path)
    (graph,) = tmp_path.glob("hnsw-*.usearch")
    graph.write_bytes(b"not a usearch file" * 10)
    with caplog.at_level(logging.WARNING):
        back = VectorIndex.load(tmp_path, "m")
    assert "rebuilding" in caplog.text and back._hnsw is not None
    # The rebuilt graph answers like a graph: approximate, so one self-query in 20 may miss its
    # point (about one run in ten here; the build is multithreaded), while a broken one finds none.
    assert (back.search_many(x[:20], 5, exact=False)[0][:, 0] == np.arange(20)).mean() >= 0.85
    (arr,) = tmp_path.glob("vectors-*.npy")
    np.save(arr, x[:10])  # the wrong shape
    with pytest.raises(VectorIndexError, match="damaged"):
        VectorIndex.load(tmp_path, "m")


@pytest.mark.parametrize("threshold", [10**9, 100])
def test_crash_mid_save_keeps_previous_index(tmp_path, monkeypatch, threshold):
    x = clustered(600)
    vi = VectorIndex("m", 64, hnsw_threshold=threshold)
    vi.upsert(np.arange(300), x[:300])
    vi.synced = 1
    vi.save(tmp_path)
    vi.upsert(np.arange(300, 600), x[300:])
    vi.synced = 2
    real_replace = vmod.os.replace

    def crash_on_sidecar(src, dst):  # the arrays land, the commit point does not
        if str(dst).endswith(vmod.SIDECAR):
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(vmod.os, "replace", crash_on_sidecar)
    with pytest.raises(OSError):
        vi.save(tmp_path)
    monkeypatch.setattr(vmod.os, "replace", real_replace)
    assert len(list(tmp_path.glob("ids-*.npy"))) == 2  # the new generation's arrays were written
    old = VectorIndex.load(tmp_path, "m")
    assert len(old) == 300 and old.synced == 1
    assert (old.search_many(x[:5], 1)[0][:, 0] == np.arange(5)).all()
    vi.save(tmp_path)  # the next save commits and sweeps the leftovers
    assert len(VectorIndex.load(tmp_path, "m")) == 600
    names = sorted(p.name.split("-")[0] for p in tmp_path.iterdir() if not p.name.endswith(".tmp"))
    assert names == sorted(["ids", "vectors", "index.json"] + (["hnsw"] if threshold == 100 else []))


def saved_then_loaded(tmp_path, x, n, pattern):
    """An index of x[:n] saved and loaded again, with its file matching ``pattern`` and that file's bytes."""
    vi = VectorIndex("m", 64, hnsw_threshold=1000)
    vi.upsert(np.arange(n), x[:n])
    vi.save(tmp_path)
    (path,) = tmp_path.glob(pattern)
    return VectorIndex.load(tmp_path, "m"), path, path.read_bytes()


def test_loaded_vectors_are_mapped_and_appends_stay_private(tmp_path):
    x = clustered(1500)
    back, arr, on_disk = saved_then_loaded(tmp_path, x, 1000, "vectors-*.npy")
    assert isinstance(back._vecs, np.memmap) and len(back._vecs) == 1000 + 1024  # spare rows for appends
    back.upsert(np.arange(1000, 1500), x[1000:])  # within the spare rows: still the mapping
    back.upsert([3], x[1200:1201])
    assert isinstance(back._vecs, np.memmap) and len(back) == 1500
    assert arr.read_bytes() == on_disk  # copy-on-write: the saved generation is untouched
    assert set(back.search(x[1200], 2)[0]) == {3, 1200} and back.search(x[1400], 1)[0][0] == 1400
    back.upsert(np.arange(5000, 6100), clustered(1100, seed=5))  # beyond them: moved into memory
    assert not isinstance(back._vecs, np.memmap) and len(back) == 2600
    back.save(tmp_path)
    again = VectorIndex.load(tmp_path, "m")
    a, b = again.search_many(x[:30], 10, exact=True), back.search_many(x[:30], 10, exact=True)
    assert (a[0] == b[0]).all() and np.array_equal(a[1], b[1])


def test_an_index_saved_as_f32_still_loads(tmp_path, caplog):
    """Indexes saved before vectors were f16 (f32 arrays, an f16 graph) load, converted, with a new graph."""
    from paperboy.index.generations import save_generation

    x = clustered(600)
    ids, vecs = np.arange(600, dtype=np.int64), vmod._normalize(x, 64)
    save_generation(tmp_path, vmod.SIDECAR, {"ids": ids, "vectors": vecs},
                    {"model_id": "m", "dim": 64, "count": 600, "metric": "cos", "hnsw": False, "hnsw_dtype": "f16",
                     "hnsw_threshold": 100, "connectivity": 16, "expansion_add": 128, "expansion_search": 128,
                     "synced": 9})
    with caplog.at_level(logging.WARNING):
        back = VectorIndex.load(tmp_path, "m")
    assert not caplog.records and back.synced == 9 and back._hnsw is not None
    assert back.matrix()[1].dtype == vmod.DTYPE
    got = back.search_many(x[:20], 10, exact=True)[0]
    assert (got == brute(ids, x, x[:20], 10)[0]).all()
    assert back.rebuilt  # so sync_vectors saves it in the new format once, rather than converting per load
    back.save(tmp_path)
    again = VectorIndex.load(tmp_path, "m")
    assert not again.rebuilt and isinstance(again._vecs, np.memmap) and again._hnsw is not None
    assert (again.search_many(x[:20], 10, exact=True)[0] == got).all()


def test_a_loaded_graph_is_a_memory_mapped_view_whose_changes_go_beside_it(tmp_path):
    x = clustered(4000)
    back, graph_file, on_disk = saved_then_loaded(tmp_path, x, 3000, "hnsw-*.usearch")
    assert back._hnsw.view_of == graph_file and back._hnsw.delta is None  # mapped, not read
    back.upsert(np.arange(3000, 3500), x[3000:3500])  # new papers: a small graph beside the view
    back.upsert(np.arange(10), x[3500:3510])  # replaced vectors: found once, scored by the new vector
    back.remove(np.arange(100, 150))
    assert graph_file.read_bytes() == on_disk and len(back._hnsw.delta) == 510
    ids = np.r_[np.arange(10), np.arange(10, 100), np.arange(150, 3500)]
    live = np.r_[x[3500:3510], x[10:100], x[150:3500]]
    q = x[3500:3700] + 0.05 * clustered(200, seed=9)
    want, want_scores = brute(ids, live, q, 10)
    got, scores = back.search_many(q, 10)
    assert all(len(set(r)) == len(r) for r in got.tolist())  # an id in the view and beside it: one hit
    assert not np.isin(got, np.arange(100, 150)).any()  # removed papers stay in the view, never answer
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, want)])
    same = got[:, 0] == want[:, 0]
    assert recall >= 0.95 and same.mean() >= 0.95
    assert np.abs(scores[same, 0] - want_scores[same, 0]).max() < 2e-3  # exact scores, from the live rows
    back.save(tmp_path)  # one whole graph again, and served mapped from the new file
    assert back._hnsw.view_of != graph_file and back._hnsw.delta is None and len(back._hnsw) == 3450
    again = VectorIndex.load(tmp_path, "m")
    assert len(again._hnsw) == 3450 and again._hnsw.contains(ids).all()
    assert not again._hnsw.contains(np.arange(100, 150)).any()
    a = again.search_many(q, 10)[0]
    assert np.mean([len(set(r) & set(s)) / 10 for r, s in zip(a, want)]) >= 0.95
    # another worker's save swept the file this view maps: saving builds the whole graph from the rows
    again.upsert([5000], x[3999:4000])
    again._hnsw.view_of.unlink()
    again.save(tmp_path)
    last = VectorIndex.load(tmp_path, "m")
    assert len(last._hnsw) == 3451 and last._hnsw.contains(np.r_[ids, 5000]).all()
    assert last.search(x[3999], 1)[0][0] == 5000


def test_releasing_mapped_rows_keeps_what_this_process_changed(tmp_path):
    x = clustered(1500)
    vi = VectorIndex("m", 64, hnsw_threshold=10**9)
    vi.upsert(np.arange(1000), x[:1000])
    vi.save(tmp_path)
    back = VectorIndex.load(tmp_path, "m")
    back.upsert(np.arange(1000, 1400), x[1000:1400])  # appended in the copy-on-write mapping
    back.upsert([7], x[1400:1401])  # a saved row changed
    before = back.matrix()[1].copy()
    back.release()
    assert isinstance(back._vecs, np.memmap) and np.array_equal(back.matrix()[1], before)
    assert back.search(x[1400], 1)[0][0] == 7 and back.search(x[1300], 1)[0][0] == 1300
