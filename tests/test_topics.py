"""The topic map (issue 13): NMF topics fitted on real papers agree with human topic folders, read
well, are saved as derived data, take in new papers without a refit, filter search (topic:NAME),
and show on /topics, /topics/{slug}, the API and an Atom feed, in-process and in Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import feedparser
import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sklearn.metrics import normalized_mutual_info_score

from paperboy.cli import main as cli
from paperboy.engine import Engine
from paperboy.eval.topics import read_rows, resolve
from paperboy.index.topics import SIDE, TopicModel, default_k, slugify
from paperboy.query import QueryError
from paperboy.services.topics import fit_topics, topics_dir
from paperboy.web.app import create_app
from support import CHROMIUM, free_port, serving

DATA = Path(__file__).parent / "data"
EXCERPT = DATA / "topics_excerpt.jsonl"  # 110 real papers in 7 human topic folders


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A home with the 110 folder papers ingested (no embedding: NMF works on TF-IDF) and 7 topics fitted."""
    home = tmp_path_factory.mktemp("topics") / "home"
    with Engine.from_settings(home=home, store="sqlite", secret_key="k") as e:
        e.ingest(EXCERPT, "jsonl", mapping={"id": "url", "date": "year"})
        model = fit_topics(e, k=7)
        folders, missed = resolve(e.store, read_rows(EXCERPT))
    assert missed == 0
    return home, model, folders


@pytest.fixture
def home(fitted, tmp_path):
    h = tmp_path / "home"
    shutil.copytree(fitted[0], h)
    return h


@pytest.fixture
def eng(home):
    with Engine.from_settings(home=home, store="sqlite", secret_key="k") as e:
        yield e


def test_topics_agree_with_the_folders_above_chance_and_read_well(fitted):
    _, model, folders = fitted
    truth = {pid: f for f, ids in folders.items() for pid in ids}
    ids = [int(i) for i in model.ids if int(i) in truth]
    assert len(ids) >= 100
    labels = [truth[i] for i in ids]
    got = [model.topic_of(i)[0] for i in ids]
    nmi = normalized_mutual_info_score(labels, got)
    rng = np.random.default_rng(0)
    chance = max(normalized_mutual_info_score(rng.permutation(labels), got) for _ in range(20))
    assert nmi > 0.4 and nmi > chance + 0.25, (nmi, chance)
    assert model.k == 7 and len(set(model.slugs)) == 7
    for label, slug, terms in zip(model.labels, model.slugs, model.terms):
        words = label.split(", ")
        assert 1 <= len(words) <= 3 and len(set(words)) == len(words), label
        assert all(re.fullmatch(r"[a-z0-9]+( [a-z0-9]+)?", w) for w in words), label
        assert len({w[:4] for t in words for w in t.split()}) == sum(len(t.split()) for t in words), label
        assert slug == slugify(slug) and len(terms) >= 5 and len(set(terms)) == len(terms)
    assert any("quantum" in label for label in model.labels)  # the corpus' own words, readable
    weights = np.array([model.topic_of(i)[1] for i in ids])
    assert ((weights > 0) & (weights <= 1)).all()


def test_default_k_follows_the_corpus_size():
    assert default_k(110) == 5 and default_k(2026) == 22 and default_k(38_858) == 60 and default_k(10) == 2


def test_the_fit_is_saved_and_reloads_the_same(eng, fitted):
    _, model, _ = fitted
    again = eng.topics().current()
    assert again is not None and again.labels == model.labels and again.slugs == model.slugs
    assert np.array_equal(again.ids, model.ids) and np.array_equal(again.topic, model.topic)
    assert np.allclose(again.xy, model.xy) and np.isfinite(again.xy).all() and (np.abs(again.xy) < 2).all()
    side = json.loads((topics_dir(eng.settings["home"]) / SIDE).read_text())
    assert side["method"] == "nmf" and side["k"] == 7 and side["rows"] == len(model.ids)


