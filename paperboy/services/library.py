"""A reader's library and recommendations: import, the reader model, rules, library search.
Pages, API, feeds and digests all call ``recommend`` here.

Each function is handed what it uses, named by a small protocol below (``ImportDeps``,
``RecommendDeps``, ``SearchDeps``); the ``Engine`` has all of it and is what front ends pass, but
nothing here imports the engine (layers point down: DESIGN.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .. import sources
from ..errors import FormatError
from ..models import BadRecord, Paper, PaperRecord
from ..ingest import check_item, item_location
from ..store.merge import source_id_of
from .authors import followed_first
from .paper_meta import withdrawn
from .recommend import Interest, Reader, Recommender
from .recs import FOLLOWS, Rec  # noqa: F401 (FOLLOWS: what callers imported from here)

if TYPE_CHECKING:
    from ..embed import Embedder
    from ..index.vectors import VectorIndex
    from ..store import Store

IMPORT_FORMATS = ("bibtex", "csl-json")
FEEDBACK_KINDS = ("up", "down", "dismiss")


class ImportDeps(Protocol):
    """What ``import_library`` uses: the store, and ``embed`` for the papers it added."""

    @property
    def store(self) -> Store: ...

    def embed(self) -> dict[str, int]: ...


class RecommendDeps(Protocol):
    """What the reader model and ranking use: the store, the embedder (a reader's interest
    statement) and the recommender over the current vectors (None without vectors)."""

    @property
    def store(self) -> Store: ...

    @property
    def embedder(self) -> Embedder: ...

    def recommender(self) -> Recommender | None: ...


class SearchDeps(Protocol):
    """What ``search_library`` uses: the store, the embedder and the vector index."""

    @property
    def store(self) -> Store: ...

    @property
    def embedder(self) -> Embedder: ...

    def vectors(self) -> VectorIndex | None: ...


def import_library(deps: ImportDeps, user_id: int, path: Path, folder: str = "imported",
                   source: str | None = None) -> dict[str, Any]:
    """Import a Zotero export (BibTeX or CSL-JSON) into the store and save every paper in it to the
    reader's ``folder``; new papers are embedded so they count at once. ``source``: record the
    entries under that source instead of the format's (a member's upload is ``upload``, which
    public lists and search do not trust; see ``jobs.confirmed``)."""
    fmt = sources.detect(Path(path))
    if fmt not in IMPORT_FORMATS:
        raise FormatError(f"{path}: a library import takes BibTeX or CSL-JSON (Zotero's exports), not {fmt}")
    items = list(sources.module(fmt).read(Path(path)))
    # The same gate as `paperboy ingest` (types, lengths, characters, date range), the same locations.
    items = [BadRecord(item_location(str(path), n, r), why)
             if isinstance(r, PaperRecord) and (why := check_item(r)) else r for n, r in enumerate(items, start=1)]
    records = [r for r in items if isinstance(r, PaperRecord)]
    skipped = [str(r) for r in items if isinstance(r, BadRecord)]
    warnings: list[str] = []
    store = deps.store
    if source:
        for r in records:
            r.source = source
    store.upsert_papers(records)
    ids = store.paper_ids_by_source(source or fmt, [source_id_of(r) for r in records])
    saved = sum(store.save(user_id, pid, folder) for pid in dict.fromkeys(ids.values()))
    try:
        deps.embed()
    except Exception as e:  # noqa: BLE001 - no embed extra: the library is saved, recommendations wait
        warnings.append(f"not embedded: {e}")
    return {"read": len(items), "papers": len(set(ids.values())), "saved": saved, "skipped": skipped,
            "warnings": warnings}


def reader_for(deps: RecommendDeps, user_id: int, for_digest: bool = False) -> tuple[Reader, dict[str, Any]]:
    """The reader model from the store: positives = saved, upvoted or rated up; negatives = rated
    down or dismissed; never recommended: all of those (and, for digests, what was sent)."""
    store = deps.store
    profile = store.profile(user_id)
    prefs = store.interest_prefs(user_id)
    feedback = store.feedback(user_id)
    saved = [s["paper_id"] for s in store.saves(user_id)]
    voted = store.my_votes(user_id)
    dropped = {pid for p in prefs.values() if p["deleted"] for pid in p["members"]}
    positives = [i for i in dict.fromkeys(saved + voted + [i for i, k in feedback.items() if k == "up"])
                 if i not in dropped]
    negatives = [i for i, k in feedback.items() if k in ("down", "dismiss")]
    statement = None
    if profile["statement"].strip():
        statement = deps.embedder.encode_query(profile["statement"])
    exclude = set(saved) | set(feedback) | set(voted)
    if for_digest:
        exclude |= store.sent_ids(user_id)
    reader = Reader(positives, negatives, statement, exclude,
                    muted={k for k, p in prefs.items() if p["muted"]},
                    deleted={k for k, p in prefs.items() if p["deleted"]},
                    names={k: p["name"] for k, p in prefs.items() if p["name"]})
    return reader, profile


def _terms_re(terms: list[str]) -> re.Pattern[str] | None:
    terms = [t.strip().lower() for t in terms if t.strip()]
    return re.compile(r"\b(" + "|".join(re.escape(t) for t in terms) + r")\b") if terms else None


def rules(store: Store, profile: dict[str, Any]):  # noqa: ANN201 - a closure for Recommender.recommend
    """The reader's keyword include/exclude rules and category filter, as a candidate filter; papers
    known only from members' uploads are never recommended (anyone's metadata; see jobs.confirmed),
    nor withdrawn ones (``paper_meta.withdrawn``)."""
    include, exclude = _terms_re(profile["include_terms"]), _terms_re(profile["exclude_terms"])
    cats = [c.lower() for c in profile["categories"] if c.strip()]

    def keep(ids: list[int]) -> dict[int, list[str]]:
        hidden = store.uploads_only(ids)
        papers = store.get_papers([i for i in ids if i not in hidden])
        out: dict[int, list[str]] = {}
        for i in ids:
            p = papers.get(i)
            if p is None or withdrawn(p):  # a withdrawn paper leaves recommendations (issue 13)
                continue
            text = f"{p.title}\n{p.abstract}".lower()
            if exclude and exclude.search(text):
                continue
            if cats and not any(c.lower() == want or c.lower().startswith(want + ".")
                                for c in p.categories for want in cats):
                continue
            out[i] = sorted(set(include.findall(text))) if include else []
        return out
    return keep


def recommend(deps: RecommendDeps, user_id: int, k: int = 20, for_digest: bool = False,
              candidates: list[int] | None = None) -> tuple[list[Rec], list[Interest]]:
    """Explained recommendations for a reader (from ``candidates`` when given), and their interests."""
    return rank(deps, *reader_for(deps, user_id, for_digest), k, candidates)


def rank(deps: RecommendDeps, reader: Reader, profile: dict[str, Any], k: int = 20,
         candidates: list[int] | None = None) -> tuple[list[Rec], list[Interest]]:
    """``recommend`` for a reader model already built (``reader_for``)."""
    recommender = deps.recommender()
    if recommender is None:
        return followed_first(deps, reader, profile.get("user_id"), [], k, rules(deps.store, profile), candidates), []
    recs, interests = recommender.recommend(reader, k, keep=rules(deps.store, profile), candidates=candidates)
    by_key = {i.key: i for i in interests}
    papers = deps.store.get_papers([r.paper_id for r in recs] + [i for r in recs for i, _ in r.because])
    out = [Rec(papers[r.paper_id], r, by_key[r.interest], [(papers[i], s) for i, s in r.because if i in papers])
           for r in recs if r.paper_id in papers]
    # followed authors' new papers first, marked (a separate step: services/authors.py)
    return followed_first(deps, reader, profile.get("user_id"), out, k, rules(deps.store, profile), candidates), interests


def search_library(deps: SearchDeps, user_id: int, query: str, k: int = 20) -> list[tuple[Paper, float]]:
    """Natural-language search inside one's own library: cosine to the query's embedding, plus a
    small bonus per query word found in the title or abstract."""
    ids = list(dict.fromkeys(s["paper_id"] for s in deps.store.saves(user_id)))
    papers = deps.store.get_papers(ids)
    words = [w for w in re.findall(r"\w+", query.lower()) if len(w) > 2]
    vectors = deps.vectors() if ids else None
    qvec = deps.embedder.encode_query(query) if vectors is not None and query.strip() else None
    scored = []
    for i in ids:
        p = papers.get(i)
        if p is None:
            continue
        text = f"{p.title} {p.abstract}".lower()
        s = 0.05 * sum(w in text for w in words)
        v = vectors.vector(i) if vectors is not None else None
        if qvec is not None and v is not None:
            s += float(np.dot(v, qvec))
        scored.append((p, s))
    return sorted(scored, key=lambda x: -x[1])[:k]
