"""Similar papers: cosine neighbours equal brute force, hubness reduction equals its formula computed
directly (oracle tests) and empties a planted hub's k-occurrence, and the hub-score cache."""

import itertools
import json
import logging

import numpy as np
import pytest

from paperboy.errors import ConfigError
from paperboy.index import vectors as vmod
from paperboy.index.vectors import VectorIndex
from paperboy.services import similar as smod
from paperboy.services.similar import SIDECAR, SimilarPapers

DIM = 32


def corpus(n=1500, seed=0):
    """Clusters around a shared direction m (like text embeddings, which share a common component),
    plus one planted hub: the paper m itself, close to everything. Returns (ids, vectors, hub id)."""
    rng = np.random.default_rng(seed)
    m = rng.standard_normal(DIM)
    m /= np.linalg.norm(m)
    centres = rng.standard_normal((15, DIM)) / np.sqrt(DIM)
    x = m + 0.3 * centres[rng.integers(0, 15, n)] + rng.standard_normal((n, DIM)) / np.sqrt(DIM)
    x = np.vstack([x, m]).astype(np.float32)
    ids = np.arange(len(x), dtype=np.int64) * 3 + 7  # ids are not row numbers
    return ids, x, int(ids[-1])


def index(ids, x, **kw):
    vi = VectorIndex("test-model", DIM, **kw)
    vi.upsert(ids, x)
    return vi


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_h(x, bank_k=50):
    """h(y) = mean cosine to y's bank_k nearest other papers, the whole matrix at once."""
    sims = unit(x).astype(np.float64) @ unit(x).T.astype(np.float64)
    np.fill_diagonal(sims, -np.inf)
    return (-np.sort(-sims, axis=1)[:, :bank_k]).mean(axis=1)


def lexical_of(ids, seed=1):
    """A fixed table of 'lexical' similarities between papers (symmetric, 0..1), as a callable."""
    rng = np.random.default_rng(seed)
    table = rng.random((len(ids), len(ids)))
    table = (table + table.T) / 2
    row = {int(i): n for n, i in enumerate(ids)}
    return table, lambda pid, cand: table[row[pid], [row[int(c)] for c in cand]]


def test_plain_neighbours_equal_brute_force_cosine():
    ids, x, _ = corpus(800)
    sp = SimilarPapers(index(ids, x), None)
    kept = vmod._normalize(x, DIM).astype(vmod.DTYPE).astype(np.float32)  # what the index holds (f16)
    sims = np.minimum(unit(kept) @ kept.T, 1.0)
    for row in (0, 5, 400, len(ids) - 1):
        got = sp.neighbours(int(ids[row]), k=10, hubness=False)
        s = sims[row].copy()
        s[row] = -np.inf  # never the paper itself
        want = np.argsort(-s, kind="stable")[:10]
        assert [g[0] for g in got] == ids[want].tolist()
        assert np.allclose([g[1] for g in got], s[want], atol=1e-5)
        assert [g[1] for g in got] == [g[2] for g in got]  # the score is the cosine


def test_hubness_ranking_equals_direct_formula(monkeypatch):
    monkeypatch.setattr(smod, "_SCORE_BLOCK", 801 * 7)  # exact hub scores in blocks of 7 papers
    ids, x, _ = corpus(800)
    table, lexical = lexical_of(ids)
    sp = SimilarPapers(index(ids, x), None, candidates=60, hub_weight=0.7, lexical_weight=0.3, lexical=lexical)
    h = brute_h(x)
    got_ids, _ = sp.hub_scores()[:2]
    assert (got_ids == ids).all() and np.allclose(sp.hub_scores().h, h, atol=1e-3)
    sims = unit(x).astype(np.float64) @ unit(x).T.astype(np.float64)
    for row in (0, 11, 799):
        s = sims[row].copy()
        s[row] = -np.inf
        cand = np.argsort(-s, kind="stable")[:60]  # the candidates: top 60 by cosine
        adj = s[cand] + 0.3 * table[row, cand] - 0.7 * h[cand]
        want = cand[np.argsort(-adj, kind="stable")[:10]]
        got = sp.neighbours(int(ids[row]), k=10)
        assert [g[0] for g in got] == ids[want].tolist()
        assert np.allclose([g[2] for g in got], np.sort(adj)[::-1][:10], atol=1e-2)
        assert all(a[2] >= b[2] for a, b in itertools.pairwise(got))
    assert len(sp.neighbours(int(ids[0]), k=80)) == 80  # k above candidates: k candidates are fetched


