"""Accounts: names, password policy and hashing, signed mail links (verification, password reset),
account changes and deletion, roles, suspension and moderation with an audit log.

One set of functions for every front end: the web routes and ``paperboy user`` call the same ones.
Hashing (argon2) and the strength check (zxcvbn) are slow on purpose and touch no store, so the web
runs exactly those in a worker thread and keeps every store call on its own thread.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from email.message import EmailMessage
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..errors import BadRequest, Conflict, Forbidden, NotFound
from .mail import validate_email

ROLES = ("member", "moderator", "admin")
RANK = {r: i for i, r in enumerate(ROLES)}
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{2,40}$")
RESERVED = ("deleted-",)  # tombstones are named deleted-<id>; nobody may take such a name first
MIN_PASSWORD, MAX_PASSWORD = 8, 1000
ZXCVBN_CHARS = 72  # zxcvbn refuses longer input (it is quadratic in length); longer is long enough
_hasher = PasswordHasher()


# -- names and passwords ------------------------------------------------------------------------

def check_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise BadRequest("a user name is 2-40 letters, digits, '_', '.' or '-'")
    if name.casefold().startswith(RESERVED):
        raise BadRequest("user names starting with 'deleted-' are reserved")
    return name


def check_password(password: str, name: str = "", email: str | None = None, min_score: int = 2) -> None:
    """BadRequest unless ``password`` is 8-1000 characters, does not contain the user name and scores
    at least ``min_score`` (0-4) in zxcvbn (Dropbox's estimator: dictionaries of common passwords,
    names and words, keyboard patterns, dates, repeats; the user name and address count as known)."""
    if len(password) < MIN_PASSWORD or len(password) > MAX_PASSWORD:
        raise BadRequest(f"a password needs at least {MIN_PASSWORD} characters (and at most {MAX_PASSWORD})")
    if name and len(name) >= 3 and name.casefold() in password.casefold():
        raise BadRequest("a password must not contain the user name")
    if min_score > 0:
        from zxcvbn import zxcvbn

        inputs = [x for x in (name, (email or "").split("@")[0], "paperboy") if x]
        result = zxcvbn(password[:ZXCVBN_CHARS], user_inputs=inputs)
        if result["score"] < min_score:
            hint = result["feedback"].get("warning") or "it is too easy to guess"
            raise BadRequest(f"please choose a stronger password: {hint.rstrip('.')} "
                             "(a few unrelated words make a good one)")


def hash_password(password: str) -> str:
    """argon2id: slow on purpose (call it off the event loop)."""
    return _hasher.hash(password)


def new_password_hash(password: str, name: str = "", email: str | None = None, min_score: int = 2) -> str:
    """Check the policy, then hash: the slow part of sign-up, password change and reset."""
    check_password(password, name, email, min_score)
    return hash_password(password)


# The hash of a random string nobody knows, made with argon2-cffi's default parameters: verifying
# it costs what verifying a real password costs. Rebuilt once if the library's defaults change.
DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$bPOOcpphZVGFE428XJniiw$tPKDUaZoVjNDNPVu4zxFmy4Hi5T9qCSrPQw1iITS3Zc"


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("not a password of anyone") if _hasher.check_needs_rehash(DUMMY_HASH) else DUMMY_HASH


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches. Without a usable hash (no such user, a deleted account) a
    dummy hash is verified instead, so an unknown name costs as long as a known one."""
    usable = bool(password_hash) and str(password_hash).startswith("$argon2")
    try:
        return _hasher.verify(password_hash if usable else _dummy_hash(), password[:MAX_PASSWORD]) and usable
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


# -- signed links -------------------------------------------------------------------------------

