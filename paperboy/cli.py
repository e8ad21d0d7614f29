"""The ``paperboy`` command: thin wrappers over engine calls with clear errors and exit codes.

Exit codes (for schedulers): 0 done; 1 failed (nothing or only part was done, message on stderr);
2 usage error; 3 done, but some records were skipped as malformed (listed on stderr).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
import orjson

from . import __version__, ingest, settings as settings_mod, sources
from .engine import Engine
from .errors import ConfigError, PaperboyError
from .models import IngestSummary

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_SKIPPED = 0, 1, 2, 3
SAMPLE = "sample corpus"  # how `run` names the bundled sample (paperboy/sample.py) in its summary
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Context:
    """Settings are resolved lazily so a bad config file becomes a clear error inside a command."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = overrides

    def engine(self) -> Engine:
        return Engine.from_settings(**self.overrides)


def emit(data: Any, as_json: bool, text: str | Callable[[], str]) -> None:
    if as_json:
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str).decode())
    else:
        click.echo(text() if callable(text) else text)


@contextmanager
def errors_to_exit() -> Iterator[None]:
    """Turn paperboy errors into one clear line on stderr and exit code 1."""
    try:
        yield
    except PaperboyError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        click.echo("interrupted; committed batches are kept, rerun to resume", err=True)
        sys.exit(130)


