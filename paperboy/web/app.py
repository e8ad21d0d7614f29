"""The ASGI app: server-rendered pages, the JSON API under /api (OpenAPI at /api/docs), static files.

Handlers run on the event loop and call the engine synchronously (one SQLite connection; each
call is milliseconds). Whatever may block for longer runs beside it (``background.py``): queued
jobs (submissions, library imports), the lexical index following the store, digests and account
mail. Scale out with more worker processes (``paperboy serve --workers N``), each with its own engine.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
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
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

from ..engine import Engine
from ..errors import BadRequest, Conflict, Forbidden, NotFound, PaperboyError, RateLimited, StoreUnavailable
from ..services.paper_meta import withdrawn
from ..services.versions import update_note
from .auth import CSRF_COOKIE, Auth
from .background import JobRunner, digest_loop, follow_loop
from .feeds import xml_text
from .middleware import Hardening, security_headers

HERE = Path(__file__).parent
_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


def linkify(text: str) -> Markup:
    """Escape plain text, then make http(s) URLs clickable (nofollow, no opener): nothing else
    of the text can become markup."""
    out, last, text = [], 0, xml_text(text)
    for m in _URL.finditer(text):
        out.append(escape(text[last:m.start()]))
        url = escape(m.group(0))
        out.append(Markup(f'<a href="{url}" rel="nofollow noopener ugc">{url}</a>'))
        last = m.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


def printable(value: Any) -> Any:
    """A value a page prints, without control characters or code points HTML and XML forbid
    (older rows or a query may hold them); markup made by ``linkify`` is left as it is."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return xml_text(value)
    return value


def week_of(iso_day: str) -> str:
    y, w, _ = date.fromisoformat(iso_day).isocalendar()
    return f"{y:04d}-W{w:02d}"


def status_of(e: Exception) -> int:
    if isinstance(e, StoreUnavailable):
        return 503
    if isinstance(e, BadRequest):
        return 400
    if isinstance(e, NotFound):
        return 404
    if isinstance(e, RateLimited):
        return 429
    if isinstance(e, Forbidden):
        return 403
    if isinstance(e, Conflict):
        return 409
    return 400


log = logging.getLogger("paperboy.web")


def mail_executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="paperboy-mail")


