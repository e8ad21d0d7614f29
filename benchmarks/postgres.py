"""SQLite vs PostgreSQL, side by side in one run: ingest records/s, web p50/p99 with 2 and 4 workers, and
concurrent write throughput (with a check that no write was lost or doubled).

Then Ray vs plain embedding throughput: ``--ray-papers N`` (default 200; 0 skips it) runs
``benchmarks/ray_embed.py --papers N --runs 1`` and prints its table (run that script alone for more
papers and runs).

Everything runs on this machine, on loopback, in temp dirs; both stores live on the same filesystem.

0. One throwaway PostgreSQL cluster (``initdb`` from ``/usr/lib/postgresql/*/bin``, as the ``postgres``
   user when run as root, on a free port), started with ``fsync=on`` and ``synchronous_commit=on``
   (``--pg-fsync off`` / ``--pg-synchronous-commit off`` to compare; the test suite's cluster runs
   with fsync off). Each part gets a fresh database on it (``CREATE DATABASE``); the SQLite side gets a
   fresh ``PAPERBOY_HOME`` with paperboy's own pragmas (WAL, ``synchronous=NORMAL``). Durability is
   not the same: SQLite WAL + NORMAL survives a crashed process but may lose the last commits on power
   loss (it syncs at checkpoints); PostgreSQL with ``synchronous_commit=on`` flushes the WAL at every
   commit, so it survives power loss. ``synchronous_commit=off`` is the closer match of NORMAL.
   The settings used are printed with the tables. The cluster is stopped at the end, also on error.
1. Ingest: the first ``--records`` (default 10,000) quant-ph records of
   ``../shared/data/arxiv/quant_ph_records.jsonl.gz`` written to a temp ``.jsonl``, then
   ``paperboy ingest -q --json jsonl FILE`` (a subprocess, as an operator runs it; no ``--embed``, so
   the store is measured, not the model) with ``PAPERBOY_STORE=sqlite`` or the PostgreSQL URL;
   records/s of the wall clock (Python start-up included, and shown: ``paperboy --version``), then the
   same file again (every record unchanged), then ``paperboy index`` (the keyword index for part 2).
2. Web: ``paperboy serve --workers W`` (W in ``--workers``, default 2 and 4) on each ingested home,
   keyword-only (nothing embedded; ``submit_embeds`` off), every ``rate_*`` limit at 1,000,000/hour
   so no 429 distorts the load (the limiter still runs and writes its events), ``api_url`` a dead
   loopback port. ``--clients`` (default 16) keep-alive clients (asyncio + httpx, this process) request
   a shuffled mix of ``/``, ``/papers/<arxiv id>``, ``/api/search?q=<2-5 title words>&mode=bm25``,
   ``/api/daily_papers`` and ``/healthz`` for ``--warmup`` s (not counted: every worker loads its index)
   and then ``--seconds`` s (default 15): requests/s, errors (any non-200 or transport error; must be
   0) and client-side p50/p99, overall and per route. Clients share the 2 cores with the server.
   Then, on the first worker count, ``--probe`` (default 30) requests per route one at a time, each on
   a new connection (see ``probe``: keep-alive requests of a lone client each wait ~40 ms under
   ``--workers`` > 1, Kludex/uvicorn#3149; the load above is affected alike on both backends): the mean
   cost of each route without queueing, and on PostgreSQL the transactions committed per request
   (``pg_stat_database``; every autocommit read is one, so it counts the store round trips).
3. Writes: ``--writers`` processes (default 4), each with its own ``open_store`` (PostgreSQL: a pool,
   ``--pool-size``), all starting together, each looping for ``--seconds`` over a fixed cycle:
   vote on, vote off (``set_vote``, its own member), ``add_comment``, ``rate_hit``, ``create_session``,
   and ``upsert_papers`` of ``--batch`` (default 10) synthetic papers drawn from a pool of
   ``--pool`` (default 20,000) arXiv ids shared by all writers, so writers upsert the same papers at
   the same time. Counted: operations that returned (committed), per second, in total, plus p50/p99
   per operation. ``--mixes`` also runs ``unlocked`` (votes, comments, sessions only: statements that
   take no advisory lock on PostgreSQL) and ``papers`` (upserts only: one lock, ``papers``).
   Checked afterwards, on the store: no writer raised; comments = acknowledged ``add_comment``; votes =
   the members' final upvotes (and every ``set_vote`` said it changed something); sessions and rate
   events = the acknowledged calls; papers = seed + distinct ids upserted, no arXiv id twice, no ``rev``
   twice (the change counter stays a strict order).

Tables are medians of ``--runs`` runs (default 1); ratio columns are PostgreSQL / SQLite within the
same run, because the machine is shared and absolute numbers drift between runs.

Run: ``.venv/bin/python benchmarks/postgres.py`` (about 6 minutes on 2 cores with the defaults).
Smoke: ``--records 2000 --seconds 5 --workers 2 --mixes mixed``.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import gzip
import json
import math
import multiprocessing as mp
import os
import pwd
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from paperboy.settings import SETTINGS

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "arxiv" / "quant_ph_records.jsonl.gz"
BACKENDS = ("sqlite", "postgresql")
LABEL = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
MIXES = {
    # the fixed cycle each writer loops over
    "mixed": ("vote", "unvote", "comment", "rate_hit", "session", "upsert"),
    "unlocked": ("vote", "unvote", "comment", "session"),
    "papers": ("upsert",),
}


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.array(xs), p)) if xs else float("nan")


def med(xs: list[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return statistics.median(xs) if xs else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def paperboy_cmd() -> list[str]:
    script = Path(sys.executable).with_name("paperboy")
    return [str(script)] if script.exists() else [sys.executable, "-m", "paperboy.cli"]


# -- PostgreSQL --------------------------------------------------------------------------------------

def start_postgres(fsync: str, synchronous_commit: str) -> tuple[str, Callable[[], None]]:
    """initdb + pg_ctl start in a temp dir with the given durability settings; (admin URL, stop).
    Like tests/pgserver.py's ``start_cluster``, which runs with fsync off."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        bindir = Path(found[-1]).parent
    elif shutil.which("initdb"):
        bindir = Path(shutil.which("initdb")).parent
    else:
        raise SystemExit("no PostgreSQL server binaries (Debian: apt install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="paperboy-bench-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        pwd.getpwnam("postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
    port = free_port()
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "paperboy", "--auth=trust",
                    "--encoding=UTF8", "--locale=C.UTF-8"], check=True, capture_output=True)
    opts = (f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=300 "
            f"-c fsync={fsync} -c synchronous_commit={synchronous_commit}")
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-o", opts,
                    "-w", "start"], check=True, capture_output=True)

    def stop() -> None:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)

    return f"postgresql://paperboy@127.0.0.1:{port}/postgres", stop


