"""The ASGI app: server-rendered pages, the JSON API under /api (OpenAPI at /api/docs), static files.

Handlers run on the event loop and call the engine synchronously: one SQLite connection, no
threads sharing it, and each call is milliseconds. Scale out with more worker processes
(``paperboy serve --workers N``), each with its own engine.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..engine import Engine
from ..errors import Conflict, Forbidden, NotFound, PaperboyError, RateLimited
from .auth import CSRF_COOKIE, Auth

HERE = Path(__file__).parent
_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


def linkify(text: str) -> Markup:
    """Escape plain text, then make http(s) URLs clickable (nofollow, no opener): nothing else
    of the text can become markup."""
    out, last = [], 0
    for m in _URL.finditer(text):
        out.append(escape(text[last:m.start()]))
        url = escape(m.group(0))
        out.append(Markup(f'<a href="{url}" rel="nofollow noopener ugc">{url}</a>'))
        last = m.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


def week_of(iso_day: str) -> str:
    y, w, _ = date.fromisoformat(iso_day).isocalendar()
    return f"{y:04d}-W{w:02d}"


def status_of(e: Exception) -> int:
    if isinstance(e, NotFound):
        return 404
    if isinstance(e, RateLimited):
        return 429
    if isinstance(e, Forbidden):
        return 403
    if isinstance(e, Conflict):
        return 409
    return 400


DIGEST_EVERY = 600.0
log = logging.getLogger("paperboy.web")


def send_due_digests(settings: dict[str, Any]) -> None:
    """One scheduler pass, on its own engine (and SQLite connection) in a worker thread."""
    with Engine(dict(settings)) as engine:
        run = engine.digests().run()
    if run.sent or run.failed:
        log.warning("digests: %d sent, %d failed %s", run.sent, len(run.failed), run.failed[:3])


async def digest_loop(settings: dict[str, Any]) -> None:
    while True:
        try:
            await asyncio.to_thread(send_due_digests, settings)
        except Exception:  # noqa: BLE001 - the scheduler must outlive one bad pass
            log.exception("digest scheduler pass failed")
        await asyncio.sleep(DIGEST_EVERY)


def create_app(engine: Engine) -> FastAPI:
    """The web app over one engine (tests build it over a temporary home)."""
    from . import account, api, feeds, pages, reader_pages

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(digest_loop(engine.settings)) if engine.settings["digest_scheduler"] else None
        yield
        if task:
            task.cancel()

    app = FastAPI(lifespan=lifespan, title="paperboy", version="0.1", docs_url="/api/docs", redoc_url=None,
                  openapi_url="/api/openapi.json",
                  description="Daily papers, search, similar papers and votes. `/api/daily_papers`, "
                              "`/api/papers/search` and `/api/papers/{id}` answer like the Hugging Face "
                              "Papers API. Writes need `Authorization: Bearer <token>` (create one in "
                              "Settings > API tokens).")
    app.state.engine = engine
    app.state.auth = Auth(engine.store, engine.settings)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["linkify"] = linkify
    templates.env.globals["urlencode"] = urlencode
    templates.env.globals["week_of"] = week_of
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def csrf_cookie(request: Request, call_next: Any) -> Response:
        # Every visitor gets a random CSRF seed cookie; forms carry its HMAC (see auth.py).
        seed = request.cookies.get(CSRF_COOKIE)
        request.state.csrf_seed = seed or secrets.token_urlsafe(24)
        response = await call_next(request)
        if not seed:
            response.set_cookie(CSRF_COOKIE, request.state.csrf_seed, httponly=True, samesite="lax",
                                secure=engine.settings["cookie_secure"])
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.headers.get("content-type", "").startswith("text/html") and request.url.path != "/api/docs":
            response.headers.setdefault("Content-Security-Policy",
                                        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
        return response

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/") or request.url.path == "/api"

    def error(request: Request, status: int, message: str) -> Response:
        if is_api(request):
            return JSONResponse({"error": {"status": status, "message": message}}, status_code=status)
        return pages.render(request, "error.html", {"status": status, "message": message}, status)

    @app.exception_handler(PaperboyError)
    async def on_error(request: Request, e: PaperboyError) -> Response:
        return error(request, status_of(e), str(e))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, e: StarletteHTTPException) -> Response:
        return error(request, e.status_code, str(e.detail))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, e: RequestValidationError) -> Response:
        where = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()[:5])
        return error(request, 422, f"invalid request: {where}")

    from . import limits, moderation
    limits.install(app)  # rate limits on every router below (they copy the app's dependencies)
    app.include_router(api.router)
    app.include_router(feeds.router)
    app.include_router(reader_pages.router)
    app.include_router(account.router)
    app.include_router(moderation.router)
    app.include_router(pages.router)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` and worker processes: settings from the environment."""
    return create_app(Engine.from_settings())
