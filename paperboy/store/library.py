"""Readers' libraries: saved papers in folders, feedback (up, down, dismiss), profiles (interest
statement, rules, digest schedule, feed token), interest preferences, digests and the sent ledger.

A mixin of the SQL store, like ``community.py``. Every method is scoped to one ``user_id``: no
query here reads or changes another reader's rows.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..records import (
    CommentRow,
    Digest,
    DigestReader,
    FeedbackRow,
    InterestPref,
    LibraryRows,
    Profile,
    Save,
    Subscription,
    User,
    VoteRow,
)
from .community import INSERT_VOTE, iso, utcnow
from .interfaces_library import Follow

PROFILE_FIELDS = ("statement", "include_terms", "exclude_terms", "categories", "digest", "digest_hour",
                  "timezone", "quiet_days")
JSON_FIELDS = ("include_terms", "exclude_terms", "categories")

INSERT_SAVE = "INSERT INTO saves (user_id, paper_id, folder, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
DELETE_SAVE = "DELETE FROM saves WHERE user_id = ? AND paper_id = ? AND folder = ?"
SELECT_SAVES = "SELECT paper_id, folder, created_at FROM saves WHERE user_id = ? ORDER BY created_at DESC, paper_id"
SELECT_SAVE_EVENTS = "SELECT paper_id, MIN(created_at) FROM saves WHERE created_at > ? AND created_at <= ? GROUP BY user_id, paper_id"
UPSERT_FEEDBACK = """INSERT INTO feedback (user_id, paper_id, kind, created_at) VALUES (?, ?, ?, ?)
ON CONFLICT (user_id, paper_id) DO UPDATE SET kind = excluded.kind, created_at = excluded.created_at"""
DELETE_FEEDBACK = "DELETE FROM feedback WHERE user_id = ? AND paper_id = ?"
SELECT_FEEDBACK = "SELECT paper_id, kind FROM feedback WHERE user_id = ?"
SELECT_MY_VOTES = "SELECT paper_id FROM votes WHERE user_id = ?"
SELECT_FEEDBACK_ROWS = "SELECT paper_id, kind, created_at FROM feedback WHERE user_id = ? ORDER BY paper_id"
SELECT_VOTE_ROWS = "SELECT paper_id, created_at FROM votes WHERE user_id = ? ORDER BY paper_id"
SELECT_COMMENTS_OF = "SELECT id, paper_id, user_id, body, created_at, hidden_at FROM comments WHERE user_id = ? ORDER BY id"
# Restoring an account: a rating given later than the one restored is kept (the latest one counts).
RESTORE_FEEDBACK = UPSERT_FEEDBACK + " WHERE excluded.created_at > feedback.created_at"
SELECT_SAME_COMMENT = """SELECT 1 FROM comments WHERE user_id = ? AND paper_id = ? AND body = ? AND created_at = ?"""
INSERT_COMMENT_AT = "INSERT INTO comments (paper_id, user_id, body, created_at, hidden_at) VALUES (?, ?, ?, ?, ?)"
SELECT_PROFILE = "SELECT * FROM profiles WHERE user_id = ?"
ENSURE_PROFILE = "INSERT INTO profiles (user_id, updated_at) VALUES (?, ?) ON CONFLICT DO NOTHING"
UPDATE_PROFILE = "UPDATE profiles SET {}, updated_at = ? WHERE user_id = ?"
SELECT_BY_FEED = "SELECT user_id FROM profiles WHERE feed_token_hash = ?"
SELECT_PREFS = "SELECT key, name, muted, deleted, members FROM interest_prefs WHERE user_id = ?"
UPSERT_PREF = """INSERT INTO interest_prefs (user_id, key, name, muted, deleted, members) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (user_id, key) DO UPDATE SET name = excluded.name, muted = excluded.muted, deleted = excluded.deleted,
members = excluded.members"""
RESET = ("DELETE FROM interest_prefs WHERE user_id = ?", "DELETE FROM feedback WHERE user_id = ?",
         "UPDATE profiles SET statement = '', include_terms = '[]', exclude_terms = '[]', categories = '[]' "
         "WHERE user_id = ?")
SELECT_SENT = "SELECT paper_id FROM sent WHERE user_id = ?"
SELECT_DIGEST = "SELECT * FROM digests WHERE user_id = ? AND period = ?"
# Fewest attempts first: a digest that keeps failing goes after every fresh one (issue 9).
SELECT_PENDING = "SELECT * FROM digests WHERE status = 'pending' ORDER BY attempts, created_at, id"
# A digest given up for good does not count as the last one: its released papers fall into the
# window of the reader's next digest.
SELECT_LAST_DIGEST = "SELECT MAX(created_at) FROM digests WHERE user_id = ? AND status != 'failed'"
SELECT_FIRST_FAILED = "SELECT MIN(created_at) FROM digests WHERE user_id = ? AND status = 'failed'"
INSERT_DIGEST = """INSERT INTO digests (user_id, period, status, paper_ids, trending_ids, created_at)
VALUES (?, ?, 'pending', ?, ?, ?) ON CONFLICT (user_id, period) DO NOTHING"""
INSERT_SENT = "INSERT INTO sent (user_id, paper_id, digest_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
MARK_SENT = "UPDATE digests SET status = ?, sent_at = ?, next_attempt_at = NULL WHERE id = ?"
DIGEST_FAILED = """UPDATE digests SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, status = ?
WHERE id = ?"""
RELEASE_SENT = "DELETE FROM sent WHERE digest_id = ?"
# Digests go to live accounts only, and (unless the operator trusts the user list) to verified addresses.
SELECT_DIGEST_USERS = """SELECT u.id, u.name, u.email, u.email_verified_at, p.digest, p.digest_hour, p.timezone,
p.quiet_days, p.subscribed_at
FROM users u JOIN profiles p ON p.user_id = u.id
WHERE p.digest != 'off' AND u.email IS NOT NULL AND u.email != '' AND u.suspended_at IS NULL
AND u.deleted_at IS NULL AND (u.email_verified_at IS NOT NULL OR ? = 0) ORDER BY u.id"""
SELECT_SUBSCRIPTION = """SELECT p.digest, p.subscribed_at FROM profiles p JOIN users u ON u.id = p.user_id
WHERE p.user_id = ? AND u.deleted_at IS NULL"""
SELECT_USER = "SELECT id, name, email, created_at FROM users WHERE id = ?"
# A new address is not verified yet; setting the same address again keeps its verification.
UPDATE_EMAIL = """UPDATE users SET email = ?,
email_verified_at = CASE WHEN email IS ? THEN email_verified_at ELSE NULL END WHERE id = ?"""
MARK_VERIFIED = "UPDATE users SET email_verified_at = ? WHERE id = ?"
INSERT_FOLLOW = "INSERT INTO follows (user_id, author_key, name, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
DELETE_FOLLOW = "DELETE FROM follows WHERE user_id = ? AND author_key = ?"
SELECT_FOLLOWS = "SELECT author_key, name, created_at FROM follows WHERE user_id = ? ORDER BY created_at DESC, author_key"

class LibraryMixin:
    conn: Any  # the backend's connection (see sql.SQLStore)

    # -- library --------------------------------------------------------------------------------

    def save(self, user_id: int, paper_id: int, folder: str = "saved") -> bool:
        with self._write(None) as c:  # type: ignore[attr-defined]
            return c.execute(INSERT_SAVE, (user_id, paper_id, folder, iso(utcnow()))).rowcount > 0

    def unsave(self, user_id: int, paper_id: int, folder: str = "saved") -> bool:
        with self._write(None) as c:  # type: ignore[attr-defined]
            return c.execute(DELETE_SAVE, (user_id, paper_id, folder)).rowcount > 0

    def saves(self, user_id: int) -> list[Save]:
        return [dict(r) for r in self.conn.execute(SELECT_SAVES, (user_id,))]

    def save_events(self, since: str, until: str) -> list[tuple[int, str]]:
        return [(r[0], r[1]) for r in self.conn.execute(SELECT_SAVE_EVENTS, (since, until))]

    def set_feedback(self, user_id: int, paper_id: int, kind: str | None) -> None:
        """Rate up or down, dismiss, or (None) take the feedback back; the latest one counts."""
        with self._write(None) as c:  # type: ignore[attr-defined]
            if kind is None:
                c.execute(DELETE_FEEDBACK, (user_id, paper_id))
            else:
                c.execute(UPSERT_FEEDBACK, (user_id, paper_id, kind, iso(utcnow())))

    def feedback(self, user_id: int) -> dict[int, str]:
        return {r[0]: r[1] for r in self.conn.execute(SELECT_FEEDBACK, (user_id,))}

    def my_votes(self, user_id: int) -> list[int]:
        return [r[0] for r in self.conn.execute(SELECT_MY_VOTES, (user_id,))]

    # -- followed authors -----------------------------------------------------------------------

    def follow(self, user_id: int, author_key: str, name: str, at: str | None = None) -> bool:
        with self._write(None) as c:  # type: ignore[attr-defined]
            return c.execute(INSERT_FOLLOW, (user_id, author_key, name, at or iso(utcnow()))).rowcount > 0

    def unfollow(self, user_id: int, author_key: str) -> bool:
        with self._write(None) as c:  # type: ignore[attr-defined]
            return c.execute(DELETE_FOLLOW, (user_id, author_key)).rowcount > 0

    def follows(self, user_id: int) -> list[Follow]:
        return [dict(r) for r in self.conn.execute(SELECT_FOLLOWS, (user_id,))]

    # -- a whole account's rows -----------------------------------------------------------------

    def feedback_rows(self, user_id: int) -> list[FeedbackRow]:
        return [dict(r) for r in self.conn.execute(SELECT_FEEDBACK_ROWS, (user_id,))]

    def votes_of(self, user_id: int) -> list[VoteRow]:
        return [dict(r) for r in self.conn.execute(SELECT_VOTE_ROWS, (user_id,))]

    def comments_of(self, user_id: int) -> list[CommentRow]:
        return [dict(r) for r in self.conn.execute(SELECT_COMMENTS_OF, (user_id,))]

    def restore_library(self, user_id: int, rows: LibraryRows) -> dict[str, int]:
        """One transaction: an error anywhere leaves the reader's rows as they were."""
        counts = dict.fromkeys(("saves", "feedback", "votes", "comments", "interest_prefs"), 0)
        with self._write() as c:  # type: ignore[attr-defined]
            for sv in rows["saves"]:
                counts["saves"] += c.execute(INSERT_SAVE, (user_id, sv["paper_id"], sv["folder"],
                                                           sv["created_at"])).rowcount > 0
            for f in rows["feedback"]:
                counts["feedback"] += c.execute(RESTORE_FEEDBACK, (user_id, f["paper_id"], f["kind"],
                                                                   f["created_at"])).rowcount > 0
            for v in rows["votes"]:
                counts["votes"] += c.execute(INSERT_VOTE, (user_id, v["paper_id"], v["created_at"])).rowcount > 0
            for cm in rows["comments"]:
                key = (user_id, cm["paper_id"], cm["body"], cm["created_at"])
                if c.execute(SELECT_SAME_COMMENT, key).fetchone() is None:
                    c.execute(INSERT_COMMENT_AT, (cm["paper_id"], user_id, cm["body"], cm["created_at"],
                                                  iso(utcnow()) if cm["hidden"] else None))
                    counts["comments"] += 1
            for p in rows["interest_prefs"]:
                c.execute(UPSERT_PREF, (user_id, p["key"], p["name"], int(p["muted"]), int(p["deleted"]),
                                        orjson.dumps(p["members"]).decode()))
                counts["interest_prefs"] += 1
            if rows["profile"]:
                self._set_profile(c, user_id, rows["profile"])
        return counts

    # -- profile and interests ------------------------------------------------------------------

    def profile(self, user_id: int) -> Profile:
        with self._write() as c:  # type: ignore[attr-defined]
            c.execute(ENSURE_PROFILE, (user_id, iso(utcnow())))
        row = dict(self.conn.execute(SELECT_PROFILE, (user_id,)).fetchone())
        for f in JSON_FIELDS:
            row[f] = orjson.loads(row[f])
        return row

    def update_profile(self, user_id: int, **values: Any) -> None:
        with self._write() as c:  # type: ignore[attr-defined]
            self._set_profile(c, user_id, values)

    @staticmethod
    def _set_profile(c: Any, user_id: int, values: dict[str, Any]) -> None:
        """``update_profile`` inside a write transaction (``c``), creating the row if need be."""
        bad = set(values) - set(PROFILE_FIELDS) - {"feed_token_hash"}
        if bad:
            raise ValueError(f"unknown profile fields {sorted(bad)}")
        c.execute(ENSURE_PROFILE, (user_id, iso(utcnow())))
        vals = [orjson.dumps(v).decode() if k in JSON_FIELDS else v for k, v in values.items()]
        sets = [f"{k} = ?" for k in values]
        if "digest" in values:
            # Turning digests on (from off) starts a new subscription: unsubscribe links of an
            # earlier one stop working. SET expressions see the row before the update.
            sets.append("subscribed_at = CASE WHEN digest = 'off' AND ? != 'off' THEN ? ELSE subscribed_at END")
            vals += [values["digest"], utcnow().isoformat()]  # microseconds: two subscriptions never share one
        c.execute(UPDATE_PROFILE.format(", ".join(sets)), (*vals, iso(utcnow()), user_id))

    def user_by_feed_token(self, token_hash: str) -> int | None:
        row = self.conn.execute(SELECT_BY_FEED, (token_hash,)).fetchone()
        return row[0] if row else None

    def user(self, user_id: int) -> User | None:
        row = self.conn.execute(SELECT_USER, (user_id,)).fetchone()
        return dict(row) if row else None

    def set_email(self, user_id: int, email: str | None) -> None:
        """Change the address (validated by the caller); a different address is unverified again."""
        with self._write(None) as c:  # type: ignore[attr-defined]
            c.execute(UPDATE_EMAIL, (email, email, user_id))

    def mark_email_verified(self, user_id: int, at: str | None = None) -> None:
        """Record that the reader proved they read their current address (the verification link)."""
        with self._write(None) as c:  # type: ignore[attr-defined]
            c.execute(MARK_VERIFIED, (at or iso(utcnow()), user_id))

    def subscription(self, user_id: int) -> Subscription | None:
        """The reader's digest setting and when it was turned on (None: no such live reader); reads
        only, unlike ``profile``."""
        row = self.conn.execute(SELECT_SUBSCRIPTION, (user_id,)).fetchone()
        return dict(row) if row else None

    def interest_prefs(self, user_id: int) -> dict[str, InterestPref]:
        return {r["key"]: dict(r) | {"members": orjson.loads(r["members"])}
                for r in self.conn.execute(SELECT_PREFS, (user_id,))}

    def set_interest_pref(self, user_id: int, key: str, *, name: str | None = None, muted: bool | None = None,
                          deleted: bool | None = None, members: list[int] | None = None) -> None:
        """Rename, mute or delete one interest; a deleted one's ``members`` stop counting as positives."""
        cur = self.interest_prefs(user_id).get(key, {"name": None, "muted": 0, "deleted": 0, "members": []})
        with self._write() as c:  # type: ignore[attr-defined]
            c.execute(UPSERT_PREF, (user_id, key, cur["name"] if name is None else name,
                                    int(cur["muted"] if muted is None else muted),
                                    int(cur["deleted"] if deleted is None else deleted),
                                    orjson.dumps(cur["members"] if members is None else members).decode()))

    def reset_recommendations(self, user_id: int) -> None:
        """Forget interest names, mutes, deletions, ratings, dismissals, statement and rules."""
        with self._write() as c:  # type: ignore[attr-defined]
            for sql in RESET:
                c.execute(sql, (user_id,))

    # -- digests --------------------------------------------------------------------------------

    def sent_ids(self, user_id: int) -> set[int]:
        return {r[0] for r in self.conn.execute(SELECT_SENT, (user_id,))}

    def digest(self, user_id: int, period: str) -> Digest | None:
        row = self.conn.execute(SELECT_DIGEST, (user_id, period)).fetchone()
        return _digest(row) if row else None

    def pending_digests(self) -> list[Digest]:
        """Digests recorded but not mailed yet, fewest attempts first."""
        return [_digest(r) for r in self.conn.execute(SELECT_PENDING)]

    def last_digest_at(self, user_id: int) -> str | None:
        """When the reader's last digest that was (or is still to be) mailed was recorded."""
        return self.conn.execute(SELECT_LAST_DIGEST, (user_id,)).fetchone()[0]

    def first_failed_digest_at(self, user_id: int) -> str | None:
        return self.conn.execute(SELECT_FIRST_FAILED, (user_id,)).fetchone()[0]

    def record_digest(self, user_id: int, period: str, paper_ids: list[int],
                      trending_ids: list[int]) -> Digest | None:
        """Write a digest as pending and its papers into the ledger, in one transaction: from here
        on no other digest can pick these papers, and a crash before sending leaves it pending.
        None when another process (a second scheduler, cron) recorded this period first."""
        with self._write("digests") as c:  # type: ignore[attr-defined]
            cur = c.execute(INSERT_DIGEST, (user_id, period, orjson.dumps(paper_ids).decode(),
                                            orjson.dumps(trending_ids).decode(), iso(utcnow())))
            if cur.rowcount == 0:
                return None
            c.executemany(INSERT_SENT, [(user_id, pid, cur.lastrowid) for pid in paper_ids + trending_ids])
        return self.digest(user_id, period)

    def mark_digest(self, digest_id: int, status: str) -> None:
        with self._write(None) as c:  # type: ignore[attr-defined]
            c.execute(MARK_SENT, (status, iso(utcnow()), digest_id))

    def digest_failed(self, digest_id: int, error: str, next_attempt_at: str | None) -> None:
        """Count a failed attempt: retried from ``next_attempt_at`` on, or (None) given up for good,
        status ``failed``, and its papers released from the ledger so a later digest can carry
        them (they were never delivered)."""
        with self._write("digests") as c:  # type: ignore[attr-defined]
            c.execute(DIGEST_FAILED, (error, next_attempt_at, "pending" if next_attempt_at else "failed", digest_id))
            if next_attempt_at is None:
                c.execute(RELEASE_SENT, (digest_id,))

    def digest_readers(self, require_verified: bool = True) -> list[DigestReader]:
        """Readers with digests on, a live account and an address (verified, unless not required)."""
        return [dict(r) for r in self.conn.execute(SELECT_DIGEST_USERS, (int(require_verified),))]


def _digest(row: Any) -> dict[str, Any]:
    """A digest row; a damaged id list is reported in ``damaged`` instead of raising, so one bad
    row cannot stop the listing of every other reader's pending digest."""
    d = dict(row)
    try:
        d["paper_ids"], d["trending_ids"] = orjson.loads(d["paper_ids"]), orjson.loads(d["trending_ids"])
        if not all(isinstance(v, list) and all(type(i) is int for i in v) for v in (d["paper_ids"], d["trending_ids"])):
            raise ValueError("the paper id lists are not lists of integers")
    except (orjson.JSONDecodeError, ValueError, TypeError) as e:
        d["paper_ids"], d["trending_ids"], d["damaged"] = [], [], f"damaged digest row {d['id']}: {e}"
    return d
