"""The JSON API. ``/api/daily_papers``, ``/api/papers/search``, ``/api/papers``, ``/api/papers/{id}``
and ``/api/arxiv/{id}/repos`` answer with the Hugging Face Papers API's field names, so
``huggingface_hub.HfApi(endpoint=...)`` and the ``hf papers`` CLI work against paperboy unchanged
(``list_daily_papers``, ``list_papers``, ``paper_info``, ``read_paper``; the Markdown and the
thumbnail are in ``paper_files.py``). What paperboy cannot know offline is null (``ai_summary``,
``githubStars``, ``organization``); keywords, links and withdrawal come from the paper's own text
(``services/paper_meta.py``). Writes need an API token."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from ..errors import BadRequest, Forbidden, NotFound
from ..models import Paper
from ..query import QueryError
from ..services import paper_meta
from ..services.listing import Entry, parse_period
from .account import site_url
from .background import off_loop

router = APIRouter(prefix="/api", tags=["api"])
_DAY = re.compile(r"(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?")
#: who "submitted" a paper no reader submitted: this instance's harvest, said as such
HARVEST = {"_id": "paperboy", "name": "paperboy", "user": "paperboy", "fullname": "paperboy harvest",
           "avatarUrl": "", "isPro": False, "type": "org"}


def _time(day: str | None) -> str | None:
    """An ISO date as the API's timestamp; a partial date ("2024", "2024-08") is the start of its
    period; None for anything else."""
    m = _DAY.match(day or "")
    if not m:
        return None
    return f"{m.group(1)}-{m.group(2) or '01'}-{m.group(3) or '01'}T00:00:00.000Z"


def ref_of(paper: Paper) -> str:
    """The paper's id in paperboy's URLs: its arXiv id, else its row id."""
    return paper.arxiv_id or str(paper.id)


def _submitter(name: str | None) -> dict[str, Any]:
    if not name:
        return dict(HARVEST)
    return {"_id": f"user:{name}", "name": name, "user": name, "fullname": name, "avatarUrl": "", "isPro": False,
            "type": "user"}


def _extras(paper: Paper, site: str) -> dict[str, Any]:
    """The fields paperboy derives from the paper itself (``services/paper_meta.py``)."""
    m = paper_meta.meta(paper)
    return {"source": "arxiv" if paper.arxiv_id else "doi" if paper.doi else "paperboy",
            "ai_summary": None, "ai_keywords": m.keywords, "organization": None,
            "projectPage": m.links.project_page, "githubRepo": m.links.github_repo, "githubStars": None,
            "mediaUrls": [], "thumbnail": f"{site}/papers/{quote(ref_of(paper))}/thumbnail.svg",
            "withdrawnAt": _time(m.withdrawn_at)}


def hf_paper(paper: Paper, votes: int = 0, submitted_by: str | None = None, day: str | None = None,
             *, site: str = "") -> dict[str, Any]:
    """A paper in the Hugging Face Papers API's shape (``site``: the absolute base of its URLs)."""
    out: dict[str, Any] = {
        "id": paper.arxiv_id or paper.canonical_id,
        "authors": [{"_id": f"{paper.id}-{i}", "name": a, "hidden": False, "status": None, "user": None}
                    for i, a in enumerate(paper.authors)],
        "publishedAt": _time(paper.submitted), "title": paper.title, "summary": paper.abstract,
        "upvotes": votes, "discussionId": str(paper.id),
    } | _extras(paper, site)
    if day:
        out["submittedOnDailyBy"] = _submitter(submitted_by)
        out["submittedOnDailyAt"] = _time(day)
    return out


def hf_item(e: Entry, day: str | None = None, *, site: str = "") -> dict[str, Any]:
    """A daily-papers list item: the paper plus its listing. huggingface_hub reads a list item's
    keywords, links and thumbnail from the item, not its paper: they are in both."""
    day = day or e.day or e.paper.submitted
    paper = hf_paper(e.paper, e.votes, e.submitted_by, day, site=site)
    keep = ("source", "ai_summary", "ai_keywords", "organization", "projectPage", "githubRepo", "githubStars",
            "mediaUrls", "thumbnail", "withdrawnAt")
    return {"paper": paper, "publishedAt": _time(day), "title": e.paper.title, "summary": e.paper.abstract,
            "numComments": e.comments, "submittedBy": _submitter(e.submitted_by), "isAuthorParticipating": False,
            **{k: paper[k] for k in keep}}


def _user(request: Request) -> dict[str, Any]:
    """The token's user: a live token (not revoked or expired) of a live (not suspended) account;
    a read-only token may only read."""
    user = request.app.state.auth.api_user(request)
    if user is None:
        raise Forbidden("this needs a valid API token: Authorization: Bearer <token> (create one in Settings > "
                        "API tokens; revoked and expired tokens, and those of suspended accounts, stop working)")
    if request.method not in ("GET", "HEAD") and user.get("scope") != "write":
        raise Forbidden("this token is read-only: create a read-write token to change anything")
    return user


