"""Author pages, following authors, and the authors API.

``/authors``: the authors the signed-in reader follows. ``/authors/{key or name}``: the author's papers newest first (paged), co-authors with their counts,
a follow button. A name (as the lists link it, with ``?in=<paper id>`` so the initials rule can use
that paper's co-authors) redirects to its key's page. ``POST /authors/follow`` (a signed-in
reader's form, CSRF-checked) follows or unfollows. API: ``GET /api/authors/{key}``, ``GET`` and
``POST /api/follows``, ``DELETE /api/follows/{key}`` (a token; writes need the write scope).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from ..services import authors
from .account import site_url
from ..models import Paper
from .api import _time, _user, ref_of
from .background import off_loop
from .pages import MAX_ID, _back, _engine, _signed_in, render

router = APIRouter()
MAX_PAGE = 1000
PER_PAGE = 20


def author_url(key: str) -> str:
    return "/authors/" + quote(key, safe="")


def _page_of(engine: Any, ref: str, paper_id: int | None, page: int, per_page: int) -> tuple[str, Any]:
    """(key, its page): one trip to the heavy-read thread (the index's first build reads every paper)."""
    key = authors.resolve(engine.authors(), ref, paper_id)
    return key, authors.author_page(engine, key, page, per_page)


@router.get("/authors", response_class=HTMLResponse, include_in_schema=False)
async def following_page(request: Request) -> Response:
    """The authors the signed-in reader follows, each with its page, paper count and an unfollow button."""
    user = request.state.user = request.app.state.auth.user(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    engine = _engine(request)
    follows = engine.store.follows(user["id"])
    counts = await off_loop(request, authors.follow_counts, engine, [f["author_key"] for f in follows]) if follows else {}
    rows = [(f, counts.get(f["author_key"], 0)) for f in follows]
    return render(request, "following.html", {"rows": rows, "author_url": author_url})


@router.get("/authors/{ref:path}", response_class=HTMLResponse, include_in_schema=False)
async def author_page(request: Request, ref: str, page: int = Query(1, ge=1, le=MAX_PAGE),
                      in_: int | None = Query(None, alias="in", ge=1, le=MAX_ID)) -> Response:
    engine = _engine(request)
    key, data = await off_loop(request, _page_of, engine, ref, in_, page, PER_PAGE)
    if key != ref or in_ is not None:  # a name, or a name on a paper: the key's own address
        return RedirectResponse(author_url(key) + (f"?page={page}" if page > 1 else ""), status_code=302)
    user = request.state.user = request.app.state.auth.user(request)
    following = user is not None and any(f["author_key"] == key for f in engine.store.follows(user["id"]))
    return render(request, "author.html", {"a": data, "following": following, "author_url": author_url})


@router.post("/authors/follow", include_in_schema=False)
async def follow_form(request: Request, key: str = Form(..., min_length=1, max_length=authors.MAX_REF),
                      remove: int = Form(0, ge=0, le=1), csrf: str = Form("")) -> Response:
    user = _signed_in(request, csrf)
    engine = _engine(request)
    if remove:
        authors.unfollow(engine, user["id"], key)
        back = author_url(key)
    else:
        back = author_url((await off_loop(request, authors.follow, engine, user["id"], key))["author_key"])
    return RedirectResponse(_back(request, back), status_code=303)


# -- API -----------------------------------------------------------------------------------------


class FollowIn(BaseModel):
    author: str = Field(min_length=1, max_length=authors.MAX_REF, description="an author key or a name")


@router.get("/api/authors/{key:path}", tags=["api"], summary="An author: papers newest first, co-authors")
async def api_author(request: Request, key: str, page: int = Query(1, ge=1, le=MAX_PAGE),
                     limit: int = Query(PER_PAGE, ge=1, le=100)) -> dict[str, Any]:
    engine = _engine(request)
    key, data = await off_loop(request, _page_of, engine, key, None, page, limit)
    site = site_url(request)
    return {"key": data.key, "name": data.name, "url": site + author_url(data.key), "spellings": data.spellings,
            "total": data.total, "page": data.page, "pages": data.pages,
            "papers": [_paper(p, site) for p in data.papers],
            "coauthors": [{"key": k, "name": n, "papers": c} for k, n, c in data.coauthors],
            "maybe": [{"key": k, "name": n} for k, n in data.maybe],
            "feed": f"{site}/feeds/authors/{quote(data.key, safe='')}.atom"}


def _paper(p: Paper, site: str) -> dict[str, Any]:
    """A paper in an author's list: the Hugging Face API's names for what it has (no derived
    keywords or links: those are on /api/papers/{id})."""
    return {"id": p.arxiv_id or p.canonical_id, "title": p.title, "authors": [{"name": a} for a in p.authors],
            "publishedAt": _time(p.submitted), "summary": p.abstract, "url": f"{site}/papers/{quote(ref_of(p))}"}


@router.get("/api/follows", tags=["api"], summary="The authors you follow (token)")
async def api_follows(request: Request) -> dict[str, Any]:
    user = _user(request)
    return {"follows": _engine(request).store.follows(user["id"])}


@router.post("/api/follows", tags=["api"], status_code=201, summary="Follow an author (token, write scope)")
async def api_follow(request: Request, body: FollowIn) -> dict[str, Any]:
    user = _user(request)
    return await off_loop(request, authors.follow, _engine(request), user["id"], body.author.strip())


@router.delete("/api/follows/{key:path}", tags=["api"], summary="Stop following an author (token, write scope)")
async def api_unfollow(request: Request, key: str) -> dict[str, Any]:
    user = _user(request)
    return {"key": key, "removed": authors.unfollow(_engine(request), user["id"], key)}