def test_planted_hub_leaves_most_lists():
    ids, x, hub = corpus(1500)
    vi = index(ids, x)
    sp, full = SimilarPapers(vi, None), SimilarPapers(vi, None, hub_weight=1.0)
    before = after = after_full = overlap = 0
    for i in ids[:-1].tolist():
        plain = [j for j, *_ in sp.neighbours(i, 10, hubness=False)]
        reduced = [j for j, *_ in sp.neighbours(i, 10)]
        before += hub in plain
        after += hub in reduced
        after_full += hub in [j for j, *_ in full.neighbours(i, 10)]
        overlap += len(set(plain) & set(reduced))
    print(f"hub in {before} plain lists, {after} reduced lists ({after_full} fully); overlap {overlap / 1500:.2f}")
    assert before >= 300  # the planted hub sits in about a quarter of all plain lists (384 of 1500)
    assert after <= 45  # in at most 3% after the default, partial reduction (31)
    assert after_full <= 15  # and in at most 1% after the full correction
    assert overlap / 1500 >= 6  # lists are re-ranked, not replaced: most of each stays


def test_hub_scores_through_hnsw_match_exact(monkeypatch):
    ids, x, _ = corpus(1500)
    exact = SimilarPapers(index(ids, x, hnsw_threshold=500), None).hub_scores()  # few pairs: exact
    monkeypatch.setattr(smod, "_EXACT_PAIRS", 0)  # a big corpus: batch search of the HNSW graph
    vi = index(ids, x, hnsw_threshold=500)
    assert vi._hnsw is not None
    sp = SimilarPapers(vi, None)
    approx = sp.hub_scores()
    assert sp.last_refresh["method"] == "hnsw"
    diff = np.abs(approx.h - exact.h)
    assert (approx.ids == exact.ids).all() and np.median(diff) < 1e-3 and np.quantile(diff, 0.99) < 0.5


@pytest.mark.parametrize("exact_pairs", [0, 10**10])
def test_bank_holds_k_other_papers_among_duplicates(monkeypatch, exact_pairs):
    """Six copies of one vector: a copy's own row may fall outside its top bank_k + 1 (ties), yet its
    bank is still exactly bank_k others: h = their mean cosine, 1. Exact and through HNSW."""
    monkeypatch.setattr(smod, "_EXACT_PAIRS", exact_pairs)
    ids, x, _ = corpus(200)
    x[:6] = x[0]
    h = SimilarPapers(index(ids, x, hnsw_threshold=100), None, bank_k=2).hub_scores().h
    assert np.allclose(h[:6], 1.0, atol=1e-4)