def test_new_papers_join_their_topics_on_sync_without_a_refit(eng):
    model = eng.topics().current(eng.tfidf())
    before_h, fitted_at, n = model.components.copy(), model.meta["fitted_at"], len(model.ids)
    new = [{"id": f"2501.0000{i}", "title": t, "abstract": a, "authors": "A. Author", "date": "2025-01-0%d" % (i + 1)}
           for i, (t, a) in enumerate([
               ("Quantum computers and quantum algorithms", "We discuss quantum computation, qubits and quantum "
                "algorithms for quantum computers, with gates and circuits."),
               ("Surface codes for quantum error correction", "Quantum error correction with surface codes "
                "protects logical qubits from noise; we decode the syndrome.")])]
    path = eng.settings["home"] / "new.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in new))
    eng.ingest(path, "jsonl")
    eng.refresh(force=True)
    model = eng.topics().current(eng.tfidf())
    assert len(model.ids) == n + 2 and model.meta["fitted_at"] == fitted_at
    assert np.array_equal(model.components, before_h)  # assigned, not refitted
    for r in new:
        p = eng.paper(r["id"])
        got = eng.topics().paper_topic(p.id)
        assert got is not None and "quantum" in got["label"] + " ".join(model.terms[model.find(got["slug"])]), got
    eng.embed()  # the batch step (embed) saves the assignments for every other process
    assert len(TopicModel.load(topics_dir(eng.settings["home"])).ids) == n + 2


def test_topic_filters_search(eng):
    model = eng.topics().current(eng.tfidf())
    t = next(i for i, lab in enumerate(model.labels) if "quantum" in lab)
    members = set(model.members(t).tolist())
    res = eng.search(f"topic:{model.slugs[t]}", per_page=100, mode="bm25")
    assert res.total == len(members) and {h.paper.id for h in res.hits} == members
    by_label = eng.search(f'topic:"{model.labels[t]}"', per_page=100, mode="bm25")
    assert {h.paper.id for h in by_label.hits} == members
    words = eng.search(f"learning topic:{model.slugs[t]}", per_page=100, mode="bm25")
    assert {h.paper.id for h in words.hits} <= members
    everywhere = eng.search("learning", per_page=100, mode="bm25")
    assert len(everywhere.hits) > len(words.hits)
    other = (t + 1) % model.k
    both = eng.search(f"topic:{model.slugs[t]} topic:{model.slugs[other]}", per_page=100, mode="bm25")
    assert {h.paper.id for h in both.hits} == members | set(model.members(other).tolist())
    for bad, says in [("topic:no-such-topic", "no topic"), ("topic:" + "x" * 500, "no topic"),
                      ("-topic:" + model.slugs[t], "not supported")]:
        with pytest.raises(QueryError, match=says):
            eng.search(bad, mode="bm25")


def test_without_a_model_every_front_end_says_run_topics_fit(built_home):
    with Engine.from_settings(home=built_home, secret_key="k") as e, TestClient(create_app(e)) as c:
        r = c.get("/topics")
        assert r.status_code == 200 and "paperboy topics fit" in r.text
        for url in ("/api/topics", "/topics/anything", "/feeds/topics/anything.atom"):
            r = c.get(url)
            assert r.status_code == 404, url
        assert "paperboy topics fit" in c.get("/api/topics").text
        r = c.get("/search", params={"q": "topic:quantum"})
        assert r.status_code == 400 and "paperboy topics fit" in r.text
        res = CliRunner().invoke(cli, ["--home", str(built_home), "topics", "list"])
        assert res.exit_code == 1 and "paperboy topics fit" in res.output


def test_a_damaged_model_is_no_model_until_the_next_fit(eng, caplog):
    d = topics_dir(eng.settings["home"])
    (d / SIDE).write_text("{not json")
    assert eng.topics().current() is None
    assert "paperboy topics fit" in caplog.text
    fit_topics(eng, k=5)
    assert eng.topics().current().k == 5


