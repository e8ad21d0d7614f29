"""``paperboy mcp``: a Model Context Protocol server over stdio, for agents (Claude Desktop, IDEs,
any MCP client). A front end like the web app and the CLI: every tool calls the same engine and
services (search, listings, similar papers, the reader's recommendations and library).

- Public tools: ``search``, ``daily``, ``trending``, ``paper``, ``similar``.
- Personal tools (``recommendations``, ``library``, ``save``, ``unsave``, ``feedback``, ``me``) act
  for the owner of an API token (``--token`` or ``PAPERBOY_TOKEN``), checked on every call as the
  web API checks its Bearer header (``store.token_user``): a revoked or expired token, or one of a
  suspended account, stops working at once; a read-only token may not save, unsave or rate. They
  are always listed; without a token they answer a tool error saying how to get one.
- Every size is bounded in the input schema (the SDK refuses the rest before a tool runs) and by the
  services themselves. paperboy's errors (a bad query, an unknown paper) and refusals come back as
  tool errors (``isError``) with their message; the server keeps answering.
- Results: compact JSON text, plus the same object as structured content with an output schema.
- stdout is the protocol: the SDK points fd 1 at stderr while it serves, and logs go to stderr.
- Engine calls run one at a time on a worker thread (the event loop keeps reading the pipe), with
  numeric libraries capped at ``web_numeric_threads`` as in web processes (``threads.py``).

The token only chooses whose library the tools use: whoever runs this process can read the store
anyway, so it is no defence against the local user, only the same rules as the API's.
"""

import hashlib
import logging
import sys
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import orjson
from pydantic import Field
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from . import __version__
from .errors import BadRequest, ConfigError, Forbidden, NotFound, PaperboyError
from .models import Paper
from .threads import limit_numeric_threads

try:
    import anyio
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import CallToolResult, TextContent, ToolAnnotations
except ImportError as e:  # the mcp extra
    raise ConfigError("paperboy mcp needs the MCP Python SDK: pip install 'paperboy[mcp]'") from e

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("paperboy.mcp")
T = TypeVar("T")

MAX_RESULTS = 50  # per call, in every list tool
AUTHORS_IN_LISTS, AUTHORS_IN_DETAILS = 10, 200  # a collaboration paper has thousands
SNIPPET = 300  # abstract characters per list item; ``paper`` gives the whole abstract
REF = Field(min_length=1, max_length=300, description="arXiv id or URL (2312.17653, hep-th/9901001), DOI, or "
            "paperboy id")

NO_TOKEN = ("this tool acts for a reader: start the server with an API token (--token, or PAPERBOY_TOKEN in the "
            "client's env); create one on the web site under Settings > API tokens")
BAD_TOKEN = ("the API token is not valid: it is unknown, revoked or expired, or its account is suspended "
             "(create a new one under Settings > API tokens)")
READ_ONLY = "this API token is read-only: create a read-write token to save, unsave or rate papers"

INSTRUCTIONS = """paperboy is a self-hosted daily-papers site (arXiv and more). Tools:
search (query language: words, "phrases", -exclusions, ti: au: abs: fields, cat:cs.LG, id:2401.01234,
after:2020-01-01 before:2021-12 year:2020 date:2020..2021, sort:date|votes), daily (a day's list with
upvotes), trending, paper (details by arXiv id or DOI), similar (neighbours of a paper). With an API
token: recommendations (each with why), library (saved papers by folder), save, unsave, feedback, me.
Papers are named by arXiv id where they have one; url is the arXiv abstract page."""


# -- output shapes (published as output schemas) --------------------------------------------------

class Brief(TypedDict):
    id: str
    title: str
    authors: list[str]
    authors_total: int
    date: str | None
    categories: list[str]
    abstract: str
    url: str | None
    pdf: str | None


class Listed(Brief):
    upvotes: int
    num_comments: int
    listed_on: str | None
    submitted_by: str | None


class SearchHit(Listed):
    score: float


