"""`paperboy eval similar`: its metrics equal a direct computation, on a real embedded store."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import DATA
from paperboy.cli import main
from paperboy.engine import Engine
from paperboy.errors import FormatError
from paperboy.eval.similar import list_metrics
from paperboy.eval.topics import read_rows

TOPICS = DATA / "topics_excerpt.jsonl"


def test_list_metrics_by_hand():
    # rows 0-2 share a folder, row 3 has no related paper; k = 2
    rel = [{1, 2}, {0, 2}, {0, 1}, set()]
    lists = [[1, 3], [3, 2], [3, 0], [0, 1]]
    m = list_metrics(lists, rel, 2)
    assert m["queries"] == 3
    assert m["precision"] == pytest.approx((1 / 2 + 1 / 2 + 1 / 2) / 3)
    assert m["recall"] == pytest.approx((1 / 2 + 1 / 2 + 1 / 2) / 3)
    ideal = 1 + 1 / math.log2(3)
    assert m["ndcg"] == pytest.approx((1 / ideal + (1 / math.log2(3)) / ideal + (1 / math.log2(3)) / ideal) / 3)
    occ = np.array([2, 2, 1, 3])  # how often rows 0..3 are listed
    assert m["max_occurrence"] == 3 and m["never_listed"] == 0.0
    assert m["skewness"] == pytest.approx(((occ - occ.mean()) ** 3).mean() / occ.std() ** 3)


def direct(ids, lists, folders, k):
    """P@k and N_k from scratch: related = shares a folder; lists of paper ids."""
    hits, queries = 0.0, 0
    for pid, top in zip(ids, lists):
        rel = set().union(*(f for f in folders.values() if pid in f)) - {pid}
        if rel:
            queries += 1
            hits += len([j for j in top[:k] if j in rel]) / k
    occ = {pid: 0 for pid in ids}
    for top in lists:
        for j in top[:k]:
            occ[j] += 1
    return hits / queries, max(occ.values()), sum(v == 0 for v in occ.values()) / len(occ)


def test_eval_similar_matches_direct_computation(tmp_path):
    home = tmp_path / "home"
    res = CliRunner().invoke(main, ["--home", str(home), "eval", "similar", str(TOPICS), "--json"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{"):])
    rows = read_rows(TOPICS)
    assert out["papers"] == len({r["url"] for r in rows}) and out["folders"] == len({r["topic_folder"] for r in rows})
    assert out["unmatched_rows"] == 0 and set(out["methods"]) == {"paperboy", "cosine", "tfidf", "arxiv-sanity"}

    with Engine.from_settings(home=home / "eval" / TOPICS.name) as engine:  # the eval's own store
        ids, mat = engine.vectors().matrix()
        mat = np.asarray(mat, np.float32)  # the index keeps f16
        ids = [int(i) for i in ids]
        folders: dict[str, set[int]] = {}
        for r in rows:
            folders.setdefault(r["topic_folder"], set()).add(engine.store.get_paper(r["url"]).id)
        sims = mat @ mat.T
        np.fill_diagonal(sims, -np.inf)
        cosine = [[ids[j] for j in np.argsort(-sims[n], kind="stable")[:10]] for n in range(len(ids))]
        page = [[p.id for p, _ in engine.similar(pid, 10)] for pid in ids]  # as paper pages list them
    for name, lists in (("cosine", cosine), ("paperboy", page)):
        p, mx, never = direct(ids, lists, folders, 10)
        got = out["methods"][name]
        assert got["precision"] == pytest.approx(p, abs=1e-9), name
        assert got["max_occurrence"] == mx and got["never_listed"] == pytest.approx(never), name
    for m in out["methods"].values():  # related papers are in the same folder: far above chance (~0.15)
        assert 0.4 < m["precision"] <= 1 and 0 <= m["never_listed"] < 1


def test_topic_file_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    for text, why in (('{"title": "x"}\n', "topic_folder"), ("[1]\n", "JSON object"), ("{nope\n", "not JSON"),
                      ("", "no rows"), ('{"title": "x", "topic_folder": 3}\n', "topic_folder")):
        bad.write_text(text)
        with pytest.raises(FormatError, match=why):
            read_rows(bad)
    res = CliRunner().invoke(main, ["--home", str(tmp_path / "h"), "eval", "similar", str(bad)])
    assert res.exit_code != 0 and "topic_folder" in res.output