def _paper(request: Request, ref: str) -> Paper:
    paper = request.app.state.engine.paper(ref)
    if paper is None:
        raise NotFound(f"no paper {ref[:100]!r}")
    return paper


@router.get("/daily_papers", summary="Daily papers (Hugging Face compatible)")
async def daily_papers(request: Request, date: str | None = None, week: str | None = None,
                       month: str | None = None, submitter: str | None = None,
                       sort: str = Query("publishedAt", description="publishedAt or trending"),
                       p: int = Query(0, ge=0, le=10_000), limit: int = Query(50, ge=1, le=100),
                       code: bool = Query(False, description="only papers with a code repository")) -> list[dict[str, Any]]:
    lst = request.app.state.engine.listings
    period = lst.period(parse_period(date, week, month))
    if period is None:
        return []
    order = {"publishedAt": "votes", "trending": "trending"}.get(sort)
    if order is None:
        raise QueryError("sort must be publishedAt or trending")
    site = site_url(request)
    return [hf_item(e, site=site) for e in lst.daily(period, order, submitter, p, limit, has="code" if code else None)]


@router.get("/papers/search", summary="Search papers (Hugging Face compatible)")
async def papers_search(request: Request, q: str = Query("", max_length=1000),
                        limit: int = Query(50, ge=1, le=120)) -> list[dict[str, Any]]:
    engine = request.app.state.engine
    if not q.strip():
        return []
    # The Hub allows 120; a search page holds at most 100: past that, two pages of half as many.
    per_page = limit if limit <= 100 else -(-limit // 2)
    hits = [h for page in range(1, 2 if limit <= 100 else 3) for h in engine.search(q, page=page, per_page=per_page).hits]
    papers = {h.paper.id: h.paper for h in hits[:limit]}
    entries = engine.listings.entries(list(papers), papers=papers)
    site = site_url(request)
    return [hf_item(e, site=site) for e in entries]


def _cursor(after: str | None) -> tuple[str | None, int] | None:
    """An opaque cursor back to the (submitted, id) key it was made from; anything else is a 400."""
    if after is None:
        return None
    try:
        key = orjson.loads(base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        key = None
    if (not isinstance(key, list) or len(key) != 2 or not (key[0] is None or isinstance(key[0], str))
            or (isinstance(key[0], str) and len(key[0]) > 40) or isinstance(key[1], bool)
            or not isinstance(key[1], int) or not 0 < key[1] < 2**63):
        raise BadRequest("bad cursor: pass the one from the previous page's Link header (rel=\"next\") unchanged")
    return key[0], key[1]


@router.get("/papers", summary="All papers, newest first, by cursor (Hugging Face compatible)")
async def papers_list(request: Request, response: Response, cursor: str | None = Query(None, max_length=200),
                      limit: int = Query(50, ge=1, le=100)) -> list[dict[str, Any]]:
    """One page; the next page's URL is in the ``Link: <...>; rel="next"`` header (none on the last
    page), as the Hub paginates."""
    engine = request.app.state.engine
    papers = engine.store.paper_page(_cursor(cursor), limit + 1)
    page = papers[:limit]
    site = site_url(request)
    if len(papers) > limit:
        last = page[-1]
        token = base64.urlsafe_b64encode(orjson.dumps([last.submitted, last.id])).decode().rstrip("=")
        response.headers["Link"] = f'<{site}/api/papers?cursor={token}&limit={limit}>; rel="next"'
    entries = engine.listings.entries([p.id for p in page], papers={p.id: p for p in page})
    return [hf_paper(e.paper, e.votes, e.submitted_by, e.day, site=site) | {"numComments": e.comments}
            for e in entries]


@router.get("/arxiv/{ref:path}/repos", summary="Repositories a paper links to (Hugging Face compatible)")
async def paper_repos(request: Request, ref: str) -> dict[str, Any]:
    """The Hub's models, datasets and Spaces the paper's abstract or comments link to, and its code
    repositories (paperboy does not see which Hub repositories cite a paper)."""
    found = paper_meta.meta(_paper(request, ref)).links
    return {"models": [_repo(r) for r in found.models], "datasets": [_repo(r) for r in found.datasets],
            "spaces": [_repo(r) for r in found.spaces], "githubRepo": found.github_repo,
            "codeRepos": list(found.code), "projectPage": found.project_page}


def _repo(name: str) -> dict[str, Any]:
    return {"id": name, "author": name.split("/")[0]}


@router.get("/search", summary="Search with the full query language, modes and paging")
async def search(request: Request, q: str = Query(..., max_length=1000), mode: str = "hybrid",
                 sort: str | None = None, page: int = Query(1, ge=1, le=1000),
                 per_page: int = Query(20, ge=1, le=100)) -> dict[str, Any]:
    res = request.app.state.engine.search(q, mode=mode, sort=sort, page=page, per_page=per_page)
    site = site_url(request)
    return {"query": res.query, "mode": res.mode, "sort": res.sort, "page": res.page, "per_page": res.per_page,
            "total": res.total, "exact_total": res.exact_total, "took_ms": res.took_ms, "cut": res.cut,
            "hits": [{"paper": hf_paper(h.paper, site=site), "score": h.score, "bm25": h.bm25, "dense": h.dense}
                     for h in res.hits]}


@router.get("/trending", summary="Trending papers: upvotes with time decay")
async def trending(request: Request, p: int = Query(0, ge=0, le=10_000), limit: int = Query(50, ge=1, le=100),
                   code: bool = Query(False, description="only papers with a code repository")) -> list[dict[str, Any]]:
    site = site_url(request)
    return [hf_item(e, site=site) | {"trendingScore": e.score}
            for e in request.app.state.engine.listings.trending(limit, p, has="code" if code else None)]


@router.get("/papers/{ref:path}/similar", summary="Similar papers (embedding neighbours, hubness-reduced)")
async def similar(request: Request, ref: str, k: int = Query(10, ge=1, le=50),
                  sort: str = "similarity") -> list[dict[str, Any]]:
    paper = _paper(request, ref)
    pairs = request.app.state.engine.similar(paper.id, k, sort)
    site = site_url(request)
    return [hf_paper(p, site=site) | {"similarity": round(cos, 4)} for p, cos in pairs]


@router.get("/papers/{ref:path}/comments", summary="A paper's comments")
async def comments(request: Request, ref: str) -> list[dict[str, Any]]:
    return request.app.state.engine.store.comments(_paper(request, ref).id)


class VoteIn(BaseModel):
    up: bool = True


class CommentIn(BaseModel):
    body: str = Field(min_length=1, max_length=10_000)


class SubmitIn(BaseModel):
    ref: str = Field(min_length=1, max_length=300, description="arXiv id or URL")


@router.post("/papers/{ref:path}/vote", summary="Upvote, or take the upvote back (token)")
async def vote(request: Request, ref: str, body: VoteIn) -> dict[str, Any]:
    user, paper = _user(request), _paper(request, ref)
    store = request.app.state.engine.store
    store.set_vote(user["id"], paper.id, body.up)
    return {"id": paper.arxiv_id or paper.canonical_id, "upvotes": store.votes([paper.id]).get(paper.id, 0),
            "voted": body.up}


@router.post("/papers/{ref:path}/comments", status_code=201, summary="Comment on a paper (token)")
async def add_comment(request: Request, ref: str, body: CommentIn) -> dict[str, Any]:
    user, paper = _user(request), _paper(request, ref)
    cid = request.app.state.engine.store.add_comment(paper.id, user["id"], body.body.strip())
    return {"id": cid, "paper": paper.arxiv_id or paper.canonical_id, "user": user["name"], "body": body.body.strip()}


@router.post("/submit", summary="Submit a paper to today's list (token); 202 while it is fetched")
async def submit(request: Request, body: SubmitIn, response: Response) -> dict[str, Any]:
    user = _user(request)
    done = request.app.state.engine.submit(body.ref, user["id"])
    if done.paper is None:  # queued: a background job fetches and embeds it
        if request.app.state.jobs is not None:
            request.app.state.jobs.wake.set()
        response.status_code = 202
        job = request.app.state.engine.store.job(done.job_id) or {}
        if job.get("payload", {}).get("user_id") != user["id"]:  # someone else's submission of it is queued
            return {"status": "queued", "id": done.arxiv_id}
        return {"status": "queued", "id": done.arxiv_id, "job": done.job_id, "status_url": f"/api/jobs/{done.job_id}"}
    return {"status": "listed", "id": done.arxiv_id, "paper": hf_paper(done.paper, site=site_url(request)), "created": done.created}


@router.get("/jobs/{job_id}", summary="How your queued submission is doing (token)")
async def job_status(request: Request, job_id: int = Path(ge=1, le=2**63 - 1)) -> dict[str, Any]:
    from ..services.jobs import visible_to

    user = _user(request)
    job = request.app.state.engine.store.job(job_id)
    if job is None or job["kind"] != "submit" or not visible_to(job, user):
        raise NotFound("no such job of yours")
    return {"job": job["id"], "kind": job["kind"], "id": job["key"], "status": job["status"],
            "attempts": job["attempts"], "error": job["last_error"], "result": job["result"]}


class SaveIn(BaseModel):
    ref: str = Field(min_length=1, max_length=300, description="arXiv id, DOI or paperboy id")
    folder: str = Field("saved", min_length=1, max_length=80)
    remove: bool = False


class FeedbackIn(BaseModel):
    ref: str = Field(min_length=1, max_length=300)
    kind: str | None = Field(description="up, down, dismiss, or null to take it back")


class InterestIn(BaseModel):
    name: str | None = Field(None, max_length=80)
    muted: bool | None = None
    deleted: bool | None = None


@router.get("/recommendations", summary="Your recommendations, each with why (token)")
async def recommendations(request: Request, k: int = Query(20, ge=1, le=100)) -> dict[str, Any]:
    from ..services.library import recommend

    user = _user(request)
    recs, interests = await off_loop(request, recommend, request.app.state.engine, user["id"], k)
    site = site_url(request)
    return {"recommendations": [{"paper": hf_paper(r.paper, site=site), "score": round(r.rec.score, 4), "why": r.why,
                                 "interest": r.interest.key, "matched_terms": r.rec.matched_terms,
                                 "because": [p.arxiv_id or p.canonical_id for p, _ in r.because]} for r in recs],
            "interests": [_interest(i) for i in interests]}


def _interest(i: Any) -> dict[str, Any]:
    return {"key": i.key, "name": i.name, "weight": round(i.weight, 4), "muted": i.muted, "papers": len(i.members)}


@router.get("/library", summary="Your saved papers (token)")
async def library_list(request: Request) -> list[dict[str, Any]]:
    user = _user(request)
    store = request.app.state.engine.store
    saves = store.saves(user["id"])
    papers = store.get_papers([x["paper_id"] for x in saves])
    site = site_url(request)
    return [{"paper": hf_paper(papers[x["paper_id"]], site=site), "folder": x["folder"], "saved_at": x["created_at"]}
            for x in saves if x["paper_id"] in papers]


@router.post("/library", summary="Save a paper to a folder, or remove it (token)")
async def library_save(request: Request, body: SaveIn) -> dict[str, Any]:
    user, paper = _user(request), _paper(request, body.ref)
    store = request.app.state.engine.store
    changed = (store.unsave if body.remove else store.save)(user["id"], paper.id, body.folder.strip())
    return {"id": paper.arxiv_id or paper.canonical_id, "folder": body.folder, "changed": changed}


@router.post("/feedback", summary="Rate up or down, dismiss, or take it back (token)")
async def feedback(request: Request, body: FeedbackIn) -> dict[str, Any]:
    from ..services.library import FEEDBACK_KINDS

    if body.kind is not None and body.kind not in FEEDBACK_KINDS:
        raise QueryError(f"kind must be one of {', '.join(FEEDBACK_KINDS)} or null")
    user, paper = _user(request), _paper(request, body.ref)
    request.app.state.engine.store.set_feedback(user["id"], paper.id, body.kind)
    return {"id": paper.arxiv_id or paper.canonical_id, "kind": body.kind}


@router.get("/interests", summary="Your interests as paperboy sees them (token)")
async def interests(request: Request) -> list[dict[str, Any]]:
    from ..services.library import reader_for

    user = _user(request)
    engine = request.app.state.engine
    rec = engine.recommender()
    return [_interest(i) for i in (rec.interests(reader_for(engine, user["id"])[0]) if rec else [])]


@router.post("/interests/{key}", summary="Rename, mute or delete one interest (token)")
async def edit_interest(request: Request, key: str, body: InterestIn) -> dict[str, Any]:
    from ..services.library import reader_for

    user = _user(request)
    engine = request.app.state.engine
    members = None
    if body.deleted:
        rec = engine.recommender()
        members = next((i.members for i in (rec.interests(reader_for(engine, user["id"])[0]) if rec else [])
                        if i.key == key), [])
    engine.store.set_interest_pref(user["id"], key, name=body.name, muted=body.muted, deleted=body.deleted,
                                   members=members)
    return {"key": key, **engine.store.interest_prefs(user["id"])[key]}


@router.get("/me", summary="The token's user")
async def me(request: Request) -> dict[str, Any]:
    user = _user(request)
    return {"name": user["name"], "created_at": user["created_at"]}


@router.get("/papers/{ref:path}", summary="One paper (Hugging Face compatible)")
async def paper_info(request: Request, ref: str) -> dict[str, Any]:
    engine = request.app.state.engine
    paper = _paper(request, ref)
    e = engine.listings.entries([paper.id], papers={paper.id: paper})[0]
    found = paper_meta.meta(paper).links
    linked = {"linkedModels": found.models, "linkedDatasets": found.datasets, "linkedSpaces": found.spaces}
    return (hf_paper(paper, e.votes, e.submitted_by, e.day, site=site_url(request)) | {"numComments": e.comments}
            | {k: [_repo(r) for r in v] for k, v in linked.items()}
            | {"numTotalModels": len(found.models), "numTotalDatasets": len(found.datasets)})
