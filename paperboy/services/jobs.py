"""Background jobs: work that must not run inside a web request (a submission's arXiv fetch and
embedding). Jobs are rows in the store (``store/jobs.py``), so a restart loses none, and any
process may run them: each ``paperboy serve`` worker in a background thread (``jobs_in_serve``),
or ``paperboy jobs run`` from cron on any host.

A handler returns a result dict, raises ``Retry`` for a passing failure (the job is queued again
after an exponential back-off, up to ``job_max_attempts``), or raises any PaperboyError to fail
the job for good with that message.

A handler is handed what it uses (``JobDeps``: the store, the settings, ``fetch_arxiv`` and
``embed``), which the ``Engine`` has; nothing here imports the engine.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ConfigError, NotFound, PaperboyError, SourceError

if TYPE_CHECKING:
    from ..models import IngestSummary, Paper
    from ..store import Store

log = logging.getLogger("paperboy.jobs")
BACKOFF_S = 30.0  # first retry; doubles per attempt
MAX_BACKOFF_S = 3600.0
UPLOAD = "upload"  # the source of entries of members' library uploads (see store.uploads_only)


def confirmed(paper: Paper) -> bool:
    """Seen by a source other than a member's uploaded library file, whose metadata anyone can
    write: only such a paper is listed on a submission without asking arXiv first."""
    return any(s["source"] != UPLOAD for s in paper.sources)


class JobDeps(Protocol):
    """What the job runner and its handlers use (``import_job`` hands it on to
    ``library.import_library``, which uses ``store`` and ``embed``)."""

    settings: dict[str, Any]

    @property
    def store(self) -> Store: ...

    def fetch_arxiv(self, ids: list[str]) -> IngestSummary: ...

    def embed(self) -> dict[str, int]: ...


class Retry(PaperboyError):
    """A passing failure (an upstream down): try the job again later."""


@dataclass
class JobRun:
    done: int = 0
    retried: int = 0
    failed: list[str] = field(default_factory=list)


def visible_to(job: dict[str, Any] | None, user: dict[str, Any] | None) -> bool:
    """A job's status is its submitter's (and the moderators'): ids are sequential, so anyone
    else could walk them and list every submission, even those that never reach a list."""
    return bool(job and user) and (job["payload"].get("user_id") == user["id"]  # type: ignore[index]
                                   or user.get("role") in ("moderator", "admin"))  # type: ignore[union-attr]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def submit_job(deps: JobDeps, payload: dict[str, Any]) -> dict[str, Any]:
    """Fetch a submitted arXiv id, list it on the submission day, embed it."""
    arxiv_id = payload["arxiv_id"]
    store = deps.store
    known = store.get_paper(arxiv_id)
    if known is None or not confirmed(known):  # arXiv's metadata overwrites a library file's
        try:
            summary = deps.fetch_arxiv([arxiv_id])
        except SourceError as e:
            raise Retry(str(e)) from e
        if summary.errors and store.get_paper(arxiv_id) is None:
            raise Retry("; ".join(summary.errors[:3]))
    paper = store.get_paper(arxiv_id)
    if paper is None:
        raise NotFound(f"arXiv has no paper {arxiv_id}")
    created = store.submit(paper.id, payload.get("user_id"), payload.get("day") or date.today().isoformat())
    if deps.settings["submit_embeds"]:
        try:
            deps.embed()
        except ConfigError:  # no embed extra: keyword search still finds it
            pass
    return {"paper_id": paper.id, "arxiv_id": paper.arxiv_id, "created": created}


def import_job(deps: JobDeps, payload: dict[str, Any]) -> dict[str, Any]:
    """Import an uploaded library into a reader's folder (parse, store, save, embed), then drop the
    upload. Messages name the file as the reader called it, never the server's path."""
    from . import library

    path = Path(payload["path"])
    try:
        result = library.import_library(deps, payload["user_id"], path, payload["folder"], source=UPLOAD)
    except PaperboyError as e:
        raise PaperboyError(str(e).replace(str(path), payload["name"]).split("; name it:")[0]) from e
    finally:
        path.unlink(missing_ok=True)
    result["skipped"] = [s.replace(str(path), payload["name"]) for s in result["skipped"][:100]]
    return result


def _drop_upload(job: dict[str, Any]) -> None:
    if job["kind"] == "library_import":
        Path(job["payload"]["path"]).unlink(missing_ok=True)


def _owner_live(store: Any, payload: dict[str, Any]) -> bool:
    """A member's job runs only while the member may still act: a suspended member's queued upload
    or submission must not land after the suspension (operator jobs have no user)."""
    uid = payload.get("user_id")
    if uid is None:
        return True
    account = store.account(uid) if isinstance(uid, int) else None
    return account is not None and account["suspended_at"] is None and account["deleted_at"] is None


HANDLERS: dict[str, Callable[[JobDeps, dict[str, Any]], dict[str, Any]]] = {"submit": submit_job,
                                                                         "library_import": import_job}


def run_pending(deps: JobDeps, limit: int | None = None, worker: str | None = None) -> JobRun:
    """Run due jobs until none is left (or ``limit`` ran); each outcome is recorded in the store."""
    worker = worker or worker_name()
    store, s, out = deps.store, deps.settings, JobRun()
    while limit is None or out.done + out.retried + len(out.failed) < limit:
        job = store.claim_job(worker, s["job_lease_seconds"], list(HANDLERS))
        if job is None:
            break
        label = f"job {job['id']} {job['kind']} {job['key']}"
        if job["attempts"] > s["job_max_attempts"]:  # claimed again and again: its runs never finish
            store.finish_job(job["id"], worker, "failed", error="gave up: it never finished (worker restarts)")
            out.failed.append(f"{label}: never finished in {job['attempts'] - 1} attempts")
            _drop_upload(job)
            continue
        if not _owner_live(store, job["payload"]):  # suspended or deleted since it was queued
            store.finish_job(job["id"], worker, "failed", error="its account was suspended or deleted")
            out.failed.append(f"{label}: its account was suspended or deleted")
            _drop_upload(job)
            continue
        try:
            result = HANDLERS[job["kind"]](deps, job["payload"])
        except Retry as e:
            if job["attempts"] >= s["job_max_attempts"]:
                store.finish_job(job["id"], worker, "failed", error=str(e)[:1000])
                out.failed.append(f"{label}: {e} (gave up after {job['attempts']} attempts)")
            else:
                wait = min(BACKOFF_S * 2 ** (job["attempts"] - 1), MAX_BACKOFF_S)
                store.finish_job(job["id"], worker, "queued", error=str(e)[:1000], retry_in_s=wait)
                out.retried += 1
            log.warning("%s: %s", label, e)
            continue
        except PaperboyError as e:
            store.finish_job(job["id"], worker, "failed", error=str(e)[:1000])
            out.failed.append(f"{label}: {e}")
            log.warning("%s failed: %s", label, e)
            continue
        except Exception as e:  # noqa: BLE001 - a bug in one job must not stop the others
            store.finish_job(job["id"], worker, "failed", error=f"internal error: {type(e).__name__}")
            out.failed.append(f"{label}: internal error")
            log.exception("%s crashed", label)
            continue
        store.finish_job(job["id"], worker, "done", result=result)
        out.done += 1
        log.info("%s done", label)
    return out
