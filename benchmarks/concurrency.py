"""Concurrency: 50 clients against pages and the API while a CLI ingest of 10,000 new papers runs
and signed-in members submit, upvote and comment (issue 9's "Done means"; a benchmark, not a timed test).

What it does, all on 127.0.0.1, every loop bounded by ``--seconds`` (plus a short grace period):

1. A fresh home in a temp dir. Base corpus: the first ``--base`` quant-ph records (default 28,858) of
   ``../shared/data/arxiv/quant_ph_records.jsonl.gz``, ingested with ``paperboy ingest`` and indexed
   for keyword search only (no embedding, so the clients get the CPU; ``--embed`` embeds the base too,
   about 23 papers/s on 2 cores). The next ``--new`` records (default 10,000, not in the base) are
   written to a JSON lines file; the records of each ingest batch (``--batch``, default 500, passed as
   ``PAPERBOY_BATCH_SIZE``) carry a marker word ``zqx<k>`` in their title.
2. ``paperboy serve --workers N`` (default 1) in a subprocess on a free loopback port. Settings passed
   in the environment: every ``rate_*`` limit at 1,000,000/hour (the limiter still runs and records
   events, but the benchmark measures load, not the limits); ``api_url`` is a bound, never-listening
   loopback port, so submissions of papers not in the store queue jobs that fail and retry without
   any network; ``submit_embeds`` off unless ``--embed``.
3. Members sign up through the form (CSRF as a browser does) and create an API token on
   /settings/tokens.
4. For ``--seconds``: ``--clients`` keep-alive readers (asyncio + httpx, one process) request a mix of
   pages, API, the daily feed and /healthz; ``--members`` members POST /api/submit (papers of the base,
   papers the ingest just committed, and two ids in neither, which queue jobs), upvote, undo and comment
   every ``--member-interval`` s; ``paperboy ingest`` of the new file starts 2 s in (``--parts P``
   splits it into P files ingested one after another, spread over the run); a checker watches the
   store through a read-only SQLite connection and, for every batch it sees committed, polls
   ``/api/search?q=zqx<k>&mode=bm25`` until the search finds the whole batch: the keyword lag (from
   the first poll, every 0.1 s, that sees the batch in the store to the answer that finds all of it;
   with several workers, the answer of whichever worker took the request).

Reported: requests, errors, 429s and client-side p50/p95/p99 per route group; read latency while an
ingest runs (and 5 s after, while the workers index it) against the rest of the run; ingest records/s
under load (wall clock of the `paperboy ingest` processes, start-up included); the keyword lag; the
queued jobs' state and /healthz at the end; suspicious lines of the server's stderr.
Errors: any 5xx, connection error or timeout, and any 4xx the route does not expect; 429 answers are
counted apart. Exit status 1 when there were errors, a batch never became searchable, the ingest
failed or the server died. Clients and server share the machine, so latency includes client CPU.

Run: ``.venv/bin/python benchmarks/concurrency.py`` (prints markdown tables; ~90 s on 2 cores).
Smoke: ``--base 3000 --new 2000 --seconds 15``.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import httpx
import numpy as np

from paperboy.settings import SETTINGS

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "arxiv" / "quant_ph_records.jsonl.gz"
MISSING_IDS = ["2501.00001", "2501.00002"]  # in neither corpus: each submission queues a fetch job
MARKER = "zqx{}"
CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')
NEW_TOKEN = re.compile(r'id="new-token">(pb_[\w-]+)<')


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.array(xs), p)) if xs else float("nan")


def paperboy_cmd() -> list[str]:
    """The installed console script, as an operator runs it (``python -m paperboy.cli`` re-imports
    the CLI module under a second name in spawned workers)."""
    script = Path(sys.executable).with_name("paperboy")
    return [str(script)] if script.exists() else [sys.executable, "-m", "paperboy.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- data --------------------------------------------------------------------------------------------

def write_corpora(data: Path, work: Path, base: int, new: int, batch: int, parts: int
                  ) -> tuple[Path, list[Path], list[list[str]], list[dict]]:
    """Base file, the new records in ``parts`` files, the ids of each marker batch, the base records."""
    with gzip.open(data, "rt", encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    if base + new > len(records):
        raise SystemExit(f"{data} has {len(records):,} records; --base + --new is {base + new:,}")
    base_recs, new_recs = records[:base], records[base:base + new]
    base_path = work / "base.jsonl"
    base_path.write_text("".join(json.dumps(r) + "\n" for r in base_recs), encoding="utf-8")
    batches: list[list[str]] = []
    lines = []
    for i, r in enumerate(new_recs):
        k = i // batch
        if k == len(batches):
            batches.append([])
        batches[k].append(r["id"])
        lines.append(json.dumps(dict(r, title=f"{r['title']} {MARKER.format(k)}")) + "\n")
    # Parts end on batch boundaries, so each marker batch is one ingest transaction.
    per_part = -(-len(batches) // parts) * batch
    paths = []
    for p in range(0, len(lines), per_part):
        path = work / f"new-{len(paths) + 1}.jsonl"
        path.write_text("".join(lines[p:p + per_part]), encoding="utf-8")
        paths.append(path)
    return base_path, paths, batches, base_recs


def env_for(home: Path, dead_port: int, batch: int, embed: bool) -> dict[str, str]:
    names = {s.name for s in SETTINGS}
    env = dict(os.environ, PAPERBOY_HOME=str(home), HF_HUB_OFFLINE="1", PAPERBOY_BATCH_SIZE=str(batch),
               PAPERBOY_API_URL=f"http://127.0.0.1:{dead_port}/api/query", PAPERBOY_HTTP_TIMEOUT="5",
               PAPERBOY_SUBMIT_EMBEDS="true" if embed else "false")
    env.pop("PAPERBOY_CONFIG", None)
    for name in names:  # generous limits where the settings exist (they are being added as this is written)
        if name.startswith("rate_") and name != "rate_address_factor":
            env[f"PAPERBOY_{name.upper()}"] = "1000000/hour"
    return env


def cli(env: dict[str, str], *args: str, log: Path | None = None) -> subprocess.CompletedProcess:
    out = subprocess.run([*paperboy_cmd(), *args], env=env, capture_output=True, text=True)
    if log is not None:
        log.write_text(out.stdout + out.stderr)
    if out.returncode not in (0, 3):
        raise SystemExit(f"paperboy {' '.join(args)} exited {out.returncode}:\n{out.stderr[-3000:]}")
    return out


def serve(env: dict[str, str], workers: int, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    # stderr goes to a file, not a pipe: request logs would fill a pipe nobody reads and block the server.
    proc = subprocess.Popen([*paperboy_cmd(), "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", str(workers)],
                            env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(base + "/search?q=warm+up", timeout=60).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start:\n" + log.read_text(errors="replace")[-3000:])


def sign_up(base: str, name: str) -> str:
    """Sign up through the form like a browser (CSRF token from the page), then create an API token."""
    password = secrets.token_urlsafe(18)
    with httpx.Client(base_url=base, timeout=60, follow_redirects=True) as c:
        r = c.post("/signup", data={"name": name, "password": password,
                                    "csrf": CSRF.search(c.get("/signup").text).group(1)})
        r.raise_for_status()
        r = c.post("/settings/tokens", data={"name": "bench", "csrf": CSRF.search(c.get("/settings/tokens").text).group(1)})
        r.raise_for_status()
        return NEW_TOKEN.search(r.text).group(1)


# -- the run -----------------------------------------------------------------------------------------

@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    limited: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[str] = field(default_factory=list)  # the first few errors, for the report
    reads: list[tuple[float, float]] = field(default_factory=list)  # (monotonic start, ms) of each read

    async def request(self, client: httpx.AsyncClient, group: str, method: str, url: str,
                      expect: tuple[int, ...] = (200,), **kw) -> httpx.Response | None:
        t = time.perf_counter()
        try:
            r = await client.request(method, url, **kw)
        except httpx.HTTPError as e:
            self._error(group, f"{method} {url}: {type(e).__name__} {e}")
            r = None
        else:
            if r.status_code == 429:
                self.limited[group] += 1
            elif r.status_code not in expect:
                self._error(group, f"{method} {url}: {r.status_code} {r.text[:200]!r}")
        ms = (time.perf_counter() - t) * 1000
        self.latencies[group].append(ms)
        if not group.startswith(("write", "check")):
            self.reads.append((time.monotonic() - ms / 1000, ms))
        return r

    def _error(self, group: str, what: str) -> None:
        self.errors[group] += 1
        if len(self.samples) < 20:
            self.samples.append(what)


@dataclass
class Batches:
    ids: list[list[str]]
    committed: dict[int, float] = field(default_factory=dict)  # batch -> monotonic time first seen in the store
    searchable: dict[int, float] = field(default_factory=dict)  # batch -> lag in seconds
    found_late: set[int] = field(default_factory=set)  # searchable only after the run ended


def reader_urls(base_recs: list[dict], rng: random.Random, n: int = 400) -> list[tuple[str, str]]:
    sample = rng.sample(base_recs, min(n, len(base_recs)))
    queries = []
    for r in sample:
        w = r["title"].split()
        k = rng.randint(2, 5)
        s = rng.randrange(max(1, len(w) - k + 1))
        queries.append(" ".join(w[s:s + k]))
    ids = [r["id"] for r in sample]
    groups = {
        "page /": lambda i: "/",
        "page /trending": lambda i: "/trending",
        "page /search": lambda i: str(httpx.URL("/search", params={"q": queries[i]})),
        "page /papers/{id}": lambda i: f"/papers/{ids[i]}",
        "api /api/daily_papers": lambda i: "/api/daily_papers",
        "api /api/search": lambda i: str(httpx.URL("/api/search", params={"q": queries[i]})),
        "api /api/papers/{id}": lambda i: f"/api/papers/{ids[i]}",
        "feed /feeds/daily.atom": lambda i: "/feeds/daily.atom",
        "ops /healthz": lambda i: "/healthz",
    }
    mix = [(g, f(i)) for i in range(len(sample)) for g, f in groups.items()]
    rng.shuffle(mix)
    return mix


async def reader(base: str, tally: Tally, mix: list[tuple[str, str]], start: int, step: int, stop: float) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        k = start
        while time.monotonic() < stop:
            group, url = mix[k % len(mix)]
            await tally.request(c, group, "GET", url)
            k += step


async def member(base: str, token: str, i: int, tally: Tally, base_ids: list[str], batches: Batches,
                 interval: float, stop: float, jobs: dict[str, int]) -> None:
    rng = random.Random(100 + i)
    async with httpx.AsyncClient(base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}) as c:
        step = 0
        while time.monotonic() < stop:
            action = step % 5
            pid = rng.choice(base_ids)
            if action == 0:
                if i < len(MISSING_IDS) and step % 20 == 0:  # a paper nobody has: queued, fetched by a job
                    r = await tally.request(c, "write submit (queued)", "POST", "/api/submit",
                                            expect=(202,), json={"ref": MISSING_IDS[i]})
                    if r is not None and r.status_code == 202:
                        jobs[MISSING_IDS[i]] = r.json()["job"]
                else:
                    await tally.request(c, "write submit (in store)", "POST", "/api/submit", json={"ref": pid})
            elif action == 1 and batches.committed:  # a paper the ingest has just committed
                ref = rng.choice(batches.ids[rng.choice(list(batches.committed))])
                await tally.request(c, "write submit (just ingested)", "POST", "/api/submit", json={"ref": ref})
            elif action in (1, 2):
                await tally.request(c, "write vote", "POST", f"/api/papers/{pid}/vote", json={"up": True})
            elif action == 3:
                await tally.request(c, "write vote", "POST", f"/api/papers/{pid}/vote", json={"up": False})
            else:
                await tally.request(c, "write comment", "POST", f"/api/papers/{pid}/comments", expect=(201,),
                                    json={"body": f"member {i} read this during the load test (step {step})"})
            step += 1
            await asyncio.sleep(interval * rng.uniform(0.5, 1.5))


def committed_batches(db: sqlite3.Connection, batches: Batches) -> None:
    """Mark the batches whose every paper is in the store (one ingest transaction each)."""
    for k, ids in enumerate(batches.ids):
        if k in batches.committed:
            continue
        n = db.execute(f"SELECT count(*) FROM papers WHERE arxiv_id IN ({','.join('?' * len(ids))})", ids).fetchone()[0]
        if n < len(ids):
            return  # batches commit in order
        batches.committed[k] = time.monotonic()


async def checker(base: str, db_path: Path, tally: Tally, batches: Batches, stop: float, grace: float,
                  run_stop: float) -> None:
    """Poll the store for committed batches and the search for their marker word; record the lag."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:

            async def found(k: int) -> bool:
                r = await tally.request(c, "check /api/search bm25", "GET", "/api/search",
                                        params={"q": MARKER.format(k), "mode": "bm25", "per_page": 1,
                                                "page": len(batches.ids[k])})
                # Without a count, ``total`` is the number of ranked results, at least page * per_page
                # when there are that many: so asking for the batch's last place checks every paper.
                if r is None or r.status_code != 200 or r.json()["total"] < len(batches.ids[k]):
                    return False
                batches.searchable[k] = time.monotonic() - batches.committed[k]
                if time.monotonic() > run_stop:
                    batches.found_late.add(k)
                return True

            while time.monotonic() < stop + grace and len(batches.searchable) < len(batches.ids):
                try:
                    committed_batches(db, batches)
                except sqlite3.OperationalError:  # a writer holds the lock a moment; read again next tick
                    pass
                pending = [k for k in sorted(batches.committed) if k not in batches.searchable]
                if pending and await found(pending[0]) and pending[1:]:
                    await asyncio.gather(*(found(k) for k in pending[1:]))  # the index sync brings several at once
                await asyncio.sleep(0.1)
    finally:
        db.close()


