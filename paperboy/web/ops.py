"""Operator routes: ``/healthz`` for a load balancer, and the API docs served from local files
(the ``swagger-ui-bundle`` package), so they work offline and load nothing from a CDN."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

router = APIRouter(include_in_schema=False)
DOCS = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>paperboy API</title>
<link rel="stylesheet" href="/static/swagger/swagger-ui.css"></head><body><div id="swagger-ui"></div>
<script src="/static/swagger/swagger-ui-bundle.js"></script><script src="/static/swagger-init.js"></script>
</body></html>"""


@router.get("/healthz")
async def healthz(request: Request) -> Response:
    """200 while the store answers; the body says how far the indexes lag and what jobs wait."""
    engine = request.app.state.engine
    started = time.perf_counter()
    try:
        rev = engine.store.max_rev()
        jobs = engine.store.job_counts()
    except Exception as e:  # noqa: BLE001 - any failure of the store is "unhealthy", said plainly
        return JSONResponse({"status": "unhealthy", "store": f"error: {type(e).__name__}"}, status_code=503)
    lexical = getattr(engine, "_lexical", None)
    body: dict[str, Any] = {
        "status": "ok", "store": "ok", "store_ms": round((time.perf_counter() - started) * 1000, 2),
        "papers_rev": rev, "lexical_lag": rev - lexical.synced if lexical is not None else None,
        "jobs": {"queued": jobs.get("queued", 0), "running": jobs.get("running", 0),
                 "failed": jobs.get("failed", 0), "oldest_queued": jobs.get("oldest_queued")},
        "job_runner": request.app.state.jobs is not None,
    }
    return JSONResponse(body, headers={"cache-control": "no-store"})


@router.get("/api/docs", response_class=HTMLResponse)
async def docs() -> Response:
    return HTMLResponse(DOCS)
