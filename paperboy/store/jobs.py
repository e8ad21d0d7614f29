"""The job queue: rows claimed with a lease, so two processes never run one job at once and a
crashed worker's job is retried when its lease runs out. Submissions (seconds) are claimed before
library imports (minutes), so one reader's big import does not hold up everyone's submissions.

A mixin of the SQL store. SQLite serializes claims with ``BEGIN IMMEDIATE``; PostgreSQL claims with
``FOR UPDATE SKIP LOCKED`` (``_skip_locked``): two hosts polling at once take different jobs, and
neither waits for the other. One live job per (kind, key): enqueueing a
job that is already queued or running returns the existing one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson

from ..records import Job
from .community import utcnow

SELECT_LIVE_JOB = "SELECT id FROM jobs WHERE kind = ? AND key = ? AND status IN ('queued', 'running')"
INSERT_JOB = """INSERT INTO jobs (kind, key, payload, status, run_after, created_at, updated_at)
VALUES (?, ?, ?, 'queued', ?, ?, ?)"""
SELECT_DUE_JOB = """SELECT id FROM jobs WHERE ((status = 'queued' AND run_after <= ?)
OR (status = 'running' AND locked_until <= ?)) {kinds}
ORDER BY CASE kind WHEN 'submit' THEN 0 ELSE 1 END, run_after, id LIMIT 1{skip_locked}"""
CLAIM_JOB = """UPDATE jobs SET status = 'running', locked_by = ?, locked_until = ?, attempts = attempts + 1,
updated_at = ? WHERE id = ?"""
FINISH_JOB = """UPDATE jobs SET status = ?, result = ?, last_error = ?, run_after = ?, locked_by = NULL,
locked_until = NULL, updated_at = ? WHERE id = ? AND locked_by = ?"""
SELECT_JOB = "SELECT * FROM jobs WHERE id = ?"
COUNT_LIVE_OF = """SELECT COUNT(*) FROM jobs WHERE kind = ? AND status IN ('queued', 'running')
AND CAST(json_extract(payload, '$.user_id') AS INTEGER) = ?"""
COUNT_JOBS = "SELECT status, COUNT(*) FROM jobs GROUP BY status"
OLDEST_QUEUED = "SELECT MIN(run_after) FROM jobs WHERE status = 'queued'"
# Taken when free, expired, or already ours; the conflict clause makes it one atomic statement.
TAKE_LEASE = """INSERT INTO leases (name, holder, until) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
WHERE leases.until <= ? OR leases.holder = excluded.holder"""
RELEASE_LEASE = "DELETE FROM leases WHERE name = ? AND holder = ?"


def iso(t: datetime) -> str:
    """Milliseconds: a lease of under a second must not end the moment it starts."""
    return t.isoformat(timespec="milliseconds")


def _job(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    job = dict(row)
    job["payload"] = orjson.loads(job["payload"])
    job["result"] = orjson.loads(job["result"]) if job["result"] else None
    return job


class JobsMixin:
    """Queued work (submissions to fetch, ...), claimed with a lease."""

    conn: Any  # the backend's connection (see sql.SQLStore)

    def enqueue_job(self, kind: str, key: str, payload: dict[str, Any], delay_s: float = 0.0) -> tuple[int, bool]:
        """(job id, created): a live job of the same kind and key is reused, not doubled."""
        t = utcnow()
        with self._write("jobs") as c:  # type: ignore[attr-defined]
            row = c.execute(SELECT_LIVE_JOB, (kind, key)).fetchone()
            if row:
                return int(row[0]), False
            cur = c.execute(INSERT_JOB, (kind, key, orjson.dumps(payload).decode(),
                                         iso(t + timedelta(seconds=delay_s)), iso(t), iso(t)))
            return int(cur.lastrowid), True

    def claim_job(self, worker: str, lease_s: float, kinds: Sequence[str] | None = None) -> Job | None:
        """Take the next due job (or one whose worker's lease ran out) for ``lease_s`` seconds."""
        t = utcnow()
        where = f"AND kind IN ({','.join('?' * len(kinds))})" if kinds else ""
        with self._write(None) as c:  # type: ignore[attr-defined]
            row = c.execute(SELECT_DUE_JOB.format(kinds=where, skip_locked=self._skip_locked),  # type: ignore[attr-defined]
                             (iso(t), iso(t), *(kinds or ()))).fetchone()
            if row is None:
                return None
            c.execute(CLAIM_JOB, (worker, iso(t + timedelta(seconds=lease_s)), iso(t), row[0]))
            return _job(c.execute(SELECT_JOB, (row[0],)).fetchone())

    def finish_job(self, job_id: int, worker: str, status: str, *, result: dict[str, Any] | None = None,
                   error: str | None = None, retry_in_s: float = 0.0) -> bool:
        """Record how a claimed job ended: 'done', 'failed', or 'queued' again (a retry in
        ``retry_in_s``). False when the lease was lost to another worker meanwhile."""
        t = utcnow()
        with self._write(None) as c:  # type: ignore[attr-defined]
            return c.execute(FINISH_JOB, (status, orjson.dumps(result).decode() if result is not None else None,
                                          error, iso(t + timedelta(seconds=retry_in_s)), iso(t), job_id,
                                          worker)).rowcount > 0

    def live_jobs_of(self, kind: str, user_id: int) -> int:
        """How many jobs of ``kind`` that ``user_id`` queued are waiting or running."""
        return int(self.conn.execute(COUNT_LIVE_OF, (kind, user_id)).fetchone()[0])

    def job(self, job_id: int) -> Job | None:
        return _job(self.conn.execute(SELECT_JOB, (job_id,)).fetchone())

    def job_counts(self) -> dict[str, Any]:
        """Jobs per status, and when the oldest queued job became due (for /healthz)."""
        out: dict[str, Any] = {r[0]: r[1] for r in self.conn.execute(COUNT_JOBS)}
        out["oldest_queued"] = self.conn.execute(OLDEST_QUEUED).fetchone()[0]
        return out

    def take_lease(self, name: str, holder: str, seconds: float) -> bool:
        t = utcnow()
        with self._write(None) as c:  # type: ignore[attr-defined]
            return c.execute(TAKE_LEASE, (name, holder, iso(t + timedelta(seconds=seconds)), iso(t))).rowcount > 0

    def release_lease(self, name: str, holder: str) -> None:
        with self._write(None) as c:  # type: ignore[attr-defined]
            c.execute(RELEASE_LEASE, (name, holder))