class SearchOut(TypedDict):
    query: str
    mode: str
    sort: str
    page: int
    limit: int
    total: int
    exact_total: bool
    results: list[SearchHit]


class DailyOut(TypedDict):
    period: str | None
    kind: str | None
    prev: str | None
    next: str | None
    page: int
    results: list[Listed]


class Trending(Listed):
    trending_score: float


class TrendingOut(TypedDict):
    page: int
    results: list[Trending]


class Details(TypedDict):
    id: str
    canonical_id: str
    title: str
    authors: list[str]
    authors_total: int
    abstract: str
    date: str | None
    updated: str | None
    versions: dict[str, str | None]
    categories: list[str]
    primary_category: str | None
    doi: str | None
    journal_ref: str | None
    arxiv_comment: str | None
    links: dict[str, str]
    url: str | None
    pdf: str | None
    upvotes: int
    num_comments: int
    listed_on: str | None
    submitted_by: str | None


class Neighbour(Brief):
    similarity: float


class SimilarOut(TypedDict):
    id: str
    results: list[Neighbour]


class Recommended(TypedDict):
    paper: Brief
    score: float
    why: str
    interest: str
    matched_terms: list[str]
    because: list[str]


class InterestOut(TypedDict):
    key: str
    name: str
    weight: float
    muted: bool
    papers: int


class RecsOut(TypedDict):
    user: str
    results: list[Recommended]
    interests: list[InterestOut]


class Saved(Brief):
    folder: str
    saved_at: str


class LibraryOut(TypedDict):
    user: str
    folders: dict[str, int]
    total: int
    page: int
    results: list[Saved]


class SaveOut(TypedDict):
    id: str
    folder: str
    saved: bool
    changed: bool


class FeedbackOut(TypedDict):
    id: str
    kind: str | None


class MeOut(TypedDict):
    user: str
    scope: str


# -- papers as JSON ---------------------------------------------------------------------------

def ident(p: Paper) -> str:
    return p.arxiv_id or p.doi or p.canonical_id


def _url(p: Paper) -> str | None:
    return p.links.get("abs") or p.links.get("doi") or (f"https://doi.org/{p.doi}" if p.doi else None)


def brief(p: Paper) -> dict[str, Any]:
    """A paper in a list: enough to judge it and to ask for more (``paper``)."""
    abstract = " ".join(p.abstract.split())
    if len(abstract) > SNIPPET:
        abstract = abstract[:SNIPPET].rsplit(" ", 1)[0] + "…"
    return {"id": ident(p), "title": p.title, "authors": p.authors[:AUTHORS_IN_LISTS],
            "authors_total": len(p.authors), "date": p.submitted, "categories": p.categories,
            "abstract": abstract, "url": _url(p), "pdf": p.links.get("pdf")}


def listed(e: Any) -> dict[str, Any]:
    """A listing entry (``services.listing.Entry``): the paper with its votes and comments."""
    return brief(e.paper) | {"upvotes": e.votes, "num_comments": e.comments, "listed_on": e.day,
                             "submitted_by": e.submitted_by}


def details(p: Paper, e: Any) -> dict[str, Any]:
    return {"id": ident(p), "canonical_id": p.canonical_id, "title": p.title,
            "authors": p.authors[:AUTHORS_IN_DETAILS], "authors_total": len(p.authors), "abstract": p.abstract,
            "date": p.submitted, "updated": p.updated, "versions": {str(k): v for k, v in p.versions.items()},
            "categories": p.categories, "primary_category": p.primary_category, "doi": p.doi,
            "journal_ref": p.journal_ref, "arxiv_comment": p.comments, "links": dict(p.links), "url": _url(p),
            "pdf": p.links.get("pdf"), "upvotes": e.votes, "num_comments": e.comments, "listed_on": e.day,
            "submitted_by": e.submitted_by}


def sha256(text: str) -> str:
    """How the store keeps API tokens (as ``web.auth`` hashes them)."""
    return hashlib.sha256(text.encode()).hexdigest()


