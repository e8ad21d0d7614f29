"""Derived indexes follow the store (issue 9, defect 4): papers and vectors written by another process
(the CLI, cron, another worker) are found by a running server within seconds, in every worker, by
keyword, by meaning and among similar papers; TF-IDF rows and hub scores follow too; a tantivy writer
lock held elsewhere is waited out, never a crash."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from paperboy.engine import Engine
from support import free_port, serving

CLI = [str(Path(sys.executable).with_name("paperboy"))]  # the installed command, as an operator runs it


def record(arxiv_id: str, title: str, abstract: str) -> dict:
    return {"id": arxiv_id, "submitter": "T. Tester", "authors": "T. Tester, U. Other", "title": title,
            "comments": None, "journal-ref": None, "doi": None, "report-no": None, "categories": "cs.IR",
            "license": None, "abstract": abstract, "versions": [{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}],
            "update_date": "2008-11-26", "authors_parsed": [["Tester", "T.", ""], ["Other", "U.", ""]]}


PASTA = record("0705.99001", "Zorblattic pasta: slow cooking of tomato sauce for spaghetti",
               "We study recipes for cooking spaghetti with a zorblattic tomato sauce, garlic, basil and olive "
               "oil, and how long the sauce should simmer in the kitchen before dinner is served.")
BREAD = record("0705.99002", "Spaghetti with tomato sauce: a sourdough-free weeknight pasta recipe",
               "A quick pasta recipe: boil the spaghetti, simmer a tomato sauce with garlic and basil, and serve "
               "the pasta with olive oil and parmesan for dinner.")


def write_jsonl(path: Path, *records: dict) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([*CLI, "--home", str(home), *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def poll(check, seconds: float = 30.0, every: float = 0.2):
    """``check()`` until it returns something truthy; fails after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s")
        time.sleep(every)


@pytest.fixture
def home(built_home):
    return built_home


@pytest.fixture
def server(home):
    """``paperboy serve --workers 2`` on a free port over ``home``; yields its base URL."""
    port = free_port()
    served = serving([*CLI, "--home", str(home), "serve", "--port", str(port), "--workers", "2"], port,
                     ready_path="/api/search?q=quantum&mode=bm25", timeout=90)
    with served as base:
        yield base
    out = served.output
    assert "Traceback" not in out, out


def ids_for(base: str, q: str, mode: str) -> list[str]:
    r = httpx.get(f"{base}/api/search", params={"q": q, "mode": mode}, timeout=60)
    assert r.status_code == 200, r.text
    return [h["paper"]["id"] for h in r.json()["hits"]]


def test_server_workers_follow_cli_ingest_and_embed(home, server, tmp_path):
    base = server
    assert ids_for(base, "zorblattic", "bm25") == []
    for _ in range(6):  # load the model in both workers now, so the wait below measures following only
        assert ids_for(base, "quantum gravity", "dense")
    t0 = time.monotonic()
    cli(home, "ingest", str(write_jsonl(tmp_path / "new.jsonl", PASTA, BREAD)))
    ingested = time.monotonic()
    # every worker follows, not just one (the requests are spread over both): 8 answers in a row
    poll(lambda: all(set(ids_for(base, "zorblattic sourdough", "bm25")) == {PASTA["id"], BREAD["id"]}
                     for _ in range(8)), 15)
    keyword_after = time.monotonic() - ingested
    # the default (hybrid) search keeps keyword hits that have no vector yet
    assert PASTA["id"] in ids_for(base, "zorblattic", "hybrid")
    assert httpx.get(f"{base}/api/papers/{PASTA['id']}/similar", timeout=60).json() == []  # no vector yet

    cli(home, "embed", "-q")
    embedded = time.monotonic()

    def similar_has_bread():
        r = httpx.get(f"{base}/api/papers/{PASTA['id']}/similar", params={"k": 3}, timeout=60)
        return r.status_code == 200 and r.json() and r.json()[0]["id"] == BREAD["id"]
    def dense_finds_both():
        return set(ids_for(base, "how to cook spaghetti in tomato sauce", "dense")[:2]) == {PASTA["id"], BREAD["id"]}
    poll(lambda: all(similar_has_bread() and dense_finds_both() for _ in range(8)), 30)  # both workers
    vectors_after = time.monotonic() - embedded
    print(f"keyword search followed the CLI ingest in {keyword_after:.1f} s, vectors the CLI embed in "
          f"{vectors_after:.1f} s (both workers; {time.monotonic() - t0:.1f} s in all)")


