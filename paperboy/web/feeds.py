"""Atom 1.0 feeds (feedgen): the daily list, trending, any search, and each reader's
recommendations behind a secret, revocable token in the URL."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from feedgen.feed import FeedGenerator

from ..errors import NotFound
from ..models import Paper
from ..normalize import date_start
from ..services import library
from ..services.paper_meta import withdrawn
from ..services.versions import update_note
from .auth import sha256
from .background import off_loop

router = APIRouter(prefix="/feeds", tags=["feeds"])
ATOM = "application/atom+xml; charset=utf-8"


# Code points XML 1.0 forbids (C0 controls but tab/LF/CR, surrogates, U+FFFE/U+FFFF): one in a
# title would make the whole feed unparseable, so they are dropped at output as well as at ingest.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str | None) -> str:
    return _NOT_XML.sub("", text or "")


def base_url(request: Request) -> str:
    """The site's public URL from the settings, never from the request's Host header (which any
    client sets: a feed cached by a proxy would point readers elsewhere)."""
    s = request.app.state.engine.settings
    return (s["base_url"] or f"http://{s['web_host']}:{s['web_port']}").rstrip("/")


def _date(day: str | None) -> datetime:
    """A paper date as a feed time; a year or month alone ("2024", "2024-08") is its first day, as
    Atom needs a full date (pages show the date as stored, never a made-up day)."""
    if start := date_start((day or "")[:10]):
        try:
            return datetime.fromisoformat(start).replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    return datetime(1970, 1, 1, tzinfo=timezone.utc)


def _flagged(paper: Paper, title: str) -> str:
    """A withdrawn paper's entry title says so, as every list does (issue 13)."""
    return f"[Withdrawn] {title}" if withdrawn(paper) else title


def atom(request: Request, path: str, title: str, items: list[tuple[Paper, str | None]]) -> Response:
    """One feed: entries carry title, authors, abstract (plus a note), links and dates."""
    base = base_url(request)
    fg = FeedGenerator()
    fg.id(base + path)
    fg.title(xml_text(title))
    fg.link(href=base + path, rel="self")
    fg.link(href=base + "/", rel="alternate")
    fg.generator("paperboy")
    newest = max((_date(p.updated or p.submitted) for p, _ in items), default=datetime.now(timezone.utc))
    fg.updated(newest)
    for paper, note in reversed(items):  # feedgen prepends: reversed keeps the list's order
        url = f"{base}/papers/{paper.arxiv_id or paper.id}"
        e = fg.add_entry()
        e.id(url)
        e.title(_flagged(paper, xml_text(paper.title) or "untitled"))
        e.link(href=url, rel="alternate")  # one link: feedgen 1.0 drops the rel of further ones
        for name in paper.authors[:50] or ["unknown"]:
            e.author({"name": xml_text(name) or "unknown"})
        pdf = f"\n\nPDF: https://arxiv.org/pdf/{paper.arxiv_id}" if paper.arxiv_id else ""
        note = "; ".join(n for n in (note, update_note(paper)) if n)  # "updated to v3 (2024-05-02)"
        e.summary(xml_text((note + "\n\n" if note else "") + paper.abstract + pdf))
        e.published(_date(paper.submitted))
        e.updated(_date(paper.updated or paper.submitted))
    return Response(fg.atom_str(pretty=True), media_type=ATOM)


@router.get("/daily.atom", summary="The latest daily list (code=1: papers with code only)")
async def daily(request: Request, code: bool = False) -> Response:
    lst = request.app.state.engine.listings
    period = lst.period(None)
    entries = lst.daily(period, has="code" if code else None) if period else []
    label = period.label if period else "no papers yet"
    return atom(request, "/feeds/daily.atom" + _code_query(code), f"paperboy daily papers {label}{_with_code(code)}",
                [(e.paper, f"{e.votes} upvotes") for e in entries])


@router.get("/trending.atom", summary="Trending papers (code=1: papers with code only)")
async def trending(request: Request, code: bool = False) -> Response:
    entries = request.app.state.engine.listings.trending(has="code" if code else None)
    return atom(request, "/feeds/trending.atom" + _code_query(code), f"paperboy trending{_with_code(code)}",
                [(e.paper, f"{e.votes} upvotes") for e in entries])


def _code_query(code: bool) -> str:
    """The "with code" filter in a feed's own URL (its id and self link)."""
    return "?code=1" if code else ""


def _with_code(code: bool) -> str:
    return " with code" if code else ""


@router.get("/search.atom", summary="A saved search as a feed (newest first)")
async def search(request: Request, q: str = Query(..., min_length=1, max_length=1000)) -> Response:
    res = request.app.state.engine.search(q, sort="date", per_page=50)
    path = "/feeds/search.atom?" + urlencode({"q": xml_text(q)})
    return atom(request, path, f"paperboy search: {q}", [(h.paper, None) for h in res.hits])


@router.get("/topics/{slug}.atom", summary="A topic's newest papers (topic map, issue 13)")
async def topic(request: Request, slug: str) -> Response:
    from ..services.topics import topic_feed

    title, items = await off_loop(request, topic_feed, request.app.state.engine, slug)
    return atom(request, f"/feeds/topics/{slug}.atom", f"paperboy topic: {title}", items)


@router.get("/recommendations/{token}.atom", summary="A reader's recommendations (secret token)")
async def recommendations(request: Request, token: str) -> Response:
    engine = request.app.state.engine
    user_id = engine.store.user_by_feed_token(sha256(token))
    if user_id is None:
        raise NotFound("no such feed (the link may have been replaced)")
    recs, _ = await off_loop(request, library.recommend, engine, user_id, 30)
    return atom(request, f"/feeds/recommendations/{token}.atom", "paperboy: recommended for you",
                [(r.paper, "Why: " + r.why) for r in recs])


@router.get("/authors/{key}.atom", summary="An author's papers, newest first (author key or name)")
async def author(request: Request, key: str) -> Response:
    from urllib.parse import quote

    from ..services import authors

    engine = request.app.state.engine

    def page() -> authors.AuthorPage:
        return authors.author_page(engine, authors.resolve(engine.authors(), key), 1, 50)

    a = await off_loop(request, page)
    return atom(request, f"/feeds/authors/{quote(a.key, safe='')}.atom", f"paperboy: papers by {a.name}",
                [(p, None) for p in a.papers])