async def ingester(env: dict[str, str], paths: list[Path], spread: float, work: Path, out: dict) -> dict:
    """Run `paperboy ingest` on each part, the i-th not before 2 + i * spread s; fills ``out``:
    seconds, exit statuses, output, (start, end) of each run."""
    t0 = time.monotonic()
    out |= {"seconds": 0.0, "exit": [], "log": [], "windows": []}
    for i, path in enumerate(paths):
        await asyncio.sleep(max(0.0, t0 + 2 + i * spread - time.monotonic()))
        started = out["current"] = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *paperboy_cmd(), "ingest", "-q", "jsonl", str(path), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            text, _ = await proc.communicate()
        except asyncio.CancelledError:  # past the grace period: stop it, report it as failed
            proc.kill()
            await proc.wait()
            out["exit"].append("killed")
            raise
        out["seconds"] += time.monotonic() - started
        out["windows"].append((out.pop("current"), time.monotonic()))
        out["exit"].append(proc.returncode)
        out["log"].append(text.decode(errors="replace"))
    (work / "ingest.log").write_text("\n".join(out["log"]))
    return out


async def run(args: argparse.Namespace, base: str, env: dict[str, str], tokens: list[str], mix, base_ids,
              batches: Batches, new_paths: list[Path], db_path: Path, work: Path) -> tuple[Tally, dict, float, dict]:
    tally, jobs = Tally(), {}
    t0 = time.monotonic()
    stop = t0 + args.seconds
    spread = (args.seconds * 0.75 - 2) / max(1, len(new_paths) - 1) if len(new_paths) > 1 else 0.0
    ingest: dict = {}
    ingest_task = asyncio.create_task(ingester(env, new_paths, spread, work, ingest))
    check_task = asyncio.create_task(checker(base, db_path, tally, batches, stop, args.grace, stop))
    await asyncio.gather(*(reader(base, tally, mix, i, args.clients, stop) for i in range(args.clients)),
                         *(member(base, t, i, tally, base_ids, batches, args.member_interval, stop, jobs)
                           for i, t in enumerate(tokens)))
    took = time.monotonic() - t0
    try:
        await asyncio.wait_for(ingest_task, timeout=max(1.0, stop + args.grace - time.monotonic()))
    except asyncio.TimeoutError:
        print(f"the ingest ran past the run and the {args.grace:.0f} s grace period: stopped", file=sys.stderr)
        if "current" in ingest:  # the part that was stopped counts up to now
            ingest["seconds"] += time.monotonic() - ingest["current"]
            ingest["windows"].append((ingest.pop("current"), time.monotonic()))
    await check_task
    return tally, ingest, took, jobs


