"""Abuse controls of the web app: who the client is (behind trusted proxies only) and rate limits
on every write, counted in the store so all workers share them.

- Client address: the direct peer, unless the peer is one of ``trusted_proxies``; then the
  X-Forwarded-For chain is read from the right, skipping trusted hops, and the first untrusted
  address is the client (a client can prepend anything to the header, but not append).
- Rate limits: sliding windows (``rate_events``). Each POST route below belongs to one or more
  buckets; a bucket counts per account and per address (an address gets ``rate_address_factor``
  times an account's limit, as many people may share one), or per address only (sign-up, mail).
  Over a limit: 429 with a clear message and ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
from functools import lru_cache
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ..errors import ConfigError, RateLimited

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNITS = {"s": 1, "second": 1, "m": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}
RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+?)s?\s*$")
# bucket: (setting, noun, counted per account too)
BUCKETS = {
    "signup": ("rate_signup", "sign-ups", False),
    "comment": ("rate_comment", "comments", True),
    "vote": ("rate_vote", "votes", True),
    "submit": ("rate_submit", "submissions", True),
    "import": ("rate_import", "library imports", True),
    "api_write": ("rate_api_write", "API writes", True),
    "mail": ("rate_mail", "mails", False),
}
# POST path -> buckets; the first match wins.
RULES: list[tuple[re.Pattern[str], tuple[str, ...]]] = [
    (re.compile(r"^/signup$"), ("signup",)),
    (re.compile(r"^/comment$"), ("comment",)),
    (re.compile(r"^/vote$"), ("vote",)),
    (re.compile(r"^/submit$"), ("submit",)),
    (re.compile(r"^/library/import$"), ("import",)),
    (re.compile(r"^/(reset|settings/account/verify|settings/account/email)$"), ("mail",)),
    (re.compile(r"^/api/papers/.+/comments$"), ("comment", "api_write")),
    (re.compile(r"^/api/papers/.+/vote$"), ("vote", "api_write")),
    (re.compile(r"^/api/submit$"), ("submit", "api_write")),
    (re.compile(r"^/api/"), ("api_write",)),
]


@lru_cache(maxsize=64)
def parse_rate(text: str) -> tuple[int, float]:
    """``"10/hour"``, ``"3/15m"``, ``"0"`` (off) -> (limit, window seconds); ConfigError otherwise."""
    text = str(text).strip().lower()
    if text in ("0", "", "off"):
        return 0, 0.0
    m = RATE_RE.match(text)
    if not m or m.group(3) not in UNITS:
        raise ConfigError(f"a rate limit is N/second, N/minute, N/hour or N/day (e.g. 10/hour, 3/15m), not {text!r}")
    return int(m.group(1)), float(m.group(2) or 1) * UNITS[m.group(3)]


@lru_cache(maxsize=16)
def parse_proxies(text: str) -> tuple[Network, ...]:
    """``trusted_proxies``: addresses or CIDRs separated by commas or spaces (a TOML list works too)."""
    out = []
    for part in re.split(r"[,\s\[\]'\"]+", str(text)):
        if part:
            try:
                out.append(ipaddress.ip_network(part, strict=False))
            except ValueError as e:
                raise ConfigError(f"trusted_proxies: {part!r} is not an address or CIDR") from e
    return tuple(out)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def client_address(request: Request) -> str:
    """The client's address: X-Forwarded-For is believed only from a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    trusted = parse_proxies(request.app.state.engine.settings["trusted_proxies"])
    ip = _ip(peer)
    if not trusted or ip is None or not any(ip in n for n in trusted):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        hop_ip = _ip(hop)
        if hop_ip is None:
            return hop[:64]  # garbage from beyond the proxy: still a distinct, bounded key
        if not any(hop_ip in n for n in trusted):
            return str(hop_ip)
    return str(_ip(hops[0]) if hops else ip)


def rate_limited(message: str, seconds: float) -> RateLimited:
    e = RateLimited(message)
    e.retry_after = max(1, math.ceil(seconds))  # type: ignore[attr-defined]
    return e


def wait_text(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, math.ceil(seconds))} seconds"
    if seconds < 5400:
        return f"{math.ceil(seconds / 60)} minutes"
    return f"{math.ceil(seconds / 3600)} hours"


def _account(request: Request) -> dict[str, Any] | None:
    """Who is writing, without side effects: the session's user or the bearer token's."""
    store = request.app.state.engine.store
    header = request.headers.get("authorization", "")
    if request.url.path.startswith("/api/") and header.lower().startswith("bearer "):
        return store.token_user(hashlib.sha256(header[7:].strip().encode()).hexdigest(), touch=False)
    return request.app.state.auth.user(request)


def hit(request: Request, buckets: tuple[str, ...], user_id: int | None = None, address: bool = True) -> None:
    """Count one event in ``buckets`` for the account and/or the client address, or raise 429."""
    settings = request.app.state.engine.settings
    addr = client_address(request)
    checks = []
    for bucket in buckets:
        setting, _, per_account = BUCKETS[bucket]
        limit, seconds = parse_rate(settings[setting])
        if not limit:
            continue
        if user_id is not None:
            checks.append((f"{bucket}:u{user_id}", limit, seconds))
        if address:
            factor = int(settings["rate_address_factor"]) if per_account else 1
            checks.append((f"{bucket}:a{addr}", limit * max(factor, 1), seconds))
    refused = request.app.state.engine.store.rate_hit(checks) if checks else None
    if refused:
        wait, key = refused
        noun = BUCKETS[key.split(":", 1)[0]][1]
        raise rate_limited(f"too many {noun} from this account or address: try again in {wait_text(wait)}", wait)


async def enforce(request: Request) -> None:
    """App-wide dependency: the rate limit of a POST route, before its handler runs."""
    if request.method != "POST":
        return
    path = request.url.path
    buckets = next((b for rx, b in RULES if rx.match(path)), None)
    if buckets is None:
        return
    user = _account(request) if any(BUCKETS[b][2] for b in buckets) else None
    hit(request, buckets, user["id"] if user else None)


def install(app: FastAPI) -> None:
    """Rate limits on every included router (call before ``include_router``) and the 429 page."""
    from .pages import render

    app.router.dependencies.append(Depends(enforce))

    async def on_limited(request: Request, e: Exception) -> Response:
        headers = {"Retry-After": str(getattr(e, "retry_after", 60))}
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": {"status": 429, "message": str(e)}}, status_code=429, headers=headers)
        response = render(request, "error.html", {"status": 429, "message": str(e)}, 429)
        response.headers.update(headers)
        return response

    app.add_exception_handler(RateLimited, on_limited)