def test_engine_follows_another_process_in_every_index(home, tmp_path):
    """One long-lived engine (a web worker) with every index loaded; the CLI in another process
    ingests and embeds; after ``refresh`` the BM25, vector, TF-IDF and hub-score indexes all hold
    the new papers, without a restart, and the searcher and recommender use the new vectors."""
    with Engine.from_settings(home=home, index_sync_seconds=0.2) as e:
        pasta_ref = PASTA["id"]
        assert not e.search("zorblattic", mode="bm25").hits
        vectors, lexical, tfidf = e.vectors(), e.lexical, e.tfidf()
        n_vec, n_tfidf = len(vectors), int((tfidf.ids >= 0).sum())
        e.similar(1)  # hub scores loaded
        rec = e.recommender()
        cli(home, "ingest", str(write_jsonl(tmp_path / "new.jsonl", PASTA, BREAD)))
        cli(home, "embed", "-q")
        time.sleep(0.25)  # past the throttle
        changed = e.refresh()
        assert changed["lexical"] >= 2 and changed["vectors"] == 2 and changed["tfidf"] == 2, changed
        assert e.lexical is lexical and e.vectors() is vectors and e.tfidf() is tfidf  # updated in place
        pasta = e.store.get_paper(pasta_ref)
        assert [h.paper.id for h in e.search("zorblattic", mode="bm25").hits] == [pasta.id]
        assert e.searcher().vectors is vectors and len(vectors) == n_vec + 2
        assert e.search("zorblattic cooking of tomato sauce", mode="dense").hits[0].paper.id == pasta.id
        assert int((tfidf.ids >= 0).sum()) == n_tfidf + 2 and pasta.id in set(tfidf.ids.tolist())
        bread = e.store.get_paper(BREAD["id"])
        assert e.similar(pasta.id, k=1)[0][0].id == bread.id
        assert pasta.id in set(e.similar_service(vectors).hub_scores().ids.tolist())
        assert e.recommender() is not rec  # rebuilt over the grown index
        assert e.keyword_hits(["zorblattic"], 5)[0][0] == pasta.id


def test_writes_in_this_process_are_seen_at_once(home, tmp_path):
    with Engine.from_settings(home=home, index_sync_seconds=3600) as e:
        assert not e.search("zorblattic", mode="bm25").hits
        e.ingest(write_jsonl(tmp_path / "new.jsonl", PASTA))
        assert e.search("zorblattic", mode="bm25").hits  # not after the hour-long throttle


def test_refresh_is_throttled_and_cheap(home):
    with Engine.from_settings(home=home, index_sync_seconds=3600) as e:
        e.search("quantum", mode="bm25")
        e.refresh(force=True)
        t = time.perf_counter()
        for _ in range(1000):
            assert e.refresh() == {}
        throttled = (time.perf_counter() - t) / 1000
        t = time.perf_counter()
        for _ in range(100):
            assert e.refresh(force=True) == {}
        checked = (time.perf_counter() - t) / 100
    print(f"refresh: {throttled * 1e6:.1f} us throttled, {checked * 1e6:.0f} us checking the store")
    assert throttled < checked


def test_writer_lock_held_by_another_process_is_waited_out(home, tmp_path):
    """Another process holds tantivy's writer lock (and indexes nothing): searches go on with the
    index as it is, no error; once the lock is free the next refresh indexes the new papers."""
    with Engine.from_settings(home=home) as e:
        assert len(e.lexical) == 56  # built
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time, tantivy\n"
        "from paperboy.index.lexical import _schema\n"
        f"w = tantivy.Index(_schema(), path={str(home / 'index' / 'lexical')!r}, reuse=True).writer()\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with Engine.from_settings(home=home, index_sync_seconds=0.1) as e:
            assert e.search("quantum", mode="bm25").hits
            e.ingest(write_jsonl(tmp_path / "new.jsonl", PASTA))
            errors = []

            def search_many():
                try:
                    for _ in range(20):
                        e.search("zorblattic quantum", mode="bm25")
                        time.sleep(0.01)
                except Exception as ex:  # noqa: BLE001 - collected and asserted below
                    errors.append(ex)
            threads = [threading.Thread(target=search_many) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not errors
            assert not e.search("zorblattic", mode="bm25").hits  # not indexed: the lock is elsewhere
            holder.stdin.close()
            holder.wait(timeout=30)
            poll(lambda: e.search("zorblattic", mode="bm25").hits, 10)
    finally:
        if holder.poll() is None:
            holder.kill()
