"""The topic map (issue 13): /topics (the corpus as a static SVG map plus the topic list, usable
without JavaScript), /topics/{slug} (its latest day, trending, newest papers, and its rise), and
the JSON API /api/topics (``?paper=ID``: a paper's topic) and /api/topics/{slug}. The fitting,
figures and lists live in services/topics.py; every route reads them on the heavy-read thread
(``off_loop``), and the follower thread (``follow_loop``) keeps the model caught up with the store,
so no request waits on TF-IDF rows or topic assignment."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from ..errors import NotFound
from ..index.topics import TopicsMissing
from ..services.topics import interest_points, latest_day_ids, topic_by_slug, topic_lists
from .background import off_loop
from .pages import MAX_ID, _engine, render

router = APIRouter()


def _fitted(engine: Any) -> bool:
    """Whether a topic model may exist: False (no saved model) answers at once, on the loop."""
    return engine.topics().saved()


def _map(engine: Any, user: dict[str, Any] | None, highlight: int | None = None) -> str:
    _, today = latest_day_ids(engine)
    interests = interest_points(engine, user["id"]) if user else []
    return engine.topics().map_svg(today, interests, highlight)


def _overview(engine: Any, user: dict[str, Any] | None) -> dict[str, Any]:
    topics = engine.topics()
    model = topics.current()
    if model is None:
        return {"model": None}
    return {"model": model, "svg": _map(engine, user), "infos": topics.infos(), "rising": topics.rising()}


@router.get("/topics", response_class=HTMLResponse, include_in_schema=False)
async def topics_page(request: Request) -> Response:
    engine = _engine(request)
    user = request.state.user = request.app.state.auth.user(request)
    context = await off_loop(request, _overview, engine, user) if _fitted(engine) else {"model": None}
    return render(request, "topics.html", context)


def _topic_page(engine: Any, slug: str, user_id: int | None) -> dict[str, Any]:
    t = topic_by_slug(engine, slug)
    return {"info": engine.topics().infos()[t], "svg": _map(engine, None, t), **topic_lists(engine, t, user_id),
            "recent_days": 30, "baseline_days": 365}


@router.get("/topics/{slug}", response_class=HTMLResponse, include_in_schema=False)
async def topic_page(request: Request, slug: str) -> Response:
    engine = _engine(request)
    user = request.state.user = request.app.state.auth.user(request)
    if not _fitted(engine):
        raise NotFound(str(TopicsMissing()))
    return render(request, "topic.html", await off_loop(request, _topic_page, engine, slug, user and user["id"]))


def _api_topics(engine: Any, paper: str | None) -> dict[str, Any]:
    topics = engine.topics()
    model = topics.current()
    if model is None:
        raise NotFound(str(TopicsMissing()))
    if paper is not None:
        found = engine.paper(paper) if not paper.isdigit() or int(paper) <= MAX_ID else None
        if found is None:
            raise NotFound(f"no paper {paper[:80]!r}")
        return {"id": found.arxiv_id or str(found.id), "topic": topics.paper_topic(found.id)}
    return {"method": model.meta.get("method"), "fitted_at": model.meta.get("fitted_at"),
            "papers": topics.public_count(), "topics": [i.as_json() for i in topics.infos()],
            "rising": [i.slug for i in topics.rising()]}


@router.get("/api/topics", tags=["topics"], summary="The topics of the topic map, with sizes and rise; "
            "?paper=ID: that paper's topic")
async def api_topics(request: Request, paper: str | None = Query(None, min_length=1, max_length=200)) -> dict[str, Any]:
    engine = _engine(request)
    if not _fitted(engine):
        raise NotFound(str(TopicsMissing()))
    return await off_loop(request, _api_topics, engine, paper)


def _api_topic(engine: Any, slug: str) -> dict[str, Any]:
    t = topic_by_slug(engine, slug)
    lists = topic_lists(engine, t, None)

    def brief(entries: list[Any]) -> list[dict[str, Any]]:
        return [{"id": e.paper.arxiv_id or str(e.paper.id), "title": e.paper.title, "submitted": e.paper.submitted,
                 "upvotes": e.votes} for e in entries]
    return {**engine.topics().infos()[t].as_json(), "day": lists["day"], "latest_day": brief(lists["today"]),
            "trending": brief(lists["trending"]), "newest": brief(lists["newest"])}


@router.get("/api/topics/{slug}", tags=["topics"], summary="One topic: its terms, rise and papers")
async def api_topic(request: Request, slug: str) -> dict[str, Any]:
    engine = _engine(request)
    if not _fitted(engine):
        raise NotFound(str(TopicsMissing()))
    return await off_loop(request, _api_topic, engine, slug)