def test_cache_written_reloaded_and_updated(tmp_path):
    cache = tmp_path / "hubness"
    ids, x, _ = corpus(1300, seed=3)
    vi = index(ids[:1000], x[:1000])
    first = SimilarPapers(vi, cache)
    scores = first.hub_scores()
    assert first.last_refresh["source"] == "computed" and first.last_refresh["scored"] == 1000
    meta = json.loads((cache / SIDECAR).read_text())
    assert meta["count"] == meta["full_count"] == 1000 and meta["params"]["bank_k"] == 50
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 4 and all(p.startswith("hub-") for p in files if p != SIDECAR)
    assert first.hub_scores() is scores and first.last_refresh["source"] == "memory"

    again = SimilarPapers(vi, cache)  # a new process: loaded, nothing recomputed
    assert again.neighbours(int(ids[0])) == first.neighbours(int(ids[0]))
    assert again.last_refresh == again.last_refresh | {"source": "cache", "scored": 0}
    assert (again.hub_scores().h == scores.h).all() and sorted(p.name for p in cache.iterdir()) == files

    vi.upsert(ids[1000:1100], x[1000:1100])  # +10%: only the newcomers are scored
    assert again.neighbours(int(ids[1050]))  # a newcomer's candidates trigger the refresh
    assert again.last_refresh | {"seconds": 0} == {"source": "computed", "scored": 100, "full": False,
                                                   "method": "exact", "seconds": 0}
    fresh = SimilarPapers(index(ids[:1100], x[:1100]), None).hub_scores()
    new = np.isin(fresh.ids, ids[1000:1100])
    assert np.allclose(again.hub_scores().h[new], fresh.h[new])  # newcomers scored against everything
    assert not np.allclose(again.hub_scores().h[~new], fresh.h[~new])  # old ones are stale until ...
    assert json.loads((cache / SIDECAR).read_text())["count"] == 1100
    assert len(list(cache.iterdir())) == 4  # the previous generation was swept

    vi.upsert(ids[:1], x[500:501] * 2)  # a changed vector is rescored
    reread = SimilarPapers(vi, cache)
    reread.hub_scores()
    assert reread.last_refresh["scored"] == 1 and reread.last_refresh["source"] == "computed"
    vi.remove(ids[5:6])
    reread.hub_scores()
    assert reread.last_refresh["scored"] == 0 and len(reread.hub_scores().ids) == 1099

    vi.upsert(ids[1100:1250], x[1100:1250])  # 1249 > 1.2 x 1000: ... everything is recomputed
    reread.hub_scores()
    assert reread.last_refresh["full"] and reread.last_refresh["scored"] == 1249
    full = SimilarPapers(index(*vi.matrix()), None).hub_scores()
    assert np.allclose(reread.hub_scores().h, full.h)
    assert json.loads((cache / SIDECAR).read_text())["full_count"] == 1249

    other = SimilarPapers(vi, cache, bank_k=20)  # other parameters: recomputed, not reused
    other.hub_scores()
    assert other.last_refresh["full"] and json.loads((cache / SIDECAR).read_text())["params"]["bank_k"] == 20
    reweighted = SimilarPapers(vi, cache, bank_k=20, hub_weight=0.9, lexical_weight=0.1)
    reweighted.hub_scores()  # the weights apply at query time: the cached scores are reused
    assert reweighted.last_refresh["source"] == "cache"


def test_damaged_cache_is_recomputed(tmp_path, caplog):
    ids, x, _ = corpus(300)
    vi = index(ids, x)
    SimilarPapers(vi, tmp_path).hub_scores()
    meta = json.loads((tmp_path / SIDECAR).read_text())
    (tmp_path / meta["files"]["h"]).write_bytes(b"not an array")
    sp = SimilarPapers(vi, tmp_path)
    with caplog.at_level(logging.WARNING):
        assert len(sp.neighbours(int(ids[0]))) == 10
    assert sp.last_refresh["full"] and "damaged" in caplog.text
    assert SimilarPapers(vi, tmp_path).hub_scores() is not None


def test_paper_without_vector_gives_nothing():
    ids, x, _ = corpus(100)
    sp = SimilarPapers(index(ids, x), None)
    assert sp.neighbours(8, 10) == [] and sp.neighbours(8, 10, hubness=False) == []  # 8: not an id
    assert sp.neighbours(int(ids[0]), 0) == []
    assert len(sp.neighbours(int(ids[0]), 500)) == len(ids) - 1  # all but itself
    alone = SimilarPapers(index(ids[:1], x[:1]), None)
    assert alone.neighbours(int(ids[0])) == [] and (alone.hub_scores().h == 0).all()
    for bad in ({"bank_k": 0}, {"hub_weight": -1}, {"lexical_weight": float("nan")}, {"candidates": 0}):
        with pytest.raises(ConfigError):
            SimilarPapers(index(ids, x), None, **bad)
