"""Engine: builds the store (and, later, embedder, indexes, services) from settings. Every front
end (CLI, web, email) calls the engine; none of them opens the store or runs SQL itself."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import ingest as pipeline, settings as settings_mod
from .errors import ConfigError, NotFound
from .models import IngestSummary, Paper
from .store import Store, open_store

if TYPE_CHECKING:
    from .embed import Embedder
    from .index.lexical import LexicalIndex
    from .index.vectors import VectorIndex
    from .services.listing import Listings
    from .services.search import SearchResult, Searcher


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
        self._recommender: Any = None
        self._tfidf: Any = None

    @classmethod
    def from_settings(cls, **overrides: Any) -> "Engine":
        return cls(settings_mod.load(overrides))

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.settings["store"], self.settings["home"])
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

    # -- embeddings and indexes (derived data, rebuilt from the store when missing) -----------

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from .embed.sbert import SbertEmbedder

            self._embedder = SbertEmbedder(self.settings["embed_model"], self.settings["embed_device"])
        return self._embedder

    def embed(self, progress: pipeline.Progress = pipeline._noop, rebuild: bool = False) -> dict[str, int]:
        """Embed new or changed papers, then bring the vector index up to date (``rebuild``: from
        scratch, out of the stored vectors)."""
        from .embed import embed_pending
        from .index.sync import vector_dir

        if rebuild:
            shutil.rmtree(vector_dir(self.settings["home"], self.embedder.model_id), ignore_errors=True)
        counts = embed_pending(self.store, self.embedder, batch_size=self.settings["embed_batch_size"],
                               progress=progress)
        self._vectors = self._searcher = None  # the searcher holds the old index
        vectors = self.vectors()
        if vectors is not None and len(vectors) > 1:  # hub scores and TF-IDF rows at index time, not
            self.similar_service(vectors).hub_scores()  # in a page request
            try:
                self.tfidf()
            except ConfigError:  # no scikit-learn: recommendations go without the TF-IDF model
                pass
        return counts

    @property
    def lexical(self) -> LexicalIndex:
        """The BM25 index, synced with the store (a delta of the papers changed since last time)."""
        from .index.lexical import LexicalIndex

        if self._lexical is None:
            self._lexical = LexicalIndex(self.settings["home"] / "index" / "lexical",
                                         title_boost=self.settings["title_boost"])
        if self._lexical.synced < self.store.max_rev():
            self._lexical.sync(self.store)
        return self._lexical

    def vectors(self) -> VectorIndex | None:
        """The vector index of the configured model, synced with its stored embeddings."""
        if self._vectors is None:
            from .index.sync import sync_vectors, vector_dir

            model = self.embedder.model_id
            self._vectors = sync_vectors(self.store, vector_dir(self.settings["home"], model), model,
                                         self.settings["hnsw_threshold"])
        return self._vectors

    def searcher(self) -> Searcher:
        from .services.search import Searcher

        if self._searcher is None:
            s = self.settings
            vectors = self.vectors()
            self._searcher = Searcher(
                self.store, self.lexical, vectors, self.embedder if vectors is not None else None,
                fusion=s["search_fusion"], alpha=s["search_alpha"], z_min=s["search_z_min"],
                min_cosine=s["search_min_cosine"],
                lexical_slack=s["search_lexical_slack"], candidates=s["search_candidates"],
                max_query=s["search_max_query"])
        return self._searcher

    def search(self, text: str, **options: Any) -> SearchResult:
        """Search with the query language (see ``services/query.py``): mode, sort, page, per_page."""
        return self.searcher().search(text, **options)

    def paper(self, ref: str) -> Paper | None:
        return self.store.get_paper(ref)

    def similar_service(self, vectors: VectorIndex) -> Any:
        """The hubness-reduced neighbour service over ``vectors`` (hub scores cached on disk)."""
        from .index.sync import vector_dir
        from .services.similar import SimilarPapers

        if self._similar is None or self._similar.vectors is not vectors:
            s = self.settings
            self._similar = SimilarPapers(vectors, vector_dir(s["home"], self.embedder.model_id) / "hubness",
                                          bank_k=s["similar_bank_k"], beta=s["similar_beta"],
                                          candidates=s["similar_candidates"])
        return self._similar

    def similar(self, paper_id: int, k: int | None = None, sort: str = "similarity",
                hubness: bool = True) -> list[tuple[Paper, float]]:
        """Similar papers by embedding with hubness reduction (``services/similar.py``), as
        (paper, cosine); ``sort``: similarity, date or votes (re-orders the same k)."""
        if sort not in ("similarity", "date", "votes"):
            raise NotFound(f"unknown sort {sort!r}: use similarity, date or votes")
        vectors = self.vectors()
        if vectors is None or len(vectors) < 2:
            return []
        hits = self.similar_service(vectors).neighbours(paper_id, k or self.settings["similar_k"], hubness=hubness)
        papers = self.store.get_papers([h[0] for h in hits])
        out = [(papers[h[0]], h[1]) for h in hits if h[0] in papers]
        if sort == "date":
            out.sort(key=lambda x: x[0].submitted or "", reverse=True)
        elif sort == "votes":
            votes = self.store.votes([p.id for p, _ in out])
            out.sort(key=lambda x: -votes.get(x[0].id, 0))
        return out

    def digests(self) -> Any:
        """The digest mailer (``services/digest.py``)."""
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
        lex = self.lexical
        query = lex.index.parse_query(text, ["text", "title"], field_boosts={"title": lex.title_boost})
        return lex.search(query, k)[0]

    def tfidf_scores(self, positives: list[int], negatives: list[int], k: int, exclude: set[int]) -> dict[int, float]:
        """The reader's TF-IDF SVM top ``k`` (``index/tfidf.py``); {} without scikit-learn."""
        try:
            return self.tfidf().svm_scores(positives, negatives, k, exclude)
        except ConfigError:
            return {}

    def tfidf(self) -> Any:
        """The TF-IDF index (``index/tfidf.py``), synced with the store; ConfigError without scikit-learn."""
        from .index.tfidf import TfidfIndex

        if self._tfidf is None:
            self._tfidf = TfidfIndex(self.settings["home"] / "index" / "tfidf")
        self._tfidf.sync(self.store)
        return self._tfidf

    def recommender(self) -> Any:
        """The recommender over the current vector index (None without vectors)."""
        from .services.recommend import Recommender

        vectors = self.vectors()
        if vectors is None or len(vectors) == 0:
            return None
        if self._recommender is None or self._recommender.vectors is not vectors:
            def titles(ids: list[int]) -> dict[int, str]:
                return {i: p.title for i, p in self.store.get_papers(ids).items()}
            self._recommender = Recommender(vectors, titles, lexical=self.keyword_hits, sparse=self.tfidf_scores)
        return self._recommender

    @property
    def listings(self) -> Listings:
        from .services.listing import Listings

        if self._listings is None:
            self._listings = Listings(self.store, self.settings["trending_window_days"],
                                      self.settings["trending_half_life_hours"])
        return self._listings

    def submit(self, ref: str, user_id: int | None, day: str | None = None) -> tuple[Paper, bool]:
        """Put a paper (arXiv id or URL) on ``day``'s list (default today) with its submitter:
        found in the store, or fetched from the arXiv API. Returns the paper and whether it is
        newly listed (a paper submitted before keeps its first listing: merged, not doubled)."""
        from datetime import date

        from .sources.normalize import parse_arxiv_id

        parsed = parse_arxiv_id(ref.strip())
        if not parsed:
            raise NotFound(f"not an arXiv id or URL: {ref[:100]!r}")
        paper = self.store.get_paper(parsed[0])
        if paper is None:
            self.fetch_arxiv([parsed[0]])
            paper = self.store.get_paper(parsed[0])
            if paper is None:
                raise NotFound(f"arXiv has no paper {parsed[0]}")
            if self.settings["submit_embeds"]:
                try:
                    self.embed()
                except ConfigError:  # no embed extra: keyword search still finds it
                    pass
        created = self.store.submit(paper.id, user_id, day or date.today().isoformat())
        return paper, created

    def stats(self) -> dict[str, Any]:
        return self.store.stats()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
