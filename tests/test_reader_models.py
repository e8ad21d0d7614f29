"""Reader models cached between requests (services/reader_models.py) and the SVM's bounded scoring
(the candidates plus the recent window, services/recent_window.py), on the real embedded corpus."""

import numpy as np
import pytest
from conftest import DATA

from paperboy.services import library
from paperboy.services.reader_models import ModelCache, reader_key
from paperboy.services.recent_window import RecentWindow
from paperboy.services.recommend import SVM_CANDIDATES, SVM_POOL, SVM_TERMS, Reader, build_recommender


def quantum_library(engine, n=6):
    """``n`` papers around the first quant-ph paper (a coherent library)."""
    vectors = engine.vectors()
    seed = engine.store.get_paper("quant-ph/9508027") or next(iter(engine.store.get_papers([1]).values()))
    ids, _ = vectors.search(vectors.vector(seed.id), n)
    return [int(i) for i in ids]


def fresh(engine, **options):
    """A recommender built as the engine builds it, with its own (empty) model cache."""
    return build_recommender(engine.vectors(), engine.store, keyword_hits=engine.keyword_hits, tfidf=engine.tfidf,
                             **options)


def as_list(recs):
    return [(r.paper_id, r.score, r.interest, r.because) for r in recs]


def test_cached_reader_model_equals_a_fresh_one_and_a_change_retrains_only_that_reader(engine):
    rec = fresh(engine)
    lib = quantum_library(engine)
    reader = Reader(lib[:4], negatives=[lib[5]])
    first, _ = rec.recommend(reader, 10)
    trained = rec.models.misses
    assert first and trained == 3  # interests, SVM, logistic regression
    again, _ = rec.recommend(Reader(lib[:4], negatives=[lib[5]]), 10)
    assert rec.models.misses == trained and rec.models.hits >= 3  # nothing retrained
    assert as_list(again) == as_list(first)
    other, _ = fresh(engine).recommend(Reader(lib[:4], negatives=[lib[5]]), 10)  # trained from scratch
    assert as_list(other) == as_list(first)

    tfidf = engine.tfidf()
    cached = rec.models.get(reader_key("svm", lib[:4], [lib[5]], tfidf.version), lambda: None)
    direct = tfidf.train_svm(lib[:4], [lib[5]], rec._dense)
    assert cached is not None and cached.version == tfidf.version
    assert np.array_equal(cached.text, direct.text) and np.array_equal(cached.dense, direct.dense)
    assert cached.intercept == direct.intercept

    rec.recommend(Reader(lib[:5], negatives=[lib[5]]), 10)  # one more save: new models for this library
    assert rec.models.misses == trained + 3
    changed = rec.models.get(reader_key("svm", lib[:5], [lib[5]], tfidf.version), lambda: None)
    assert changed is not None and not np.array_equal(changed.text, cached.text)
    rec.recommend(Reader(lib[:4], negatives=[lib[5]]), 10)  # the first library's models are still kept
    assert rec.models.misses == trained + 3


def test_a_save_through_the_store_retrains_only_that_reader(engine):
    rec = engine.recommender()
    lib = quantum_library(engine, 8)
    alice = engine.store.create_user("alice", None, "x")
    bob = engine.store.create_user("bob", None, "x")
    for pid in lib[:3]:
        engine.store.save(alice, pid)
    for pid in lib[4:7]:
        engine.store.save(bob, pid)
    a1, _ = library.recommend(engine, alice, 8)
    library.recommend(engine, bob, 8)
    trained = rec.models.misses
    engine.store.save(alice, lib[3])  # alice saves one more paper
    a2, _ = library.recommend(engine, alice, 8)
    assert rec.models.misses == trained + 3 and lib[3] not in [r.paper.id for r in a2]
    library.recommend(engine, bob, 8)
    assert rec.models.misses == trained + 3  # bob's models were not retrained
    engine.store.set_feedback(alice, a2[0].paper.id, "down")  # a thumbs-down is a new negative
    a3, _ = library.recommend(engine, alice, 8)
    assert rec.models.misses > trained + 3 and a2[0].paper.id not in [r.paper.id for r in a3]


