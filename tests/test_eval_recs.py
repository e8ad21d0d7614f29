"""`paperboy eval recs --topics`: readers from topic folders, metrics equal to a direct computation on
a real embedded store; the reader's SVM (index/tfidf.py) equals a direct fit on the stacked features."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DATA

from paperboy.cli import main
from paperboy.engine import Engine
from paperboy.eval.recs import MIN_FOLDER, simulate_folders
from paperboy.eval.topics import read_rows, resolve
from paperboy.services.recommend import Reader, vendi

TOPICS = DATA / "topics_excerpt.jsonl"


def test_folder_readers_split_each_folder():
    folders = {"a": list(range(30)), "b": list(range(100, 107)), "c": [200, 201, 202],  # c: too small to split
               "d": [28, 29, *range(300, 310)]}  # shares two papers with a
    readers = simulate_folders(folders, 30, 10, np.random.default_rng(0))
    assert len(readers) == 30 and [len(r.topics) for r in readers[:4]] == [1, 2, 3, 1]
    for r in readers:
        assert "c" not in r.topics and r.hidden and not set(r.library) & r.hidden
        every = set().union(*(folders[t] for t in r.topics))
        assert set(r.library) | r.hidden == every  # the rest of each folder is hidden
        assert len(r.library) == len(set(r.library))
        if r.topics == ["b"]:
            assert len(r.library) == 3 and len(r.hidden) == 4  # min(per_topic, n // 2) of 7
        if r.topics == ["a"]:
            assert len(r.library) == 10 and len(r.hidden) == 20
    assert MIN_FOLDER == 4


def by_hand(ranked, hidden, k):
    """recall@k = hits / min(k, |hidden|); nDCG@k with binary gains."""
    gains = [1 if p in hidden else 0 for p in ranked[:k]]
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(hidden))))
    return sum(gains) / min(k, len(hidden)), sum(g / math.log2(i + 2) for i, g in enumerate(gains)) / ideal


def test_eval_recs_topics_matches_direct_computation(tmp_path):
    home, k, n = tmp_path / "home", 10, 6
    res = CliRunner().invoke(main, ["--home", str(home), "eval", "recs", "--topics", str(TOPICS), "--readers", str(n),
                                    "--k", str(k), "--per-topic", "5", "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{"):])
    assert out["readers"] == n and out["k"] == k and set(out["methods"]) == {"paperboy", "centroid", "arxiv-sanity"}
    rows = read_rows(TOPICS)
    assert out["topics"] == len({r["topic_folder"] for r in rows})  # every folder has 4+ papers

    with Engine.from_settings(home=home / "eval" / TOPICS.name) as engine:  # the eval's own store
        folders, missed = resolve(engine.store, rows)
        assert missed == 0
        readers = simulate_folders(folders, n, 5, np.random.default_rng(0))  # evaluate's first draws, seed 0
        ids, mat = engine.vectors().matrix()
        ids, mat = [int(i) for i in ids], np.asarray(mat, np.float32)  # the index keeps f16
        row = {p: j for j, p in enumerate(ids)}
        rec = engine.recommender()
        got: dict[str, list[tuple[float, float, float]]] = {"paperboy": [], "centroid": []}
        for r in readers:
            assert r.library and r.hidden and not set(r.library) & r.hidden
            c = mat[[row[p] for p in r.library]].mean(0)
            s = mat @ (c / np.linalg.norm(c))
            s[[row[p] for p in r.library]] = -np.inf
            lists = {"centroid": [ids[j] for j in np.argsort(-s, kind="stable")[:k]],
                     "paperboy": [x.paper_id for x in rec.recommend(Reader(r.library), k)[0]]}
            for name, ranked in lists.items():
                assert len(ranked) == k and not set(ranked) & set(r.library)
                got[name].append((*by_hand(ranked, r.hidden, k), vendi(mat[[row[p] for p in ranked]])))
    for name, vals in got.items():
        m = out["methods"][name]
        assert m["recall"] == pytest.approx(np.mean([v[0] for v in vals]), abs=1e-9), name
        assert m["ndcg"] == pytest.approx(np.mean([v[1] for v in vals]), abs=1e-9), name
        assert m["vendi"] == pytest.approx(np.mean([v[2] for v in vals]), abs=1e-6), name
    for m in out["methods"].values():  # a folder's papers are far above chance (~5 of 93 in the top 10)
        assert 0.4 < m["recall"] <= 1 and 0.4 < m["ndcg"] <= 1 and 1 <= m["vendi"] <= k

    two = CliRunner().invoke(main, ["--home", str(home), "eval", "recs", "--topics", str(TOPICS), "--readers", "3",
                                    "--k", str(k), "--seed", "0", "--seed", "1", "--json"], catch_exceptions=False)
    assert two.exit_code == 0, two.output
    both = json.loads(two.output[two.output.index("{"):])
    assert [r["seed"] for r in both["runs"]] == [0, 1]
    assert both["mean"]["paperboy"]["recall"] == pytest.approx(
        (both["runs"][0]["methods"]["paperboy"]["recall"] + both["runs"][1]["methods"]["paperboy"]["recall"]) / 2)


def test_reader_svm_equals_a_direct_fit_on_stacked_features(engine):
    """svm_scores scores every paper block by block; a direct LinearSVC on the stacked matrix
    [text, 0.5 x title, 0.5 x embedding] (every paper a training row) must give the same top list."""
    import scipy.sparse as sp
    from sklearn import svm

    idx = engine.tfidf()
    dense_ids, vecs = engine.vectors().matrix()
    vecs = np.asarray(vecs, np.float32)  # the index keeps f16
    pos = {int(i): n for n, i in enumerate(dense_ids)}
    emb = np.array([vecs[pos[int(i)]] if int(i) in pos else np.zeros(vecs.shape[1]) for i in idx.ids])
    library = [int(i) for i in idx.ids[:4]]
    dislike = int(idx.ids[10])
    got = idx.svm_scores(library, [dislike], 8, set(library), (dense_ids, vecs), title_weight=0.5, dense_weight=0.5,
                         sample=0)
    x = sp.hstack([idx.matrix.tocsr(), 0.5 * idx.titles.tocsr(), sp.csr_matrix(0.5 * emb)]).tocsr()
    y = np.isin(idx.ids, library).astype(float)
    w = np.where(idx.ids == dislike, 3.0, 1.0)
    order = np.argsort(-y - (idx.ids == dislike) * 0.5, kind="stable")  # positives, the dislike, the rest
    clf = svm.LinearSVC(class_weight="balanced", max_iter=10000, tol=1e-4, C=0.01, random_state=0)
    clf.fit(x[order], y[order], sample_weight=w[order])
    d = clf.decision_function(x)
    d[np.isin(idx.ids, library)] = -np.inf
    top = np.argsort(-d)[:8]
    want = {int(idx.ids[i]): (d[i] - d[top].min()) / (d[top].max() - d[top].min()) for i in top}
    assert list(got) and set(got) == set(want) and dislike not in got
    assert all(got[i] == pytest.approx(want[i], abs=1e-6) for i in want)
    sampled = idx.svm_scores(library, [], 8, set(library), (dense_ids, vecs), sample=20)  # 20 background papers
    assert len(sampled) == 8 and max(sampled.values()) == 1.0 and not set(sampled) & set(library)
    assert sampled == idx.svm_scores(library, [], 8, set(library), (dense_ids, vecs), sample=20)  # deterministic
