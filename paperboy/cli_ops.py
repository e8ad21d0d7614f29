"""Operator commands: ``paperboy jobs`` runs and inspects background jobs (submissions to fetch and
embed) from cron or a host that serves no pages (``jobs_in_serve = false``); ``paperboy backup``
copies the live store."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path

import click

from .cli import EXIT_FAILED, EXIT_OK, Context, emit, errors_to_exit, json_option


@click.group("jobs")
def jobs_group() -> None:
    """Background jobs (submissions waiting to be fetched and embedded)."""


@jobs_group.command("run")
@click.option("--forever", is_flag=True, help="Keep polling for new jobs (setting job_poll_seconds) until Ctrl-C.")
@json_option
@click.pass_obj
def jobs_run(obj: Context, forever: bool, as_json: bool) -> None:
    """Run every due job; exit 1 when some failed for good."""
    with errors_to_exit(), obj.engine() as engine:
        while True:
            run = engine.run_jobs()
            if run.done or run.retried or run.failed or not forever:
                emit(asdict(run), as_json, f"jobs: {run.done} done, {run.retried} to retry, {len(run.failed)} failed"
                     + "".join(f"\nfailed: {f}" for f in run.failed))
            if not forever:
                break
            time.sleep(engine.settings["job_poll_seconds"])
    sys.exit(EXIT_FAILED if run.failed else EXIT_OK)


@jobs_group.command("status")
@json_option
@click.pass_obj
def jobs_status(obj: Context, as_json: bool) -> None:
    """Jobs per status, and since when the oldest queued job has been due."""
    with errors_to_exit(), obj.engine() as engine:
        counts = engine.store.job_counts()
    emit(counts, as_json, ", ".join(f"{k}: {v}" for k, v in counts.items()))


@click.command("backup")
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@click.pass_obj
def backup(obj: Context, dest: Path, as_json: bool) -> None:
    """Copy the store to DEST while it serves (SQLite's online backup API: a consistent snapshot,
    writers are not stopped). Indexes are derived data and are rebuilt from it."""
    with errors_to_exit(), obj.engine() as engine:
        info = engine.store.backup(dest)
    emit(info, as_json, f"backed up {info['papers']} papers to {dest} ({info['bytes']} bytes)")