def test_pages_api_and_feed(eng):
    model = eng.topics().current(eng.tfidf())
    with TestClient(create_app(eng)) as c:
        r = c.get("/topics")
        assert r.status_code == 200 and r.text.count("<svg") == 1 and "<script" not in r.text.split("<main")[1]
        for slug, label in zip(model.slugs, model.labels):
            assert f'href="/topics/{slug}"' in r.text and label.split(", ")[0] in r.text
        assert len(re.findall(r"<ellipse", r.text)) == model.k
        slug = model.slugs[int(np.argmax(model.sizes()))]
        page = c.get(f"/topics/{slug}")
        assert page.status_code == 200 and "Newest" in page.text and "Trending" in page.text
        assert 'class="region hl"' in page.text and f"/feeds/topics/{slug}.atom" in page.text
        api = c.get("/api/topics").json()
        assert api["method"] == "nmf" and len(api["topics"]) == model.k
        assert sum(t["papers"] for t in api["topics"]) == len(model.ids)
        one = c.get(f"/api/topics/{slug}").json()
        assert one["slug"] == slug and one["newest"] and all("title" in p for p in one["newest"])
        pid = int(model.members(model.slugs.index(slug))[0])
        paper = eng.store.get_papers([pid])[pid]
        got = c.get("/api/topics", params={"paper": paper.arxiv_id}).json()
        assert got["topic"]["slug"] == slug and 0 < got["topic"]["weight"] <= 1
        assert c.get("/api/topics", params={"paper": "9999.99999"}).status_code == 404
        feed = c.get(f"/feeds/topics/{slug}.atom")
        assert feed.status_code == 200 and feed.headers["content-type"].startswith("application/atom+xml")
        parsed = feedparser.parse(feed.content)
        assert not parsed.bozo and parsed.feed.title.startswith("paperboy topic:")
        assert len(parsed.entries) == min(50, len(model.members(model.slugs.index(slug))))
        for bad in ("..%2F..%2Fetc%2Fpasswd", "%3Cscript%3E", "A%20B", "x" * 300, "-", "a--b", "%00", "UPPER"):
            for url in (f"/topics/{bad}", f"/api/topics/{bad}", f"/feeds/topics/{bad}.atom"):
                r = c.get(url)
                assert r.status_code == 404, (url, r.status_code)
                assert "<script>" not in r.text


def test_the_readers_interests_are_placed_on_the_map(built_home):
    from test_web import sign_up

    with Engine.from_settings(home=built_home, secret_key="k") as e, TestClient(create_app(e)) as c:
        fit_topics(e, k=4)
        assert 'class="interest"' not in c.get("/topics").text
        token = sign_up(c, "mapreader")
        for pid in sorted(e.store.get_papers(list(range(1, 20))))[:4]:
            assert c.post("/library/save", data={"paper_id": pid, "csrf": token}, follow_redirects=False).status_code == 303
        page = c.get("/topics").text
        assert 'class="interest"' in page and "your interest" in page


def test_cli_fit_and_list(home):
    r = CliRunner().invoke(cli, ["--home", str(home), "topics", "fit", "--k", "6", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["topics"] == 6 and out["papers"] >= 100 and len(out["labels"]) == 6
    r = CliRunner().invoke(cli, ["--home", str(home), "topics", "list"])
    assert r.exit_code == 0 and len(r.output.strip().splitlines()) == 7
    r = CliRunner().invoke(cli, ["--home", str(home), "topics", "fit", "--k", "100000"])
    assert r.exit_code != 0


def test_map_and_topic_page_in_chromium(fitted, tmp_path, browser):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing")
    home = tmp_path / "home"
    shutil.copytree(fitted[0], home)
    shots = Path(os.environ.get("PAPERBOY_ARTIFACTS", tmp_path)) / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PAPERBOY_HOME=str(home), HF_HUB_OFFLINE="1")
    port = free_port()
    with serving([sys.executable, "-m", "paperboy.cli", "serve", "--port", str(port)], port, env=env,
                 ready_path="/api/openapi.json") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url + "/topics")
        svg = page.locator("svg.topicmap")
        assert svg.is_visible() and svg.bounding_box()["width"] > 600
        assert page.locator("svg.topicmap ellipse").count() == fitted[1].k
        page.screenshot(path=str(shots / "topics.png"), full_page=True)
        assert (shots / "topics.png").stat().st_size > 20_000
        page.locator("table.topics a").first.click()
        page.wait_for_url(re.compile(r"/topics/[a-z0-9-]+$"))
        assert page.locator("h2", has_text="Newest").is_visible()
        page.screenshot(path=str(shots / "topic.png"), full_page=True)
        page.goto(url + "/topics")
        page.locator("svg.topicmap a.label").last.click()  # a region's label is a link too
        page.wait_for_url(re.compile(r"/topics/[a-z0-9-]+$"))
        slug = page.url.rsplit("/", 1)[1]
        page.goto(url + f"/search?q=topic:{slug}")
        assert page.locator("article.entry").count() >= 1
        page.close()


