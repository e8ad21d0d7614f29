"""Export routes of the JSON API (token): a reader's library as BibTeX, CSL-JSON or RIS, and the whole
account as one JSON file (``services/export.py``, ``services/portability.py``)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from ..services.export import FORMATS, Export, export_library
from ..services.portability import dumps, export_account
from .api import _user
from .background import off_loop

router = APIRouter(prefix="/api", tags=["api"])


def download(body: bytes | str, media_type: str, filename: str) -> Response:
    """A file to save: its media type and an ``attachment`` name (ASCII: ``export._slug`` made it).
    One reader's data: no shared cache may keep it, nor the browser's disk."""
    return Response(body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                                          "Cache-Control": "private, no-store"})


async def library_download(request: Request, user: dict, fmt: str, folder: str) -> Response:
    """The export is built on the heavy-read thread: a big library takes most of a second."""
    res: Export = await off_loop(request, export_library, request.app.state.engine.store, user["id"], fmt,
                                 folder.strip() or None, user["name"])
    return download(res.text, res.media_type, res.filename)


async def account_download(request: Request, user: dict) -> Response:
    doc = await off_loop(request, lambda: dumps(export_account(request.app.state.engine.store, user["id"])))
    return download(doc, "application/json", f"paperboy-account-{user['name']}.json")


@router.get("/library/export", summary="Your library as BibTeX, CSL-JSON or RIS (token)")
async def library_export(request: Request, format: str = Query("bibtex", description=" | ".join(FORMATS)),  # noqa: A002
                         folder: str = Query("", max_length=80)) -> Response:
    return await library_download(request, _user(request), format, folder)


@router.get("/account/export", summary="Your whole account as one JSON file (token)")
async def account_export(request: Request) -> Response:
    return await account_download(request, _user(request))
