"""Web latency and load: server-side p50/p99 per page, then a bounded load test on loopback.

Data: the 38,858 quant-ph papers, embedded (``--home``, default /tmp/paperboy-quantph, built with
``paperboy ingest ../shared/data/arxiv/quant_ph_records.jsonl.gz && paperboy embed``), copied into
--work so the benchmark's users and votes never touch it; 200 members cast 5,000 upvotes (skewed:
a few papers get most) so trending and vote counts have work to do.

1. Server-side latency: each page requested ``--n`` times in-process (the ASGI app, no network),
   p50/p99 in ms. Pages: daily (latest day, and a month), trending, search (hybrid, 2-5 title words),
   paper page (with similar papers), and the Hugging Face daily API.
2. Load: `paperboy serve` in a subprocess; ``--clients`` concurrent keep-alive clients (asyncio +
   httpx in this process) request a mix of those pages for ``--seconds``; requests/s, errors, and
   client-side p50/p99.

Run: ``.venv/bin/python benchmarks/web.py`` (prints markdown tables).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import numpy as np
from fastapi.testclient import TestClient

from paperboy.engine import Engine
from paperboy.web.app import create_app


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.array(xs), p)) if xs else float("nan")


def prepare(src: Path, work: Path) -> Path:
    home = work / "home"
    if home.exists():
        shutil.rmtree(home)
    shutil.copytree(src, home, ignore=shutil.ignore_patterns("*-wal", "*-shm", "eval"))
    with sqlite3.connect(src / "paperboy.sqlite3") as db:  # a consistent copy of the live database
        db.execute(f"VACUUM INTO '{home / 'paperboy.sqlite3'}.tmp'")
    os.replace(home / "paperboy.sqlite3.tmp", home / "paperboy.sqlite3")
    return home


def seed_votes(engine: Engine, rng: random.Random, users: int = 200, votes: int = 5000) -> None:
    store = engine.store
    ids = [r[0] for r in store.conn.execute("SELECT id FROM papers ORDER BY submitted DESC LIMIT 3000")]
    user_ids = [store.create_user(f"user{i}", None, "x") for i in range(users)]
    now = datetime.now(timezone.utc)
    rows = set()
    while len(rows) < votes:
        pid = ids[min(int(rng.paretovariate(1.2)) - 1, len(ids) - 1)]  # a few papers get most votes
        rows.add((rng.choice(user_ids), pid))
    with store._write() as c:
        c.executemany("INSERT INTO votes (user_id, paper_id, created_at) VALUES (?, ?, ?)",
                      [(u, p, (now - timedelta(hours=rng.uniform(0, 24 * 7))).isoformat(timespec="seconds"))
                       for u, p in rows])


def page_urls(engine: Engine, rng: random.Random, n: int) -> dict[str, list[str]]:
    titles = [r[0] for r in engine.store.conn.execute("SELECT title FROM papers ORDER BY random() LIMIT ?", (n,))]
    queries = []
    for t in titles:
        w = t.split()
        k = rng.randint(2, 5)
        s = rng.randrange(max(1, len(w) - k + 1))
        queries.append(" ".join(w[s:s + k]))
    arxiv = [r[0] for r in engine.store.conn.execute(
        "SELECT arxiv_id FROM papers WHERE arxiv_id IS NOT NULL ORDER BY random() LIMIT ?", (n,))]
    latest = engine.listings.period(None)
    return {
        "daily (latest day)": ["/"] * n,
        "daily (month)": [f"/?month={latest.first[:7]}"] * n,
        "trending": ["/trending"] * n,
        "search": [str(httpx.URL("/search", params={"q": q})) for q in queries],
        "paper + similar": [f"/papers/{a}" for a in arxiv],
        "api daily_papers": ["/api/daily_papers"] * n,
    }


def server_side(engine: Engine, urls: dict[str, list[str]]) -> dict[str, list[float]]:
    out = {}
    with TestClient(create_app(engine)) as c:
        for name, paths in urls.items():
            c.get(paths[0])  # warm caches (hub scores, model, index readers)
            times = []
            for path in paths:
                t = time.perf_counter()
                r = c.get(path)
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, (path, r.status_code, r.text[:300])
            out[name] = times
    return out


async def load(base: str, urls: dict[str, list[str]], clients: int, seconds: float) -> dict[str, float]:
    mix = [u for paths in urls.values() for u in paths]
    random.Random(2).shuffle(mix)
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def client(i: int) -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            k = i
            while time.perf_counter() < stop:
                t = time.perf_counter()
                try:
                    r = await c.get(mix[k % len(mix)])
                    if r.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append((time.perf_counter() - t) * 1000)
                k += clients

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    took = time.perf_counter() - t0
    return {"requests": len(latencies), "errors": errors, "rps": len(latencies) / took,
            "p50": pct(latencies, 50), "p99": pct(latencies, 99)}


def serve(home: Path, workers: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PAPERBOY_HOME=str(home), HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-m", "paperboy.cli", "serve", "--port", str(port),
                             "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(base + "/search?q=warm+up", timeout=30).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start: " + proc.stderr.read().decode()[-2000:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--home", type=Path, default=Path("/tmp/paperboy-quantph"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/paperboy-bench-web"))
    ap.add_argument("--n", type=int, default=200, help="requests per page for server-side latency")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    rng = random.Random(1)
    home = prepare(args.home, args.work)
    with Engine.from_settings(home=home) as engine:
        papers, vectors = engine.store.stats()["papers"], engine.vectors()
        seed_votes(engine, rng)
        urls = page_urls(engine, rng, args.n)
        timings = server_side(engine, urls)
    print(f"\n{papers:,} papers, {len(vectors) if vectors else 0:,} vectors; {args.n} requests per page\n")
    print("| page | p50 ms | p99 ms |\n|---|--:|--:|")
    for name, xs in timings.items():
        print(f"| {name} | {pct(xs, 50):.1f} | {pct(xs, 99):.1f} |")
    proc, base = serve(home, args.workers)
    try:
        res = asyncio.run(load(base, urls, args.clients, args.seconds))
    finally:
        proc.terminate()
        proc.wait(30)
    print(f"\nLoad: {args.clients} concurrent clients for {args.seconds:.0f} s, `paperboy serve --workers "
          f"{args.workers}`, page mix of the table above, loopback, same 2-core machine as the clients\n")
    print("| requests | errors | requests/s | client p50 ms | client p99 ms |\n|--:|--:|--:|--:|--:|")
    print(f"| {res['requests']:,} | {res['errors']} | {res['rps']:.1f} | {res['p50']:.1f} | {res['p99']:.1f} |")


if __name__ == "__main__":
    main()
