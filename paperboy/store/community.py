"""Community data: users, sessions, API tokens, votes, comments, submissions, login failures, rate
events, moderation (hidden comments and submissions, roles, suspensions, the audit log).

A mixin of the SQL store (``self.conn``, ``self._write()``, ``self._lookup()``, see ``sql.py``); the
SQL runs on SQLite and PostgreSQL. Secrets never reach the store: sessions and API tokens are kept as SHA-256 hashes.
User names are unique case-folded (``name_key``): ``ALICE`` and ``alice`` are one user. A deleted
account stays as a tombstone row (``deleted-<id>``, no email, no usable password) so its comments
keep their place, shown as ``[deleted]``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import Conflict
from ..records import (
    Account,
    ApiToken,
    AuditEntry,
    Comment,
    CommentRow,
    ListedUser,
    RecentComment,
    RecentSubmission,
    SessionUser,
    Submission,
    SubmissionRow,
    TokenUser,
)

USER_COLS = "id, name, email, password_hash, created_at, role, email_verified_at, suspended_at, deleted_at"
INSERT_USER = "INSERT INTO users (name, name_key, email, password_hash, created_at, role) VALUES (?, ?, ?, ?, ?, ?)"
SELECT_USER_BY_KEY = f"SELECT {USER_COLS} FROM users WHERE name_key = ? AND deleted_at IS NULL"
SELECT_ACCOUNT = f"SELECT {USER_COLS} FROM users WHERE id = ?"
SELECT_USERS_BY_EMAIL = f"SELECT {USER_COLS} FROM users WHERE lower(email) = lower(?) AND deleted_at IS NULL"
SELECT_USERS = f"""SELECT {USER_COLS}, (SELECT COUNT(*) FROM comments c WHERE c.user_id = users.id) AS comments
FROM users WHERE deleted_at IS NULL ORDER BY id DESC LIMIT ?"""
UPDATE_PASSWORD = "UPDATE users SET password_hash = ? WHERE id = ?"
UPDATE_ROLE = "UPDATE users SET role = ? WHERE id = ? AND deleted_at IS NULL"
UPDATE_SUSPENDED = "UPDATE users SET suspended_at = ? WHERE id = ? AND deleted_at IS NULL"
TOMBSTONE = """UPDATE users SET name = 'deleted-' || id, name_key = 'deleted-' || id, email = NULL,
password_hash = '!', role = 'member', email_verified_at = NULL, deleted_at = ? WHERE id = ?"""
# What deletion removes (the tombstone row stays, so these do not cascade by themselves).
DELETE_PERSONAL = ("DELETE FROM sent WHERE user_id = ?", "DELETE FROM digests WHERE user_id = ?",
                   "DELETE FROM saves WHERE user_id = ?", "DELETE FROM feedback WHERE user_id = ?",
                   "DELETE FROM votes WHERE user_id = ?", "DELETE FROM interest_prefs WHERE user_id = ?",
                   "DELETE FROM profiles WHERE user_id = ?", "DELETE FROM api_tokens WHERE user_id = ?",
                   "DELETE FROM follows WHERE user_id = ?",
                   "DELETE FROM sessions WHERE user_id = ?", "UPDATE submissions SET user_id = NULL WHERE user_id = ?")
LIVE_USER = "u.suspended_at IS NULL AND u.deleted_at IS NULL"
INSERT_SESSION = "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)"
SELECT_SESSION_USER = f"""SELECT u.id, u.name, u.email, u.created_at, u.role, u.email_verified_at
FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ? AND {LIVE_USER}"""
DELETE_SESSION = "DELETE FROM sessions WHERE token_hash = ?"
DELETE_USER_SESSIONS = "DELETE FROM sessions WHERE user_id = ? AND token_hash IS NOT ?"
DELETE_EXPIRED_SESSIONS = "DELETE FROM sessions WHERE expires_at <= ?"
INSERT_FAILURE = "INSERT INTO login_failures (key, at) VALUES (?, ?)"
COUNT_FAILURES = "SELECT COUNT(*) FROM login_failures WHERE key = ? AND at > ?"
DELETE_FAILURES = "DELETE FROM login_failures WHERE key = ? OR at <= ?"
INSERT_TOKEN = """INSERT INTO api_tokens (user_id, name, token_hash, created_at, scope, expires_at)
VALUES (?, ?, ?, ?, ?, ?)"""
SELECT_TOKENS = """SELECT id, name, created_at, last_used_at, revoked_at, scope, expires_at FROM api_tokens
WHERE user_id = ? ORDER BY id DESC"""
REVOKE_TOKEN = "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL"
SELECT_TOKEN_USER = f"""SELECT u.id, u.name, u.email, u.created_at, u.role, t.id AS token_id, t.scope
FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ? AND t.revoked_at IS NULL
AND (t.expires_at IS NULL OR t.expires_at > ?) AND {LIVE_USER}"""
TOUCH_TOKEN = "UPDATE api_tokens SET last_used_at = ? WHERE id = ?"
# Rate events: the limit-th newest event inside the window; if there is one, the key is at its limit.
SELECT_RATE_NTH = "SELECT at FROM rate_events WHERE key = ? AND at > ? ORDER BY at DESC LIMIT 1 OFFSET ?"
INSERT_RATE = "INSERT INTO rate_events (key, at) VALUES (?, ?)"
DELETE_RATE_KEY = "DELETE FROM rate_events WHERE key = ? AND at <= ?"
DELETE_RATE_OLD = "DELETE FROM rate_events WHERE at <= ?"
INSERT_VOTE = "INSERT INTO votes (user_id, paper_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
DELETE_VOTE = "DELETE FROM votes WHERE user_id = ? AND paper_id = ?"
SELECT_USER_VOTES = "SELECT paper_id FROM votes WHERE user_id = ? AND paper_id IN ({})"
COUNT_VOTES = "SELECT paper_id, COUNT(*) FROM votes WHERE paper_id IN ({}) GROUP BY paper_id"
SELECT_VOTE_EVENTS = "SELECT paper_id, created_at FROM votes WHERE created_at > ? AND created_at <= ?"
INSERT_COMMENT = "INSERT INTO comments (paper_id, user_id, body, created_at) VALUES (?, ?, ?, ?)"
AUTHOR = "CASE WHEN u.deleted_at IS NULL THEN u.name ELSE '[deleted]' END"
SELECT_COMMENTS = f"""SELECT c.id, c.body, c.created_at, {AUTHOR} AS user FROM comments c
JOIN users u ON u.id = c.user_id WHERE c.paper_id = ? AND c.hidden_at IS NULL ORDER BY c.id"""
SELECT_COMMENT = "SELECT id, paper_id, user_id, body, created_at, hidden_at FROM comments WHERE id = ?"
SELECT_RECENT_COMMENTS = f"""SELECT c.id, c.paper_id, c.user_id, c.body, c.created_at, c.hidden_at, {AUTHOR} AS user,
p.title, p.arxiv_id FROM comments c JOIN users u ON u.id = c.user_id JOIN papers p ON p.id = c.paper_id
ORDER BY c.id DESC LIMIT ?"""
COUNT_COMMENTS = "SELECT paper_id, COUNT(*) FROM comments WHERE hidden_at IS NULL AND paper_id IN ({}) GROUP BY paper_id"
HIDE_COMMENT = "UPDATE comments SET hidden_at = ? WHERE id = ? AND hidden_at IS {}"
INSERT_SUBMISSION = """INSERT INTO submissions (paper_id, user_id, day, created_at) VALUES (?, ?, ?, ?)
ON CONFLICT (paper_id) DO NOTHING"""
SELECT_SUBMISSIONS = """SELECT s.paper_id, s.day, s.created_at, u.name AS user FROM submissions s
LEFT JOIN users u ON u.id = s.user_id WHERE s.hidden_at IS NULL AND s.paper_id IN ({})"""
SELECT_RECENT_SUBMISSIONS = """SELECT s.paper_id, s.user_id, s.day, s.created_at, s.hidden_at, u.name AS user,
p.title, p.arxiv_id FROM submissions s LEFT JOIN users u ON u.id = s.user_id JOIN papers p ON p.id = s.paper_id
ORDER BY s.created_at DESC, s.paper_id DESC LIMIT ?"""
SELECT_SUBMISSION = "SELECT paper_id, user_id, day, created_at, hidden_at FROM submissions WHERE paper_id = ?"
HIDE_SUBMISSION = "UPDATE submissions SET hidden_at = ? WHERE paper_id = ? AND hidden_at IS {}"
INSERT_AUDIT = "INSERT INTO audit_log (at, actor_id, action, target_kind, target_id, detail) VALUES (?, ?, ?, ?, ?, ?)"
SELECT_AUDIT = """SELECT a.id, a.at, a.actor_id, COALESCE(u.name, 'operator') AS actor, a.action, a.target_kind,
a.target_id, a.detail FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id ORDER BY a.id DESC LIMIT ?"""
# A paper's listing day: the day a member submitted it (a hidden submission does not count), else its
# Hugging Face daily date, else its arXiv (v1) date. DAILY is the indexed expression
# (paper_sources_daily) of the second. A date known only to the year or month ("2024", "2024-08") is no
# day: such a paper is on no day's list, and no day to step to.
DAILY = "json_extract(x.extra, '$.daily_date')"
SUB = "s.hidden_at IS NULL"
# A paper known only from members' library uploads (anyone's file, any metadata) is not on a public
# list by its date; a member's submission lists it once arXiv confirms it.
PUBLIC = "EXISTS (SELECT 1 FROM paper_sources y WHERE y.paper_id = p.id AND y.source != 'upload')"
SELECT_DAY_IDS = f"""SELECT p.id FROM papers p WHERE p.submitted >= ? AND p.submitted <= ? AND length(p.submitted) = 10
AND {PUBLIC}
AND NOT EXISTS (SELECT 1 FROM submissions s WHERE s.paper_id = p.id AND {SUB})
AND NOT EXISTS (SELECT 1 FROM paper_sources x WHERE x.paper_id = p.id AND {DAILY} IS NOT NULL)
UNION SELECT x.paper_id FROM paper_sources x WHERE {DAILY} >= ? AND {DAILY} <= ?
AND NOT EXISTS (SELECT 1 FROM submissions s WHERE s.paper_id = x.paper_id AND {SUB})
UNION SELECT paper_id FROM submissions s WHERE day >= ? AND day <= ? AND {SUB}"""
# The same papers with their listing day (as listing_days gives it): each is in one branch only.
SELECT_DAY_LISTING = f"""SELECT p.id, p.submitted FROM papers p WHERE p.submitted >= ? AND p.submitted <= ?
AND length(p.submitted) = 10 AND {PUBLIC}
AND NOT EXISTS (SELECT 1 FROM submissions s WHERE s.paper_id = p.id AND {SUB})
AND NOT EXISTS (SELECT 1 FROM paper_sources x WHERE x.paper_id = p.id AND {DAILY} IS NOT NULL)
UNION SELECT x.paper_id, (SELECT MAX(json_extract(z.extra, '$.daily_date')) FROM paper_sources z
WHERE z.paper_id = x.paper_id) FROM paper_sources x WHERE {DAILY} >= ? AND {DAILY} <= ?
AND NOT EXISTS (SELECT 1 FROM submissions s WHERE s.paper_id = x.paper_id AND {SUB})
UNION SELECT paper_id, day FROM submissions s WHERE day >= ? AND day <= ? AND {SUB}"""
SELECT_DAY_IDS_BY = f"""SELECT s.paper_id, s.day FROM submissions s JOIN users u ON u.id = s.user_id
WHERE s.day >= ? AND s.day <= ? AND u.name_key = ? AND {SUB}"""
SELECT_LISTING_DAYS = f"""SELECT p.id, COALESCE((SELECT day FROM submissions s WHERE s.paper_id = p.id AND {SUB}),
(SELECT MAX({DAILY}) FROM paper_sources x WHERE x.paper_id = p.id), p.submitted) FROM papers p WHERE p.id IN ({{}})"""
_DAYS = f"""SELECT {{agg}}(d) FROM (SELECT {{agg}}(submitted) AS d FROM papers WHERE submitted {{op}} ? AND length(submitted) = 10
UNION ALL SELECT {{agg}}({DAILY}) FROM paper_sources x WHERE {DAILY} {{op}} ?
UNION ALL SELECT {{agg}}(day) FROM submissions s WHERE day {{op}} ? AND {SUB}) AS days"""
SELECT_LATEST_DAY = _DAYS.format(agg="MAX", op="<=")
SELECT_PREV_DAY = _DAYS.format(agg="MAX", op="<")
SELECT_NEXT_DAY = _DAYS.format(agg="MIN", op=">")
RATE_KEEP = timedelta(days=2)  # events older than the longest sensible window are pruned


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def _fine(t: datetime) -> str:
    """Rate-event times keep microseconds: a sliding window of seconds needs them."""
    return t.isoformat(timespec="microseconds")


class CommunityMixin:
    """Users and what they do. Each method is one short transaction."""

    conn: Any  # the backend's connection (see sql.SQLStore)

    # -- users and sessions ---------------------------------------------------------------------

    def create_user(self, name: str, email: str | None, password_hash: str, role: str = "member") -> int:
        try:
            with self._write() as c:  # type: ignore[attr-defined]
                return int(c.execute(INSERT_USER, (name, name.casefold(), email, password_hash, iso(utcnow()),
                                                   role)).lastrowid)
        except self._integrity_errors as e:  # type: ignore[attr-defined]
            raise Conflict(f"the name {name!r} is taken") from e

    def user_by_name(self, name: str) -> Account | None:
        """A live (not deleted) account by name, case-insensitively."""
        row = self.conn.execute(SELECT_USER_BY_KEY, (name.strip().casefold(),)).fetchone()
        return dict(row) if row else None

    def account(self, user_id: int) -> Account | None:
        """Every column of one user row (deleted tombstones too)."""
        row = self.conn.execute(SELECT_ACCOUNT, (user_id,)).fetchone()
        return dict(row) if row else None

    def users_by_email(self, email: str) -> list[Account]:
        return [dict(r) for r in self.conn.execute(SELECT_USERS_BY_EMAIL, (email,))]

    def list_users(self, limit: int = 10_000) -> list[ListedUser]:
        return [dict(r) for r in self.conn.execute(SELECT_USERS, (limit,))]

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        with self._write() as c:  # type: ignore[attr-defined]
            c.execute(UPDATE_PASSWORD, (password_hash, user_id))

    def set_role(self, user_id: int, role: str) -> bool:
        with self._write() as c:  # type: ignore[attr-defined]
            return c.execute(UPDATE_ROLE, (role, user_id)).rowcount > 0

    def set_suspended(self, user_id: int, suspended: bool) -> bool:
        """Suspend (and end every session) or lift a suspension."""
        with self._write() as c:  # type: ignore[attr-defined]
            changed = c.execute(UPDATE_SUSPENDED, (iso(utcnow()) if suspended else None, user_id)).rowcount > 0
            if suspended:
                c.execute(DELETE_USER_SESSIONS, (user_id, None))
            return changed

    def delete_user(self, user_id: int) -> None:
        """Remove a person's data and leave a tombstone row: comments stay, shown as [deleted]."""
        with self._write() as c:  # type: ignore[attr-defined]
            for sql in DELETE_PERSONAL:
                c.execute(sql, (user_id,))
            c.execute(TOMBSTONE, (iso(utcnow()), user_id))

    def create_session(self, token_hash: str, user_id: int, days: float) -> None:
        t = utcnow()
        with self._write(None) as c:  # type: ignore[attr-defined]
            c.execute(DELETE_EXPIRED_SESSIONS, (iso(t),))
            c.execute(INSERT_SESSION, (token_hash, user_id, iso(t), iso(t + timedelta(days=days))))

    def session_user(self, token_hash: str) -> SessionUser | None:
        """The live user of a session; suspended and deleted accounts have none."""
        row = self.conn.execute(SELECT_SESSION_USER, (token_hash, iso(utcnow()))).fetchone()
        return dict(row) if row else None

    def delete_session(self, token_hash: str) -> None:
        with self._write(None) as c:  # type: ignore[attr-defined]
            c.execute(DELETE_SESSION, (token_hash,))

    def delete_sessions(self, user_id: int, keep: str | None = None) -> int:
        """End every session of a user but ``keep`` (a token hash): log out everywhere."""
        with self._write() as c:  # type: ignore[attr-defined]
            return c.execute(DELETE_USER_SESSIONS, (user_id, keep)).rowcount

    # -- login failures and rate limits ---------------------------------------------------------

    def failure_counts(self, keys: Sequence[str], minutes: float) -> dict[str, int]:
        since = iso(utcnow() - timedelta(minutes=minutes))
        return {k: self.conn.execute(COUNT_FAILURES, (k, since)).fetchone()[0] for k in keys}

    def login_failures(self, keys: Sequence[str], minutes: float) -> int:
        """The most failures any of ``keys`` had in the window."""
        return max(self.failure_counts(keys, minutes).values(), default=0)

    def add_login_failure(self, keys: Sequence[str]) -> None:
        with self._write(None) as c:  # type: ignore[attr-defined]
            c.executemany(INSERT_FAILURE, [(k, iso(utcnow())) for k in keys])

    def clear_login_failures(self, key: str, older_than_minutes: float) -> None:
        with self._write(None) as c:  # type: ignore[attr-defined]
            c.execute(DELETE_FAILURES, (key, iso(utcnow() - timedelta(minutes=older_than_minutes))))

    def rate_hit(self, checks: Sequence[tuple[str, int, float]]) -> tuple[float, str] | None:
        """One event under every ``(key, limit, window_seconds)`` (limit >= 1), in one write
        transaction (so all workers share the count); unless a key already has ``limit`` events in
        its sliding window: then nothing is recorded and the answer is (seconds until it has room
        again, that key)."""
        t = utcnow()
        wait, blocked = 0.0, ""
        checks = [x for x in checks if x[1] > 0]
        with self._write("rate") as c:  # type: ignore[attr-defined]
            for key, limit, seconds in checks:
                since = _fine(t - timedelta(seconds=seconds))
                c.execute(DELETE_RATE_KEY, (key, since))
                nth = c.execute(SELECT_RATE_NTH, (key, since, limit - 1)).fetchone()
                if nth is not None:
                    left = (datetime.fromisoformat(nth[0]) + timedelta(seconds=seconds) - t).total_seconds()
                    if left > wait:
                        wait, blocked = left, key
            if wait > 0:
                return wait, blocked
            c.executemany(INSERT_RATE, [(key, _fine(t)) for key, _, _ in checks])
            if random.random() < 0.01:  # keys that went quiet: prune now and then, not on every hit
                c.execute(DELETE_RATE_OLD, (_fine(t - RATE_KEEP),))
        return None

    # -- API tokens -----------------------------------------------------------------------------

    def create_api_token(self, user_id: int, name: str, token_hash: str, scope: str = "write",
                         days: float | None = None) -> int:
        t = utcnow()
        expires = iso(t + timedelta(days=days)) if days else None
        with self._write(None) as c:  # type: ignore[attr-defined]
            return int(c.execute(INSERT_TOKEN, (user_id, name, token_hash, iso(t), scope, expires)).lastrowid)

    def api_tokens(self, user_id: int) -> list[ApiToken]:
        return [dict(r) for r in self.conn.execute(SELECT_TOKENS, (user_id,))]

    def revoke_api_token(self, user_id: int, token_id: int) -> bool:
        """Revoke one of ``user_id``'s own tokens; False when there is no such live token."""
        with self._write(None) as c:  # type: ignore[attr-defined]
            return c.execute(REVOKE_TOKEN, (iso(utcnow()), token_id, user_id)).rowcount > 0

    def token_user(self, token_hash: str, touch: bool = True) -> TokenUser | None:
        """The live user of a token that is not revoked, expired or of a suspended account."""
        row = self.conn.execute(SELECT_TOKEN_USER, (token_hash, iso(utcnow()))).fetchone()
        if row is None:
            return None
        if touch:
            with self._write(None) as c:  # type: ignore[attr-defined]
                c.execute(TOUCH_TOKEN, (iso(utcnow()), row["token_id"]))
        return dict(row)

    # -- votes, comments, submissions -----------------------------------------------------------

    def set_vote(self, user_id: int, paper_id: int, up: bool) -> bool:
        """Upvote (or take the upvote back); True when something changed."""
        with self._write(None) as c:  # type: ignore[attr-defined]
            if up:
                return c.execute(INSERT_VOTE, (user_id, paper_id, iso(utcnow()))).rowcount > 0
            return c.execute(DELETE_VOTE, (user_id, paper_id)).rowcount > 0

    def voted(self, user_id: int, paper_ids: Sequence[int]) -> set[int]:
        return {r[0] for r in self._lookup(SELECT_USER_VOTES, list(paper_ids), user_id)}  # type: ignore[attr-defined]

    def member_votes(self, paper_ids: Sequence[int]) -> dict[int, int]:
        return {r[0]: r[1] for r in self._lookup(COUNT_VOTES, list(paper_ids))}  # type: ignore[attr-defined]

    def vote_events(self, since: str, until: str) -> list[tuple[int, str]]:
        return [(r[0], r[1]) for r in self.conn.execute(SELECT_VOTE_EVENTS, (since, until))]

    def add_comment(self, paper_id: int, user_id: int, body: str) -> int:
        with self._write(None) as c:  # type: ignore[attr-defined]
            return int(c.execute(INSERT_COMMENT, (paper_id, user_id, body, iso(utcnow()))).lastrowid)

    def comments(self, paper_id: int) -> list[Comment]:
        """A paper's visible comments (hidden ones are for moderators only, see recent_comments)."""
        return [dict(r) for r in self.conn.execute(SELECT_COMMENTS, (paper_id,))]

    def comment(self, comment_id: int) -> CommentRow | None:
        row = self.conn.execute(SELECT_COMMENT, (comment_id,)).fetchone()
        return dict(row) if row else None

    def recent_comments(self, limit: int = 50) -> list[RecentComment]:
        return [dict(r) for r in self.conn.execute(SELECT_RECENT_COMMENTS, (limit,))]

    def comment_counts(self, paper_ids: Sequence[int]) -> dict[int, int]:
        return {r[0]: r[1] for r in self._lookup(COUNT_COMMENTS, list(paper_ids))}  # type: ignore[attr-defined]

    def set_comment_hidden(self, comment_id: int, hidden: bool) -> bool:
        with self._write() as c:  # type: ignore[attr-defined]
            return c.execute(HIDE_COMMENT.format("NULL" if hidden else "NOT NULL"),
                             (iso(utcnow()) if hidden else None, comment_id)).rowcount > 0

    def submit(self, paper_id: int, user_id: int | None, day: str) -> bool:
        """List a paper on ``day`` with its submitter; False when it was submitted before."""
        with self._write(None) as c:  # type: ignore[attr-defined]
            return c.execute(INSERT_SUBMISSION, (paper_id, user_id, day, iso(utcnow()))).rowcount > 0

    def submissions(self, paper_ids: Sequence[int]) -> dict[int, Submission]:
        return {r["paper_id"]: dict(r) for r in self._lookup(SELECT_SUBMISSIONS, list(paper_ids))}  # type: ignore[attr-defined]

    def submission(self, paper_id: int) -> SubmissionRow | None:
        row = self.conn.execute(SELECT_SUBMISSION, (paper_id,)).fetchone()
        return dict(row) if row else None

    def recent_submissions(self, limit: int = 50) -> list[RecentSubmission]:
        return [dict(r) for r in self.conn.execute(SELECT_RECENT_SUBMISSIONS, (limit,))]

    def set_submission_hidden(self, paper_id: int, hidden: bool) -> bool:
        with self._write() as c:  # type: ignore[attr-defined]
            return c.execute(HIDE_SUBMISSION.format("NULL" if hidden else "NOT NULL"),
                             (iso(utcnow()) if hidden else None, paper_id)).rowcount > 0

    # -- audit log ------------------------------------------------------------------------------

    def audit(self, actor_id: int | None, action: str, target_kind: str, target_id: int | None,
              detail: str = "") -> None:
        with self._write(None) as c:  # type: ignore[attr-defined]
            c.execute(INSERT_AUDIT, (iso(utcnow()), actor_id, action, target_kind, target_id, detail[:500]))

    def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        return [dict(r) for r in self.conn.execute(SELECT_AUDIT, (limit,))]

    # -- daily lists ----------------------------------------------------------------------------

    def day_ids(self, first: str, last: str, submitter: str | None = None) -> list[int]:
        """Papers on the lists of days ``first``..``last`` (ISO dates, inclusive)."""
        if submitter:
            return [r[0] for r in self.conn.execute(SELECT_DAY_IDS_BY, (first, last, submitter.strip().casefold()))]
        return [r[0] for r in self.conn.execute(SELECT_DAY_IDS, (first, last) * 3)]

    def day_listing(self, first: str, last: str, submitter: str | None = None) -> dict[int, str]:
        if submitter:
            return dict(tuple(r) for r in self.conn.execute(SELECT_DAY_IDS_BY, (first, last, submitter.strip().casefold())))
        return dict(tuple(r) for r in self.conn.execute(SELECT_DAY_LISTING, (first, last) * 3))

    def listing_days(self, paper_ids: Sequence[int]) -> dict[int, str | None]:
        return {r[0]: r[1] for r in self._lookup(SELECT_LISTING_DAYS, list(paper_ids))}  # type: ignore[attr-defined]

    def latest_day(self, until: str) -> str | None:
        return self.conn.execute(SELECT_LATEST_DAY, (until,) * 3).fetchone()[0]

    def adjacent_day(self, day: str, forward: bool) -> str | None:
        return self.conn.execute(SELECT_NEXT_DAY if forward else SELECT_PREV_DAY, (day,) * 3).fetchone()[0]
