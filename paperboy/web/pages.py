"""Server-rendered HTML pages. Reading works without JavaScript; every change is a POST form with a
CSRF token (``static/app.js`` only turns the vote form into a request without a reload)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ..errors import BadRequest, ConfigError, Forbidden, NotFound
from ..normalize import parse_arxiv_id
from ..services.listing import parse_period
from ..services.search import MODES

router = APIRouter(include_in_schema=False)
MAX_ID = 2**63 - 1  # SQLite's integer range: a larger id is a 400, not an OverflowError
MAX_PAGE = 10_000
PaperId = Form(..., ge=1, le=MAX_ID)


def render(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> HTMLResponse:
    app = request.app
    user = getattr(request.state, "user", None)
    if user is None:
        user = request.state.user = app.state.auth.user(request)
    base = {"request": request, "user": user, "csrf": app.state.auth.csrf_token(request.state.csrf_seed)}
    return app.state.templates.TemplateResponse(request, name, base | ctx, status_code=status)


def _engine(request: Request) -> Any:
    return request.app.state.engine


def _signed_in(request: Request, csrf: str) -> dict[str, Any]:
    """The user of a state-changing form; checks its CSRF token first."""
    auth = request.app.state.auth
    auth.check_csrf(request, csrf)
    user = request.state.user = auth.user(request)
    if user is None:
        raise Forbidden("please log in first")
    return user


def _back(request: Request, fallback: str = "/") -> str:
    """Where a form returns to: its own page (same-site referer path only)."""
    ref = request.headers.get("referer", "")
    host = f"{request.url.scheme}://{request.url.netloc}"
    path = ref[len(host):] if ref.startswith(host + "/") else ""
    # "//evil.example" and "/\\evil.example" are other hosts to a browser; control characters end
    # a header. Only a plain same-site path is a place to return to.
    if not path or path.startswith(("//", "/\\")) or any(ord(ch) < 33 or ord(ch) == 127 for ch in path):
        return fallback
    return path


@router.get("/", response_class=HTMLResponse)
async def daily(request: Request, date: str | None = None, week: str | None = None, month: str | None = None,
                sort: str = "votes", p: int = Query(0, ge=0, le=MAX_PAGE), code: bool = False) -> Response:
    lst = _engine(request).listings
    user = request.state.user = request.app.state.auth.user(request)
    period = lst.period(parse_period(date, week, month))
    if sort not in ("votes", "trending", "date"):
        raise BadRequest("sort must be votes, trending or date")
    has = "code" if code else None  # ?code=1: papers with a code repository only
    entries = lst.daily(period, sort, page=p, user_id=user and user["id"], has=has) if period else []
    return render(request, "daily.html", {"period": period, "entries": entries, "sort": sort, "p": p,
                                          "code": code})


@router.get("/trending", response_class=HTMLResponse)
async def trending(request: Request, p: int = Query(0, ge=0, le=MAX_PAGE), code: bool = False) -> Response:
    lst = _engine(request).listings
    user = request.state.user = request.app.state.auth.user(request)
    entries, as_of = lst.trending_as_of(page=p, user_id=user and user["id"], has="code" if code else None)
    return render(request, "trending.html", {"entries": entries, "p": p, "as_of": as_of, "code": code,
                                             "window": lst.window_days, "half_life": lst.half_life_hours})


@router.get("/search", response_class=HTMLResponse)
async def search(request: Request, q: str = Query("", max_length=1000), mode: str = "hybrid",
                 sort: str | None = None, page: int = Query(1, ge=1, le=50)) -> Response:
    engine = _engine(request)
    result, message = None, None
    if q.strip():
        try:
            result = engine.search(q, mode=mode, sort=sort or None, page=page, per_page=20)
        except ConfigError as e:  # no embed extra: say so, keyword search still works
            message = str(e)
    user = request.state.user = request.app.state.auth.user(request)
    entries = engine.listings.entries([h.paper.id for h in result.hits], user and user["id"],
                                      {h.paper.id: h.paper for h in result.hits}) if result else []
    return render(request, "search.html", {"q": q, "mode": mode, "sort": sort or "", "modes": MODES,
                                           "result": result, "entries": entries, "message": message})


@router.get("/papers/{ref:path}", response_class=HTMLResponse)
async def paper(request: Request, ref: str, similar: str = "similarity") -> Response:
    engine = _engine(request)
    found = engine.paper(ref)
    if found is None:
        raise NotFound(f"no paper {ref[:100]!r} here: submit it by its arXiv id")
    user = request.state.user = request.app.state.auth.user(request)
    entry = engine.listings.entries([found.id], user and user["id"], {found.id: found})[0]
    try:
        similar_papers = engine.similar(found.id, sort=similar)
    except ConfigError:  # keyword-only install
        similar_papers = []
    votes = engine.store.votes([p.id for p, _ in similar_papers])
    return render(request, "paper.html", {
        "entry": entry, "paper": found, "comments": engine.store.comments(found.id),
        "similar": [(p, cos, votes.get(p.id, 0)) for p, cos in similar_papers], "similar_sort": similar})


@router.post("/vote")
async def vote(request: Request, paper_id: int = PaperId, up: int = Form(1, ge=0, le=1), csrf: str = Form("")) -> Response:
    user = _signed_in(request, csrf)
    store = _engine(request).store
    if not store.get_papers([paper_id]):
        raise NotFound("no such paper")
    store.set_vote(user["id"], paper_id, bool(up))
    if request.headers.get("x-requested-with") == "fetch":  # app.js: answer with the new state
        return JSONResponse({"votes": store.votes([paper_id]).get(paper_id, 0), "voted": bool(up)})
    return RedirectResponse(_back(request), status_code=303)


@router.post("/comment")
async def comment(request: Request, paper_id: int = PaperId, body: str = Form(""),
                  csrf: str = Form("")) -> Response:
    user = _signed_in(request, csrf)
    body = body.strip()
    if not body or len(body) > 10_000:
        raise BadRequest("a comment is 1 to 10,000 characters of plain text")
    store = _engine(request).store
    papers = store.get_papers([paper_id])
    if not papers:
        raise NotFound("no such paper")
    store.add_comment(paper_id, user["id"], body)
    return RedirectResponse(f"/papers/{papers[paper_id].arxiv_id or paper_id}#comments", status_code=303)


@router.get("/submit", response_class=HTMLResponse)
async def submit_form(request: Request, job: int | None = Query(None, ge=1, le=MAX_ID),
                      pending: str | None = Query(None, max_length=40)) -> Response:
    """The form; with ``job``, how one's queued submission is doing (it links to the paper once
    fetched); with ``pending``, that someone's submission of that paper is being fetched."""
    from ..services.jobs import visible_to

    status = None
    user = request.state.user = request.app.state.auth.user(request)
    if job is not None:
        found = _engine(request).store.job(job)
        if found is None or found["kind"] != "submit" or not visible_to(found, user):
            raise NotFound("no such submission of yours")
        status = {"state": found["status"], "arxiv_id": found["key"], "error": found["last_error"]}
    elif pending is not None and (parsed := parse_arxiv_id(pending)):
        status = {"state": "queued", "arxiv_id": parsed[0], "error": None}
    return render(request, "submit.html", {"job": status})


@router.post("/submit")
async def submit(request: Request, ref: str = Form(""), csrf: str = Form("")) -> Response:
    user = _signed_in(request, csrf)
    done = _engine(request).submit(ref, user["id"])
    if done.paper is None:  # queued: a background job fetches it from arXiv
        jobs = request.app.state.jobs
        if jobs is not None:
            jobs.wake.set()
        mine = (_engine(request).store.job(done.job_id) or {}).get("payload", {}).get("user_id") == user["id"]
        return RedirectResponse(f"/submit?job={done.job_id}" if mine else f"/submit?pending={done.arxiv_id}",
                                status_code=303)
    return RedirectResponse(f"/papers/{done.arxiv_id}?submitted={'new' if done.created else 'known'}",
                            status_code=303)
