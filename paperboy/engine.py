"""Engine: builds the store (and, later, embedder, indexes, services) from settings. Every front
end (CLI, web, email) calls the engine; none of them opens the store or runs SQL itself."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import ingest as pipeline, settings as settings_mod
from .models import IngestSummary, Paper
from .store import Store, open_store

if TYPE_CHECKING:
    from .embed import Embedder
    from .index.lexical import LexicalIndex
    from .index.vectors import VectorIndex
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
        self._vectors = None
        self.vectors()
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
