"""Idempotent, resumable ingest: records are committed in batches together with a cursor, so a
crash loses nothing committed and a rerun resumes after the last committed batch. Bad records are
reported (where and why) and skipped, never silently dropped."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from . import sources
from .errors import Conflict, FormatError, PaperboyError, SourceError
from .models import BadRecord, IngestSummary, PaperRecord
from .normalize import check_record
from .sources import arxiv_api, arxiv_oai
from .store import Store

MAX_ERRORS_KEPT = 1000
Progress = Callable[[int], None]


def _noop(_: int) -> None:
    pass


@dataclass
class Coverage:
    """How many stored records carried an identifier and an abstract: a file whose keys the source
    did not recognise stores papers with neither, and that must not pass without a word."""

    kept: int = 0
    with_id: int = 0
    with_abstract: int = 0

    def count(self, rec: PaperRecord) -> None:
        self.kept += 1
        self.with_id += bool(rec.arxiv_id or rec.doi or rec.source_id)
        self.with_abstract += bool(rec.abstract)

    def warnings(self, label: str, hint: str = "") -> list[str]:
        if not self.kept:
            return []
        out = []
        if not self.with_id:
            out.append(f"{label}: none of the {self.kept} records has an id (arXiv id, DOI or source id); "
                       f"they can only be matched by title{hint}")
        if not self.with_abstract:
            out.append(f"{label}: none of the {self.kept} records has an abstract; search and "
                       f"recommendations will see titles only{hint}")
        return out


def check_item(item: PaperRecord) -> str | None:
    """``check_record``, with an unforeseen error costing that one record, not the batch."""
    try:
        return check_record(item)
    except (TypeError, ValueError, AttributeError, RecursionError, OverflowError) as e:  # a source bug
        return f"cannot normalize record ({type(e).__name__}: {e})"


def item_location(label: str, n: int, item: PaperRecord) -> str:
    """Where a record the gate refused was: "FILE:record N (SOURCE id ID)", N counted from 1."""
    where = f"{label}:record {n}" if label else f"record {n}"
    return f"{where} ({item.source} id {item.source_id[:200]})" if isinstance(item.source_id, str) else where


def ingest_items(store: Store, items: Iterable[PaperRecord | BadRecord], *, batch_size: int,
                 summary: IngestSummary, label: str = "", skip: int = 0, cursor: Callable[[int, bool], tuple[str, dict]] | None = None,
                 progress: Progress = _noop, coverage: Coverage | None = None) -> IngestSummary:
    """Validate, batch and upsert ``items``; the first ``skip`` items were committed before.

    ``cursor(n, complete)`` gives the (name, value) to save with the batch that ends at item n.
    """
    batch: list[PaperRecord] = []
    coverage = coverage if coverage is not None else Coverage()
    n = 0

    def flush(complete: bool) -> None:
        counts = store.upsert_papers(batch, cursor(n, complete) if cursor else None)
        summary.inserted += counts.inserted
        summary.updated += counts.updated
        summary.unchanged += counts.unchanged
        batch.clear()

    for item in items:
        n += 1
        if n <= skip:
            continue
        progress(1)
        summary.read += 1
        if isinstance(item, PaperRecord) and (reason := check_item(item)):
            item = BadRecord(item_location(label, n, item), reason)
        if isinstance(item, BadRecord):
            summary.skipped += 1
            if len(summary.errors) < MAX_ERRORS_KEPT:
                summary.errors.append(str(item))
            continue
        coverage.count(item)
        batch.append(item)
        if len(batch) >= batch_size:
            flush(False)
    flush(True)
    return summary


def _run(store: Store, source: str, target: str, work: Callable[[IngestSummary, Coverage], Any],
         hint: str = "") -> IngestSummary:
    """Record a run around ``work``; the run's status says ok, partial (skips) or failed."""
    summary, coverage = IngestSummary(), Coverage()
    run_id = store.start_run(source, target)
    status = "failed"
    try:
        work(summary, coverage)
        summary.warnings.extend(coverage.warnings(target, hint))
        status = "partial" if summary.skipped else "ok"
    finally:
        counts = {k: getattr(summary, k) for k in ("read", "inserted", "updated", "unchanged", "skipped")}
        store.finish_run(run_id, status, counts, summary.errors)
    return summary