def pg_settings(admin: str) -> dict[str, str]:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        return {name: conn.execute(f"SHOW {name}").fetchone()[0]
                for name in ("server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_level",
                             "shared_buffers")}


def create_database(admin: str, name: str) -> str:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return admin.rsplit("/", 1)[0] + "/" + name


# -- helpers -----------------------------------------------------------------------------------------

def env_for(home: Path, store: str, dead_port: int, pool_size: int | None) -> dict[str, str]:
    env = dict(os.environ, PAPERBOY_HOME=str(home), PAPERBOY_STORE=store, HF_HUB_OFFLINE="1",
               PAPERBOY_API_URL=f"http://127.0.0.1:{dead_port}/api/query", PAPERBOY_HTTP_TIMEOUT="5",
               PAPERBOY_SUBMIT_EMBEDS="false")
    env.pop("PAPERBOY_CONFIG", None)
    env.pop("PAPERBOY_STORE_POOL_SIZE", None)
    if pool_size:
        env["PAPERBOY_STORE_POOL_SIZE"] = str(pool_size)
    for s in SETTINGS:
        if s.name.startswith("rate_") and s.name != "rate_address_factor":
            env[f"PAPERBOY_{s.name.upper()}"] = "1000000/hour"
    return env


def cli(env: dict[str, str], *args: str) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    out = subprocess.run([*paperboy_cmd(), *args], env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - t
    if out.returncode not in (0, 3):
        raise SystemExit(f"paperboy {' '.join(args)} exited {out.returncode}:\n{out.stderr[-3000:]}")
    return took, out


def startup_seconds() -> float:
    times = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([*paperboy_cmd(), "--version"], capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# -- 1. ingest ---------------------------------------------------------------------------------------

def ingest(env: dict[str, str], path: Path, n: int) -> dict[str, float]:
    first, out = cli(env, "ingest", "-q", "--json", "jsonl", str(path))
    try:
        counts = json.loads(out.stdout)
    except json.JSONDecodeError:
        counts = {}
    again, _ = cli(env, "ingest", "-q", "--json", "jsonl", str(path))
    index, _ = cli(env, "index")
    return {"seconds": first, "records/s": n / first, "reingest seconds": again, "reingest records/s": n / again,
            "index seconds": index, "_counts": counts}


# -- 2. web ------------------------------------------------------------------------------------------

def serve(env: dict[str, str], workers: int, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([*paperboy_cmd(), "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(base + "/healthz", timeout=60).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start:\n" + log.read_text(errors="replace")[-3000:])


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def route_mix(records: list[dict], rng: random.Random, n: int = 300) -> list[tuple[str, str]]:
    sample = rng.sample(records, min(n, len(records)))
    mix = []
    for r in sample:
        w = r["title"].split()
        k = rng.randint(2, 5)
        s = rng.randrange(max(1, len(w) - k + 1))
        mix += [("/", "/"), ("/papers/{id}", f"/papers/{r['id']}"),
                ("/api/search bm25", str(httpx.URL("/api/search", params={"q": " ".join(w[s:s + k]), "mode": "bm25"}))),
                ("/api/daily_papers", "/api/daily_papers"), ("/healthz", "/healthz")]
    rng.shuffle(mix)
    return mix


async def load(base: str, mix: list[tuple[str, str]], clients: int, warmup: float, seconds: float) -> dict[str, Any]:
    lat: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    t0 = time.monotonic()
    start, stop = t0 + warmup, t0 + warmup + seconds

    async def client(i: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as c:
            k = i * 7
            while (now := time.monotonic()) < stop:
                route, url = mix[k % len(mix)]
                k += 1
                t = time.perf_counter()
                try:
                    r = await c.get(url)
                    bad = None if r.status_code == 200 else f"{url}: {r.status_code} {r.text[:200]!r}"
                except httpx.HTTPError as e:
                    bad = f"{url}: {type(e).__name__} {e}"
                ms = (time.perf_counter() - t) * 1000
                if now >= start:  # started after the warm-up
                    lat[route].append(ms)
                    if bad:
                        errors.append(bad)

    await asyncio.gather(*(client(i) for i in range(clients)))
    took = time.monotonic() - start
    every = [x for xs in lat.values() for x in xs]
    return {"requests/s": len(every) / took, "p50 ms": pct(every, 50), "p99 ms": pct(every, 99),
            "errors": len(errors), "requests": len(every),
            "_routes": {r: (pct(xs, 50), pct(xs, 99)) for r, xs in lat.items()}, "_samples": errors[:5]}


def pg_commits(url: str) -> int:
    """Transactions committed in the database so far (every autocommit read is one)."""
    import psycopg

    time.sleep(1.2)  # backends flush their statistics about once a second
    with psycopg.connect(url, autocommit=True) as conn:
        return int(conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
                                ).fetchone()[0])


def probe(base: str, mix: list[tuple[str, str]], n: int, pg_url: str | None) -> dict[str, tuple[float, float]]:
    """One client, one request at a time: mean ms per route, and (PostgreSQL) transactions per request,
    which counts the store round trips a request makes (plus the workers' ~1/s index follow checks)."""
    urls: dict[str, list[str]] = defaultdict(list)
    for route, url in mix:
        if len(urls[route]) < n:
            urls[route].append(url)
    out = {}
    # A new connection per request: with --workers > 1 uvicorn leaves Nagle on for accepted sockets
    # (Kludex/uvicorn#3149), so one client's keep-alive requests each wait ~40 ms for a delayed ACK.
    with httpx.Client(base_url=base, timeout=60, limits=httpx.Limits(max_keepalive_connections=0)) as c:
        for route, us in sorted(urls.items()):
            before = pg_commits(pg_url) if pg_url else 0
            t = time.perf_counter()
            for u in us:
                c.get(u).raise_for_status()
            ms = (time.perf_counter() - t) * 1000 / len(us)
            xacts = (pg_commits(pg_url) - before) / len(us) if pg_url else float("nan")
            out[route] = (ms, xacts)
    return out


def web(env: dict[str, str], workers: int, mix, args, log: Path) -> dict[str, Any]:
    proc, base = serve(env, workers, log)
    try:
        out = asyncio.run(load(base, mix, args.clients, args.warmup, args.seconds))
        if workers == args.workers[0] and args.probe:
            store = env["PAPERBOY_STORE"]
            out["_probe"] = probe(base, mix, args.probe, store if store.startswith("postgresql") else None)
        out["alive"] = proc.poll() is None
    finally:
        stop_server(proc)
    return out


# -- 3. concurrent writes ----------------------------------------------------------------------------

def bench_record(aid: str):
    from paperboy.models import PaperRecord

    return PaperRecord(source="bench", source_id=aid, title=f"Concurrent writes benchmark paper {aid}",
                       abstract=f"A synthetic abstract of {aid} for the write benchmark.", authors=["A. Writer"],
                       arxiv_id=aid, submitted="2026-01-15", categories=["quant-ph"], primary_category="quant-ph")


def writer(i: int, url: str, home: str, cycle: tuple[str, ...], start_at: float, seconds: float,
           user_id: int, paper_ids: list[int], pool: int, batch: int, pool_size: int, queue: Any) -> None:
    """One writer process: its own store, a fixed cycle of operations until the deadline."""
    from paperboy.store import open_store

    out: dict[str, Any] = {"lat": defaultdict(list), "errors": [], "upserted": set(), "comments": 0,
                           "sessions": 0, "rate": 0, "vote_state": {}, "vote_mismatch": 0}
    rng = random.Random(1000 + i)
    try:
        store = open_store(url, Path(home), pool_size)
        store.max_rev()  # connected before the clock starts
    except Exception:  # noqa: BLE001 - reported by the parent
        out["errors"].append(traceback.format_exc())
        queue.put(out)
        return
    while time.time() < start_at:
        time.sleep(0.005)
    stop = start_at + seconds
    k = 0
    state: dict[int, bool] = out["vote_state"]
    while time.time() < stop:
        op = cycle[k % len(cycle)]
        k += 1
        t = time.perf_counter()
        try:
            if op in ("vote", "unvote"):
                pid = rng.choice(paper_ids)
                up = not state.get(pid, False)
                if not store.set_vote(user_id, pid, up):
                    out["vote_mismatch"] += 1
                state[pid] = up
            elif op == "comment":
                store.add_comment(rng.choice(paper_ids), user_id, f"comment {k} of writer {i}")
                out["comments"] += 1
            elif op == "rate_hit":
                if store.rate_hit([(f"bench:{i}:{k % 50}", 1_000_000_000, 3600.0)]) is None:
                    out["rate"] += 1
            elif op == "session":
                store.create_session(secrets.token_hex(16), user_id, 1.0)
                out["sessions"] += 1
            elif op == "upsert":
                ids = [f"2601.{rng.randrange(1, pool + 1):05d}" for _ in range(batch)]
                store.upsert_papers([bench_record(a) for a in ids])
                out["upserted"].update(ids)
        except Exception:  # noqa: BLE001 - counted and reported as errors
            out["errors"].append(f"{op}: {traceback.format_exc()}")
            continue
        out["lat"][op].append((time.perf_counter() - t) * 1000)
    store.close()
    out["lat"] = dict(out["lat"])
    queue.put(out)


def writes(url: str, home: Path, cycle: tuple[str, ...], args) -> dict[str, Any]:
    from paperboy.store import open_store

    seed_ids = [f"2512.{n:05d}" for n in range(1, 201)]
    with open_store(url, home, args.pool_size) as store:
        store.upsert_papers([bench_record(a) for a in seed_ids])
        paper_ids = sorted(store.paper_ids_by_source("bench", seed_ids).values())
        users = [store.create_user(f"writer{i}", None, "x") for i in range(args.writers)]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 3.0 + 0.5 * args.writers  # every process imported paperboy and connected
    procs = [ctx.Process(target=writer, args=(i, url, str(home), cycle, start_at, args.seconds, users[i], paper_ids,
                                              args.pool, args.batch, args.pool_size, queue))
             for i in range(args.writers)]
    for p in procs:
        p.start()
    outs = [queue.get(timeout=args.seconds + 120) for _ in procs]
    for p in procs:
        p.join(30)
    lat: dict[str, list[float]] = defaultdict(list)
    for o in outs:
        for op, xs in o["lat"].items():
            lat[op] += xs
    total = sum(len(xs) for xs in lat.values())
    errors = [e for o in outs for e in o["errors"]]
    upserted = set().union(*(o["upserted"] for o in outs))
    with open_store(url, home, 2) as store:
        q = lambda sql: store.conn.execute(sql).fetchone()[0]
        checks = {
            "comments": (q("SELECT COUNT(*) FROM comments"), sum(o["comments"] for o in outs)),
            "votes": (q("SELECT COUNT(*) FROM votes"), sum(sum(o["vote_state"].values()) for o in outs)),
            "set_vote said changed": (sum(o["vote_mismatch"] for o in outs), 0),
            "sessions": (q("SELECT COUNT(*) FROM sessions"), sum(o["sessions"] for o in outs)),
            "rate events": (q("SELECT COUNT(*) FROM rate_events"), sum(o["rate"] for o in outs)),
            "papers": (store.stats()["papers"], len(seed_ids) + len(upserted)),
            "arXiv ids twice": (q("SELECT COUNT(arxiv_id) - COUNT(DISTINCT arxiv_id) FROM papers"), 0),
            "revs twice": (q("SELECT COUNT(*) - COUNT(DISTINCT rev) FROM papers"), 0),
        }
    return {"ops/s": total / args.seconds, "ops": total, "errors": len(errors), "_samples": errors[:3],
            "_lat": {op: (len(xs) / args.seconds, pct(xs, 50), pct(xs, 99)) for op, xs in lat.items()},
            "_checks": checks, "_ok": not errors and all(a == b for a, b in checks.values())}


# -- the run -----------------------------------------------------------------------------------------

def one_run(r: int, args, admin: str, corpus: Path, records: list[dict], work: Path, dead: int) -> dict[str, Any]:
    res: dict[str, Any] = {"ingest": {}, "web": {}, "writes": {}}
    envs = {}
    for b in BACKENDS:
        home = work / f"run{r}-{b}"
        store = "sqlite" if b == "sqlite" else create_database(admin, f"bench_r{r}_ingest")
        envs[b] = env_for(home, store, dead, args.pool_size)
        res["ingest"][b] = ingest(envs[b], corpus, len(records))
        print(f"run {r + 1}: ingest {b}: {res['ingest'][b]['records/s']:,.0f} records/s, "
              f"re-ingest {res['ingest'][b]['reingest records/s']:,.0f}", file=sys.stderr)
    mix = route_mix(records, random.Random(1))
    for w in args.workers:
        for b in BACKENDS:
            out = web(envs[b], w, mix, args, work / f"run{r}-{b}-serve{w}.log")
            res["web"][(b, w)] = out
            print(f"run {r + 1}: web {b} --workers {w}: {out['requests/s']:.1f} req/s, p50 {out['p50 ms']:.0f} ms, "
                  f"p99 {out['p99 ms']:.0f} ms, {out['errors']} errors", file=sys.stderr)
    for mix_name in args.mixes:
        for b in BACKENDS:
            home = work / f"run{r}-{b}-writes-{mix_name}"
            url = (f"sqlite:///{home / 'paperboy.sqlite3'}" if b == "sqlite"
                   else create_database(admin, f"bench_r{r}_writes_{mix_name}"))
            out = writes(url, home, MIXES[mix_name], args)
            res["writes"][(b, mix_name)] = out
            print(f"run {r + 1}: writes {mix_name} {b}: {out['ops/s']:,.0f} ops/s, {out['errors']} errors, "
                  f"checks {'ok' if out['_ok'] else 'FAILED'}", file=sys.stderr)
    return res


def ratio(pg: list[float], lite: list[float]) -> str:
    """The median over runs of each run's PostgreSQL / SQLite (both sides measured minutes apart)."""
    rs = [a / b for a, b in zip(pg, lite) if b and not math.isnan(a) and not math.isnan(b)]
    return f"{statistics.median(rs):.2f}" if rs else "-"


def report(args, runs: list[dict], settings: dict[str, str], startup: float) -> bool:
    n = len(runs)
    ok = True
    print(f"\n{args.records:,} quant-ph records; {n} run(s), medians; ratio = median over runs of "
          f"each run's PostgreSQL / SQLite; {date.today().isoformat()}, {os.cpu_count()} CPUs")
    print(f"PostgreSQL {settings['server_version']}: fsync={settings['fsync']}, "
          f"synchronous_commit={settings['synchronous_commit']}, full_page_writes={settings['full_page_writes']}, "
          f"wal_level={settings['wal_level']}, shared_buffers={settings['shared_buffers']}, loopback TCP, "
          f"pool {args.pool_size or 'default (store_pool_size)'} per process. SQLite: WAL, synchronous=NORMAL. "
          "Same filesystem.")

    def v(part: str, key: Any, field: str) -> list[float]:
        return [run[part][key][field] for run in runs]

    def m(part: str, key: Any, field: str) -> float:
        return med(v(part, key, field))

    print(f"\n### Ingest (`paperboy ingest -q jsonl`, a fresh store; Python start-up {startup:.2f} s included)\n")
    print("| | SQLite | PostgreSQL | PG / SQLite |\n|---|--:|--:|--:|")
    for field, label in (("records/s", "ingest records/s"), ("seconds", "ingest seconds"),
                         ("reingest records/s", "re-ingest (all unchanged) records/s"),
                         ("reingest seconds", "re-ingest seconds"), ("index seconds", "`paperboy index` seconds")):
        a, b = m("ingest", "sqlite", field), m("ingest", "postgresql", field)
        fmt = "{:,.0f}" if "records" in field else "{:.2f}"
        print(f"| {label} | {fmt.format(a)} | {fmt.format(b)} | {ratio(v('ingest', 'postgresql', field), v('ingest', 'sqlite', field))} |")
    counts = {b: runs[-1]["ingest"][b]["_counts"] for b in BACKENDS}
    if counts["sqlite"] != counts["postgresql"]:
        print(f"\nIngest summaries differ: {counts}")

    print(f"\n### Web (`paperboy serve --workers W`, {args.clients} clients, {args.seconds:.0f} s after a "
          f"{args.warmup:.0f} s warm-up, keyword-only)\n")
    print("| workers | SQLite req/s | PG req/s | ratio | SQLite p50 / p99 ms | PG p50 / p99 ms | p50 ratio "
          "| p99 ratio | errors SQLite / PG |\n|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for w in args.workers:
        s, p = ("sqlite", w), ("postgresql", w)
        errs = [sum(run["web"][k]["errors"] for run in runs) for k in (s, p)]
        ok &= not any(errs) and all(run["web"][k]["alive"] for run in runs for k in (s, p))
        print(f"| {w} | {m('web', s, 'requests/s'):.1f} | {m('web', p, 'requests/s'):.1f} "
              f"| {ratio(v('web', p, 'requests/s'), v('web', s, 'requests/s'))} "
              f"| {m('web', s, 'p50 ms'):.1f} / {m('web', s, 'p99 ms'):.1f} "
              f"| {m('web', p, 'p50 ms'):.1f} / {m('web', p, 'p99 ms'):.1f} "
              f"| {ratio(v('web', p, 'p50 ms'), v('web', s, 'p50 ms'))} "
              f"| {ratio(v('web', p, 'p99 ms'), v('web', s, 'p99 ms'))} | {errs[0]} / {errs[1]} |")
    routes = sorted(runs[0]["web"][("sqlite", args.workers[0])]["_routes"])
    print("\n| route: p50 / p99 ms | " + " | ".join(f"SQLite W={w} | PG W={w}" for w in args.workers)
          + " |\n|---|" + "--:|--:|" * len(args.workers))
    for route in routes:
        cells = []
        for w in args.workers:
            for b in BACKENDS:
                p50 = med([run["web"][(b, w)]["_routes"].get(route, (float("nan"),) * 2)[0] for run in runs])
                p99 = med([run["web"][(b, w)]["_routes"].get(route, (float("nan"),) * 2)[1] for run in runs])
                cells.append(f"{p50:.1f} / {p99:.1f}")
        print(f"| {route} | " + " | ".join(cells) + " |")
    w0 = args.workers[0]
    if args.probe and "_probe" in runs[0]["web"][("sqlite", w0)]:
        print(f"\nOne client, one request at a time on a new connection, {args.probe} requests per route (`--workers {w0}`, after the load): "
              "mean ms, and PostgreSQL transactions committed per request (each autocommit read is one, so this "
              "counts store round trips; the workers' index follow checks add a few per second)\n")
        print("| route | SQLite ms | PG ms | ratio | PG transactions / request |\n|---|--:|--:|--:|--:|")
        for route in sorted(runs[0]["web"][("sqlite", w0)]["_probe"]):
            a = [run["web"][("sqlite", w0)]["_probe"][route][0] for run in runs]
            b = [run["web"][("postgresql", w0)]["_probe"][route][0] for run in runs]
            x = med([run["web"][("postgresql", w0)]["_probe"][route][1] for run in runs])
            print(f"| {route} | {med(a):.1f} | {med(b):.1f} | {ratio(b, a)} | {x:.1f} |")
    samples = [s for run in runs for v in run["web"].values() for s in v["_samples"]]
    if samples:
        print("\nFirst web errors:\n" + "\n".join(f"- {s}" for s in samples[:10]))

    print(f"\n### Concurrent writes ({args.writers} writer processes, {args.seconds:.0f} s, upserts of "
          f"{args.batch} papers from a shared pool of {args.pool:,} ids)\n")
    print("| mix | SQLite ops/s | PG ops/s | ratio | errors SQLite / PG | checks SQLite / PG |\n|---|--:|--:|--:|--:|---|")
    for mix_name in args.mixes:
        s, p = ("sqlite", mix_name), ("postgresql", mix_name)
        errs = [sum(run["writes"][k]["errors"] for run in runs) for k in (s, p)]
        oks = ["ok" if all(run["writes"][k]["_ok"] for run in runs) else "FAILED" for k in (s, p)]
        ok &= oks == ["ok", "ok"]
        print(f"| {mix_name}: {', '.join(dict.fromkeys(MIXES[mix_name]))} | {m('writes', s, 'ops/s'):,.0f} "
              f"| {m('writes', p, 'ops/s'):,.0f} | {ratio(v('writes', p, 'ops/s'), v('writes', s, 'ops/s'))} "
              f"| {errs[0]} / {errs[1]} | {oks[0]} / {oks[1]} |")
    print("\n| mix: operation (each writer loops over its mix) | SQLite p50 / p99 ms | PG p50 / p99 ms | p50 ratio "
          "| p99 ratio |\n|---|--:|--:|--:|--:|")
    for mix_name in args.mixes:
        for op in dict.fromkeys(MIXES[mix_name]):
            per = {b: [run["writes"][(b, mix_name)]["_lat"].get(op, (float("nan"),) * 3) for run in runs]
                   for b in BACKENDS}
            c = {b: [med([x[j] for x in per[b]]) for j in range(3)] for b in BACKENDS}
            rs = {j: ratio([x[j] for x in per["postgresql"]], [x[j] for x in per["sqlite"]]) for j in (1, 2)}
            print(f"| {mix_name}: {op} | {c['sqlite'][1]:.1f} / {c['sqlite'][2]:.1f} "
                  f"| {c['postgresql'][1]:.1f} / {c['postgresql'][2]:.1f} | {rs[1]} | {rs[2]} |")
    last = runs[-1]["writes"]
    print("\nChecks of the last run (found in the store = expected), per mix and backend:")
    for (b, mix_name), out in last.items():
        print(f"- {mix_name}, {LABEL[b]}: " + "; ".join(
            f"{name} {got:,}{'' if got == want else f' != {want:,} FAILED'}" for name, (got, want) in out["_checks"].items()))
        for s in out["_samples"]:
            print("    " + s.strip().replace("\n", "\n    ")[-1500:])
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--records", type=int, default=10_000, help="quant-ph records to ingest")
    ap.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[2, 4],
                    help="web worker counts, comma-separated")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=15, help="length of each web load and each write run")
    ap.add_argument("--warmup", type=float, default=3, help="web load before measuring, not counted")
    ap.add_argument("--probe", type=int, default=30,
                    help="then requests per route one at a time on the first worker count (0: skip)")
    ap.add_argument("--writers", type=int, default=4, help="concurrent writer processes")
    ap.add_argument("--mixes", type=lambda s: s.split(","), default=list(MIXES),
                    help=f"write mixes, comma-separated, of: {', '.join(MIXES)}")
    ap.add_argument("--batch", type=int, default=10, help="papers per upsert_papers call in the write part")
    ap.add_argument("--pool", type=int, default=20_000, help="distinct synthetic arXiv ids the writers draw from")
    ap.add_argument("--pool-size", type=int, default=None, help="PAPERBOY_STORE_POOL_SIZE (default: the setting's)")
    ap.add_argument("--pg-fsync", choices=("on", "off"), default="on")
    ap.add_argument("--pg-synchronous-commit", choices=("on", "off", "local", "remote_write"), default="on")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the working dir (homes, server logs)")
    ap.add_argument("--ray-papers", type=int, default=200,
                    help="then Ray vs plain embedding of this many papers (benchmarks/ray_embed.py; 0 skips it)")
    args = ap.parse_args()
    if unknown := set(args.mixes) - set(MIXES):
        ap.error(f"unknown mixes: {', '.join(sorted(unknown))}")
    if args.pool_size is None:
        args.pool_size = next(s.default for s in SETTINGS if s.name == "store_pool_size")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops the cluster

    work = Path(tempfile.mkdtemp(prefix="paperboy-bench-postgres-"))
    with gzip.open(args.data, "rt", encoding="utf-8") as f:
        records = [json.loads(line) for _, line in zip(range(args.records), f)]
    if len(records) < args.records:
        raise SystemExit(f"{args.data} has only {len(records):,} records")
    corpus = work / "records.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    dead = socket.socket()  # bound, never listening: submissions' fetches fail at once, no network
    dead.bind(("127.0.0.1", 0))
    t0 = time.perf_counter()
    admin, stop = start_postgres(args.pg_fsync, args.pg_synchronous_commit)
    try:
        settings = pg_settings(admin)
        startup = startup_seconds()
        runs = [one_run(r, args, admin, corpus, records, work, dead.getsockname()[1]) for r in range(args.runs)]
    finally:
        stop()
        dead.close()
    print(f"total {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    ok = report(args, runs, settings, startup)
    if args.ray_papers:
        print("\n### Ray vs plain embedding (`benchmarks/ray_embed.py`)\n", flush=True)
        ray = subprocess.run([sys.executable, str(Path(__file__).with_name("ray_embed.py")), "--papers",
                              str(args.ray_papers), "--runs", "1"], check=False)
        ok = ok and ray.returncode == 0
    if args.keep or not ok:
        print(f"\nworking dir kept: {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
