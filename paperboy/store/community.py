"""Community data: users, sessions, API tokens, votes, comments, submissions, login failures.

A mixin of the SQL store (``self.conn``, ``self._write()``, ``self._lookup()``); the SQL is portable
to PostgreSQL. Secrets never reach the store: sessions and API tokens are kept as SHA-256 hashes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import Conflict

INSERT_USER = "INSERT INTO users (name, name_key, email, password_hash, created_at) VALUES (?, ?, ?, ?, ?)"
SELECT_USER_BY = "SELECT id, name, email, password_hash, created_at FROM users WHERE {} = ?"
UPDATE_PASSWORD = "UPDATE users SET password_hash = ? WHERE id = ?"
INSERT_SESSION = "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)"
SELECT_SESSION_USER = """SELECT u.id, u.name, u.email, u.created_at FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.token_hash = ? AND s.expires_at > ?"""
DELETE_SESSION = "DELETE FROM sessions WHERE token_hash = ?"
DELETE_EXPIRED_SESSIONS = "DELETE FROM sessions WHERE expires_at <= ?"
INSERT_FAILURE = "INSERT INTO login_failures (key, at) VALUES (?, ?)"
COUNT_FAILURES = "SELECT COUNT(*) FROM login_failures WHERE key = ? AND at > ?"
DELETE_FAILURES = "DELETE FROM login_failures WHERE key = ? OR at <= ?"
INSERT_TOKEN = "INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES (?, ?, ?, ?)"
SELECT_TOKENS = """SELECT id, name, created_at, last_used_at, revoked_at FROM api_tokens WHERE user_id = ?
ORDER BY id DESC"""
REVOKE_TOKEN = "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL"
SELECT_TOKEN_USER = """SELECT u.id, u.name, u.email, u.created_at, t.id AS token_id FROM api_tokens t
JOIN users u ON u.id = t.user_id WHERE t.token_hash = ? AND t.revoked_at IS NULL"""
TOUCH_TOKEN = "UPDATE api_tokens SET last_used_at = ? WHERE id = ?"
INSERT_VOTE = "INSERT INTO votes (user_id, paper_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
DELETE_VOTE = "DELETE FROM votes WHERE user_id = ? AND paper_id = ?"
SELECT_USER_VOTES = "SELECT paper_id FROM votes WHERE user_id = ? AND paper_id IN ({})"
COUNT_VOTES = "SELECT paper_id, COUNT(*) FROM votes WHERE paper_id IN ({}) GROUP BY paper_id"
SELECT_VOTE_EVENTS = "SELECT paper_id, created_at FROM votes WHERE created_at > ? AND created_at <= ?"
INSERT_COMMENT = "INSERT INTO comments (paper_id, user_id, body, created_at) VALUES (?, ?, ?, ?)"
SELECT_COMMENTS = """SELECT c.id, c.body, c.created_at, u.name AS user FROM comments c JOIN users u ON u.id = c.user_id
WHERE c.paper_id = ? ORDER BY c.id"""
COUNT_COMMENTS = "SELECT paper_id, COUNT(*) FROM comments WHERE paper_id IN ({}) GROUP BY paper_id"
INSERT_SUBMISSION = """INSERT INTO submissions (paper_id, user_id, day, created_at) VALUES (?, ?, ?, ?)
ON CONFLICT (paper_id) DO NOTHING"""
SELECT_SUBMISSIONS = """SELECT s.paper_id, s.day, s.created_at, u.name AS user FROM submissions s
LEFT JOIN users u ON u.id = s.user_id WHERE s.paper_id IN ({})"""
# A paper's listing day: the day a member submitted it, else its Hugging Face daily date, else its
# arXiv (v1) date. DAILY is the indexed expression (paper_sources_daily) of the second.
DAILY = "json_extract(x.extra, '$.daily_date')"
SELECT_DAY_IDS = f"""SELECT p.id FROM papers p WHERE p.submitted >= ? AND p.submitted <= ?
AND NOT EXISTS (SELECT 1 FROM submissions s WHERE s.paper_id = p.id)
AND NOT EXISTS (SELECT 1 FROM paper_sources x WHERE x.paper_id = p.id AND {DAILY} IS NOT NULL)
UNION SELECT x.paper_id FROM paper_sources x WHERE {DAILY} >= ? AND {DAILY} <= ?
AND NOT EXISTS (SELECT 1 FROM submissions s WHERE s.paper_id = x.paper_id)
UNION SELECT paper_id FROM submissions WHERE day >= ? AND day <= ?"""
SELECT_DAY_IDS_BY = """SELECT s.paper_id FROM submissions s JOIN users u ON u.id = s.user_id
WHERE s.day >= ? AND s.day <= ? AND u.name = ?"""
SELECT_LISTING_DAYS = f"""SELECT p.id, COALESCE((SELECT day FROM submissions s WHERE s.paper_id = p.id),
(SELECT MAX({DAILY}) FROM paper_sources x WHERE x.paper_id = p.id), p.submitted) FROM papers p WHERE p.id IN ({{}})"""
_DAYS = f"""SELECT {{agg}}(d) FROM (SELECT {{agg}}(submitted) AS d FROM papers WHERE submitted {{op}} ?
UNION ALL SELECT {{agg}}({DAILY}) FROM paper_sources x WHERE {DAILY} {{op}} ?
UNION ALL SELECT {{agg}}(day) FROM submissions WHERE day {{op}} ?)"""
SELECT_LATEST_DAY = _DAYS.format(agg="MAX", op="<=")
SELECT_PREV_DAY = _DAYS.format(agg="MAX", op="<")
SELECT_NEXT_DAY = _DAYS.format(agg="MIN", op=">")

def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


class CommunityMixin:
    """Users and what they do. Each method is one short transaction."""

    conn: sqlite3.Connection

    # -- users and sessions ---------------------------------------------------------------------

    def create_user(self, name: str, email: str | None, password_hash: str) -> int:
        try:
            with self._write() as c:  # type: ignore[attr-defined]
                return int(c.execute(INSERT_USER, (name, name.casefold(), email, password_hash, iso(utcnow()))).lastrowid)
        except sqlite3.IntegrityError as e:
            raise Conflict(f"the name {name!r} is taken") from e

    def user_by_name(self, name: str) -> dict[str, Any] | None:
        row = self.conn.execute(SELECT_USER_BY.format("name"), (name,)).fetchone()
        return dict(row) if row else None

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        with self._write() as c:  # type: ignore[attr-defined]
            c.execute(UPDATE_PASSWORD, (password_hash, user_id))

    def create_session(self, token_hash: str, user_id: int, days: float) -> None:
        t = utcnow()
        with self._write() as c:  # type: ignore[attr-defined]
            c.execute(DELETE_EXPIRED_SESSIONS, (iso(t),))
            c.execute(INSERT_SESSION, (token_hash, user_id, iso(t), iso(t + timedelta(days=days))))

    def session_user(self, token_hash: str) -> dict[str, Any] | None:
        row = self.conn.execute(SELECT_SESSION_USER, (token_hash, iso(utcnow()))).fetchone()
        return dict(row) if row else None

    def delete_session(self, token_hash: str) -> None:
        with self._write() as c:  # type: ignore[attr-defined]
            c.execute(DELETE_SESSION, (token_hash,))

    def login_failures(self, keys: Sequence[str], minutes: float) -> int:
        """The most failures any of ``keys`` (a user name, an address) had in the window."""
        since = iso(utcnow() - timedelta(minutes=minutes))
        return max((self.conn.execute(COUNT_FAILURES, (k, since)).fetchone()[0] for k in keys), default=0)

    def add_login_failure(self, keys: Sequence[str]) -> None:
        with self._write() as c:  # type: ignore[attr-defined]
            c.executemany(INSERT_FAILURE, [(k, iso(utcnow())) for k in keys])

    def clear_login_failures(self, key: str, older_than_minutes: float) -> None:
        with self._write() as c:  # type: ignore[attr-defined]
            c.execute(DELETE_FAILURES, (key, iso(utcnow() - timedelta(minutes=older_than_minutes))))

    # -- API tokens -----------------------------------------------------------------------------

    def create_api_token(self, user_id: int, name: str, token_hash: str) -> int:
        with self._write() as c:  # type: ignore[attr-defined]
            return int(c.execute(INSERT_TOKEN, (user_id, name, token_hash, iso(utcnow()))).lastrowid)

    def api_tokens(self, user_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(SELECT_TOKENS, (user_id,))]

    def revoke_api_token(self, user_id: int, token_id: int) -> bool:
        """Revoke one of ``user_id``'s own tokens; False when there is no such live token."""
        with self._write() as c:  # type: ignore[attr-defined]
            return c.execute(REVOKE_TOKEN, (iso(utcnow()), token_id, user_id)).rowcount > 0

    def token_user(self, token_hash: str) -> dict[str, Any] | None:
        row = self.conn.execute(SELECT_TOKEN_USER, (token_hash,)).fetchone()
        if row is None:
            return None
        with self._write() as c:  # type: ignore[attr-defined]
            c.execute(TOUCH_TOKEN, (iso(utcnow()), row["token_id"]))
        return dict(row)

    # -- votes, comments, submissions -----------------------------------------------------------

    def set_vote(self, user_id: int, paper_id: int, up: bool) -> bool:
        """Upvote (or take the upvote back); True when something changed."""
        with self._write() as c:  # type: ignore[attr-defined]
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
        with self._write() as c:  # type: ignore[attr-defined]
            return int(c.execute(INSERT_COMMENT, (paper_id, user_id, body, iso(utcnow()))).lastrowid)

    def comments(self, paper_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(SELECT_COMMENTS, (paper_id,))]

    def comment_counts(self, paper_ids: Sequence[int]) -> dict[int, int]:
        return {r[0]: r[1] for r in self._lookup(COUNT_COMMENTS, list(paper_ids))}  # type: ignore[attr-defined]

    def submit(self, paper_id: int, user_id: int | None, day: str) -> bool:
        """List a paper on ``day`` with its submitter; False when it was submitted before."""
        with self._write() as c:  # type: ignore[attr-defined]
            return c.execute(INSERT_SUBMISSION, (paper_id, user_id, day, iso(utcnow()))).rowcount > 0

    def submissions(self, paper_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        return {r["paper_id"]: dict(r) for r in self._lookup(SELECT_SUBMISSIONS, list(paper_ids))}  # type: ignore[attr-defined]

    # -- daily lists ----------------------------------------------------------------------------

    def day_ids(self, first: str, last: str, submitter: str | None = None) -> list[int]:
        """Papers on the lists of days ``first``..``last`` (ISO dates, inclusive)."""
        if submitter:
            return [r[0] for r in self.conn.execute(SELECT_DAY_IDS_BY, (first, last, submitter))]
        return [r[0] for r in self.conn.execute(SELECT_DAY_IDS, (first, last) * 3)]

    def listing_days(self, paper_ids: Sequence[int]) -> dict[int, str | None]:
        return {r[0]: r[1] for r in self._lookup(SELECT_LISTING_DAYS, list(paper_ids))}  # type: ignore[attr-defined]

    def latest_day(self, until: str) -> str | None:
        return self.conn.execute(SELECT_LATEST_DAY, (until,) * 3).fetchone()[0]

    def adjacent_day(self, day: str, forward: bool) -> str | None:
        return self.conn.execute(SELECT_NEXT_DAY if forward else SELECT_PREV_DAY, (day,) * 3).fetchone()[0]