def test_ensure_topics_fits_a_new_home_once(home):
    from paperboy.services.topics import ensure_topics

    shutil.rmtree(topics_dir(home))
    with Engine.from_settings(home=home, store="sqlite") as e:
        assert e.topics().current() is None
        model = ensure_topics(e)
        assert model is not None and model.k == default_k(len(model.ids))
        assert ensure_topics(e) is None  # a second `paperboy run` keeps the fitted model


def _upload(e, sid: str, title: str, abstract: str, day: str, source: str = "upload") -> int:
    from paperboy.models import PaperRecord

    e.store.upsert_papers([PaperRecord(source=source, source_id=sid, title=title, abstract=abstract,
                                       authors=["Zed Private"], submitted=day)])
    return e.store.paper_ids_by_source(source, [sid])[sid]


QUANTUM = ("Surface codes for quantum error correction protect logical qubits; we decode the syndrome of "
           "quantum circuits and quantum computers with gates.")


def test_upload_only_papers_stay_off_every_topic_list_count_and_the_map(eng):
    """A paper known only from a member's upload (anyone's metadata) is assigned a topic like any
    other, but no list, size, rise, ?paper= answer or map dot shows it; a public paper does count."""
    eng.topics().current(eng.tfidf())
    with TestClient(create_app(eng)) as c:
        before = c.get("/api/topics").json()
        uid = _upload(eng, "u-topic", "Zanzibar private draft on quantum codes", QUANTUM, "2031-01-01")
        eng.lexical_in_background = False  # as the CLI does: this engine follows on refresh
        eng.refresh(force=True)
        model = eng.topics().current(eng.tfidf())
        assert model.topic_of(uid) is not None  # assigned: the filter is what keeps it out
        slug = model.slugs[model.topic_of(uid)[0]]
        after = c.get("/api/topics").json()
        assert after == before  # sizes, recent counts, rise, rising and the paper count unchanged
        assert c.get("/api/topics", params={"paper": str(uid)}).json() == {"id": str(uid), "topic": None}
        one = c.get(f"/api/topics/{slug}").json()
        assert all(p["id"] != str(uid) for p in one["newest"] + one["latest_day"] + one["trending"])
        for url in (f"/topics/{slug}", f"/feeds/topics/{slug}.atom", "/topics"):
            r = c.get(url)
            assert r.status_code == 200 and "Zanzibar" not in r.text, url
        assert f"Map of {before['papers']} papers" in c.get("/topics").text
        assert uid not in eng.topics().members_set(model.slugs.index(slug))
        # the control: the same text from a public source is on the map and in the counts
        pub = _upload(eng, "2031.00001", "Public quantum codes", QUANTUM, "2031-01-02", source="arxiv")
        eng.refresh(force=True)
        eng.topics().current(eng.tfidf())
        got = c.get("/api/topics").json()
        assert got["papers"] == before["papers"] + 1 and got["topics"] != before["topics"]
        topic = c.get("/api/topics", params={"paper": str(pub)}).json()["topic"]
        assert topic is not None
        assert str(pub) in {p["id"] for p in c.get(f"/api/topics/{topic['slug']}").json()["newest"]}


