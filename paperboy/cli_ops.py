"""Operator commands: ``paperboy jobs`` runs and inspects background jobs (submissions to fetch and
embed) from cron or a host that serves no pages (``jobs_in_serve = false``); ``paperboy backup``
copies the live store; ``paperboy store copy`` moves a store to another backend (a laptop's SQLite
file to a community's PostgreSQL) and ``paperboy store check`` verifies one."""

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


@click.group("store")
def store_group() -> None:
    """Move a store between backends and check its integrity."""


def _open(obj: Context, url: str):  # noqa: ANN202 - a Store
    from .store import open_store
    from .settings import load

    settings = load(obj.overrides)
    return open_store(url, settings["home"], settings["store_pool_size"])


@store_group.command("copy")
@click.argument("from_url")
@click.argument("to_url")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@json_option
@click.pass_obj
def store_copy(obj: Context, from_url: str, to_url: str, quiet: bool, as_json: bool) -> None:
    """Copy every table of the store at FROM_URL into the (new, empty) store at TO_URL, e.g.
    sqlite:///home/me/.local/share/paperboy/paperboy.sqlite3 to postgresql://paperboy@db/paperboy.
    Run again after an interruption to go on; row counts are compared at the end. Stop writers first."""
    from .cli import progress_bar
    from .store.copy import copy_store

    with errors_to_exit(), _open(obj, from_url) as src, _open(obj, to_url) as dst, \
            progress_bar("copy", quiet or as_json) as bar:
        counts = copy_store(src, dst, progress=lambda table, n: bar(n))
    emit(counts, as_json, lambda: "\n".join(f"{t}: {c['target']} rows ({c['copied']} copied now)"
                                            for t, c in counts.items()) + "\ncounts match")


@store_group.command("check")
@click.argument("url", required=False)
@json_option
@click.pass_obj
def store_check(obj: Context, url: str | None, as_json: bool) -> None:
    """Verify the store at URL (default: the configured one): the database's own integrity check,
    foreign keys, and paperboy's invariants. Exit 1 when a problem is found."""
    from .settings import load

    with errors_to_exit(), _open(obj, url or load(obj.overrides)["store"]) as store:
        problems = store.check()
        counts = {t: store.count_rows(t) for t in ("papers", "embeddings", "users", "votes", "digests")}
    emit({"problems": problems, "counts": counts}, as_json,
         lambda: "\n".join(problems) if problems else "ok: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    sys.exit(EXIT_FAILED if problems else EXIT_OK)
