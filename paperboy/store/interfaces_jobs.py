"""The job queue part of the Store interface: rows claimed with a lease, so two processes never run
one job at once and a crashed worker's job is retried when its lease runs out. One live job per
(kind, key). SQLite serializes claims with ``BEGIN IMMEDIATE``; PostgreSQL claims with
``FOR UPDATE SKIP LOCKED``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from ..records import Job


class JobStore(ABC):
    """Queued work (submissions to fetch, digests, harvests, refits), claimed with a lease."""

    @abstractmethod
    def enqueue_job(self, kind: str, key: str, payload: dict[str, Any], delay_s: float = 0.0) -> tuple[int, bool]:
        """(job id, created): a live (queued or running) job of the same kind and key is reused, not doubled."""

    @abstractmethod
    def claim_job(self, worker: str, lease_s: float, kinds: Sequence[str] | None = None) -> Job | None:
        """Take the next due job (or one whose worker's lease ran out) for ``lease_s`` seconds, or None."""

    @abstractmethod
    def finish_job(self, job_id: int, worker: str, status: str, *, result: dict[str, Any] | None = None,
                   error: str | None = None, retry_in_s: float = 0.0) -> bool:
        """Record how a claimed job ended ('done', 'failed', 'queued' to retry); False if the lease was lost."""

    @abstractmethod
    def live_jobs_of(self, kind: str, user_id: int) -> int:
        """How many jobs of ``kind`` queued by ``user_id`` (payload ``user_id``) wait or run."""

    @abstractmethod
    def job(self, job_id: int) -> Job | None:
        """One job row (payload and result decoded), or None."""

    @abstractmethod
    def job_counts(self) -> dict[str, Any]:
        """Jobs per status, and ``oldest_queued``: when the oldest queued job became due (for /healthz)."""

    @abstractmethod
    def take_lease(self, name: str, holder: str, seconds: float) -> bool:
        """Hold ``name`` for ``seconds`` unless someone else holds it (and their lease has not run
        out); the holder taking it again extends it. One atomic statement on every backend."""

    @abstractmethod
    def release_lease(self, name: str, holder: str) -> None:
        """Give ``name`` up (only its holder can)."""
