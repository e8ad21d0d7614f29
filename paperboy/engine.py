"""Engine: builds the store (and, later, embedder, indexes, services) from settings. Every front
end (CLI, web, email) calls the engine; none of them opens the store or runs SQL itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import ingest as pipeline, settings as settings_mod
from .models import IngestSummary, Paper
from .store import Store, open_store


class Engine:
    """paperboy as a library: ``with Engine.from_settings(home="/tmp/x") as e: e.ingest(path)``."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self._store: Store | None = None

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
