"""Accounts and request safety: argon2 password hashes, server-side sessions, CSRF tokens, login
rate limiting, API tokens.

- Sessions: a random token in an HttpOnly, SameSite=Lax cookie; the store keeps only its SHA-256,
  so logging out (or a leaked database) ends or exposes no live session.
- CSRF: every form carries HMAC(secret, csrf cookie) and every state-changing POST checks it
  (double-submit with a signed token; a cross-site page can neither read the cookie nor forge the
  HMAC). State changes happen only over POST (arxiv-sanity-lite changed state over GET).
- Logins: refused for ``login_window_minutes`` after ``login_max_failures`` failures per user name
  or per client address, counted in the store so several workers share the limit.
- API tokens: ``pb_`` + 32 random bytes, shown once, kept hashed, revocable, sent as a Bearer header.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Request

from ..errors import Conflict, Forbidden, RateLimited
from ..settings import secret_key

SESSION_COOKIE, CSRF_COOKIE = "pb_session", "pb_csrf"
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{2,40}$")
MIN_PASSWORD = 8
_hasher = PasswordHasher()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Auth:
    """Everything about who is asking, for one app."""

    def __init__(self, store: Any, settings: dict[str, Any]) -> None:
        self.store, self.settings = store, settings
        self.key = secret_key(settings)

    # -- accounts -------------------------------------------------------------------------------

    def sign_up(self, name: str, password: str, email: str | None = None) -> int:
        name = name.strip()
        if not NAME_RE.match(name):
            raise Conflict("a user name is 2-40 letters, digits, '_', '.' or '-'")
        if len(password) < MIN_PASSWORD or len(password) > 1000:
            raise Conflict(f"a password needs at least {MIN_PASSWORD} characters")
        return self.store.create_user(name, (email or "").strip() or None, _hasher.hash(password))

    def log_in(self, name: str, password: str, client: str) -> dict[str, Any]:
        """The user, or Forbidden (wrong name or password, or too many failures)."""
        keys = [f"user:{name.strip().lower()}", f"addr:{client}"]
        window = self.settings["login_window_minutes"]
        if self.store.login_failures(keys, window) >= self.settings["login_max_failures"]:
            raise RateLimited(f"too many failed logins: try again in {window:g} minutes")
        user = self.store.user_by_name(name.strip())
        try:
            if user is None:
                raise VerifyMismatchError
            _hasher.verify(user["password_hash"], password)
        except (VerificationError, InvalidHashError):
            self.store.add_login_failure(keys)
            raise Forbidden("wrong user name or password") from None
        if _hasher.check_needs_rehash(user["password_hash"]):
            self.store.set_password_hash(user["id"], _hasher.hash(password))
        self.store.clear_login_failures(keys[0], window)
        return user

    def new_session(self, user_id: int) -> str:
        token = secrets.token_urlsafe(32)
        self.store.create_session(sha256(token), user_id, self.settings["session_days"])
        return token

    def end_session(self, token: str | None) -> None:
        if token:
            self.store.delete_session(sha256(token))

    def user(self, request: Request) -> dict[str, Any] | None:
        """The signed-in user of a page request (session cookie)."""
        token = request.cookies.get(SESSION_COOKIE)
        return self.store.session_user(sha256(token)) if token else None

    def api_user(self, request: Request) -> dict[str, Any] | None:
        """The user of an API request (``Authorization: Bearer pb_...``)."""
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return None
        return self.store.token_user(sha256(header[7:].strip()))

    def new_api_token(self, user_id: int, name: str) -> str:
        token = "pb_" + secrets.token_urlsafe(32)
        self.store.create_api_token(user_id, (name.strip() or "token")[:80], sha256(token))
        return token

    # -- CSRF -----------------------------------------------------------------------------------

    def csrf_token(self, seed: str) -> str:
        return hmac.new(self.key, seed.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, request: Request, token: str | None) -> None:
        seed = request.cookies.get(CSRF_COOKIE)
        if not seed or not token or not hmac.compare_digest(self.csrf_token(seed), token):
            raise Forbidden("the form expired or did not come from this site: reload the page and try again")
