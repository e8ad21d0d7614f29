"""Every feature at scale: a synthetic corpus of N papers built, ingested, indexed and served by the
real product, measured over HTTP against the targets of issue 14 ("All of arXiv on one machine").

Corpus (real text, cached under ``--work``): paper i takes the abstract of one random real quant-ph
paper (a), and a title spliced from the first half of the title of another (b) and the second half
of a third (c), so titles rarely repeat; it gets a new arXiv-style id, 1-6 authors recombined from
the first and last names of the Kaggle sample, the categories of a random Kaggle sample record, and a
weekday: papers are spread over the weekdays ending yesterday at ``--per-month`` papers a month
(default 25,000, arXiv's current rate), so the newest day / week / month hold what they would on
arXiv whatever N is (300k: a year; 2.7M: nine years). It is written as a Kaggle snapshot (JSON
lines) and ingested by ``paperboy ingest kaggle``.

Vectors: embedding N abstracts on 2 cores takes days, so paper i gets the normalized mix
``v[a] + 0.5 * v[b] + 0.05 * noise`` of the real all-MiniLM-L6-v2 vectors of the quant-ph papers its
abstract and title start came from (as benchmarks/search.py and vectors.py do), written with the
store's ``put_embeddings`` under the engine's model id and each paper's content hash, exactly as
``embed_pending`` would; ``paperboy embed`` then finds nothing to embed and builds the vector index,
hub scores, TF-IDF rows and topic assignments the real way. The real vectors come from a home that
holds the 38,858 quant-ph papers embedded (``--real``, default /tmp/qph).

Indexes are built by the product's commands, each timed: ``paperboy index`` (tantivy), ``paperboy
embed`` (vector index, hub scores, TF-IDF), ``paperboy topics fit``. Then ``paperboy serve`` runs as a
subprocess; after a warm-up the benchmark measures over HTTP: BM25 and hybrid search (query encoding
included), similar papers, a reader's recommendations (library of 50 saved through the API; account by
``paperboy user add``), the daily / week / month / trending pages, the server's resident memory, the
disk of the home, and ``paperboy digest send`` for 50 readers against a local aiosmtpd server.

Run: ``nice -n 10 .venv/bin/python benchmarks/scale.py --papers 300000 --json /tmp/scale-300k.json``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PAPERBOY = str(ROOT / ".venv" / "bin" / "paperboy")
LIBRARY = 50  # papers in a reader's library
READERS = 50  # digest readers
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


# -- the corpus -------------------------------------------------------------------------------------

def real_pool(real: Path) -> tuple[list[str], list[str], np.ndarray, str]:
    """Titles, abstracts and unit vectors (same order) of the embedded papers of the home ``real``."""
    from paperboy import settings
    from paperboy.embed import make_embedder
    from paperboy.index.sync import vector_dir
    from paperboy.index.vectors import VectorIndex

    model = make_embedder(settings.load({"home": real})).model_id  # the id only: no model loaded, no store opened
    ids, mat = VectorIndex.load(vector_dir(real, model), model).matrix()
    db = sqlite3.connect(f"file:{real / 'paperboy.sqlite3'}?mode=ro", uri=True)  # read only: not ours
    text = {i: (t, a) for i, t, a in db.execute("SELECT id, title, abstract FROM papers")}
    db.close()
    keep = [k for k, i in enumerate(ids.tolist()) if i in text and text[i][0] and text[i][1]]
    vecs = np.asarray(mat[keep], np.float32)
    return [text[int(ids[k])][0] for k in keep], [text[int(ids[k])][1] for k in keep], vecs, model


def kaggle_parts() -> tuple[list[str], list[str], list[str]]:
    """First names, last names and category lists of the Kaggle snapshot sample."""
    firsts, lasts, cats = set(), set(), []
    with open(DATA / "arxiv" / "kaggle_snapshot_first200.jsonl", encoding="utf-8") as f:
        for o in map(json.loads, f):
            cats.append(o["categories"])
            for last, first, *_ in o["authors_parsed"]:
                if last.strip() and first.strip():
                    lasts.add(last.strip())
                    firsts.add(first.strip())
    return sorted(firsts), sorted(lasts), cats


def weekdays(n: int, per_month: int, end: date) -> list[date]:
    """The weekdays (oldest first) that hold n papers at per_month papers a month, ending at ``end``."""
    per_day = max(1, round(per_month * 12 / 261))
    days, d = [], end
    while len(days) * per_day < n:
        if d.weekday() < 5:
            days.append(d)
        d -= timedelta(days=1)
    return days[::-1]


def splice(t1: str, t2: str) -> str:
    w1, w2 = t1.split(), t2.split()
    return " ".join(w1[:max(1, len(w1) // 2)] + w2[len(w2) // 2:])


def build_corpus(work: Path, n: int, titles: list[str], abstracts: list[str], per_month: int) -> dict:
    """Write corpus.jsonl and corpus.npz (each record's id and source papers a, b) once; returns meta."""
    meta_path = work / "corpus.json"
    if meta_path.exists():
        return json.loads(meta_path.read_text())
    t0 = time.perf_counter()
    rng = random.Random(n)
    firsts, lasts, cats = kaggle_parts()
    days = weekdays(n, per_month, date.today() - timedelta(days=1))
    per_day = -(-n // len(days))
    m = len(titles)
    a = np.array([rng.randrange(m) for _ in range(n)])
    b = np.array([rng.randrange(m) for _ in range(n)])
    ids: list[str] = []
    seq: dict[str, int] = {}
    tmp = work / "corpus.jsonl.part"
    with open(tmp, "w", encoding="utf-8") as f:
        for i in range(n):
            day = days[i // per_day]
            ym = f"{day.year % 100:02d}{day.month:02d}"
            seq[ym] = seq.get(ym, 0) + 1
            aid = f"{ym}.{seq[ym]:05d}"
            ids.append(aid)
            names = [(rng.choice(lasts), rng.choice(firsts)) for _ in range(rng.randint(1, 6))]
            created = datetime(day.year, day.month, day.day, rng.randrange(24), rng.randrange(60),
                               tzinfo=timezone.utc)
            rec = {"id": aid, "submitter": f"{names[0][1]} {names[0][0]}",
                   "authors": ", ".join(f"{fi} {la}" for la, fi in names),
                   "title": splice(titles[b[i]], titles[rng.randrange(m)]), "comments": None,
                   "journal-ref": None, "doi": None, "report-no": None, "categories": rng.choice(cats),
                   "license": None, "abstract": abstracts[a[i]],
                   "versions": [{"version": "v1", "created": format_datetime(created, usegmt=True)}],
                   "update_date": day.isoformat(), "authors_parsed": [[la, fi, ""] for la, fi in names]}
            f.write(json.dumps(rec) + "\n")
    np.savez(work / "corpus.npz", ids=np.array(ids), a=a, b=b)
    tmp.rename(work / "corpus.jsonl")
    meta = {"papers": n, "first_day": days[0].isoformat(), "last_day": days[-1].isoformat(), "per_day": per_day,
            "build_s": time.perf_counter() - t0}
    meta_path.write_text(json.dumps(meta))
    return meta


# -- building through the product -------------------------------------------------------------------

def cli(home: Path, *args: str, stdin: str | None = None, env: dict | None = None) -> tuple[float, str, float]:
    """Run ``paperboy --home home ARGS``; (seconds, stdout, peak resident MB sampled every 0.2 s)."""
    t = time.perf_counter()
    with subprocess.Popen([PAPERBOY, "--home", str(home), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env or ENV) as proc:
        peak = [0.0]

        def sample() -> None:
            try:
                ps = psutil.Process(proc.pid)
                while proc.poll() is None:
                    peak[0] = max(peak[0], ps.memory_info().rss / 2**20)
                    time.sleep(0.2)
            except psutil.Error:  # it ended between two samples
                pass

        watcher = threading.Thread(target=sample, daemon=True)
        watcher.start()
        out, err = proc.communicate(stdin)
        watcher.join()
    took = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"`paperboy {' '.join(args)}` failed ({proc.returncode}):\n{out[-3000:]}\n{err[-3000:]}")
    return took, out, peak[0]


def write_vectors(home: Path, work: Path, vecs: np.ndarray) -> int:
    """Give every stored paper its derived vector through ``put_embeddings`` (see the docstring)."""
    from paperboy.embed import content_hash, paper_text
    from paperboy.engine import Engine

    z = np.load(work / "corpus.npz")
    row = {aid: k for k, aid in enumerate(z["ids"].tolist())}
    a, b = z["a"], z["b"]
    noise = np.random.default_rng(7)
    written = 0
    with Engine.from_settings(home=home) as engine:
        store, model = engine.store, engine.embedder.model_id
        name = f"embed:{model}"
        rev = (store.get_cursor(name) or {}).get("rev", 0)
        while papers := store.papers_since(rev, 5000):
            k = np.array([row[p["arxiv_id"]] for p in papers])
            x = vecs[a[k]] + 0.5 * vecs[b[k]] + 0.05 * noise.standard_normal((len(k), vecs.shape[1]), dtype=np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            rows = [(p["id"], content_hash(paper_text(p["title"], p["abstract"])), v.astype(np.float32).tobytes())
                    for p, v in zip(papers, x)]
            rev = papers[-1]["rev"]
            store.put_embeddings(model, rows, cursor=(name, {"rev": rev}))
            written += len(rows)
    return written


def build(home: Path, work: Path, corpus: Path, vecs: np.ndarray, n: int, topics: bool = True) -> dict:
    """Ingest and build every index once (timings cached in build.json)."""
    state_path = work / "build.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}

    def step(key: str, fn) -> None:
        if key not in state:
            print(f"[{n:,}] {key} ...", file=sys.stderr, flush=True)
            state[key] = fn()
            state_path.write_text(json.dumps(state, indent=1))
            print(f"[{n:,}] {key}: {state[key]}", file=sys.stderr, flush=True)

    def run(*a: str) -> dict:
        took, out, peak = cli(home, *a)
        return {"s": took, "peak_rss_mb": peak, "output": out.strip()[-300:]}

    def ingest() -> dict:
        return (r := run("ingest", "kaggle", str(corpus))) | {"records_per_s": n / r["s"]}

    def vectors() -> dict:
        t = time.perf_counter()
        w = write_vectors(home, work, vecs)
        return {"s": time.perf_counter() - t, "written": w}

    step("ingest", ingest)
    step("index", lambda: run("index"))  # tantivy (nothing embedded yet)
    step("vectors_written", vectors)
    step("embed", lambda: run("embed", "--quiet", "--json"))  # vector index, hub scores, TF-IDF
    if topics:  # --skip-topics-fit: measure without a topic map (not a row of issue 14's table)
        step("topics_fit", lambda: run("topics", "fit", "--json"))
    return state


# -- measuring over HTTP ----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``paperboy serve`` as a subprocess, up (answering /healthz) for the ``with`` block."""

    def __init__(self, home: Path, log: Path) -> None:
        self.home, self.log, self.port = home, log, free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.out = open(self.log, "wb")
        self.proc = subprocess.Popen([PAPERBOY, "--home", str(self.home), "serve", "--port", str(self.port)],
                                     env=ENV, stdout=self.out, stderr=subprocess.STDOUT)
        t = time.perf_counter()
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"paperboy serve exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=30).is_success:
                    break
            except httpx.TransportError:
                pass
            if time.perf_counter() - t > 600:
                sys.exit("paperboy serve did not come up in 600 s")
            time.sleep(0.2)
        self.start_s = time.perf_counter() - t
        return self

    def rss_mb(self) -> float:
        p = psutil.Process(self.proc.pid)
        return sum(q.memory_info().rss for q in [p, *p.children(recursive=True)]) / 2**20

    def rss_parts_mb(self) -> dict[str, float]:
        """The resident set split: heap and other private memory (anon) against pages of mapped
        files (the vectors, the graph, TF-IDF rows, tantivy), which the kernel can take back."""
        out = {"rss_anon_mb": 0.0, "rss_file_mb": 0.0}
        p = psutil.Process(self.proc.pid)
        for q in [p, *p.children(recursive=True)]:
            for line in Path(f"/proc/{q.pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("RssAnon", "RssFile"):
                    out[f"rss_{key[3:].lower()}_mb"] += int(value.split()[0]) / 1024
        return out

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.out.close()


def timed(client: httpx.Client, urls: list[str], headers: dict | None = None) -> list[float]:
    out = []
    for u in urls:
        t = time.perf_counter()
        r = client.get(u, headers=headers)
        out.append((time.perf_counter() - t) * 1000)
        if r.status_code != 200:
            sys.exit(f"GET {u}: {r.status_code} {r.text[:500]}")
    return out


def p(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs), q))


def queries(titles: list[str], k: int, rng: random.Random) -> list[str]:
    """2-5 consecutive words of random real titles (as benchmarks/search.py)."""
    out = []
    for t in rng.sample(titles, k):
        w = t.split()
        m = rng.randint(2, 5)
        s = rng.randrange(max(1, len(w) - m + 1))
        out.append(" ".join(w[s:s + m]))
    return out


def library_of(client: httpx.Client, titles: list[str], rng: random.Random) -> list[tuple[str, int]]:
    """(arXiv id, row id) of LIBRARY papers on a few themes: BM25 hits of real title words."""
    got: dict[str, int] = {}
    for q in queries(titles, 40, rng):
        r = client.get("/api/search", params={"q": q, "mode": "bm25", "per_page": 20})
        got.update((h["paper"]["id"], int(h["paper"]["discussionId"])) for h in r.json()["hits"][:20])
        if len(got) >= LIBRARY:
            break
    return list(got.items())[:LIBRARY]


def add_reader(home: Path, store, name: str) -> tuple[int, str]:
    """An account made by ``paperboy user add``, and an API token for it. The CLI has no command for
    tokens (only the /settings/tokens page after a login), so it is created the way that page does:
    ``Store.create_api_token`` with the token's SHA-256."""
    cli(home, "user", "add", name, "--email", f"{name}@example.org", "--password-stdin", stdin="bench-password-1\n")
    uid = store.user_by_name(name)["id"]
    token = "pb_" + hashlib.sha256(f"{name}-{time.time()}".encode()).hexdigest()[:40]
    store.create_api_token(uid, "bench", hashlib.sha256(token.encode()).hexdigest(), "write", None)
    return uid, token


def measure(home: Path, work: Path, titles: list[str], meta: dict, n: int, args) -> dict:
    from paperboy.engine import Engine

    rng = random.Random(1)
    res: dict = {}
    last = date.fromisoformat(meta["last_day"])
    y, w, _ = last.isocalendar()
    with Engine.from_settings(home=home) as engine, Server(home, work / "serve.log") as srv, \
            httpx.Client(base_url=srv.url, timeout=120) as c:
        store = engine.store
        res["serve_start_s"] = srv.start_s
        # a reader with a library of 50 (saved through the API) and some upvotes for Trending
        uid, token = add_reader(home, store, f"bench{int(time.time())}")
        auth = {"authorization": f"Bearer {token}"}
        lib = library_of(c, titles, rng)
        for ref, _ in lib:
            r = c.post("/api/library", json={"ref": ref}, headers=auth)
            if r.status_code != 200:
                sys.exit(f"POST /api/library: {r.status_code} {r.text[:300]}")
        for ref, _ in lib[:10]:
            c.post(f"/api/papers/{ref}/vote", json={"up": True}, headers=auth)
        res["library"] = len(lib)
        bm25_q, hybrid_q = queries(titles, args.queries, rng), queries(titles, args.queries, rng)
        similar_refs = rng.sample(store.day_ids(meta["first_day"], meta["last_day"]), 100)
        similar_refs = [r.arxiv_id for r in store.get_papers(similar_refs).values()]
        search = lambda qs, mode: [f"/api/search?{httpx.QueryParams(q=q, mode=mode, per_page=10)}" for q in qs]  # noqa: E731
        pages = {"daily": ["/"], "week": [f"/?week={y}-W{w:02d}"], "month": [f"/?month={last.year}-{last.month:02d}"],
                 "trending": ["/trending"]}
        # warm-up: every path once or a few times (first use loads the model and the indexes)
        t = time.perf_counter()
        timed(c, search(bm25_q[:3], "bm25") + search(hybrid_q[:3], "hybrid") +
              [f"/api/papers/{r}/similar" for r in similar_refs[:3]] + sum(pages.values(), []))
        res["first_recommend_ms"] = timed(c, ["/api/recommendations?k=20"], auth)[0]
        res["warmup_s"] = time.perf_counter() - t
        res["load_avg_1m_before"] = os.getloadavg()[0]  # a busy machine inflates every latency: say how busy
        res["rss_warm_mb"] = srv.rss_mb()
        bm25 = timed(c, search(bm25_q, "bm25"))
        hybrid = timed(c, search(hybrid_q, "hybrid"))
        similar = timed(c, [f"/api/papers/{r}/similar?k=10" for r in similar_refs])
        rec = timed(c, ["/api/recommendations?k=20"] * args.recs, auth)
        page_ms = {k: timed(c, v * args.pages) for k, v in pages.items()}
        res["rss_mb"] = srv.rss_mb()
        res.update(srv.rss_parts_mb())
        res["load_avg_1m_after"] = os.getloadavg()[0]
        res.update(bm25_p50_ms=p(bm25, 50), bm25_p99_ms=p(bm25, 99), hybrid_p50_ms=p(hybrid, 50),
                   hybrid_p99_ms=p(hybrid, 99), similar_p50_ms=p(similar, 50), similar_p99_ms=p(similar, 99),
                   recommend_p50_ms=p(rec, 50), recommend_p99_ms=p(rec, 99))
        for k, v in page_ms.items():
            res[f"{k}_page_p50_ms"] = p(v, 50)
        res["rss_mb"] = max(res["rss_mb"], res["rss_warm_mb"])
        # digest readers: accounts with a confirmed address, daily digests and a library each
        readers = []
        for i in range(READERS):
            name = f"digest{int(time.time())}r{i}"
            rid = store.create_user(name, f"{name}@example.org", "!")
            store.mark_email_verified(rid)
            store.update_profile(rid, digest="daily")
            for _, pid in library_of(c, titles, rng):
                store.save(rid, pid)
            readers.append(name)
    res.update(digest(home, readers))
    return res


def digest(home: Path, readers: list[str]) -> dict:
    """``paperboy digest send --force`` against a local SMTP server: one reader first (process start
    plus one digest), then the rest; readers/s of the rest is the marginal rate."""
    from aiosmtpd.controller import Controller

    class Inbox:
        count = 0

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            Inbox.count += 1
            return "250 OK"

    ctl = Controller(Inbox(), hostname="127.0.0.1", port=free_port())
    ctl.start()
    env = {**ENV, "PAPERBOY_SMTP_HOST": "127.0.0.1", "PAPERBOY_SMTP_PORT": str(ctl.port)}
    try:
        one, _, _ = cli(home, "digest", "send", "--force", "--user", readers[0], "--json", env=env)
        rest, out, peak = cli(home, "digest", "send", "--force", "--json", env=env)
    finally:
        ctl.stop()
    sent = Inbox.count
    # readers of an earlier run of this benchmark got today's digest then: count the mails this run sent
    rest_sent = json.loads(out[out.index("{"):])["sent"]
    return {"digest_one_s": one, "digest_all_s": rest, "digest_mails": sent, "digest_peak_rss_mb": peak,
            "digest_readers_per_s": (rest_sent - 1) / max(rest - one, 1e-9),  # the rest less one reader
            "digest_run_readers_per_s": rest_sent / rest, "digest_output": out.strip()[-500:]}


def disk(home: Path) -> dict:
    """Allocated bytes (MB) of the home, by part, and the biggest tables of the SQLite store."""
    parts: dict[str, float] = {}
    for f in home.rglob("*"):
        if f.is_file():
            rel = f.relative_to(home).parts
            key = "/".join(rel[:2]) if rel[0] == "index" and len(rel) > 1 else (
                "store" if rel[0].startswith("paperboy.sqlite3") else rel[0])
            parts[key] = parts.get(key, 0.0) + f.stat().st_blocks * 512 / 2**20
    tables: dict[str, float] = {}
    try:
        db = sqlite3.connect(f"file:{home / 'paperboy.sqlite3'}?mode=ro", uri=True)
        for name, size in db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 8"):
            tables[name] = size / 2**20
        db.close()
    except sqlite3.Error:  # dbstat is a compile-time option
        pass
    return {"disk_mb": sum(parts.values()), "disk_parts_mb": parts, "store_tables_mb": tables}


# -- report -----------------------------------------------------------------------------------------

ROWS = [  # key, label, target at 2.7M
    ("rss_mb", "resident memory of `paperboy serve` after warm-up, MB", "<= 4096"),
    ("rss_anon_mb", "of which private (heap), MB", ""), ("rss_file_mb", "of which mapped file pages, MB", ""),
    ("bm25_p50_ms", "BM25 p50 ms", "<= 10"), ("bm25_p99_ms", "BM25 p99 ms", "<= 50"),
    ("hybrid_p50_ms", "hybrid p50 ms (query encoding included)", "<= 30"), ("hybrid_p99_ms", "hybrid p99 ms", "<= 80"),
    ("similar_p50_ms", "similar papers p50 ms", "<= 10"),
    ("recommend_p50_ms", "recommendations (library of 50) p50 ms", "<= 300"),
    ("recommend_p99_ms", "recommendations p99 ms", "<= 1000"),
    ("first_recommend_ms", "recommendations, first call (model trained) ms", ""),
    ("daily_page_p50_ms", "daily page p50 ms", "<= 50"), ("week_page_p50_ms", "week page p50 ms", "<= 50"),
    ("month_page_p50_ms", "month page p50 ms", "<= 50"), ("trending_page_p50_ms", "trending page p50 ms", "<= 50"),
    ("digest_readers_per_s", "digest readers/s (marginal, after process start)", ">= 5"),
    ("digest_run_readers_per_s", "digest readers/s (whole run, process start included)", ""),
    ("ingest_records_per_s", "Kaggle ingest records/s", ">= 5000"),
    ("ingest_s", "ingest s", ""), ("ingest_peak_rss_mb", "ingest peak resident MB", "flat"), ("index_s", "`paperboy index` (tantivy) s", ""),
    ("vectors_written_s", "derived vectors written to the store s", ""),
    ("embed_s", "`paperboy embed` (vector index, hub scores, TF-IDF) s", ""),
    ("embed_peak_rss_mb", "`paperboy embed` peak resident MB", ""),
    ("topics_fit_s", "`paperboy topics fit` s", ""), ("topics_fit_peak_rss_mb", "`paperboy topics fit` peak MB", ""),
    ("digest_peak_rss_mb", "`paperboy digest send` peak resident MB", ""), ("serve_start_s", "server up (answers /healthz) s", ""),
    ("warmup_s", "warm-up s", ""), ("load_avg_1m_before", "machine load average (1 min) as measuring began", ""), ("disk_mb", "disk of store + indexes, MB", "report"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--papers", type=int, required=True)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--work", type=Path, default=Path("/tmp/scale"))
    ap.add_argument("--real", type=Path, default=Path("/tmp/qph"), help="a home with real embedded papers")
    ap.add_argument("--per-month", type=int, default=25_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--recs", type=int, default=50)
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--skip-topics-fit", action="store_true", help="build no topic map (it is slow at scale)")
    args = ap.parse_args()
    n = args.papers
    work = args.work / str(n)
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    titles, abstracts, vecs, _ = real_pool(args.real)
    meta = build_corpus(work, n, titles, abstracts, args.per_month)
    state = build(home, work, work / "corpus.jsonl", vecs, n, topics=not args.skip_topics_fit)
    res = {"papers": n, **measure(home, work, titles, meta, n, args), **disk(home)}
    for k, v in state.items():
        res[f"{k}_s"] = v["s"]
        if "peak_rss_mb" in v:
            res[f"{k}_peak_rss_mb"] = v["peak_rss_mb"]
    res["ingest_records_per_s"] = state["ingest"]["records_per_s"]
    res["corpus"] = meta
    res["bytes_per_paper_rss"] = res["rss_mb"] * 2**20 / n
    print(f"\n| what | {n:,} papers | target at 2.7M |\n|---|--:|--:|")
    for key, label, target in ROWS:
        v = res.get(key)
        print(f"| {label} | {'' if v is None else f'{v:,.1f}'} | {target} |")
    print("\ndisk by part (MB): " + ", ".join(f"{k} {v:,.0f}" for k, v in
                                            sorted(res["disk_parts_mb"].items(), key=lambda kv: -kv[1])))
    if res["store_tables_mb"]:
        print("store by table (MB): " + ", ".join(f"{k} {v:,.0f}" for k, v in res["store_tables_mb"].items()))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