# -- what the tools do (off the event loop) -----------------------------------------------

class Tools:
    """The tools' bodies over one engine, for one token (or none). Each runs on a worker thread, one at a time."""

    def __init__(self, engine: "Engine", token: str | None) -> None:
        self.engine, self.token = engine, (token or "").strip() or None

    @property
    def store(self) -> Any:
        return self.engine.store

    def warm(self) -> None:
        """Before serving: open the lexical index (brought up to date with the store) as ``paperboy
        serve`` does, cap the numeric libraries loaded by then, and say on stderr whether the
        token works."""
        _ = self.engine.lexical
        limit_numeric_threads(int(self.engine.settings["web_numeric_threads"]))
        if self.token and self.store.token_user(sha256(self.token), touch=False) is None:
            log.warning("%s", BAD_TOKEN)

    def account(self, write: bool = False) -> dict[str, Any]:
        """The token's user, checked now (a token revoked while the server runs stops at once)."""
        if self.token is None:
            raise Forbidden(NO_TOKEN)
        user = self.store.token_user(sha256(self.token))
        if user is None:
            raise Forbidden(BAD_TOKEN)
        if write and user.get("scope") != "write":
            raise Forbidden(READ_ONLY)
        return user

    def paper(self, ref: str) -> Paper:
        p = self.engine.paper(ref.strip())
        if p is None:
            raise NotFound(f"no paper {ref[:100]!r} here (try search)")
        return p

    def search(self, query: str, mode: str, sort: str | None, limit: int, page: int) -> dict[str, Any]:
        res = self.engine.search(query, mode=mode, sort=sort, page=page, per_page=limit)
        papers = {h.paper.id: h.paper for h in res.hits}
        entries = {e.paper.id: e for e in self.engine.listings.entries(list(papers), papers=papers)}
        return {"query": res.query, "mode": res.mode, "sort": res.sort, "page": res.page, "limit": res.per_page,
                "total": res.total, "exact_total": res.exact_total,
                "results": [listed(entries[h.paper.id]) | {"score": round(h.score, 4)} for h in res.hits]}

    def daily(self, date: str | None, week: str | None, month: str | None, sort: str, limit: int,
              page: int) -> dict[str, Any]:
        from .services.listing import parse_period

        lst = self.engine.listings
        period = lst.period(parse_period(date, week, month))
        if period is None:  # nothing listed yet
            return {"period": None, "kind": None, "prev": None, "next": None, "page": page, "results": []}
        entries = lst.daily(period, sort, None, page - 1, limit)
        return {"period": period.label, "kind": period.kind, "prev": period.prev, "next": period.next,
                "page": page, "results": [listed(e) for e in entries]}

    def trending(self, limit: int, page: int) -> dict[str, Any]:
        entries = self.engine.listings.trending(limit, page - 1)
        return {"page": page, "results": [listed(e) | {"trending_score": e.score} for e in entries]}

    def details(self, ref: str) -> dict[str, Any]:
        p = self.paper(ref)
        return details(p, self.engine.listings.entries([p.id], papers={p.id: p})[0])

    def similar(self, ref: str, k: int) -> dict[str, Any]:
        p = self.paper(ref)
        return {"id": ident(p), "results": [brief(q) | {"similarity": round(cos, 4)}
                                            for q, cos in self.engine.similar(p.id, k)]}

    def recommendations(self, k: int) -> dict[str, Any]:
        from .services.library import recommend

        user = self.account()
        recs, interests = recommend(self.engine, user["id"], k)
        return {"user": user["name"],
                "results": [{"paper": brief(r.paper), "score": round(r.rec.score, 4), "why": r.why,
                             "interest": r.interest.name, "matched_terms": list(r.rec.matched_terms),
                             "because": [ident(p) for p, _ in r.because]} for r in recs],
                "interests": [{"key": i.key, "name": i.name, "weight": round(i.weight, 4), "muted": i.muted,
                               "papers": len(i.members)} for i in interests]}

    def library(self, folder: str | None, limit: int, page: int) -> dict[str, Any]:
        user = self.account()
        saves = self.store.saves(user["id"])  # newest first
        folders = dict(sorted(Counter(s["folder"] for s in saves).items()))
        if folder is not None:
            saves = [s for s in saves if s["folder"] == folder.strip()]
        window = saves[(page - 1) * limit: page * limit]
        papers = self.store.get_papers([s["paper_id"] for s in window])
        return {"user": user["name"], "folders": folders, "total": len(saves), "page": page,
                "results": [brief(papers[s["paper_id"]]) | {"folder": s["folder"], "saved_at": s["created_at"]}
                            for s in window if s["paper_id"] in papers]}

    def save(self, ref: str, folder: str, remove: bool) -> dict[str, Any]:
        user = self.account(write=True)
        folder = folder.strip()
        if not folder:
            raise BadRequest("a folder name needs a letter or digit")
        p = self.paper(ref)
        changed = (self.store.unsave if remove else self.store.save)(user["id"], p.id, folder)
        return {"id": ident(p), "folder": folder, "saved": not remove, "changed": bool(changed)}

    def feedback(self, ref: str, kind: str) -> dict[str, Any]:
        user = self.account(write=True)
        p = self.paper(ref)
        value = None if kind == "none" else kind
        self.store.set_feedback(user["id"], p.id, value)
        return {"id": ident(p), "kind": value}

    def me(self) -> dict[str, Any]:
        user = self.account()
        return {"user": user["name"], "scope": user["scope"]}


