"""Engine: builds the store (and, later, embedder, indexes, services) from settings. Every front
end (CLI, web, email) calls the engine; none of them opens the store or runs SQL itself."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import ingest as pipeline, settings as settings_mod
from .errors import BadRequest, ConfigError
from .models import IngestSummary, Paper
from .services.jobs import UPLOAD, confirmed  # noqa: F401 - UPLOAD: re-exported, as before
from .store import Store, open_store

if TYPE_CHECKING:
    from .embed import Embedder
    from .index.lexical import LexicalIndex
    from .index.vectors import VectorIndex
    from .services.digest import Digests
    from .services.jobs import JobRun
    from .services.listing import Listings
    from .services.recommend import Recommender
    from .services.search import SearchResult, Searcher

log = logging.getLogger(__name__)
T = TypeVar("T")

@dataclass(slots=True)
class Submission:
    """What a submission did: listed a known paper at once, or queued a job to fetch it."""

    arxiv_id: str
    paper: Paper | None  # None while the job fetches it
    created: bool  # newly listed (False: it was listed before, or is still queued)
    job_id: int | None


class Engine:
    """paperboy as a library: ``with Engine.from_settings(home="/tmp/x") as e: e.ingest(path)``."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self._store: Store | None = None
        self._embedder: Embedder | None = None
        self._lexical: LexicalIndex | None = None
        self._vectors: VectorIndex | None = None
        self._searcher: Searcher | None = None
        self._listings: Listings | None = None
        self._similar: Any = None
        self._recommender: Recommender | None = None
        self._tfidf: Any = None
        self._topics: Any = None  # services/topics.Topics, made on first use
        self._authors: Any = None  # index/authors.AuthorIndex, made on first use
        # derived indexes following the store (see ``refresh``); the lock serializes their updates
        self._index_lock = threading.RLock()
        self._lexical_lock = threading.Lock()  # one lexical delta at a time, whichever thread applies it
        self.lexical_in_background = False
        self._next_refresh, self._seen_changes = 0.0, 0
        self._vectors_loaded, self._vectors_version = False, 0
        self._similar_version = self._recommender_version = -1

    @classmethod
    def from_settings(cls, **overrides: Any) -> "Engine":
        return cls(settings_mod.load(overrides))

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.settings["store"], self.settings["home"], self.settings["store_pool_size"])
        return self._store

    def ingest(self, path: Path, fmt: str | None = None, *, mapping: dict[str, str] | None = None,
               progress: pipeline.Progress = pipeline._noop) -> IngestSummary:
        """Ingest one file (see ``pipeline.ingest_file``)."""
        return pipeline.ingest_file(self.store, Path(path), fmt, batch_size=self.settings["batch_size"],
                                  mapping=mapping, progress=progress)

    def harvest_arxiv(self, set_spec: str | None, from_date: str | None = None, until: str | None = None,
                      prefix: str | None = None, progress: pipeline.Progress = pipeline._noop) -> IngestSummary:
        """Harvest arXiv over OAI-PMH (see ``pipeline.harvest_arxiv``)."""
        return pipeline.harvest_arxiv(self.store, self.settings, set_spec=set_spec, from_date=from_date,
                                    until=until, prefix=prefix, progress=progress)

    def fetch_arxiv(self, ids: list[str]) -> IngestSummary:
        """Fetch papers by arXiv id or URL from the arXiv API."""
        return pipeline.fetch_arxiv(self.store, self.settings, ids)

    # -- embeddings and indexes (derived data: they follow the store, and are rebuilt from it when
    # missing or damaged) -------------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from .embed import make_embedder

            self._embedder = make_embedder(self.settings)
        return self._embedder

    def embed(self, progress: pipeline.Progress = pipeline._noop, rebuild: bool = False,
              batch_engine: str = "local") -> dict[str, int]:
        """Embed new or changed papers, then bring the vector index up to date (``rebuild``: from
        scratch, out of the stored vectors). ``batch_engine`` 'ray': the model runs on Ray Data
        (``embed/ray_batch.py``, setting ``ray_address``); same vectors, same counts."""
        from .embed import embed_pending
        from .index.sync import vector_dir

        if batch_engine not in ("local", "ray"):
            raise ConfigError(f"batch_engine must be 'local' or 'ray', not {batch_engine!r}")
        if rebuild:
            shutil.rmtree(vector_dir(self.settings["home"], self.embedder.model_id), ignore_errors=True)
        if batch_engine == "ray":
            from .embed.ray_batch import embed_pending_ray

            counts = embed_pending_ray(self.store, self.embedder, batch_size=self.settings["embed_batch_size"],
                                       progress=progress, address=self.settings["ray_address"])
        else:
            counts = embed_pending(self.store, self.embedder, batch_size=self.settings["embed_batch_size"],
                                   progress=progress)
        with self._index_lock:
            self._vectors, self._vectors_loaded = None, False  # reloaded from what embed saved
            self._next_refresh = 0.0
        vectors = self.vectors()
        if vectors is not None and len(vectors) > 1:  # hub scores and TF-IDF rows at index time, not
            self.similar_service(vectors).hub_scores()  # in a page request
            try:
                self.tfidf().sync(self.store)  # and saved, for every other process to load
                self.topics().current(self._tfidf)  # new papers join their topics (no refit)
                self.topics().save()
            except ConfigError:  # no scikit-learn: recommendations go without the TF-IDF model
                pass
        return counts

    def refresh(self, force: bool = False) -> dict[str, int]:
        """Bring the loaded derived indexes up to date with the store, whichever process changed it
        (the CLI, cron, another web worker). Every read path calls this; it compares the store's
        change counters with what each index has synced, at most once per ``index_sync_seconds``
        (``force``: now) and at once after this process wrote the store. Behind, it applies the
        delta: the lexical index indexes the changed papers, or reloads what another process holding
        tantivy's writer lock indexed; the vector index adds the new vectors in place; TF-IDF rows
        follow in memory; hub scores, the searcher and the recommender follow the vectors. A thread
        finding another one refreshing goes on with the indexes as they are. Returns what changed."""
        if not force and time.monotonic() < self._next_refresh and self._own_changes() == self._seen_changes:
            return {}
        if not self._index_lock.acquire(blocking=force):
            return {}
        try:
            self._seen_changes = self._own_changes()
            return self._follow()
        finally:
            self._next_refresh = time.monotonic() + float(self.settings["index_sync_seconds"])
            self._index_lock.release()

    def _own_changes(self) -> int:
        return self._store.own_changes() if self._store is not None else 0

    def _follow(self) -> dict[str, int]:
        from .index.sync import apply_new, behind
        from .index.vectors import VectorIndexError

        out: dict[str, int] = {}
        rev = self.store.max_rev()
        if not self.lexical_in_background and (indexed := self._follow_lexical(rev)):
            out["lexical"] = indexed
        if self._vectors_loaded:
            model = self.embedder.model_id
            if behind(self.store, self._vectors, model):
                try:
                    vi, out["vectors"] = apply_new(self.store, self._vectors, model, self.settings["hnsw_threshold"],
                                                   expansion_search=self.settings["hnsw_expansion_search"])
                except VectorIndexError as e:  # e.g. the store now holds another dimension: reload
                    log.warning("reloading the vector index: %s", e)
                    vi, self._vectors_loaded = None, False
                self._vectors = vi
                self._vectors_changed()
        if self.lexical_in_background:  # the web's follower thread brings TF-IDF and topics (follow_tfidf)
            return out
        if self._tfidf is not None and self._tfidf.synced < rev:
            try:
                out["tfidf"] = self._tfidf.sync(self.store, save=False)
            except ConfigError:
                pass
        if self._topics is not None and self._tfidf is not None and (n := self._topics.follow(self._tfidf)):
            out["topics"] = n
        return out

    def follow_tfidf(self, need: bool = False) -> Any:
        """The TF-IDF rows caught up with the store now, when loaded (``need``: loaded first), else
        None. The web app's follower thread calls this (services/topics.follow_topics): with
        ``lexical_in_background`` a request's ``refresh`` leaves TF-IDF rows and topics to it, so
        no request transforms a big ingest's papers or assigns their topics."""
        if self._tfidf is None and not need:
            return None
        tfidf = self.tfidf()
        if tfidf.synced < self.store.max_rev():
            tfidf.sync(self.store, save=False)
        return tfidf

    def follow_lexical(self) -> int:
        """Apply the lexical delta now, whatever the throttle says. The web app calls this from a
        background thread and sets ``lexical_in_background``, so a big ingest by another process is
        indexed beside the requests (tantivy serves its readers while one writer commits), not in
        the request that noticed it. Returns the papers indexed."""
        with self._lexical_lock:
            return self._follow_lexical(self.store.max_rev())

    def _follow_lexical(self, rev: int) -> int:
        if self._lexical is None or not (self._lexical.follow() or self._lexical.synced < rev):
            return 0
        before = self._lexical.synced
        self._with_lexical(lambda lex: lex.sync(self.store) if lex.synced < rev else 0)
        return max(self._lexical.synced - before, 0)

    def _vectors_changed(self) -> None:
        """Whatever holds the vectors or a sample of them is rebuilt or rescored on next use."""
        self._vectors_version += 1
        self._searcher = None

    def _open_lexical(self) -> LexicalIndex:
        from .index.lexical import LexicalIndex
        from .services.listing import index_tags

        lex = LexicalIndex(self.settings["home"] / "index" / "lexical", title_boost=self.settings["title_boost"],
                           tags=index_tags)  # has:code/project/hf
        if lex.synced < self.store.max_rev():
            lex.sync(self.store)
        return lex

    def _with_lexical(self, use: Callable[[LexicalIndex], T]) -> T:
        """``use(lexical index)``, once more after a rebuild if the index turns out damaged."""
        from .index.lexical import LexicalIndexDamaged

        lex = self.lexical if self._lexical is None else self._lexical
        try:
            return use(lex)
        except LexicalIndexDamaged as e:
            return use(self._repair_lexical(lex, e))

    def _repair_lexical(self, damaged: LexicalIndex, why: Exception) -> LexicalIndex:
        """Rebuild the lexical index from the store (one warning), unless another thread already did."""
        with self._index_lock:
            if self._lexical is damaged or self._lexical is None:
                log.warning("rebuilding the lexical index from the store: %s", why)
                shutil.rmtree(self.settings["home"] / "index" / "lexical", ignore_errors=True)
                self._lexical = self._searcher = None
                self._lexical = self._open_lexical()
            return self._lexical

    @property
    def lexical(self) -> LexicalIndex:
        """The BM25 index, following the store (see ``refresh``)."""
        if self._lexical is None:
            with self._index_lock:
                if self._lexical is None:
                    self._lexical = self._open_lexical()
                    self._searcher = None
        self.refresh()
        return self._lexical

    def vectors(self) -> VectorIndex | None:
        """The vector index of the configured model, following its stored embeddings (``refresh``)."""
        if not self._vectors_loaded:
            from .index.sync import sync_vectors, vector_dir

            with self._index_lock:
                if not self._vectors_loaded:
                    model = self.embedder.model_id
                    self._vectors = sync_vectors(self.store, vector_dir(self.settings["home"], model), model,
                                                 self.settings["hnsw_threshold"],
                                                 expansion_search=self.settings["hnsw_expansion_search"])
                    self._vectors_loaded = True
                    self._vectors_changed()
        self.refresh()
        return self._vectors

    def searcher(self) -> Searcher:
        """The searcher over the current indexes (rebuilt, cheaply, when one of them was replaced)."""
        from .services.search import Searcher

        lexical, vectors = self.lexical, self.vectors()
        if (s := self._searcher) is not None and s.lexical is lexical and s.vectors is vectors:
            return s
        with self._index_lock:
            st = self.settings
            self._searcher = s = Searcher(
                self.store, lexical, vectors, self.embedder if vectors is not None else None,
                fusion=st["search_fusion"], alpha=st["search_alpha"], z_min=st["search_z_min"],
                min_cosine=st["search_min_cosine"],
                lexical_slack=st["search_lexical_slack"], candidates=st["search_candidates"],
                max_query=st["search_max_query"], topic_members=self.topic_members)
        return s

    def search(self, text: str, **options: Any) -> SearchResult:
        """Search with the query language (see ``query.py``): mode, sort, page, per_page."""
        from .index.lexical import LexicalIndexDamaged

        searcher = self.searcher()
        try:
            return searcher.search(text, **options)
        except LexicalIndexDamaged as e:  # found at query time: rebuilt from the store, asked again
            self._repair_lexical(searcher.lexical, e)
            return self.searcher().search(text, **options)

    def paper(self, ref: str) -> Paper | None:
        return self.store.get_paper(ref)

    def similar_service(self, vectors: VectorIndex) -> Any:
        """The hubness-reduced neighbour service over ``vectors`` (hub scores cached on disk, and
        rescored, for the changed papers only, after the vectors changed)."""
        from .index.sync import vector_dir
        from .services.similar import SimilarPapers

        with self._index_lock:
            if self._similar is None or self._similar.vectors is not vectors:
                s = self.settings
                self._similar = SimilarPapers(vectors, vector_dir(s["home"], self.embedder.model_id) / "hubness",
                                              bank_k=s["similar_bank_k"], hub_weight=s["similar_hub_weight"],
                                              lexical_weight=s["similar_lexical_weight"],
                                              candidates=s["similar_candidates"], lexical=self.tfidf_cosines)
                self._similar_version = -1
            service = self._similar
        if self._similar_version != self._vectors_version:
            version = self._vectors_version
            service.hub_scores()  # a no-op unless vectors were added or changed since
            self._similar_version = version
        return service

    def similar(self, paper_id: int, k: int | None = None, sort: str = "similarity",
                hubness: bool = True) -> list[tuple[Paper, float]]:
        """Similar papers by embedding with hubness reduction (``services/similar.py``), as
        (paper, cosine); ``sort``: similarity, date or votes (re-orders the same k)."""
        if sort not in ("similarity", "date", "votes"):
            raise BadRequest(f"unknown sort {sort!r}: use similarity, date or votes")
        vectors = self.vectors()
        if vectors is None or len(vectors) < 2:
            return []
        hits = self.similar_service(vectors).neighbours(paper_id, k or self.settings["similar_k"], hubness=hubness)
        hidden = self.store.uploads_only([h[0] for h in hits])  # not public (see ``confirmed``)
        papers = self.store.get_papers([h[0] for h in hits if h[0] not in hidden])
        out = [(papers[h[0]], h[1]) for h in hits if h[0] in papers]
        if sort == "date":
            out.sort(key=lambda x: x[0].submitted or "", reverse=True)
        elif sort == "votes":
            votes = self.store.votes([p.id for p, _ in out])
            out.sort(key=lambda x: -votes.get(x[0].id, 0))
        return out

    def digests(self) -> Digests:
        """The digest mailer (``services/digest.py``), handed this engine as its ``DigestDeps``."""
        from .services.digest import Digests

        return Digests(self, settings_mod.secret_key(self.settings))

    def keyword_hits(self, terms: list[str], k: int) -> list[tuple[int, float]]:
        """BM25 (paper id, score) for words and phrases, any of which may match: the lexical
        side of recommendations."""
        from .index.lexical import words

        parts = [w for w in (words(t) for t in terms[:50]) if w]
        if not parts:
            return []
        text = " ".join(f'"{w}"' if " " in w else w for w in parts)

        def hits(lex: LexicalIndex) -> list[tuple[int, float]]:
            query = lex.index.parse_query(text, ["text", "title"], field_boosts={"title": lex.title_boost})
            return lex.search(query, k)[0]
        _ = self.lexical  # opened and following the store
        return self._with_lexical(hits)

    def tfidf_scores(self, positives: list[int], negatives: list[int], k: int, exclude: set[int],
                     dense: Any = None) -> dict[int, float]:
        """The reader's TF-IDF (+ embedding, ``dense``) SVM top ``k`` (``index/tfidf.py``); {} without scikit-learn."""
        try:
            return self.tfidf().svm_scores(positives, negatives, k, exclude, dense)
        except ConfigError:
            return {}

    def tfidf_cosines(self, paper_id: int, ids: Any) -> Any:
        """TF-IDF cosines of a paper to candidates (``index/tfidf.py``): the lexical side of similar
        papers; zeros without scikit-learn."""
        import numpy as np

        try:
            return self.tfidf().cosines(paper_id, ids)
        except ConfigError:
            return np.zeros(len(ids))

    def tfidf(self) -> Any:
        """The TF-IDF index (``index/tfidf.py``), following the store (``refresh``: in memory; ``embed``
        saves it); ConfigError without scikit-learn."""
        from .index.tfidf import TfidfIndex

        if self._tfidf is None:
            with self._index_lock:
                if self._tfidf is None:
                    tfidf = TfidfIndex(self.settings["home"] / "index" / "tfidf")
                    tfidf.sync(self.store)
                    self._tfidf = tfidf
        self.refresh()
        return self._tfidf

    def topics(self) -> Any:
        """The topic map (``services/topics.py``): ``.current()`` is the fitted model (None before
        ``paperboy topics fit``), following the TF-IDF rows."""
        from .services.topics import Topics

        if self._topics is None:
            with self._index_lock:
                if self._topics is None:
                    self._topics = Topics(self.store, self.settings["home"])
        return self._topics

    def topic_members(self, name: str) -> set[int]:
        """The papers of topic ``name`` (slug or label) for ``topic:NAME``; QueryError otherwise."""
        return self.topics().search_members(name)  # as fitted and followed: no TF-IDF work in a search

    def recommender(self) -> Recommender | None:
        """The recommender over the current vector index (None without vectors), built by
        ``services.recommend.build_recommender`` and rebuilt when the vectors changed (it keeps a
        background sample of them)."""
        from .services.recommend import build_recommender

        vectors = self.vectors()
        if vectors is None or len(vectors) == 0:
            return None
        if (self._recommender is None or self._recommender.vectors is not vectors
                or self._recommender_version != self._vectors_version):
            version = self._vectors_version
            self._recommender = build_recommender(
                vectors, self.store, keyword_hits=self.keyword_hits, tfidf=self.tfidf,
                recent_window=self.settings["recs_recent_window"], model_cache=self.settings["recs_model_cache"],
                previous=self._recommender)
            self._recommender_version = version
        return self._recommender

    def authors(self) -> Any:
        """The author index (``index/authors.py``): built from the store on first use, then the
        changed papers only whenever the store moved on (one indexed MAX(rev) read per call)."""
        from .index.authors import AuthorIndex

        with self._index_lock:
            if self._authors is None:
                self._authors = AuthorIndex(self.settings["home"] / "index" / "authors")
        index = self._authors
        if index.synced < self.store.max_rev():
            index.sync(self.store)  # under the index's own lock: other indexes go on meanwhile
        return index

    @property
    def listings(self) -> Listings:
        from .services.listing import Listings

        if self._listings is None:
            self._listings = Listings(self.store, self.settings["trending_window_days"],
                                      self.settings["trending_half_life_hours"])
        return self._listings

    def submit(self, ref: str, user_id: int | None, day: str | None = None) -> Submission:
        """Put a paper (arXiv id or URL) on ``day``'s list (default today) with its submitter. A
        paper in the store is listed at once (a paper submitted before keeps its first listing:
        merged, not doubled); any other is queued for a background job to fetch from arXiv and
        embed (``services/jobs.py``), so no request waits on arXiv or the model."""
        from datetime import date

        from .normalize import parse_arxiv_id

        parsed = parse_arxiv_id(ref.strip()[:300])
        if not parsed:
            raise BadRequest(f"not an arXiv id or URL: {ref[:100]!r}")
        day = day or date.today().isoformat()
        paper = self.store.get_paper(parsed[0])
        if paper is not None and confirmed(paper):
            return Submission(parsed[0], paper, self.store.submit(paper.id, user_id, day), None)
        job_id, _ = self.store.enqueue_job("submit", parsed[0], {"arxiv_id": parsed[0], "user_id": user_id,
                                                                 "day": day})
        return Submission(parsed[0], None, False, job_id)

    def run_jobs(self, limit: int | None = None) -> JobRun:
        """Run due background jobs in this process (``services/jobs.py``)."""
        from .services.jobs import run_pending

        return run_pending(self, limit)

    def stats(self) -> dict[str, Any]:
        return self.store.stats()

    def close(self) -> None:
        if self._authors is not None:
            self._authors.close()
            self._authors = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
