"""The topic map (issue 13): /topics (the corpus as a static SVG map plus the topic list, usable
without JavaScript), /topics/{slug} (its latest day, trending, newest papers, and its rise), and
the JSON API /api/topics (``?paper=ID``: a paper's topic) and /api/topics/{slug}. The fitting and figures
live in services/topics.py."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from ..errors import ConfigError, NotFound
from ..index.topics import TopicsMissing
from ..services.topics import interest_points
from .background import off_loop
from .pages import MAX_ID, _engine, render

router = APIRouter()
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
LIST_LIMIT = 50


def _model(engine: Any) -> Any:
    """The fitted topic model following the corpus, or None (no model yet, or no scikit-learn)."""
    try:
        return engine.topics().current(engine.tfidf())
    except ConfigError:
        return None


def _topic(engine: Any, slug: str) -> int:
    """A topic by its slug; NotFound for anything else (hostile input included)."""
    if len(slug) > 80 or not SLUG.fullmatch(slug):
        raise NotFound("no such topic")
    if _model(engine) is None:
        raise NotFound(str(TopicsMissing()))
    model = engine.topics().model
    if slug not in model.slugs:
        raise NotFound(f"no topic {slug!r}: see /topics for the list")
    return model.slugs.index(slug)


def _latest_day_ids(engine: Any) -> tuple[str | None, list[int]]:
    period = engine.listings.period(None)
    return (period.label, engine.store.day_ids(period.first, period.last)) if period else (None, [])


def topic_lists(engine: Any, t: int, user_id: int | None) -> dict[str, Any]:
    """One topic's latest-day list, trending and newest papers, as list entries."""
    topics = engine.topics()
    members = topics.members_set(t)
    lst = engine.listings
    day, today = _latest_day_ids(engine)
    today = [i for i in today if i in members]
    votes = engine.store.votes(today)
    today.sort(key=lambda i: (-votes.get(i, 0), -i))
    scores = topics.trending_scores(lst)
    hot = sorted((i for i in scores if i in members), key=lambda i: -scores[i])[:10]
    trending = lst.entries(hot, user_id)
    for e in trending:
        e.score = round(scores[e.paper.id], 4)
    return {"day": day, "today": lst.entries(today[:LIST_LIMIT], user_id), "trending": trending,
            "newest": lst.entries(topics.newest(t, 20), user_id), "today_total": len(today)}


def _map(engine: Any, user: dict[str, Any] | None, highlight: int | None = None) -> str:
    _, today = _latest_day_ids(engine)
    interests = interest_points(engine, user["id"]) if user else []
    return engine.topics().map_svg(today, interests, highlight)


@router.get("/topics", response_class=HTMLResponse, include_in_schema=False)
async def topics_page(request: Request) -> Response:
    engine = _engine(request)
    user = request.state.user = request.app.state.auth.user(request)
    model = _model(engine)
    if model is None:
        return render(request, "topics.html", {"model": None})
    svg = await off_loop(request, _map, engine, user) if user else _map(engine, None)
    topics = engine.topics()
    return render(request, "topics.html", {"model": model, "svg": svg, "infos": topics.infos(),
                                           "rising": topics.rising()})


@router.get("/topics/{slug}", response_class=HTMLResponse, include_in_schema=False)
async def topic_page(request: Request, slug: str) -> Response:
    engine = _engine(request)
    user = request.state.user = request.app.state.auth.user(request)
    t = _topic(engine, slug)
    topics = engine.topics()
    info = topics.infos()[t]
    lists = topic_lists(engine, t, user and user["id"])
    return render(request, "topic.html", {"info": info, "svg": _map(engine, None, t), **lists,
                                          "recent_days": 30, "baseline_days": 365})


@router.get("/api/topics", tags=["topics"], summary="The topics of the topic map, with sizes and rise; "
            "?paper=ID: that paper's topic")
async def api_topics(request: Request, paper: str | None = Query(None, min_length=1, max_length=200)) -> dict[str, Any]:
    engine = _engine(request)
    model = _model(engine)
    if model is None:
        raise NotFound(str(TopicsMissing()))
    topics = engine.topics()
    if paper is not None:
        found = engine.paper(paper) if not paper.isdigit() or int(paper) <= MAX_ID else None
        if found is None:
            raise NotFound(f"no paper {paper[:80]!r}")
        return {"id": found.arxiv_id or str(found.id), "topic": topics.paper_topic(found.id)}
    return {"method": model.meta.get("method"), "fitted_at": model.meta.get("fitted_at"),
            "papers": len(model.ids), "topics": [i.as_json() for i in topics.infos()],
            "rising": [i.slug for i in topics.rising()]}


@router.get("/api/topics/{slug}", tags=["topics"], summary="One topic: its terms, rise and papers")
async def api_topic(request: Request, slug: str) -> dict[str, Any]:
    engine = _engine(request)
    t = _topic(engine, slug)
    lists = topic_lists(engine, t, None)

    def brief(entries: list[Any]) -> list[dict[str, Any]]:
        return [{"id": e.paper.arxiv_id or str(e.paper.id), "title": e.paper.title, "submitted": e.paper.submitted,
                 "upvotes": e.votes} for e in entries]
    return {**engine.topics().infos()[t].as_json(), "day": lists["day"], "latest_day": brief(lists["today"]),
            "trending": brief(lists["trending"]), "newest": brief(lists["newest"])}


def topic_feed(engine: Any, slug: str, limit: int = 50) -> tuple[str, list[tuple[Any, str | None]]]:
    """(title, [(paper, note)]) of /feeds/topics/{slug}.atom: the topic's newest papers."""
    t = _topic(engine, slug)
    topics = engine.topics()
    ids = topics.newest(t, limit)
    papers = engine.store.get_papers(ids)
    hidden = engine.store.uploads_only(ids)
    label = topics.model.labels[t]
    return label, [(papers[i], f"Topic: {label}") for i in ids if i in papers and i not in hidden]