def ingest_file(store: Store, path: Path, fmt: str | None = None, *, batch_size: int = 1000,
                mapping: dict[str, Any] | None = None, progress: Progress = _noop) -> IngestSummary:
    """Ingest one file (format detected when not given); resumes an interrupted ingest of it.

    A field ``mapping`` is for the jsonl and csv formats only (and implies jsonl when no format is
    given and the file is not CSV).
    """
    path = Path(path)
    if mapping is not None and fmt not in (None, *sources.MAPPABLE):
        raise FormatError(f"a field mapping (--map) applies to the {' and '.join(sources.MAPPABLE)} formats only, not {fmt}")
    sources.check_path(path, fmt)  # a file, or a folder its format reads (abs)
    fmt = fmt or (sources.for_mapping(path) if mapping is not None else sources.detect(path))
    mod = sources.module(fmt)
    try:
        size, mtime_ns = sources.signature(path, fmt)  # a folder's: over the files its format reads
    except OSError as e:
        raise PaperboyError(f"{path}: {e.strerror}") from e
    if not size:
        raise FormatError(f"{path} is empty")
    name = f"file:{path.resolve()}"
    ident = {"format": fmt, "size": size, "mtime_ns": mtime_ns}
    saved = store.get_cursor(name) or {}
    same = all(saved.get(k) == v for k, v in ident.items())
    skip = saved.get("items", 0) if same and not saved.get("complete") else 0

    def work(summary: IngestSummary, coverage: Coverage) -> None:
        summary.resumed_from = skip
        items = mod.read(path, mapping) if mapping is not None else mod.read(path)
        ingest_items(store, items, batch_size=batch_size, summary=summary, label=str(path), skip=skip,
                     cursor=lambda n, complete: (name, {**ident, "items": n, "complete": complete}),
                     progress=progress, coverage=coverage)
        if not summary.read and not skip:
            summary.warnings.append(f"{path}: no records found (read as {fmt})")

    hint = " (wrong field names? see --map)" if fmt in sources.MAPPABLE else ""
    return _run(store, fmt, str(path), work, hint)


def harvest_arxiv(store: Store, settings: dict[str, Any], *, set_spec: str | None,
                  from_date: str | None = None, until: str | None = None, prefix: str | None = None,
                  progress: Progress = _noop) -> IngestSummary:
    """Harvest arXiv over OAI-PMH into the store, saving the resumptionToken with every page.

    Without ``from_date`` it continues from the day the last complete harvest of this set started.
    A crashed harvest resumes from its saved token; if the server no longer knows the token, it
    restarts from the saved dates (upserts are idempotent, so nothing is doubled). One harvest of a
    set runs at a time, whichever host's cron starts it: it holds a lease in the store, renewed with
    every page (a dead harvester's lease runs out after ``job_lease_seconds``); a second one is
    refused with ``Conflict``.
    """
    prefix = prefix or settings["oai_prefix"]
    name = f"oai:{settings['oai_url']}:{set_spec or '*'}:{prefix}"
    lease, me, hold = f"harvest:{name}", f"{socket.gethostname()}:{os.getpid()}", float(settings["job_lease_seconds"])
    if not store.take_lease(lease, me, hold):
        raise Conflict(f"a harvest of {set_spec or 'all of arXiv'} is already running (another process or host); "
                       "try again when it is done")
    try:
        return _harvest(store, settings, name, set_spec, from_date, until, prefix, progress,
                        renew=lambda: store.take_lease(lease, me, hold))
    finally:
        store.release_lease(lease, me)


def _harvest(store: Store, settings: dict[str, Any], name: str, set_spec: str | None, from_date: str | None,
             until: str | None, prefix: str, progress: Progress, renew: Callable[[], bool]) -> IngestSummary:
    saved = store.get_cursor(name) or {}
    started = datetime.now(timezone.utc).date().isoformat()
    if from_date is None:  # a crashed run's cursor keeps its dates in params, to resume by token
        from_date = saved.get("next_from") if saved.get("complete") else saved.get("params", {}).get("from")
    params = {k: v for k, v in {"metadataPrefix": prefix, "set": set_spec, "from": from_date,
                                "until": until}.items() if v}
    resume = (not saved.get("complete") and saved.get("token")
              and saved.get("params") == params)
    state: dict[str, Any] = {"params": params, "started": saved.get("started", started) if resume else started}

    def pages(summary: IngestSummary, coverage: Coverage) -> None:
        try:
            harvest = arxiv_oai.harvest(settings, {"resumptionToken": saved["token"]} if resume else params)
            _consume(harvest, summary, coverage)
        except SourceError as e:
            if not (resume and "badResumptionToken" in str(e)):
                raise
            _consume(arxiv_oai.harvest(settings, params), summary, coverage)
        store.set_cursor(name, {**state, "complete": True, "token": None,
                                "next_from": until or state["started"]})

    def _consume(harvest: Iterable[arxiv_oai.Page], summary: IngestSummary, coverage: Coverage) -> None:
        for page in harvest:
            renew()
            value = {**state, "complete": False, "token": page.token}
            ingest_items(store, page.items, batch_size=max(len(page.items), 1), summary=summary,
                         cursor=lambda n, complete, v=value: (name, v), progress=progress, coverage=coverage)

    return _run(store, "arxiv-oai", name, pages)


def fetch_arxiv(store: Store, settings: dict[str, Any], ids: list[str],
                progress: Progress = _noop) -> IngestSummary:
    """Fetch papers by id from the arXiv API into the store (a submission, a small import)."""
    return _run(store, "arxiv-api", ",".join(ids), lambda s, c: ingest_items(
        store, arxiv_api.fetch_ids(settings, ids), batch_size=100, summary=s, progress=progress, coverage=c))


def parse_day(text: str) -> str:
    """Validate a YYYY-MM-DD date for the command line."""
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError as e:
        raise PaperboyError(f"not a date (YYYY-MM-DD): {text!r}") from e
