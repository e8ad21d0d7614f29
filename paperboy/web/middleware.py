"""Pure ASGI middleware of a public instance: security headers on every answer, and one structured
log line per request."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

Scope = dict[str, Any]
log = logging.getLogger("paperboy.access")
CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"


def security_headers(path: str, content_type: str, hsts: bool) -> list[tuple[bytes, bytes]]:
    """Headers every answer carries; a page also gets a CSP that forbids inline script."""
    out = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
           (b"x-frame-options", b"DENY")]
    if content_type.startswith("text/html"):
        out.append((b"content-security-policy", CSP.encode()))
    if hsts:
        out.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
    return out


def too_large(path: str) -> tuple[bytes, str]:
    message = "the request body is too large"
    if path.startswith("/api"):
        return orjson.dumps({"error": {"status": 413, "message": message}}), "application/json"
    return f"<!doctype html><title>Error 413</title><h1>Too large</h1><p>{message}</p>".encode(), \
        "text/html; charset=utf-8"


class Hardening:
    """Add security headers to every answer and log each request as one JSON object. (Bodies are
    bounded by FastAPI's own ``max_body_size``, set in ``app.py``.)"""

    def __init__(self, app: Any, hsts: bool) -> None:
        self.app, self.hsts = app, hsts

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, path = time.perf_counter(), scope.get("path", "")
        status: dict[str, Any] = {"code": 0}

        async def send_wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                ctype = dict(message.get("headers", [])).get(b"content-type", b"").decode("latin-1")
                if message["status"] == 413 and ctype.startswith("text/plain"):
                    # FastAPI's body limit answers in plain text, outside the app's error handlers
                    status["body"], ctype = too_large(path)
                    message["headers"] = [(b"content-type", ctype.encode()),
                                          (b"content-length", str(len(status["body"])).encode())]
                have = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    h for h in security_headers(path, ctype, self.hsts) if h[0] not in have]
            elif message["type"] == "http.response.body" and "body" in status:
                message = {"type": "http.response.body", "body": status.pop("body")}
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                status["ms"] = round((time.perf_counter() - started) * 1000, 1)  # sent: stop the clock

        await self.app(scope, receive, send_wrapped)
        client = scope.get("client") or ("?", 0)
        log.info(orjson.dumps({"method": scope.get("method"), "path": path[:300], "status": status["code"],
                               "ms": status.get("ms", round((time.perf_counter() - started) * 1000, 1)),
                               "client": client[0]}).decode())