def create_app(engine: Engine) -> FastAPI:
    """The web app over one engine (tests build it over a temporary home)."""
    from ..threads import limit_numeric_threads
    from . import account, api, authors_pages, export_api, feeds, ops, pages, paper_files, reader_pages, topics_pages

    limit_numeric_threads(engine.settings["web_numeric_threads"])
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = []
        if engine.settings["digest_scheduler"]:
            tasks.append(asyncio.create_task(digest_loop(engine.settings)))
        runner = app.state.jobs = JobRunner(engine.settings) if engine.settings["jobs_in_serve"] else None
        if runner:
            tasks.append(asyncio.create_task(runner.loop()))
        engine.lexical_in_background = True
        tasks.append(asyncio.create_task(follow_loop(engine)))
        yield
        for task in tasks:
            task.cancel()
        if runner:
            await asyncio.to_thread(runner.close)
        mailer, app.state.mailer = app.state.mailer, mail_executor()  # an app may be started again
        await asyncio.to_thread(mailer.shutdown)  # account mail already accepted goes out first

    app = FastAPI(lifespan=lifespan, title="paperboy", version="0.1", docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json",
                  description="Daily papers, search, similar papers and votes. `/api/daily_papers`, "
                              "`/api/papers/search` and `/api/papers/{id}` answer like the Hugging Face "
                              "Papers API. Writes need `Authorization: Bearer <token>` (create one in "
                              "Settings > API tokens).")
    app.state.engine = engine
    app.state.jobs = None
    app.state.heavy = ThreadPoolExecutor(max_workers=1, thread_name_prefix="paperboy-heavy")
    app.state.mailer = mail_executor()
    app.state.auth = Auth(engine.store, engine.settings)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["linkify"] = linkify
    templates.env.finalize = printable  # before any template compiles: every printed value passes
    templates.env.globals["urlencode"] = urlencode
    templates.env.globals["week_of"] = week_of
    templates.env.globals["update_note"] = update_note  # issue 13: papers that change
    templates.env.globals["withdrawn_at"] = withdrawn
    app.state.templates = templates
    try:
        import swagger_ui_bundle

        app.mount("/static/swagger", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger")
    except ImportError:  # pragma: no cover - a dependency; without it /api/docs has no script
        log.warning("swagger-ui-bundle is not installed: /api/docs will be blank")
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def csrf_cookie(request: Request, call_next: Any) -> Response:
        # Every visitor gets a random CSRF seed cookie; forms carry its HMAC (see auth.py).
        seed = request.cookies.get(CSRF_COOKIE)
        request.state.csrf_seed = seed if seed and len(seed) <= 64 else secrets.token_urlsafe(24)
        response = await call_next(request)
        if request.state.csrf_seed != seed:
            response.set_cookie(CSRF_COOKIE, request.state.csrf_seed, httponly=True, samesite="lax",
                                secure=engine.settings["cookie_secure"])
        return response

    s = engine.settings
    # Bodies are refused past the limit before they are read (Content-Length) or as they stream;
    # Hardening wraps the limiter so its 413 gets the error envelope and the security headers.
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=s["max_body_bytes"])
    app.add_middleware(Hardening, hsts=s["cookie_secure"])

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/") or request.url.path == "/api"

    def error(request: Request, status: int, message: str) -> Response:
        if is_api(request):
            return JSONResponse({"error": {"status": status, "message": message}}, status_code=status)
        return pages.render(request, "error.html", {"status": status, "message": message}, status)

    @app.exception_handler(PaperboyError)
    async def on_error(request: Request, e: PaperboyError) -> Response:
        response = error(request, status_of(e), str(e))
        if isinstance(e, StoreUnavailable):  # the database is down or restarting: come back soon
            response.headers["Retry-After"] = "10"
        return response

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, e: StarletteHTTPException) -> Response:
        return error(request, e.status_code, str(e.detail))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, e: RequestValidationError) -> Response:
        where = "; ".join(f"{'.'.join(str(x) for x in err['loc'])[:80]}: {err['msg'][:200]}" for err in e.errors()[:5])
        return error(request, 400, f"invalid request: {where}")

    @app.exception_handler(Exception)
    async def on_crash(request: Request, e: Exception) -> Response:
        # Runs outside every middleware (Starlette's ServerErrorMiddleware): add the headers here,
        # and render without touching the store, which may be what failed.
        log.exception("internal error on %s %s", request.method, request.url.path[:300])
        message = "internal error: the operator can find it in the log"
        if is_api(request):
            response: Response = JSONResponse({"error": {"status": 500, "message": message}}, status_code=500)
        else:
            response = Response(f"<!doctype html><title>Error 500</title><h1>Error</h1><p>{message}</p>",
                                status_code=500, media_type="text/html")
        for k, v in security_headers(request.url.path, response.media_type or "", s["cookie_secure"]):
            response.headers[k.decode()] = v.decode()
        return response

    from . import limits, moderation
    limits.install(app)  # rate limits on every router below (they copy the app's dependencies)
    app.include_router(ops.router)
    app.include_router(api.router, max_body_size=s["max_json_bytes"])
    app.include_router(export_api.router)
    app.include_router(feeds.router)
    app.include_router(paper_files.router)  # before pages: /papers/{id}.md is not a paper page
    app.include_router(reader_pages.router)
    app.include_router(account.router)
    app.include_router(moderation.router)
    app.include_router(topics_pages.router)  # issue 13: /topics, /api/topics
    app.include_router(authors_pages.router, max_body_size=s["max_json_bytes"])  # issue 13: /authors, /api/follows
    app.include_router(pages.router)
    return app


def configure_logging() -> None:
    """Request and job logs at INFO (each message one JSON object), everything else at WARNING."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for name in ("paperboy.access", "paperboy.jobs", "paperboy.web"):
        logging.getLogger(name).setLevel(logging.INFO)


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` and worker processes: settings from the environment."""
    configure_logging()
    return create_app(Engine.from_settings())
