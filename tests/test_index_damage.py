"""Damaged derived files (issue 9, defect 6): every index is rebuilt from the store when its files
cannot be read or fail a check, with one warning saying what and why, and every read path (the
``search`` and ``index`` commands, engine search, similar papers, recommendations, ``serve``) works
and returns what an undamaged home returns."""

import json
import logging
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlencode

import httpx
import numpy as np
import pytest
from click.testing import CliRunner

from paperboy.cli import main
from paperboy.engine import Engine
from paperboy.index.sync import vector_dir
from paperboy.index.vectors import VectorIndex
from paperboy.services import library
from support import free_port, serving

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SAVED = ("gr-qc/9210004", "gr-qc/9210006", "gr-qc/9210010")  # the reader's library
QUERY = "quantum mechanics closed systems"


def lexical_dir(home: Path) -> Path:
    return home / "index" / "lexical"


def vec_dir(home: Path) -> Path:
    return vector_dir(home, MODEL)


def one(d: Path, pattern: str) -> Path:
    (found,) = sorted(d.glob(pattern))
    return found


def garble_middle(p: Path) -> None:
    b = bytearray(p.read_bytes())
    n = len(b)
    b[n // 4:n // 2] = os.urandom(n // 2 - n // 4)
    p.write_bytes(bytes(b))


def truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def edit_json(p: Path, **changes) -> None:
    meta = json.loads(p.read_text())
    for k, v in changes.items():
        node = meta
        *path, last = k.split("__")
        for part in path:
            node = node[part]
        node[last] = v
    p.write_text(json.dumps(meta))


def other_dimension(home: Path) -> None:
    """A consistent, well-formed index of the right model with 8-dimensional vectors: passes every
    check of its own, but not the store's dimension."""
    d = vec_dir(home)
    shutil.rmtree(d)
    vi = VectorIndex(MODEL, 8)
    vi.upsert(np.arange(1, 57), np.random.default_rng(0).standard_normal((56, 8)))
    vi.synced = 10**6
    vi.save(d)


def nan_vectors(home: Path) -> None:
    p = one(vec_dir(home), "vectors-*.npy")
    a = np.load(p)
    np.save(p, np.full_like(a, np.nan))  # the right shape and dtype: only the values are wrong


# name -> (damage, the words the one warning must contain)
DAMAGE = {
    "lexical sidecar garbage": (lambda h: (lexical_dir(h) / "paperboy.json").write_text("{garbage"), "lexical"),
    "lexical sidecar not an object": (lambda h: (lexical_dir(h) / "paperboy.json").write_text("[1, 2]"), "lexical"),
    "tantivy meta.json deleted": (lambda h: (lexical_dir(h) / "meta.json").unlink(), "meta.json is missing"),
    "tantivy meta.json garbage": (lambda h: (lexical_dir(h) / "meta.json").write_text("{garbage"), "meta.json"),
    "tantivy term file truncated": (lambda h: truncate(one(lexical_dir(h), "*.term")), ".term"),
    "tantivy postings garbled": (lambda h: garble_middle(one(lexical_dir(h), "*.idx")), "checksum"),
    "tantivy store garbled": (lambda h: garble_middle(one(lexical_dir(h), "*.store")), "checksum"),
    "tfidf sidecar garbage": (lambda h: (h / "index" / "tfidf" / "tfidf.json").write_text("garbage"), "TF-IDF"),
    "tfidf matrix garbage": (lambda h: one(h / "index" / "tfidf", "text_data-*.npy").write_bytes(b"garbage"),
                             "TF-IDF"),
    "tfidf row pointers wrong": (lambda h: np.save(one(h / "index" / "tfidf", "titles_indptr-*.npy"),
                                                   np.zeros(len(np.load(one(h / "index" / "tfidf", "titles_indptr-*.npy"))),
                                                            np.int64) + 5), "TF-IDF"),
    "tfidf ids wrong length": (lambda h: np.save(one(h / "index" / "tfidf", "ids-*.npy"), np.arange(3)), "TF-IDF"),
    "tfidf vocabulary garbage": (lambda h: one(h / "index" / "tfidf", "vocab-*.json").write_text('{"a": "b"}'),
                                 "TF-IDF"),
    "vectors full of NaN": (nan_vectors, "not finite unit vectors"),
    "vectors of the wrong dtype": (lambda h: np.save(one(vec_dir(h), "vectors-*.npy"),
                                                    np.load(one(vec_dir(h), "vectors-*.npy")).astype(np.float64)),
                                   "damaged"),
    "vectors of the wrong shape": (lambda h: np.save(one(vec_dir(h), "vectors-*.npy"), np.zeros((56, 10), np.float32)),
                                   "damaged"),
    "vector sidecar garbage": (lambda h: (vec_dir(h) / "index.json").write_text("{garbage"), "damaged"),
    "vector sidecar names another model": (lambda h: edit_json(vec_dir(h) / "index.json", model_id="other/model"),
                                           "other/model"),
    "vector sidecar names another dimension": (lambda h: edit_json(vec_dir(h) / "index.json", dim=512), "512-dimensional"),
    "vector index of another dimension": (other_dimension, "dimensional"),
    "hub scores truncated": (lambda h: truncate(one(vec_dir(h) / "hubness", "hub-h-*.npy")), "hub score"),
    "hub sidecar names another model": (lambda h: edit_json(vec_dir(h) / "hubness" / "hubness.json",
                                                            params__model_id="other/model"), "hub scores"),
}


def reader(engine: Engine) -> int:
    uid = engine.store.create_user("damage-reader", None, "x")
    for ref in SAVED:
        engine.store.save(uid, engine.store.get_paper(ref).id)
    return uid


def answers(home: Path) -> dict:
    """What every read path answers on ``home`` (and that the CLI commands exit 0)."""
    runner = CliRunner()
    out = {}
    r = runner.invoke(main, ["--home", str(home), "search", "--mode", "bm25", "--json", QUERY])
    assert r.exit_code == 0, r.output
    out["cli search bm25"] = [h["paper"]["canonical_id"] for h in json.loads(r.stdout)["hits"]]
    r = runner.invoke(main, ["--home", str(home), "search", "--json", "diphoton"])
    assert r.exit_code == 0, r.output
    out["cli search hybrid"] = [h["paper"]["canonical_id"] for h in json.loads(r.stdout)["hits"]][:3]
    r = runner.invoke(main, ["--home", str(home), "index", "--json"])
    assert r.exit_code == 0, r.output
    out["cli index"] = json.loads(r.stdout)
    with Engine.from_settings(home=home) as e:
        out["search"] = [h.paper.canonical_id for h in e.search(QUERY, mode="bm25").hits]
        out["hybrid"] = [h.paper.canonical_id for h in e.search("diphoton production").hits][:3]
        out["similar"] = [p.canonical_id for p, _ in e.similar(e.store.get_paper(SAVED[0]).id)]
        uid = e.store.user_by_name("damage-reader")["id"]
        out["recommendations"] = [r.paper.canonical_id for r in library.recommend(e, uid, 10)[0]]
        out["keywords"] = [i for i, _ in e.keyword_hits(["spacetime", "closed systems"], 10)]
        out["tfidf"] = sorted(e.tfidf_scores([e.store.get_paper(r).id for r in SAVED], [], 10, set()))
    return out


@pytest.fixture(scope="module")
def reference(built, tmp_path_factory):
    """An undamaged home with a reader, and what it answers."""
    home = tmp_path_factory.mktemp("damage-ref") / "home"
    shutil.copytree(built[0], home)
    with Engine.from_settings(home=home) as e:
        reader(e)
    return home, answers(home)


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damaged_index_is_rebuilt_with_one_warning(reference, tmp_path, caplog, case):
    home = tmp_path / "home"
    shutil.copytree(reference[0], home)
    damage, words = DAMAGE[case]
    damage(home)
    with caplog.at_level(logging.WARNING):
        got = answers(home)
    assert got == reference[1]
    assert got["search"] and got["similar"] and got["recommendations"] and got["tfidf"]
    assert got["cli index"] == {"lexical_docs": 56, "vectors": 56}
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and words in warnings[0], warnings


def test_damage_the_open_check_misses_is_found_when_a_search_fails(reference, tmp_path, caplog):
    """Bit rot that keeps a segment file's size and time passes the cheap check at open (only files
    changed since the last check are checksummed); the search that fails on it verifies every file,
    finds the bad checksum, rebuilds from the store and answers."""
    home = tmp_path / "home"
    shutil.copytree(reference[0], home)
    with Engine.from_settings(home=home) as e:  # a first open checks and remembers every file
        assert e.search(QUERY, mode="bm25").hits
    term = one(lexical_dir(home), "*.term")
    st = term.stat()
    b = bytearray(term.read_bytes())
    b[len(b) // 4:len(b) // 2] = b"\xff" * (len(b) // 2 - len(b) // 4)
    term.write_bytes(bytes(b))
    os.utime(term, ns=(st.st_atime_ns, st.st_mtime_ns))
    with caplog.at_level(logging.WARNING), Engine.from_settings(home=home) as e:
        hits = [h.paper.canonical_id for h in e.search(QUERY, mode="bm25").hits]
    assert hits == reference[1]["search"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "lexical" in warnings[0] and "checksum" in warnings[0], warnings


def test_a_tantivy_error_on_a_sound_index_costs_no_rebuild(reference, tmp_path, caplog):
    """An error out of tantivy rebuilds only if the files then fail their checksums: a query it
    merely refuses must not let anyone make the server rebuild its index at will."""
    home = tmp_path / "home"
    shutil.copytree(reference[0], home)
    with Engine.from_settings(home=home) as e:
        lex = e.lexical
        with caplog.at_level(logging.WARNING):
            lex._failed(ValueError("a query tantivy refuses"))  # returns: the caller re-raises it
            assert lex.search(lex.index.parse_query("quantum", ["text"]), 0) == ([], None)  # no panic
            assert len(lex.search(lex.index.parse_query("quantum", ["text"]), 10**12)[0]) < 57  # no abort
        assert e.lexical is lex and not caplog.records


@pytest.mark.parametrize("case", ["lexical sidecar garbage", "tantivy term file truncated",
                                  "tantivy meta.json deleted", "vectors full of NaN"])
def test_serve_starts_and_answers_on_damaged_files(reference, tmp_path, case):
    home = tmp_path / "home"
    shutil.copytree(reference[0], home)
    DAMAGE[case][0](home)
    port = free_port()
    paperboy = str(Path(sys.executable).with_name("paperboy"))
    search = "/api/search?" + urlencode({"q": QUERY, "mode": "bm25"})
    server = serving([paperboy, "--home", str(home), "serve", "--port", str(port)], port, ready_path=search)
    with server as base:
        r = httpx.get(base + search, timeout=30)
        body = r.json()
        assert server.proc.poll() is None, server.output
        assert r.status_code == 200
        assert [h["paper"]["id"] for h in body["hits"]][:1]  # found something
        sim = httpx.get(f"{base}/api/papers/{SAVED[0]}/similar", timeout=30)
        assert sim.status_code == 200 and len(sim.json()) == len(reference[1]["similar"])
    out = server.output
    assert "rebuilding" in out and "Traceback" not in out
