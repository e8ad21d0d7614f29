"""Who is asking: server-side sessions, CSRF tokens, logins with lockouts strangers cannot abuse,
API tokens with scopes and expiry.

- Sessions: a random token in an HttpOnly, SameSite=Lax cookie; the store keeps only its SHA-256,
  so logging out (or a leaked database) ends or exposes no live session. Suspended and deleted
  accounts have no sessions.
- CSRF: every form carries HMAC(secret, csrf cookie) and every state-changing POST checks it
  (double-submit with a signed token; a cross-site page can neither read the cookie nor forge the
  HMAC). State changes happen only over POST (arxiv-sanity-lite changed state over GET).
- Logins: failures are counted per (name, address) and per address, and those refuse logins for
  the window; per name alone (from anywhere) they only slow logins of that name down, so nobody
  can lock a public user name out. A login of an unknown name verifies a dummy argon2 hash, so
  both answer in the same time; argon2 runs in a worker thread, never on the event loop.
- API tokens: ``pb_`` + 32 random bytes, shown once, kept hashed, revocable, read or write scope,
  optional expiry, sent as a Bearer header.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from typing import Any

from fastapi import Request

from ..errors import BadRequest, Forbidden
from ..services import accounts as acc
from ..settings import secret_key
from .limits import rate_limited

SESSION_COOKIE, CSRF_COOKIE = "pb_session", "pb_csrf"
NAME_RE, MIN_PASSWORD = acc.NAME_RE, acc.MIN_PASSWORD  # kept for importers
SCOPES = ("read", "write")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Auth:
    """Everything about who is asking, for one app."""

    def __init__(self, store: Any, settings: dict[str, Any]) -> None:
        self.store, self.settings = store, settings
        self.key = secret_key(settings)
        self.accounts = acc.Accounts(store, settings, self.key)

    # -- accounts -------------------------------------------------------------------------------

    async def sign_up(self, name: str, password: str, email: str | None = None) -> int:
        name, email = self.accounts.check_signup(name, email)
        password_hash = await asyncio.to_thread(acc.new_password_hash, password, name, email,
                                                self.accounts.min_score)
        return self.accounts.create(name, email, password_hash)

    async def log_in(self, name: str, password: str, client: str) -> dict[str, Any]:
        """The user, or Forbidden (wrong name or password, suspended) or RateLimited."""
        s = self.settings
        key = name.strip().casefold()[:100]
        pair, addr, by_name = f"pair:{key}|{client}", f"addr:{client}", f"name:{key}"
        window = s["login_window_minutes"]
        counts = self.store.failure_counts([pair, addr, by_name], window)
        if counts[pair] >= s["login_max_failures"] or counts[addr] >= s["login_max_failures_per_address"]:
            raise rate_limited(f"too many failed logins: try again in {window:g} minutes", window * 60)
        user = self.store.user_by_name(key)
        ok = await asyncio.to_thread(acc.verify_password, user and user["password_hash"], password)
        if counts[by_name] >= s["login_name_slowdown"]:  # a much-guessed name: slow, not locked
            await asyncio.sleep(s["login_slowdown_seconds"])
        if not ok or user is None:
            self.store.add_login_failure([pair, addr, by_name])
            raise Forbidden("wrong user name or password")
        if user["suspended_at"]:
            raise Forbidden("this account is suspended: ask the site's moderators")
        if acc.needs_rehash(user["password_hash"]):
            self.store.set_password_hash(user["id"], await asyncio.to_thread(acc.hash_password, password))
        self.store.clear_login_failures(pair, window)
        return user

    async def check_password(self, user_id: int, password: str) -> dict[str, Any]:
        """The account, if ``password`` is its password (for changes that need it)."""
        account = self.store.account(user_id)
        if not await asyncio.to_thread(acc.verify_password, account and account["password_hash"], password):
            raise Forbidden("that is not your current password")
        return account  # type: ignore[return-value]

    def new_session(self, user_id: int) -> str:
        token = secrets.token_urlsafe(32)
        self.store.create_session(sha256(token), user_id, self.settings["session_days"])
        return token

    def end_session(self, token: str | None) -> None:
        if token:
            self.store.delete_session(sha256(token))

    def session_hash(self, request: Request) -> str | None:
        token = request.cookies.get(SESSION_COOKIE)
        return sha256(token) if token else None

    def user(self, request: Request) -> dict[str, Any] | None:
        """The signed-in user of a page request (session cookie)."""
        token = request.cookies.get(SESSION_COOKIE)
        return self.store.session_user(sha256(token)) if token else None

    def api_user(self, request: Request) -> dict[str, Any] | None:
        """The user of an API request (``Authorization: Bearer pb_...``): a live token of a live account."""
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return None
        return self.store.token_user(sha256(header[7:].strip()))

    def new_api_token(self, user_id: int, name: str, scope: str = "write", days: float | None = None) -> str:
        if scope not in SCOPES:
            raise BadRequest("a token's scope is read or write")
        if days is not None and not 0 < days <= 3650:
            raise BadRequest("a token expires after 1 to 3650 days (or never)")
        token = "pb_" + secrets.token_urlsafe(32)
        self.store.create_api_token(user_id, (name.strip() or "token")[:80], sha256(token), scope, days)
        return token

    # -- CSRF -----------------------------------------------------------------------------------

    def csrf_token(self, seed: str) -> str:
        return hmac.new(self.key, seed.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, request: Request, token: str | None) -> None:
        seed = request.cookies.get(CSRF_COOKIE)
        if not seed or not token or not hmac.compare_digest(self.csrf_token(seed), token):
            raise Forbidden("the form expired or did not come from this site: reload the page and try again")
