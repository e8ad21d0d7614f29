"""Authors: a page per author key (papers newest first, co-authors), following an author, and
followed authors' new papers first in a reader's recommendations, digest and feed.

Keys and the initials rule are in ``paperboy/authors.py``; the index from key to papers is
``index/authors.py`` (the engine keeps one, following the store). Front ends pass the engine as
``AuthorDeps``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import BadRequest, NotFound
from ..models import Paper
from ..normalize import date_start
from .recs import FOLLOWS, Rec
from .recommend import Interest, Reader, Recommendation

if TYPE_CHECKING:
    from ..index.authors import AuthorIndex
    from ..store import Store

MAX_REF = 300  # an author key or name in a URL
MAX_FOLLOWS = 500  # authors one reader may follow
NEW_DAYS = 60  # "new": dated within this many days of the newest paper of the corpus
FOLLOWED_SHARE = 0.5  # at most this share of a list (rounded up) goes to followed authors


class AuthorDeps(Protocol):
    """What author pages and follows use: the store and the author index following it."""

    @property
    def store(self) -> Store: ...

    def authors(self) -> AuthorIndex: ...


@dataclass
class AuthorPage:
    """One author's page: ``papers`` is one page of ``total``, newest first."""

    key: str
    name: str
    papers: list[Paper]
    total: int
    page: int
    per_page: int
    coauthors: list[tuple[str, str, int]]  # (key, name, papers together)
    maybe: list[tuple[str, str]] = field(default_factory=list)  # an abbreviation: who it may be
    spellings: list[str] = field(default_factory=list)  # the ways the name is written

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


def resolve(index: AuthorIndex, ref: str, paper_id: int | None = None) -> str:
    """The author key ``ref`` names: a known key, or a name as written (on ``paper_id``, where
    the initials rule may read it as a full name). NotFound when no paper has it."""
    if not isinstance(ref, str) or not ref.strip() or len(ref) > MAX_REF:
        raise BadRequest(f"an author is a key or a name of 1 to {MAX_REF} characters")
    if paper_id is None and index.known(ref):
        return ref
    key = index.key_for(ref, paper_id)
    if key is None and index.known(ref):
        key = ref
    if key is None:
        raise NotFound(f"no papers by {ref[:100]!r}")
    return key


def author_page(deps: AuthorDeps, key: str, page: int = 1, per_page: int = 20, coauthors: int = 50) -> AuthorPage:
    """The author's papers (one page, newest first) and co-authors with their counts; papers known
    only from members' uploads are not shown (anyone's metadata, as on public lists)."""
    index = deps.authors()
    ids = public_papers(deps, key)
    start = (page - 1) * per_page
    got = deps.store.get_papers(ids[start:start + per_page])
    co = [(k, index.name(k), n) for k, n in index.coauthors(key, ids)[:coauthors]]
    maybe = [(k, index.name(k)) for k in index.maybe(key) if _has_public(deps, k)]
    return AuthorPage(key, index.name(key), [got[i] for i in ids[start:start + per_page] if i in got], len(ids),
                      page, per_page, co, maybe, index.spellings(key, ids))


def public_papers(deps: AuthorDeps, key: str) -> list[int]:
    """The author's papers newest first, less those known only from members' uploads; NotFound
    when none is left, so a page, feed or follow never tells that an upload names someone."""
    ids = deps.authors().papers(key)
    hidden = deps.store.uploads_only(ids) if ids else set()
    ids = [i for i in ids if i not in hidden]
    if not ids:
        raise NotFound(f"no author {key[:100]!r}")
    return ids


def _has_public(deps: AuthorDeps, key: str) -> bool:
    ids = deps.authors().papers(key)
    return bool(ids) and len(deps.store.uploads_only(ids)) < len(ids)


def follow_counts(deps: AuthorDeps, keys: list[str]) -> dict[str, int]:
    """Public papers per followed author key (0: none left, e.g. its papers were merged away)."""
    index = deps.authors()
    papers = {key: index.papers(key) for key in keys}
    every = list({i for ids in papers.values() for i in ids})
    hidden = deps.store.uploads_only(every) if every else set()  # one lookup for up to MAX_FOLLOWS authors
    return {key: sum(i not in hidden for i in ids) for key, ids in papers.items()}


