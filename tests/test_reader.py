"""Libraries, explained recommendations, interests, feeds and the reader API, in-process over the
real app, store and model."""

from __future__ import annotations

import html
import re

import feedparser
import numpy as np
import pytest
from fastapi.testclient import TestClient

from conftest import DATA
from paperboy.services import library
from paperboy.services.recommend import spherical_kmeans, vendi
from paperboy.web.app import create_app
from test_web import sign_up


def import_zotero(client) -> str:
    token = sign_up(client, "reader")
    bib = (DATA / "library" / "zotero.bib").read_bytes()
    r = client.post("/library/import", data={"csrf": token, "folder": "zotero"},
                    files={"file": ("zotero.bib", bib, "application/x-bibtex")})
    r = wait_for_import(client, r)
    assert "6 papers" in r.text and "missing title" in r.text and "zotero.bib:" in r.text
    return token


def wait_for_import(client, answer, seconds: float = 120.0):
    """An import is a background job: the form answers with its status page at once, which
    reloads itself until the job is done (the app's job runner does it)."""
    import time

    assert answer.status_code == 200 and re.search(r"/library/import/\d+$", str(answer.url)), answer.text[:300]
    deadline = time.monotonic() + seconds
    while 'http-equiv="refresh"' in answer.text and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = client.get(str(answer.url))
    assert 'http-equiv="refresh"' not in answer.text, "the import did not finish"
    return answer


def rec_titles(client) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'<article class="entry rec">.*?<h2><a href="[^"]+">(.*?)</a>', client.get("/recommendations").text, re.S)]


def test_import_then_explained_recommendations_and_dismiss_changes_the_feed(client, engine):
    token = import_zotero(client)
    lib = client.get("/library").text
    assert "Attention Is All You Need" in lib and "zotero" in lib
    page = client.get("/recommendations").text
    titles = rec_titles(client)
    assert titles and "Attention Is All You Need" not in titles  # never what the reader saved
    assert page.count("Why:</strong> matches your interest") == len(titles)
    assert "close to \u201c" in page  # names the library papers it is near
    # The language-model papers of the corpus come first for a deep-learning library.
    assert any(w in " ".join(titles[:3]) for w in ("Language", "Text", "Vision"))

    r = client.post("/interests/feed", data={"csrf": token})
    feed_url = re.search(r'id="feed-url">(/feeds/recommendations/[\w-]+\.atom)<', r.text).group(1)
    before = feedparser.parse(client.get(feed_url).content)
    uid = engine.store.user_by_name("reader")["id"]
    assert [e.title for e in before.entries] == [r.paper.title for r in library.recommend(engine, uid, 30)[0]]

    pid = int(re.search(r'name="paper_id" value="(\d+)"', page).group(1))
    first = engine.store.get_papers([pid])[pid].title
    assert client.post("/feedback", data={"paper_id": pid, "kind": "dismiss", "csrf": token},
                       follow_redirects=False).status_code == 303
    assert first not in rec_titles(client)
    after = feedparser.parse(client.get(feed_url).content)
    assert first in [e.title for e in before.entries] and first not in [e.title for e in after.entries]

    client.post("/interests/feed", data={"csrf": token})  # a new link revokes the old one
    assert client.get(feed_url).status_code == 404


def test_statement_is_a_cold_start_and_rules_filter(client, engine):
    token = sign_up(client, "newbie")
    assert "No recommendations yet" in client.get("/recommendations").text
    client.post("/interests/profile", data={"csrf": token, "statement": "quantum cosmology, the wave function of the universe",
                                            "include_terms": "universe", "exclude_terms": "black hole"})
    titles = rec_titles(client)
    assert titles and not any("black hole" in t.lower() for t in titles)
    page = client.get("/recommendations").text
    assert "your interest statement" in page and "mentions universe" in page
    client.post("/interests/profile", data={"csrf": token, "statement": "quantum cosmology", "categories": "hep-ph"})
    recs, _ = library.recommend(engine, engine.store.user_by_name("newbie")["id"])
    assert recs and all(any(c.startswith("hep-ph") for c in r.paper.categories) for r in recs)


def test_interests_rename_mute_delete_reset(client, engine):
    token = import_zotero(client)
    user = engine.store.user_by_name("reader")
    reader, _ = library.reader_for(engine, user["id"])
    interests = engine.recommender().interests(reader)
    assert len(interests) == 2 and interests[0].weight > interests[1].weight
    big, small = interests
    client.post("/interests/edit", data={"csrf": token, "key": big.key, "action": "rename", "name": "my DL papers"})
    assert "my DL papers" in client.get("/interests").text and "my DL papers" in client.get("/recommendations").text
    client.post("/interests/edit", data={"csrf": token, "key": big.key, "action": "mute"})
    recs, _ = library.recommend(engine, user["id"])
    assert recs and {r.interest.key for r in recs} == {small.key}
    client.post("/interests/edit", data={"csrf": token, "key": small.key, "action": "delete"})
    reader, _ = library.reader_for(engine, user["id"])
    assert not set(small.members) & set(reader.positives)
    client.post("/interests/reset", data={"csrf": token})
    reader, _ = library.reader_for(engine, user["id"])
    assert set(small.members) <= set(reader.positives) and not reader.muted and not reader.names
    assert len(engine.store.saves(user["id"])) == 6  # the library stays


