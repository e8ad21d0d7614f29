"""A paper as files: ``GET /papers/{id}.md`` (Markdown, the URL ``huggingface_hub``'s ``read_paper``
and ``hf papers read`` fetch) and ``GET /papers/{id}/thumbnail.svg`` (the title card the API's
``thumbnail`` points to). Both are rendered by ``services/paper_meta.py`` from the stored paper,
carry an ETag of their bytes; the card may be cached for a day, the Markdown (which holds the
discussion, where a moderator may hide a comment) for five minutes. Included before the pages' router, whose
``/papers/{id}`` would otherwise take these paths."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..services import paper_meta
from .account import site_url
from .api import _paper, ref_of

router = APIRouter(tags=["files"])
# The card is an image: nothing in it may run or load, even opened on its own.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def _cached(request: Request, body: str, media_type: str, headers: dict[str, str] | None = None,
            max_age: int = 86400) -> Response:
    """``body`` with an ETag and ``max_age`` seconds of caching; 304 when the client already has it."""
    data = body.encode()
    etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
    common = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}"} | (headers or {})
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=common)
    return Response(data, media_type=media_type, headers=common)


@router.get("/papers/{ref:path}.md", summary="A paper as Markdown (Hugging Face compatible)")
async def paper_markdown(request: Request, ref: str) -> Response:
    engine = request.app.state.engine
    paper = _paper(request, ref)
    e = engine.listings.entries([paper.id], papers={paper.id: paper})[0]
    text = paper_meta.markdown(paper, paper_meta.meta(paper), url=f"{site_url(request)}/papers/{ref_of(paper)}",
                               upvotes=e.votes, discussion=engine.store.comments(paper.id))
    # Five minutes, not a day: it holds the discussion, and a comment hidden by a moderator must go soon.
    return _cached(request, text, "text/markdown; charset=utf-8", max_age=300)


@router.get("/papers/{ref:path}/thumbnail.svg", summary="A paper's title card (SVG)")
async def paper_thumbnail(request: Request, ref: str) -> Response:
    svg = paper_meta.thumbnail_svg(_paper(request, ref))
    return _cached(request, svg, "image/svg+xml", {"Content-Security-Policy": SVG_CSP})