@contextmanager
def progress_bar(desc: str, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A tqdm bar on stderr when it is a terminal; silent otherwise."""
    if quiet or not sys.stderr.isatty():
        yield lambda n: None
        return
    from tqdm import tqdm

    with tqdm(desc=desc, unit=" rec", file=sys.stderr, dynamic_ncols=True) as bar:
        yield bar.update


def summary_line(what: str, s: IngestSummary) -> str:
    resumed = f", resumed after {s.resumed_from}" if s.resumed_from else ""
    return (f"{what}: {s.read} read, {s.inserted} new, {s.updated} updated, {s.unchanged} unchanged, "
            f"{s.skipped} skipped{resumed}")


def problems(s: IngestSummary, max_errors: int) -> None:
    """Skipped-record reasons (up to ``max_errors``) and warnings, on stderr."""
    for err in s.errors[:max_errors]:
        click.echo(f"skipped {err}", err=True)
    if len(s.errors) > max_errors or s.skipped > len(s.errors):
        click.echo(f"... and {s.skipped - min(max_errors, len(s.errors))} more skipped", err=True)
    for warning in s.warnings:
        click.echo(f"warning: {warning}", err=True)


def report(what: str, s: IngestSummary, as_json: bool, max_errors: int) -> int:
    """Print skipped-record reasons, warnings and the summary; return the exit code."""
    problems(s, max_errors)
    emit({"target": what, **asdict(s)}, as_json, lambda: summary_line(what, s))
    return EXIT_SKIPPED if s.skipped else EXIT_OK


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), help="Data directory (setting home).")
@click.version_option(__version__, prog_name="paperboy")
@click.pass_context
def main(ctx: click.Context, home: Path | None) -> None:
    """paperboy: a self-hostable daily-papers engine."""
    ctx.obj = Context({"home": home})


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


@main.command()
@json_option
@click.pass_obj
def init(obj: Context, as_json: bool) -> None:
    """Create the data directory and the store (idempotent)."""
    with errors_to_exit(), obj.engine() as engine:
        version, home = engine.store.schema_version(), engine.settings["home"]
        emit({"home": str(home), "schema_version": version}, as_json,
             f"store ready in {home} (schema version {version})")


@main.command("ingest")
@click.argument("args", nargs=-1, required=True, metavar="[FORMAT] PATH...")
@click.option("--map", "mapping", help="Field mapping for jsonl or csv (implies jsonl unless the file is CSV): "
              "title=name,abstract=summary,... (fields: id title abstract authors date updated categories "
              "primary_category doi comments journal_ref)")
@click.option("--embed", "then_embed", is_flag=True, help="Embed the new papers afterwards.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@json_option
@click.pass_obj
def ingest_cmd(obj: Context, args: tuple[str, ...], mapping: str | None, then_embed: bool, quiet: bool,
               as_json: bool) -> None:
    """Ingest files. FORMAT is detected when left out; formats: see `paperboy formats`.

    Exit 0: done; 3: done, some records skipped as malformed (listed); 1: a file could not be read
    (the other files are still ingested)."""
    fmt, paths = None, list(args)
    if args[0] in sources.FORMATS and not Path(args[0]).exists():
        fmt, paths = args[0], list(args[1:])
    if not paths:
        raise click.UsageError("give at least one PATH")
    if mapping and fmt not in (None, *sources.MAPPABLE):
        raise click.UsageError(f"--map applies to the {' and '.join(sources.MAPPABLE)} formats only, not {fmt}")
    total, results, failed = IngestSummary(), [], 0
    with errors_to_exit(), obj.engine() as engine:
        field_map = sources.module("jsonl").parse_mapping(mapping) if mapping else None
        max_errors = engine.settings["max_errors_shown"]
        for p in paths:
            try:
                with progress_bar(Path(p).name, quiet or as_json) as bar:
                    s = engine.ingest(Path(p), fmt, mapping=field_map, progress=bar)
            except PaperboyError as e:
                if len(paths) == 1:
                    raise
                click.echo(f"error: {e}", err=True)  # one file's failure does not stop the others
                failed += 1
                results.append({"path": p, "error": str(e)})
                continue
            total.add(s)
            results.append({"path": p, **asdict(s)})
            if not as_json and len(paths) > 1:
                click.echo(summary_line(p, s))
        if then_embed:
            with progress_bar("embed", quiet or as_json) as bar:
                engine.embed(progress=bar)
    if as_json and len(paths) > 1:
        problems(total, max_errors)
        emit({"files": results, "total": asdict(total)}, True, "")
        code = EXIT_SKIPPED if total.skipped else EXIT_OK
    else:
        code = report("total" if len(paths) > 1 else paths[0], total, as_json, max_errors)
    sys.exit(EXIT_FAILED if failed else code)


@main.command()
def formats() -> None:
    """List the input formats `ingest` understands."""
    for fmt in sources.FORMATS:
        click.echo(f"{fmt:12} {sources.module(fmt).DESCRIPTION}")


@main.group()
def harvest() -> None:
    """Harvest from remote sources."""


@harvest.command("arxiv")
@click.option("--set", "set_spec", help="OAI-PMH set, e.g. cs, math, physics:quant-ph.")
@click.option("--from", "from_date", help="First datestamp (YYYY-MM-DD); default: where the last harvest ended.")
@click.option("--until", help="Last datestamp (YYYY-MM-DD).")
@click.option("--prefix", type=click.Choice(["arXiv", "oai_dc"]), help="metadataPrefix (setting oai_prefix).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@json_option
@click.pass_obj
def harvest_arxiv(obj: Context, set_spec: str | None, from_date: str | None, until: str | None,
                  prefix: str | None, quiet: bool, as_json: bool) -> None:
    """Harvest new and updated arXiv records over OAI-PMH (resumable)."""
    with errors_to_exit(), obj.engine() as engine, progress_bar("harvest", quiet or as_json) as bar:
        s = engine.harvest_arxiv(set_spec, prefix=prefix, progress=bar,
                                 from_date=ingest.parse_day(from_date) if from_date else None,
                                 until=ingest.parse_day(until) if until else None)
        max_errors = engine.settings["max_errors_shown"]
    sys.exit(report(f"arxiv {set_spec or 'all'}", s, as_json, max_errors))


@main.command()
@click.argument("ids", nargs=-1, required=True)
@json_option
@click.pass_obj
def fetch(obj: Context, ids: tuple[str, ...], as_json: bool) -> None:
    """Fetch papers by arXiv id or URL from the arXiv API into the store."""
    with errors_to_exit(), obj.engine() as engine:
        s = engine.fetch_arxiv(list(ids))
        max_errors = engine.settings["max_errors_shown"]
    sys.exit(report("arxiv api", s, as_json, max_errors))


def _stats_text(st: dict[str, Any]) -> str:
    lines = [f"store        {st['path']} (schema {st['schema_version']})",
             f"papers       {st['papers']} ({st['with_arxiv_id']} with arXiv id, {st['with_abstract']} with abstract)",
             f"dates        {st['first_date']} .. {st['last_date']}"]
    lines += [f"source       {k}: {v}" for k, v in st["by_source"].items()]
    if st["top_categories"]:
        lines.append("categories   " + ", ".join(f"{k} {v}" for k, v in st["top_categories"].items()))
    for r in st["recent_runs"]:
        c = r["counts"]
        lines.append(f"run {r['id']:<8} {r['status']:8} {r['source']} {r['target'][-50:]}: "
                     f"{c.get('read', 0)} read, {c.get('inserted', 0)} new, {c.get('skipped', 0)} skipped")
    return "\n".join(lines)


@main.command()
@json_option
@click.pass_obj
def stats(obj: Context, as_json: bool) -> None:
    """Counts: papers, sources, dates, categories, recent runs."""
    with errors_to_exit(), obj.engine() as engine:
        st = engine.stats()
    emit(st, as_json, lambda: _stats_text(st))


@main.command()
@click.argument("ref")
@json_option
@click.pass_obj
def show(obj: Context, ref: str, as_json: bool) -> None:
    """Show one paper by arXiv id/URL, DOI, canonical id or row id."""
    with errors_to_exit(), obj.engine() as engine:
        paper = engine.paper(ref)
    if paper is None:
        click.echo(f"error: no paper matches {ref!r}", err=True)
        sys.exit(EXIT_FAILED)
    emit(asdict(paper), as_json, lambda: "\n".join([
        paper.title, ", ".join(paper.authors),
        f"{paper.canonical_id}  v{paper.arxiv_version or '-'}  {paper.submitted or ''}  "
        f"{' '.join(paper.categories)}",
        *(f"{k}: {v}" for k, v in paper.links.items()),
        "", paper.abstract, "",
        "seen in: " + ", ".join(f"{s['source']} ({s['source_id']})" for s in paper.sources)]))


@main.command()
@click.option("--rebuild", is_flag=True, help="Rebuild the vector index from the stored vectors.")
@click.option("--engine", "batch_engine", type=click.Choice(["local", "ray"]),
              help="Run the model here or on Ray Data (setting batch_engine; ray needs paperboy[ray]).")
@click.option("--address", "ray_address", help="Ray cluster to use with --engine ray (setting ray_address; "
              "default: a local Ray).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@json_option
@click.pass_obj
def embed(obj: Context, rebuild: bool, batch_engine: str | None, ray_address: str | None, quiet: bool,
          as_json: bool) -> None:
    """Embed new or changed papers (cached by content hash) and update the vector index."""
    with (errors_to_exit(), Engine.from_settings(**obj.overrides, batch_engine=batch_engine,
                                                 ray_address=ray_address) as engine,
          progress_bar("embed", quiet or as_json) as bar):
        counts = engine.embed(progress=bar, rebuild=rebuild, batch_engine=engine.settings["batch_engine"])
        counts["vectors"] = engine.store.count_embeddings(engine.embedder.model_id)
        counts["model"] = engine.embedder.model_id  # type: ignore[assignment]
    emit(counts, as_json, lambda: f"embed {counts['model']}: {counts['seen']} papers checked, "
         f"{counts['embedded']} embedded, {counts['reused']} reused, {counts['unchanged']} unchanged; "
         f"{counts['vectors']} vectors")


@main.command()
@json_option
@click.pass_obj
def index(obj: Context, as_json: bool) -> None:
    """Bring the search indexes up to date with the store (a cheap delta)."""
    with errors_to_exit(), obj.engine() as engine:
        lexical, vectors = len(engine.lexical), engine.vectors()
        out = {"lexical_docs": lexical, "vectors": len(vectors) if vectors is not None else 0}
    emit(out, as_json, f"lexical index: {out['lexical_docs']} papers; vector index: {out['vectors']} vectors")


def _hits_text(res: Any) -> str:
    lines = [f"{res.total}{'' if res.exact_total else '+'} results ({res.mode}, sorted by {res.sort}, page {res.page}, {res.took_ms} ms"
             + (f", {res.cut} cut as irrelevant" if res.cut else "") + ")"]
    for n, h in enumerate(res.hits, start=(res.page - 1) * res.per_page + 1):
        p = h.paper
        ident = p.arxiv_id or p.doi or p.canonical_id
        lines.append(f"{n:>3}. {p.title[:100]}")
        lines.append(f"     {ident}  {p.submitted or ''}  {', '.join(p.authors[:3])}"
                     f"{' et al.' if len(p.authors) > 3 else ''}  score {h.score:.4f}")
    return "\n".join(lines)


@main.command()
@click.argument("query")
@click.option("--mode", type=click.Choice(["hybrid", "bm25", "dense"]), default="hybrid", show_default=True)
@click.option("--sort", type=click.Choice(["relevance", "date", "votes"]), help="Default: relevance, or date without words.")
@click.option("--page", type=int, default=1, show_default=True)
@click.option("--per-page", type=int, default=10, show_default=True)
@json_option
@click.pass_obj
def search(obj: Context, query: str, mode: str, sort: str | None, page: int, per_page: int, as_json: bool) -> None:
    """Search papers: words, "phrases", -exclusions, ti: au: abs: cat: id:, after: before: year: date:."""
    with errors_to_exit(), obj.engine() as engine:
        res = engine.search(query, mode=mode, sort=sort, page=page, per_page=per_page, count=True)
    emit(asdict(res), as_json, lambda: _hits_text(res))


@main.group("digest")
def digest_group() -> None:
    """Email digests."""


@digest_group.command("send")
@click.option("--dry-run", is_flag=True, help="Show who would get which papers; send and record nothing.")
@click.option("--user", help="Only this reader (by user name).")
@click.option("--force", is_flag=True,
              help="Treat digests as due now, whatever the readers' hours, and retry waiting ones now.")
@json_option
@click.pass_obj
def digest_send(obj: Context, dry_run: bool, user: str | None, force: bool, as_json: bool) -> None:
    """Mail every due digest (for cron: run it hourly). Exit 0: all sent (or nothing due); 3: some
    readers' digests failed or were skipped (listed; retried later with back-off); 1: the SMTP
    server could not be reached or the settings are wrong."""
    with errors_to_exit(), obj.engine() as engine:
        run = engine.digests().run(user=user, dry_run=dry_run, force=force)
    out = asdict(run)
    text = (f"digests: {run.sent} sent ({run.resumed} resumed or retried), {run.skipped_quiet} quiet, "
            f"{run.not_due} not due, {run.waiting} waiting to be retried, {len(run.failed)} failed "
            f"({len(run.given_up)} given up), {len(run.invalid)} invalid addresses")
    if run.elsewhere:
        text += f", {run.elsewhere} mailed by another process"
    if run.unreachable:
        text += f"\nthe SMTP server could not be reached: {run.deferred} digests left for the next run"
    if dry_run:
        text += "".join(f"\n  {p['user']} {p['period']}: papers {p['papers']} trending {p['trending']}"
                        for p in run.previews)
    text += "".join(f"\nfailed: {f}" for f in run.failed) + "".join(f"\ninvalid address: {f}" for f in run.invalid)
    emit(out, as_json, text)
    sys.exit(EXIT_FAILED if run.unreachable else EXIT_SKIPPED if run.failed or run.invalid else EXIT_OK)


@main.group("library")
def library_group() -> None:
    """Readers' libraries."""


@library_group.command("import")
@click.argument("user")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--folder", default="imported", show_default=True)
@json_option
@click.pass_obj
def library_import(obj: Context, user: str, path: Path, folder: str, as_json: bool) -> None:
    """Import a Zotero export (BibTeX or CSL-JSON) into USER's library."""
    from .services.library import import_library

    with errors_to_exit(), obj.engine() as engine:
        found = engine.store.user_by_name(user)
        if found is None:
            raise PaperboyError(f"no user {user!r}")
        res = import_library(engine, found["id"], path, folder)
    for err in res["skipped"]:  # on stderr, every one, as `ingest` reports them
        click.echo(f"skipped {err}", err=True)
    for warning in res["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    emit(res, as_json, f"{path.name}: {res['read']} read, {res['papers']} papers, {res['saved']} newly saved, "
         f"{len(res['skipped'])} skipped")
    sys.exit(EXIT_SKIPPED if res["skipped"] else EXIT_OK)


@library_group.command("export")
@click.argument("user")
@click.option("--format", "fmt", type=click.Choice(["bibtex", "csl-json", "ris"]), default="bibtex", show_default=True)
@click.option("--folder", help="Only this folder (citation keys stay those of the whole library).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not to stdout.")
@click.pass_obj
def library_export(obj: Context, user: str, fmt: str, folder: str | None, output: Path | None) -> None:
    """Export USER's library as BibTeX, CSL-JSON or RIS (Zotero imports all three)."""
    from .cli_users import write_output
    from .services.export import export_library

    with errors_to_exit(), obj.engine() as engine:
        found = engine.store.user_by_name(user)
        if found is None:
            raise PaperboyError(f"no user {user!r}")
        res = export_library(engine.store, found["id"], fmt, folder, found["name"])
        write_output(res.text.encode(), output)
    if output:
        click.echo(f"{output}: {res.count} papers as {fmt}", err=True)


@main.command()
@click.pass_obj
def settings(obj: Context) -> None:
    """Show every setting, its current value and what it does."""
    with errors_to_exit():
        values = obj.engine().settings
    for s in settings_mod.SETTINGS:
        click.echo(f"{s.name:18} {values[s.name]!s:40} {s.help}")


@main.command()
@click.option("--host", help="Address to listen on (setting web_host).")
@click.option("--port", type=int, help="Port (setting web_port).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
@click.pass_obj
def serve(obj: Context, host: str | None, port: int | None, workers: int) -> None:
    """Serve the web app and API (daily papers, trending, search, paper pages, accounts)."""
    _serve(obj, host, port, workers)


def bind_listener(config: Any) -> socket.socket:
    """The socket several uvicorn workers share, with TCP_NODELAY on. uvicorn binds it with protocol
    0, so asyncio never turns Nagle off on its connections (Kludex/uvicorn#3149) and every keep-alive
    request after the first waited ~40 ms for a delayed ACK; Linux copies the option from the listener
    to each connection it accepts."""
    sock = config.bind_socket()
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _serve(obj: Context, host: str | None, port: int | None, workers: int = 1) -> None:
    import uvicorn

    from .web.app import configure_logging, create_app

    with errors_to_exit():
        engine = obj.engine()
        host, port = host or engine.settings["web_host"], port or engine.settings["web_port"]
        if not engine.settings["base_url"] and host not in LOOPBACK:
            engine.close()
            raise ConfigError(f"serving on {host} needs base_url (e.g. https://papers.example.org): links in "
                              "feeds and mail are built from it, never from a request's Host header")
        engine.settings.update(web_host=host, web_port=port)  # the default base_url follows them
        configure_logging()
        _ = engine.lexical  # bring the search index up to date before the first request
        click.echo(f"paperboy serving {engine.settings['home']} on http://{host}:{port}/ (Ctrl-C stops)")
        if workers > 1:  # each worker process builds its own engine from the same settings
            os.environ["PAPERBOY_HOME"] = str(engine.settings["home"])
            os.environ.update(PAPERBOY_WEB_HOST=host, PAPERBOY_WEB_PORT=str(port))
            engine.close()
            from uvicorn.supervisors import Multiprocess

            config = uvicorn.Config("paperboy.web.app:app_from_env", factory=True, host=host, port=port,
                                    workers=workers, log_level="warning", proxy_headers=False)  # trusted_proxies
            Multiprocess(config, sockets=[bind_listener(config)]).run()
            return
        uvicorn.run(create_app(engine), host=host, port=port, log_level="warning", proxy_headers=False)


@main.command()
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--no-embed", is_flag=True, help="Skip embedding (keyword search only).")
@click.option("--no-serve", is_flag=True, help="Stop after ingesting and indexing; do not start the web server.")
@click.pass_obj
def run(obj: Context, quiet: bool, no_embed: bool, no_serve: bool) -> None:
    """The main job on the embedded default: init, ingest the bundled sample corpus (papers of many
    arXiv fields and the Hugging Face daily papers with their upvotes), embed and index it for
    search, fit the topic map once, print stats, then serve the web app. Every step is incremental: a second run does
    nothing new before serving."""
    from .sample import ingest_sample

    with errors_to_exit(), obj.engine() as engine:
        s = ingest_sample(engine, lambda name: progress_bar(name, quiet))
        click.echo(summary_line(SAMPLE, s))
        try:
            if no_embed:
                raise ConfigError("--no-embed")
            with progress_bar("embed", quiet) as bar:
                counts = engine.embed(progress=bar)
            click.echo(f"embed: {counts['embedded']} embedded, {counts['unchanged'] + counts['reused']} cached")
        except ConfigError as e:  # no embed extra: keyword search still works
            click.echo(f"semantic search off: {e}", err=True)
        try:  # once: a new user's Topics page has a map (about 10 s on the sample)
            from .services.topics import ensure_topics

            if (model := ensure_topics(engine)) is not None:
                click.echo(f"topics: {model.k} topics over {len(model.ids)} papers")
        except ConfigError as e:  # no scikit-learn: no topic map
            click.echo(f"topic map off: {e}", err=True)
        click.echo(f"search index: {len(engine.lexical)} papers")
        click.echo(_stats_text(engine.stats()))
    if not no_serve:
        _serve(obj, None, None)


if __name__ == "__main__":  # python -m paperboy.cli: run the package module, where groups are registered
    from paperboy.cli import main as _main

    _main()
elif __name__ == "paperboy.cli":  # not in a worker process (__mp_main__), which needs no commands
    from .cli_ops import backup, jobs_group, store_group

    main.add_command(jobs_group)
    main.add_command(backup)
    main.add_command(store_group)
    from .cli_users import account_group, user_group

    main.add_command(user_group)
    main.add_command(account_group)
    from .cli_eval import eval_group

    main.add_command(eval_group)
    from .cli_topics import topics_group

    main.add_command(topics_group)
    from .cli_mcp import mcp_cmd

    main.add_command(mcp_cmd)
