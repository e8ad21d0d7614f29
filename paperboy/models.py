"""Plain dataclasses shared by sources, store and front ends (no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class PaperRecord:
    """One normalized paper as a source produced it, before it meets the store.

    Identity, in the order the store matches on: (source, source_id), arXiv id, DOI, and
    (when ``match_title``) the normalized title.
    """

    source: str
    source_id: str | None
    title: str
    abstract: str = ""
    authors: list[str] = field(default_factory=list)
    arxiv_id: str | None = None
    arxiv_version: int | None = None
    versions: dict[int, str | None] = field(default_factory=dict)  # version -> date
    doi: str | None = None
    categories: list[str] = field(default_factory=list)
    primary_category: str | None = None
    submitted: str | None = None  # ISO date of v1 / publication
    updated: str | None = None  # ISO date of the latest version
    links: dict[str, str] = field(default_factory=dict)
    comments: str | None = None
    journal_ref: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # source signals, e.g. upvotes
    match_title: bool = True
    authoritative: bool = False  # arXiv itself: its metadata wins over other sources'


@dataclass(slots=True, frozen=True)
class BadRecord:
    """A record a source could not turn into a paper: where it was and why."""

    location: str  # "path:line" or "path:record N"
    reason: str

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"


@dataclass(slots=True)
class Paper:
    """A paper as stored: the merged view over all sources that saw it."""

    id: int
    canonical_id: str
    title: str
    abstract: str
    authors: list[str]
    arxiv_id: str | None = None
    arxiv_version: int | None = None
    versions: dict[int, str | None] = field(default_factory=dict)
    doi: str | None = None
    categories: list[str] = field(default_factory=list)
    primary_category: str | None = None
    submitted: str | None = None
    updated: str | None = None
    links: dict[str, str] = field(default_factory=dict)
    comments: str | None = None
    journal_ref: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)

    @property
    def dois(self) -> list[str]:
        """Every DOI the sources listed: ``doi`` first, then links ``doi2``, ``doi3``, ... (as DOIs)."""
        extra = sorted((k for k in self.links if k[:3] == "doi" and k[3:].isdigit()), key=lambda k: int(k[3:]))
        rest = [self.links[k].split("doi.org/", 1)[-1] for k in extra]
        return [d for d in [self.doi, *rest] if d]

    def __post_init__(self) -> None:
        # A document stored without a title (an untitled BEIR document) shows the start of its text,
        # so pages, feeds and the API always have one; the store, the indexes and the embeddings keep
        # it empty, so that text is not counted twice in BM25's title boost and the embedding (issue 11).
        if not self.title:
            self.title = untitled(self.abstract)


def untitled(text: str, limit: int = 100) -> str:
    """A display title for an untitled document: its first ``limit`` characters, cut at a word."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text or "untitled"
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:.") + "…"


@dataclass(slots=True)
class IngestSummary:
    """Counts a pipeline step reports; the CLI turns them into a line and an exit code."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    resumed_from: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. no record had an id or an abstract

    def add(self, other: "IngestSummary") -> None:
        for name in ("read", "inserted", "updated", "unchanged", "skipped", "resumed_from"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)
        self.warnings.extend(other.warnings)