def test_a_home_without_a_topic_model_answers_without_building_tf_idf(built_home):
    shutil.rmtree(topics_dir(built_home), ignore_errors=True)
    with Engine.from_settings(home=built_home, secret_key="k") as e, TestClient(create_app(e)) as c:
        assert c.get("/topics").status_code == 200
        for url in ("/api/topics", "/api/topics?paper=1", "/topics/quantum", "/api/topics/quantum",
                    "/feeds/topics/quantum.atom"):
            assert c.get(url).status_code == 404, url
        assert c.get("/search", params={"q": "topic:quantum"}).status_code == 400
        assert e._tfidf is None  # nothing built the TF-IDF rows (1.3 s cold on a real home)


def test_topic_routes_run_off_the_event_loop_and_never_wait_for_the_follower(eng):
    """Each topic route's work runs on the heavy-read thread: while that thread is busy the route
    waits and the event loop still answers others; an assignment in progress (the follower's
    lock held, as after a big ingest) holds up no topic request."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    model = eng.topics().current(eng.tfidf())
    slug = model.slugs[0]
    routes = ["/topics", f"/topics/{slug}", "/api/topics", f"/api/topics/{slug}", f"/feeds/topics/{slug}.atom",
              "/api/topics?paper=" + str(int(model.ids[0]))]
    with TestClient(create_app(eng)) as c, ThreadPoolExecutor(len(routes)) as pool:
        busy = threading.Event()
        c.app.state.heavy.submit(busy.wait, 30)  # another request's heavy read holds the thread
        pending = [pool.submit(c.get, url) for url in routes]
        assert c.get("/api/openapi.json").status_code == 200  # the loop answers meanwhile
        assert not any(f.done() for f in pending), [routes[i] for i, f in enumerate(pending) if f.done()]
        busy.set()
        assert [f.result(30).status_code for f in pending] == [200] * len(routes)
        with eng.topics()._follow_lock:  # papers being assigned in the follower thread
            assert all(pool.submit(c.get, url).result(10).status_code == 200 for url in routes)


def test_the_follower_thread_catches_the_topic_model_up_and_requests_do_not(eng):
    import time

    eng.topics().current(eng.tfidf())
    with TestClient(create_app(eng)) as c:
        n = c.get("/api/topics").json()["papers"]
        _upload(eng, "2032.00001", "Quantum computers and quantum algorithms", QUANTUM, "2032-01-01",
                source="arxiv")
        eng.refresh(force=True)  # a request's refresh: the web process leaves TF-IDF and topics to the follower
        assert len(eng.topics().current().ids) == n
        deadline = time.monotonic() + 60
        while c.get("/api/topics").json()["papers"] == n and time.monotonic() < deadline:
            time.sleep(0.2)
        assert c.get("/api/topics").json()["papers"] == n + 1  # follow_loop assigned it


def test_the_map_interests_are_kept_per_reader_until_the_library_changes(built_home):
    from test_web import sign_up

    from paperboy.services.topics import MAP_INTERESTS, interest_points

    with Engine.from_settings(home=built_home, secret_key="k") as e, TestClient(create_app(e)) as c:
        fit_topics(e, k=4)
        token = sign_up(c, "cachereader")
        uid = e.store.user_by_name("cachereader")["id"]
        pids = sorted(e.store.get_papers(list(range(1, 30))))
        for pid in pids[:4]:
            c.post("/library/save", data={"paper_id": pid, "csrf": token}, follow_redirects=False)
        first = interest_points(e, uid)
        assert first and len(first) <= MAP_INTERESTS and interest_points(e, uid) is first  # kept
        c.post("/library/save", data={"paper_id": pids[10], "csrf": token}, follow_redirects=False)
        again = interest_points(e, uid)
        assert again is not first  # the library changed: made again
        assert again != [] and interest_points(e, uid) is again
        sign_up(c, "emptyreader")  # another reader: their own entry, no interests yet
        assert interest_points(e, e.store.user_by_name("emptyreader")["id"]) == []
        assert interest_points(e, uid) is again