# -- the server -------------------------------------------------------------------------------

def _result(data: dict[str, Any]) -> CallToolResult:
    """Compact JSON for the model to read, and the same object as structured content."""
    return CallToolResult(content=[TextContent(type="text", text=orjson.dumps(data).decode())],
                          structured_content=data)


READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
REMOVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)


def build_server(engine: "Engine", token: str | None = None) -> MCPServer:
    """The MCP server over ``engine``; the personal tools act for ``token``'s owner."""
    tools = Tools(engine, token)
    max_query = int(engine.settings["search_max_query"])
    limiter = anyio.CapacityLimiter(1)

    async def run(fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker thread, one call at a time; paperboy's errors as tool errors."""
        try:
            return await anyio.to_thread.run_sync(partial(fn, *args), limiter=limiter)
        except PaperboyError as e:  # QueryError, BadRequest, NotFound, Forbidden: the caller's to fix
            raise ToolError(str(e)) from e

    app = MCPServer("paperboy", title="paperboy", version=__version__, instructions=INSTRUCTIONS,
                    log_level="WARNING")
    Limit = Annotated[int, Field(ge=1, le=MAX_RESULTS, description=f"results per page (1-{MAX_RESULTS})")]
    Page = Annotated[int, Field(ge=1, le=1000, description="page number, from 1")]
    Ref = Annotated[str, REF]

    @app.tool(annotations=READ)
    async def search(query: Annotated[str, Field(min_length=1, max_length=max_query, description=(
                         'words, "phrases", -exclusions, ti: au: abs: cat: id: after: before: year: date: '
                         "sort:"))],
                     mode: Literal["hybrid", "bm25", "dense"] = "hybrid",
                     sort: Literal["relevance", "date", "votes"] | None = None,
                     limit: Limit = 10, page: Page = 1) -> Annotated[CallToolResult, SearchOut]:
        """Search papers: hybrid (keywords and meaning), bm25 (keywords) or dense (meaning). Results go
        1000 deep (page x limit). A query of only filters (cat:cs.LG after:2024-01) lists the newest."""
        return _result(await run(tools.search, query, mode, sort, limit, page))

    @app.tool(annotations=READ)
    async def daily(date: Annotated[str | None, Field(max_length=32, description="YYYY-MM-DD; default: the "
                                                      "latest day with papers")] = None,
                    week: Annotated[str | None, Field(max_length=32, description="or an ISO week, YYYY-Www")] = None,
                    month: Annotated[str | None, Field(max_length=32, description="or a month, YYYY-MM")] = None,
                    sort: Literal["votes", "trending", "date"] = "votes",
                    limit: Limit = 30, page: Page = 1) -> Annotated[CallToolResult, DailyOut]:
        """The daily papers list of a day (or week, month), most upvoted first, with upvotes and
        comment counts; prev/next name the neighbouring days."""
        return _result(await run(tools.daily, date, week, month, sort, limit, page))

    @app.tool(annotations=READ)
    async def trending(limit: Limit = 20, page: Page = 1) -> Annotated[CallToolResult, TrendingOut]:
        """Trending papers: recent upvotes and saves, decaying with age."""
        return _result(await run(tools.trending, limit, page))

    @app.tool(annotations=READ)
    async def paper(id: Ref) -> Annotated[CallToolResult, Details]:
        """One paper's details: title, all authors, abstract, dates and versions, categories, DOI,
        journal reference, links, upvotes and the number of comments."""
        return _result(await run(tools.details, id))

    @app.tool(annotations=READ)
    async def similar(id: Ref, k: Annotated[int, Field(ge=1, le=MAX_RESULTS, description="how many")] = 10
                      ) -> Annotated[CallToolResult, SimilarOut]:
        """Papers similar to one paper (embedding neighbours, hubness-reduced, with TF-IDF), best first."""
        return _result(await run(tools.similar, id, k))

    @app.tool(annotations=READ)
    async def recommendations(k: Annotated[int, Field(ge=1, le=MAX_RESULTS, description="how many")] = 10
                              ) -> Annotated[CallToolResult, RecsOut]:
        """The token owner's recommendations, each with why (the interest it matches, the saved papers
        it is close to, words it shares), and their interests. Needs an API token."""
        return _result(await run(tools.recommendations, k))

    @app.tool(annotations=READ)
    async def library(folder: Annotated[str | None, Field(max_length=80, description="only this folder")] = None,
                      limit: Annotated[int, Field(ge=1, le=200)] = 50, page: Page = 1
                      ) -> Annotated[CallToolResult, LibraryOut]:
        """The token owner's saved papers, newest first, with each one's folder and the count per
        folder. Needs an API token."""
        return _result(await run(tools.library, folder, limit, page))

    Folder = Annotated[str, Field(min_length=1, max_length=80, description="folder name")]

    @app.tool(annotations=WRITE)
    async def save(id: Ref, folder: Folder = "saved") -> Annotated[CallToolResult, SaveOut]:
        """Save a paper into a folder of the token owner's library. Needs a read-write API token."""
        return _result(await run(tools.save, id, folder, False))

    @app.tool(annotations=REMOVE)
    async def unsave(id: Ref, folder: Folder = "saved") -> Annotated[CallToolResult, SaveOut]:
        """Take a paper out of a folder of the library. Needs a read-write API token."""
        return _result(await run(tools.save, id, folder, True))

    @app.tool(annotations=WRITE)
    async def feedback(id: Ref, kind: Literal["up", "down", "dismiss", "none"]
                       ) -> Annotated[CallToolResult, FeedbackOut]:
        """Rate a paper for the recommendations: up (more like it), down (less), dismiss (not this
        one), none (take the rating back). Needs a read-write API token."""
        return _result(await run(tools.feedback, id, kind))

    @app.tool(annotations=READ)
    async def me() -> Annotated[CallToolResult, MeOut]:
        """Whose API token the server holds, and its scope (read or write)."""
        return _result(await run(tools.me))

    return app


def serve(engine: "Engine", token: str | None = None) -> None:
    """Serve MCP over this process's stdin and stdout until the client closes them. Logs: one line
    each on stderr, as ``paperboy serve`` writes them (set before the SDK's own set-up, which then
    leaves them be)."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = build_server(engine, token)
    Tools(engine, token).warm()  # here, so that a store that cannot be opened is one clear error
    app.run("stdio")