# -- report ------------------------------------------------------------------------------------------

def report(args, tally: Tally, took: float, ingest: dict, batches: Batches, alive: bool, health: dict | None,
           jobs: dict[str, dict], server_log: Path, n_new: int, base_n: int) -> bool:
    reads = sum(len(v) for g, v in tally.latencies.items() if not g.startswith(("write", "check")))
    total = sum(len(v) for v in tally.latencies.values())
    errors, limited = sum(tally.errors.values()), sum(tally.limited.values())
    lags = list(batches.searchable.values())
    during = len(batches.searchable) - len(batches.found_late)
    stored = sum(len(batches.ids[k]) for k in batches.committed)  # records the ingest committed
    ok_exit = all(code in (0, 3) for code in ingest["exit"])
    print(f"\n{base_n:,} base papers ({'embedded' if args.embed else 'keyword-only, not embedded'}); "
          f"{n_new:,} new in {len(batches.ids)} batches of {args.batch} ({len(ingest['exit'])} `paperboy ingest` "
          f"run(s)); `paperboy serve --workers {args.workers}`; {args.clients} readers + {len(args.tokens)} members "
          f"for {took:.0f} s on loopback, clients in one process on the same machine; {date.today().isoformat()}\n")
    print("| requests | reads/s | errors | 429 | ingest records/s (under load) | batches searchable during run "
          "| keyword lag p50 s | keyword lag max s | server alive |")
    print("|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    print(f"| {total:,} | {reads / took:.1f} | {errors} | {limited} | {stored / max(ingest['seconds'], 1e-9):,.0f} "
          f"({ingest['seconds']:.1f} s{'' if ok_exit else ', exit ' + str(ingest['exit'])}) "
          f"| {during}/{len(batches.ids)} | {pct(lags, 50):.2f} | {max(lags) if lags else float('nan'):.2f} "
          f"| {'yes' if alive else 'NO'} |")
    print("\n| route group | requests | errors | 429 | p50 ms | p95 ms | p99 ms |\n|---|--:|--:|--:|--:|--:|--:|")
    for g in sorted(tally.latencies):
        xs = tally.latencies[g]
        print(f"| {g} | {len(xs):,} | {tally.errors[g]} | {tally.limited[g]} | {pct(xs, 50):.1f} "
              f"| {pct(xs, 95):.1f} | {pct(xs, 99):.1f} |")
    # Reads started while an ingest ran, or within 5 s after it (the workers' index sync follows), and the rest.
    near = [ms for t, ms in tally.reads if any(a <= t <= b + 5 for a, b in ingest["windows"])]
    rest = [ms for t, ms in tally.reads if not any(a <= t <= b + 5 for a, b in ingest["windows"])]
    print("\n| reads | requests | p50 ms | p95 ms | p99 ms | max ms |\n|---|--:|--:|--:|--:|--:|")
    for name, xs in (("during an ingest (+5 s)", near), ("the rest of the run", rest)):
        print(f"| {name} | {len(xs):,} | {pct(xs, 50):.1f} | {pct(xs, 95):.1f} | {pct(xs, 99):.1f} "
              f"| {max(xs) if xs else float('nan'):.1f} |")
    if jobs:
        print("\nQueued submissions (arXiv unreachable on purpose): "
              + "; ".join(f"{ref}: job {j.get('job')} {j.get('status')} after {j.get('attempts')} attempt(s)"
                          f" ({(j.get('error') or '')[:80]})" for ref, j in jobs.items()))
    if health:
        print(f"\n/healthz at the end: {json.dumps(health)}")
    missing = [k for k in range(len(batches.ids)) if k not in batches.searchable]
    if missing:
        print(f"\nNever keyword-searchable within {args.grace:.0f} s after the run: batches {missing[:20]} "
              f"(committed: {sorted(set(missing) & set(batches.committed))[:20]})")
    if batches.found_late:
        print(f"Searchable only after the run ended: batches {sorted(batches.found_late)}")
    if tally.samples:
        print("\nFirst errors:\n" + "\n".join(f"- {s}" for s in tally.samples))
    text = server_log.read_text(errors="replace")
    bad = [line for line in text.splitlines() if re.search(r'Traceback|ERROR|CRITICAL|Exception|"status":5\d\d', line)]
    if bad:
        print(f"\nServer stderr ({server_log}): {len(bad)} suspicious lines; the first:\n"
              + "\n".join("    " + b[:300] for b in bad[:15]))
    return errors == 0 and alive and not missing and ok_exit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--work", type=Path, help="working dir (default: a new temp dir, removed unless --keep)")
    ap.add_argument("--keep", action="store_true", help="keep the working dir (home, logs)")
    ap.add_argument("--base", type=int, default=28_858, help="base corpus: the first N quant-ph records")
    ap.add_argument("--new", type=int, default=10_000, help="new records ingested during the run")
    ap.add_argument("--batch", type=int, default=500, help="records per ingest transaction and marker word")
    ap.add_argument("--parts", type=int, default=1, help="split the new records into P ingests over the run")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--member-interval", type=float, default=0.5, help="mean seconds between a member's writes")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--grace", type=float, default=30, help="seconds after the run to wait for the ingest and index")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--embed", action="store_true", help="embed the base corpus too (slow: ~23 papers/s)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops the server
    if not 1 <= args.batch <= 1000:
        ap.error("--batch is 1 to 1000 (the search answers 1000 results deep)")

    work = args.work or Path(tempfile.mkdtemp(prefix="paperboy-bench-concurrency-"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    if home.exists():
        shutil.rmtree(home)
    dead = socket.socket()  # bound, never listening: connecting is refused at once, no network involved
    dead.bind(("127.0.0.1", 0))
    env = env_for(home, dead.getsockname()[1], args.batch, args.embed)
    base_path, new_paths, batch_ids, base_recs = write_corpora(args.data, work, args.base, args.new, args.batch,
                                                               args.parts)
    t = time.perf_counter()
    cli(env, "ingest", "-q", "jsonl", str(base_path), log=work / "base-ingest.log")
    cli(env, "embed" if args.embed else "index", log=work / "base-index.log")
    print(f"base corpus: {len(base_recs):,} records ingested and indexed in {time.perf_counter() - t:.1f} s",
          file=sys.stderr)
    proc, base = serve(env, args.workers, work / "server.log")
    alive, health, job_states = False, None, {}
    try:
        args.tokens = [sign_up(base, f"member{i}") for i in range(args.members)]
        mix = reader_urls(base_recs, random.Random(1))
        batches = Batches(batch_ids)
        tally, ingest, took, jobs = asyncio.run(run(args, base, env, args.tokens, mix, [r["id"] for r in base_recs],
                                                    batches, new_paths, home / "paperboy.sqlite3", work))
        alive = proc.poll() is None
        if alive:
            try:
                health = httpx.get(base + "/healthz", timeout=30).json()
                for ref, job in jobs.items():
                    job_states[ref] = httpx.get(f"{base}/api/jobs/{job}", timeout=30).json()
            except httpx.HTTPError as e:
                alive = False
                print(f"server stopped answering after the run: {e}", file=sys.stderr)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        dead.close()
    ok = report(args, tally, took, ingest, batches, alive, health, job_states, work / "server.log",
                args.new, len(base_recs))
    if args.keep or not ok:
        print(f"\nworking dir kept: {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