def _sig(key: bytes, purpose: str, user_id: int, expires: int, binding: str) -> str:
    mac = hmac.new(key, f"{purpose}|{user_id}|{expires}|{binding}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode().rstrip("=")


def sign_link(key: bytes, purpose: str, user_id: int, binding: str, seconds: float) -> str:
    """``<user>.<expiry>.<HMAC>``: the HMAC covers the purpose and a ``binding`` (the address to
    verify, or the current password hash for a reset), so a link dies when that changes."""
    expires = int(time.time() + seconds)
    return f"{user_id}.{expires}.{_sig(key, purpose, user_id, expires, binding)}"


# One spelling per link: ASCII digits without leading zeros ("²" is a digit to str.isdigit, and
# "06" would otherwise verify like "6"), bounded lengths.
_LINK = re.compile(r"([1-9][0-9]{0,17})\.([1-9][0-9]{0,11})\.([A-Za-z0-9_-]{16,64})")


def read_link(token: str) -> tuple[int, int] | None:
    m = _LINK.fullmatch(token or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def check_link(key: bytes, purpose: str, token: str, binding: str) -> bool:
    parsed = read_link(token)
    if parsed is None or parsed[1] < time.time():
        return False
    return hmac.compare_digest(_sig(key, purpose, parsed[0], parsed[1], binding), token.split(".")[2])


# -- the service --------------------------------------------------------------------------------

class Accounts:
    """Account changes over one store; ``actor`` is the user doing it (None: the operator's CLI)."""

    def __init__(self, store: Any, settings: dict[str, Any], key: bytes) -> None:
        self.store, self.settings, self.key = store, settings, key

    @property
    def min_score(self) -> int:
        return int(self.settings["password_min_score"])

    # sign-up and changes

    def check_signup(self, name: str, email: str | None) -> tuple[str, str | None]:
        """The fast checks of a sign-up: a valid, free name and a valid address (or none)."""
        name = check_name(name)
        if self.store.user_by_name(name) is not None:
            raise Conflict(f"the name {name!r} is taken")
        return name, validate_email(email) if (email or "").strip() else None

    def create(self, name: str, email: str | None, password_hash: str, role: str = "member") -> int:
        if role not in ROLES:
            raise BadRequest(f"a role is one of {', '.join(ROLES)}")
        return self.store.create_user(name, email, password_hash, role)

    def add_user(self, name: str, password: str, email: str | None = None, role: str = "member") -> int:
        """Sign-up in one call (the CLI; the web splits it to hash in a thread)."""
        name, email = self.check_signup(name, email)
        return self.create(name, email, new_password_hash(password, name, email, self.min_score), role)

    def get(self, name: str) -> dict[str, Any]:
        user = self.store.user_by_name(name)
        if user is None:
            raise NotFound(f"no user {name[:60]!r}")
        return user

    def change_email(self, user_id: int, email: str | None) -> str | None:
        """Validate and set the address; a new one is unverified. Returns it, or None when cleared."""
        email = validate_email(email) if (email or "").strip() else None
        self.store.set_email(user_id, email)  # a different address is unverified again
        return email

    def set_password(self, user_id: int, password_hash: str, keep_session: str | None = None) -> None:
        """A new password ends every other session (a thief's too)."""
        self.store.set_password_hash(user_id, password_hash)
        self.store.delete_sessions(user_id, keep=keep_session)

    def delete(self, user_id: int, actor_id: int | None = None) -> None:
        """Delete a person's data: library, saves, feedback, votes, digests and ledger, tokens,
        sessions, profile, interests; comments stay as [deleted]; the name is free again."""
        account = self.store.account(user_id)
        if account is None or account["deleted_at"]:
            raise NotFound("no such account")
        self.store.delete_user(user_id)
        self.store.audit(actor_id, "delete", "user", user_id, "" if actor_id == user_id else account["name"])

    # mail links

    def verify_link(self, user: dict[str, Any]) -> str:
        return sign_link(self.key, "verify", user["id"], user["email"] or "",
                         self.settings["verify_link_hours"] * 3600)

    def confirm_email(self, token: str) -> dict[str, Any]:
        parsed = read_link(token)
        user = self.store.account(parsed[0]) if parsed else None
        if user is None or user["deleted_at"] or not user["email"] or \
                not check_link(self.key, "verify", token, user["email"]):
            raise NotFound("this verification link is not valid (or expired, or for an address you changed since)")
        self.store.mark_email_verified(user["id"])  # the link was bound to this very address
        return user

    def reset_link(self, user: dict[str, Any]) -> str:
        return sign_link(self.key, "reset", user["id"], user["password_hash"], self.settings["reset_link_minutes"] * 60)

    def reset_user(self, token: str) -> dict[str, Any]:
        """The account of a live reset link: bound to the password hash, so it works once."""
        parsed = read_link(token)
        user = self.store.account(parsed[0]) if parsed else None
        if user is None or user["deleted_at"] or not check_link(self.key, "reset", token, user["password_hash"]):
            raise NotFound("this password reset link is not valid: it expired or was used; ask for a new one")
        return user

    def mail(self, to: str, subject: str, body: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.settings["mail_from"], to, subject
        msg.set_content(body)
        return msg

    # roles, suspension, moderation

    def set_role(self, name: str, role: str, actor_id: int | None = None) -> dict[str, Any]:
        if role not in ROLES:
            raise BadRequest(f"a role is one of {', '.join(ROLES)}")
        user = self.get(name)
        self.store.set_role(user["id"], role)
        self.store.audit(actor_id, "set-role", "user", user["id"], f"{user['role']} -> {role}")
        return user

    def suspend(self, target_id: int, actor: dict[str, Any] | None, undo: bool = False, reason: str = "") -> None:
        target = self.store.account(target_id)
        if target is None or target["deleted_at"]:
            raise NotFound("no such user")
        if actor is not None:
            require_moderator(actor)
            if RANK.get(actor["role"], 0) <= RANK.get(target["role"], 0):
                raise Forbidden("only an admin may suspend a moderator, and nobody an admin from the web")
        self.store.set_suspended(target_id, not undo)
        self.store.audit(actor and actor["id"], "unsuspend" if undo else "suspend", "user", target_id, reason)

    def hide_comment(self, comment_id: int, actor: dict[str, Any] | None, undo: bool = False,
                     reason: str = "") -> dict[str, Any]:
        if actor is not None:
            require_moderator(actor)
        comment = self.store.comment(comment_id)
        if comment is None:
            raise NotFound("no such comment")
        if self.store.set_comment_hidden(comment_id, not undo):
            self.store.audit(actor and actor["id"], "unhide" if undo else "hide", "comment", comment_id,
                             reason or comment["body"][:120])
        return comment

    def hide_submission(self, paper_id: int, actor: dict[str, Any] | None, undo: bool = False,
                        reason: str = "") -> None:
        if actor is not None:
            require_moderator(actor)
        if self.store.submission(paper_id) is None:
            raise NotFound("this paper has no submission")
        if self.store.set_submission_hidden(paper_id, not undo):
            self.store.audit(actor and actor["id"], "unhide" if undo else "hide", "submission", paper_id, reason)


def is_moderator(user: dict[str, Any] | None) -> bool:
    return bool(user) and user.get("role") in ("moderator", "admin")  # type: ignore[union-attr]


def require_moderator(user: dict[str, Any] | None) -> dict[str, Any]:
    if not is_moderator(user):
        raise Forbidden("this needs a moderator")
    return user  # type: ignore[return-value]