def test_one_reader_never_sees_anothers_library(client, engine):
    import_zotero(client)
    other = TestClient(create_app(engine))
    token = sign_up(other, "someone")
    assert "Attention Is All You Need" not in other.get("/library").text
    assert "Nothing saved yet" in other.get("/library?folder=zotero").text
    user = engine.store.user_by_name("reader")
    r = other.post("/interests/edit", data={"csrf": token, "key": "p1", "action": "rename", "name": "x"},
                   follow_redirects=False)
    assert r.status_code == 303 and engine.store.interest_prefs(user["id"]) == {}
    r = other.post("/settings/tokens", data={"csrf": token, "name": "t"})
    auth = {"Authorization": "Bearer " + re.search(r'id="new-token">(pb_[\w-]+)<', r.text).group(1)}
    assert other.get("/api/library", headers=auth).json() == []
    assert client.get("/api/library").status_code == 403  # a session cookie is not an API token


def test_reader_api(client, engine):
    token = sign_up(client, "api-reader")
    r = client.post("/settings/tokens", data={"csrf": token, "name": "t"})
    auth = {"Authorization": "Bearer " + re.search(r'id="new-token">(pb_[\w-]+)<', r.text).group(1)}
    for ref in ("0704.0001", "gr-qc/9210004"):
        assert client.post("/api/library", json={"ref": ref, "folder": "to read"}, headers=auth).json()["changed"]
    assert [x["folder"] for x in client.get("/api/library", headers=auth).json()] == ["to read", "to read"]
    body = client.get("/api/recommendations", params={"k": 5}, headers=auth).json()
    assert len(body["recommendations"]) == 5 and all(r["why"] for r in body["recommendations"])
    first = body["recommendations"][0]["paper"]["id"]
    assert client.post("/api/feedback", json={"ref": first, "kind": "dismiss"}, headers=auth).status_code == 200
    again = client.get("/api/recommendations", params={"k": 5}, headers=auth).json()
    assert first not in [r["paper"]["id"] for r in again["recommendations"]]
    key = client.get("/api/interests", headers=auth).json()[0]["key"]
    assert client.post(f"/api/interests/{key}", json={"name": "physics"}, headers=auth).json()["name"] == "physics"
    assert client.post("/api/feedback", json={"ref": first, "kind": "love"}, headers=auth).status_code == 400


def test_feeds_are_valid_atom_with_full_entries(client):
    for path in ("/feeds/daily.atom", "/feeds/trending.atom", "/feeds/search.atom?q=quantum+cosmology"):
        r = client.get(path)
        assert r.headers["content-type"].startswith("application/atom+xml")
        feed = feedparser.parse(r.content)
        assert feed.bozo == 0 and feed.version == "atom10" and feed.entries, path
        for e in feed.entries:
            assert e.title and e.summary and e.link.startswith("http://127.0.0.1:8000/papers/") and e.published, path
            assert e.get("authors"), path
    assert client.get("/feeds/recommendations/not-a-token.atom").status_code == 404


def test_kmeans_and_vendi():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 16))
    x = np.vstack([a + 0.05 * rng.normal(size=(10, 16)), b + 0.05 * rng.normal(size=(5, 16))])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = spherical_kmeans(x, 2)
    assert len(set(labels[:10])) == 1 and len(set(labels[10:])) == 1 and labels[0] != labels[10]
    same = np.tile(x[:1], (4, 1))
    ortho = np.eye(4)
    assert vendi(same) == pytest.approx(1.0) and vendi(ortho) == pytest.approx(4.0)


def test_eval_recs_parts():
    from paperboy.eval.recs import score, simulate, topics

    titles = {i: f"Quantum key distribution with {w}" for i, w in enumerate(["light", "atoms", "noise"] * 10)}
    titles |= {100 + i: f"Bose-Einstein condensate of {w}" for i, w in enumerate(["rubidium", "sodium"] * 12)}
    titles |= {200 + i: f"Paper number {i}" for i in range(15)}  # too rare to be a topic
    rng = np.random.default_rng(0)
    found = topics(titles, 20, 100, 5, rng)
    assert set(found) == {"quantum key distribution", "bose-einstein condensate"}
    readers = simulate(found, 4, 10, rng)
    for r in readers:
        assert len(r.library) == 10 * len(r.topics) and not set(r.library) & r.hidden and r.hidden
    assert score([1, 2, 3], {1, 3}, 3) == (1.0, pytest.approx((1 + 1 / 2) / (1 + 1 / np.log2(3))))
    assert score([5, 6], {1}, 2) == (0.0, 0.0)