def test_the_svm_over_a_window_covering_the_corpus_equals_the_whole_corpus(engine):
    """Candidates plus a window as large as the corpus: the same top list as scoring every row."""
    rec = fresh(engine, recent_window=10_000)
    lib = quantum_library(engine)
    reader = Reader(lib[:4], negatives=[lib[5]])
    blocked = set(lib[:4]) | {lib[5]}
    got = rec._svm(reader, set(), blocked, given=False)
    want = engine.tfidf().svm_scores(lib[:4], [lib[5]], SVM_CANDIDATES, blocked, dense=engine.vectors().matrix())
    assert got.keys() == want.keys() and len(got) == min(SVM_CANDIDATES, len(engine.tfidf().ids) - len(blocked))
    assert all(got[i] == pytest.approx(want[i], abs=1e-5) for i in want)


def test_a_small_window_bounds_what_the_svm_scores(engine):
    rec = fresh(engine, recent_window=10)
    lib = quantum_library(engine)
    reader = Reader(lib[:4])
    _, window = rec.recent.current()
    assert list(window) == [p.id for p in engine.store.paper_page(None, 10)]  # the 10 newest by date
    cand = {int(i) for i in engine.vectors().search(engine.vectors().vector(lib[0]), 12)[0]} - set(lib[:4])
    got = rec._svm(reader, cand, set(lib[:4]), given=False)
    tfidf = engine.tfidf()
    model = tfidf.train_svm(lib[:4], [], rec._dense)
    words = tfidf.strongest_terms(model, SVM_TERMS)  # the SVM's own retrieval: its words and its direction
    w = model.text + model.title
    column = {t: n for n, t in enumerate(tfidf.vectorizer.get_feature_names_out())}
    assert words and [w[column[t]] for t in words] == sorted((w[column[t]] for t in words), reverse=True)
    assert w[column[words[0]]] == w.max() > 0
    by_words = {i for i, _ in engine.keyword_hits(words, SVM_POOL + 4)}
    by_direction = {int(i) for i in engine.vectors().search(model.dense / np.linalg.norm(model.dense), SVM_POOL,
                                                            exclude=set(lib[:4]))[0]}
    assert got and set(got) <= cand | set(window.tolist()) | by_words | by_direction
    recs, _ = rec.recommend(reader, 5)
    assert recs and not {r.paper_id for r in recs} & set(lib[:4])
    digest = sorted(window.tolist())  # ranking given candidates (a digest's new papers) still works
    given, _ = rec.recommend(reader, 3, candidates=digest)
    assert given and {r.paper_id for r in given} <= set(digest)


def test_the_recent_window_follows_the_store(engine):
    window = RecentWindow(engine.store, 20)
    v1, ids = window.current()
    assert len(ids) == 20 and window.current() == (v1, ids)  # unchanged store: same window, no reread
    engine.ingest(DATA / "hf_scrape_excerpt.json")  # new papers, some newer than the window
    v2, followed = window.current()
    assert v2 != v1 and list(followed) == [p.id for p in engine.store.paper_page(None, 20)]
    assert list(followed) == list(RecentWindow(engine.store, 20).current()[1])
    from paperboy.models import PaperRecord

    engine.store.upsert_papers([PaperRecord(source="upload", source_id="draft", title="A member's private draft",
                                            submitted="2099-01-01")])  # newest of all, but nobody else's to see
    v3, after = window.current()
    assert list(after) == list(followed) == [p.id for p in engine.store.paper_page(None, 20)]


def test_the_model_cache_is_a_bounded_lru():
    cache = ModelCache(2)
    assert cache.get("a", lambda: 1) == 1 and cache.get("b", lambda: 2) == 2 and cache.get("a", lambda: 0) == 1
    assert cache.get("c", lambda: 3) == 3 and len(cache) == 2  # "b", the least recently used, went
    assert cache.get("b", lambda: 20) == 20 and cache.get("a", lambda: 0) == 0
    assert reader_key("svm", [1, 2], [], 7) != reader_key("svm", [1, 2], [3], 7) != reader_key("svm", [1, 2], [], 8)
    assert reader_key("svm", [1, 2], [], 7) == reader_key("svm", [1, 2], [], 7)
    assert ModelCache(0).get("a", lambda: 1) == 1 and len(ModelCache(0)) == 0


def test_a_model_of_other_rows_is_refused(engine):
    tfidf = engine.tfidf()
    lib = quantum_library(engine)
    model = tfidf.train_svm(lib[:3], [])
    block = tfidf.block(lib[3:])
    assert len(tfidf.decision(model, block)) == len(block.ids) == len(lib[3:])
    engine.ingest(DATA / "hf_scrape_excerpt.json")
    tfidf.sync(engine.store)
    with pytest.raises(ValueError, match="another version"):
        tfidf.decision(model, tfidf.block(lib[3:]))