def follow(deps: AuthorDeps, user_id: int, ref: str) -> dict[str, Any]:
    """Follow the author ``ref`` (key or name); the row as stored. At most ``MAX_FOLLOWS``."""
    index = deps.authors()
    key = resolve(index, ref)
    public_papers(deps, key)  # NotFound for an author only uploads name
    store = deps.store
    mine = {f["author_key"] for f in store.follows(user_id)}
    if key not in mine and len(mine) >= MAX_FOLLOWS:
        raise BadRequest(f"you follow {MAX_FOLLOWS} authors already: unfollow one first")
    store.follow(user_id, key, index.name(key)[:200])
    return next(f for f in store.follows(user_id) if f["author_key"] == key)


def unfollow(deps: AuthorDeps, user_id: int, key: str) -> bool:
    if not isinstance(key, str) or not key or len(key) > MAX_REF:
        raise BadRequest(f"an author key is 1 to {MAX_REF} characters")
    return deps.store.unfollow(user_id, key)


# -- followed authors first --------------------------------------------------------------------


def _new_since(index: AuthorIndex) -> str:
    """``NEW_DAYS`` before the newest full date (``index.newest`` holds only YYYY-MM-DD); "" if none."""
    try:
        return (date.fromisoformat(index.newest) - timedelta(days=NEW_DAYS)).isoformat()
    except ValueError:
        return ""


def followed_first(deps: Any, reader: Reader, user_id: int | None, recs: list[Rec], k: int,
                   keep: Any, candidates: list[int] | None = None) -> list[Rec]:
    """``recs`` with the reader's followed authors' new papers first (newest first, at most half of
    ``k`` rounded up), each marked with who wrote it; the rest keep their order. New: among
    ``candidates`` when given (a digest's new papers), else dated within ``NEW_DAYS`` of the
    corpus's newest paper. What the reader saved, rated, dismissed or was sent (``reader.exclude``)
    and what their rules drop (``keep``) stay out."""
    if user_id is None or not hasattr(deps, "authors"):
        return recs
    follows = deps.store.follows(user_id)
    if not follows:
        return recs
    index = deps.authors()
    allowed = set(candidates) if candidates is not None else None
    since = _new_since(index) if candidates is None else ""
    by: dict[int, list[str]] = {}
    for f in follows:
        for pid in index.papers(f["author_key"]):
            # A partial date ("2025", "2025-08") counts from its first day; papers sort by the
            # date as written, which orders them as their first days do, so the rest are older.
            if since and (date_start(index.date(pid)[:10]) or "") < since:
                break
            if pid in reader.exclude or (allowed is not None and pid not in allowed):
                continue
            by.setdefault(pid, []).append(index.name(f["author_key"]))
    for pid in deps.store.uploads_only(list(by)) if by else ():
        del by[pid]  # anyone's metadata: not put before a reader as a followed author's paper
    if not by:
        return recs
    ordered = sorted(by, key=lambda p: (index.date(p), p), reverse=True)
    cap = max(1, math.ceil(k * FOLLOWED_SHARE))
    ids: list[int] = []
    for start in range(0, len(ordered), 2 * cap):  # the rules read papers: only as many as needed
        chunk = ordered[start:start + 2 * cap]
        kept = keep(chunk)
        ids += [i for i in chunk if i in kept][:cap - len(ids)]
        if len(ids) >= cap:
            break
    if not ids:
        return recs
    have = {r.paper.id: r for r in recs}
    papers = deps.store.get_papers([i for i in ids if i not in have])
    interest = Interest(FOLLOWS, "authors you follow", [], 0.0, np.zeros(0, np.float32))
    first = []
    for pid in ids:
        rec = have.get(pid)
        if rec is None and pid in papers:
            rec = Rec(papers[pid], Recommendation(pid, 1.0, 0.0, 1.0, FOLLOWS), interest, [])
        if rec is not None:
            rec.followed = ", ".join(dict.fromkeys(by[pid]))
            first.append(rec)
    chosen = {r.paper.id for r in first}
    return (first + [r for r in recs if r.paper.id not in chosen])[:k]