def test_eval_recs_needs_an_embedded_corpus(engine):
    from paperboy.errors import ConfigError
    from paperboy.eval.recs import evaluate

    with pytest.raises(ConfigError, match="100\\+ papers"):
        evaluate(engine)


def test_tfidf_index_incremental_persistent_and_svm(engine, tmp_path):
    from paperboy.index.tfidf import TfidfIndex

    d = tmp_path / "tfidf"
    idx = TfidfIndex(d)
    assert idx.sync(engine.store) == engine.store.stats()["papers"] and idx.sync(engine.store) == 0
    again = TfidfIndex(d)  # reloaded from disk, nothing to redo
    assert again.synced == idx.synced and again.matrix.shape == idx.matrix.shape and again.sync(engine.store) == 0
    engine.ingest(DATA / "hf_scrape_excerpt.json")  # 2 new papers, 4 known ones (unchanged text)
    assert again.sync(engine.store) >= 2 and len(again.ids) == again.matrix.shape[0]
    assert sorted(i for i in again.ids if i >= 0) == sorted(set(int(i) for i in again.ids if i >= 0))
    cosmo = [engine.store.get_paper(r).id for r in ("gr-qc/9210004",)]
    scores = again.svm_scores(cosmo, [], 5, exclude=set(cosmo))
    assert len(scores) == 5 and max(scores.values()) == 1.0 and cosmo[0] not in scores
    top = engine.store.get_papers([max(scores, key=scores.get)])
    assert "quantum" in next(iter(top.values())).title.lower()


def test_tfidf_rows_are_memory_mapped_appended_in_memory_and_read_from_the_old_npz_form(engine, tmp_path):
    import json

    import scipy.sparse as sp

    from paperboy.index.generations import read_sidecar, save_generation
    from paperboy.index.tfidf import SIDE, TfidfIndex

    def on_file(a) -> bool:  # a view (of a view ...) of a memory-mapped file
        while a is not None and not isinstance(a, np.memmap):
            a = a.base
        return a is not None

    d = tmp_path / "tfidf"
    built = TfidfIndex(d)
    built.sync(engine.store)
    mapped = TfidfIndex(d)
    assert on_file(mapped.matrix.base.data) and on_file(mapped.titles.base.indices) and not on_file(built.matrix.base.data)
    rows = np.random.default_rng(0).permutation(len(built.ids))[:20]
    assert abs(mapped.matrix[rows] - built.matrix[rows]).sum() == 0 and abs(mapped.titles[3] - built.titles[3]).sum() == 0
    base = mapped.matrix.base
    engine.ingest(DATA / "hf_scrape_excerpt.json")  # new papers: appended in memory, the file untouched
    assert mapped.sync(engine.store, save=False) >= 2 and mapped.matrix.base is base
    assert mapped.matrix.shape[0] == len(mapped.ids) > len(built.ids)
    pos = [engine.store.get_paper("gr-qc/9210004").id]
    want = mapped.svm_scores(pos, [], 10, exclude=set(pos))
    mapped.sync(engine.store)  # a saving sync writes it all
    reloaded = TfidfIndex(d)
    assert abs(reloaded.matrix.tocsr() - mapped.matrix.tocsr()).sum() == 0
    assert reloaded.svm_scores(pos, [], 10, exclude=set(pos)) == pytest.approx(want)
    # the form saved before (whole .npz matrices) still loads, and the next saving sync maps it
    old = tmp_path / "old"

    def npz(m):
        def write(p):
            with open(p, "wb") as f:
                sp.save_npz(f, m.tocsr())
        return write

    vocab = {k: int(v) for k, v in reloaded.vectorizer.vocabulary_.items()}
    save_generation(old, SIDE, {"idf": np.asarray(reloaded.vectorizer.idf_, np.float64), "ids": reloaded.ids},
                    {"synced": reloaded.synced, "fitted_on": reloaded.fitted_on, "rows": len(reloaded.ids),
                     "terms": len(vocab)},
                    files={"vocab": ("json", lambda p: p.write_text(json.dumps(vocab))),
                           "matrix": ("npz", npz(reloaded.matrix)), "titles": ("npz", npz(reloaded.titles))})
    legacy = TfidfIndex(old)
    assert abs(legacy.matrix.tocsr() - reloaded.matrix.tocsr()).sum() == 0 and legacy.sync(engine.store) == 0
    assert "text_data" in read_sidecar(old, SIDE)["files"] and "matrix" not in read_sidecar(old, SIDE)["files"]
    assert not on_file(legacy.matrix.base.data) and on_file(TfidfIndex(old).matrix.base.data)
