"""Search latency and memory: BM25 (tantivy, and SQLite FTS5 for comparison), dense and hybrid,
on the 38,858 quant-ph papers and on 1M papers.

Corpora (real text, ../shared/data):
- ``quant-ph``: the 38,858 quant-ph records as they are.
- ``1M``: 1,000,000 papers recombined from real abstracts: paper i takes the title of one random
  quant-ph/SciFact document and the abstract of another, with a new id.
Vectors: embedding 1M abstracts on 2 CPU cores takes hours, so the benchmark embeds the 44,041 real
titles once with the real model (cached under --work) and gives each paper the normalized mix
``title_vec(a) + 0.5 * title_vec(b) + noise``, mirroring how its text was recombined. Latency does not
depend on which real vectors these are; quality is measured separately by ``paperboy eval beir``.
Queries: 2-5 consecutive words from random quant-ph titles (common words included) and SciFact claims.

Run: ``.venv/bin/python benchmarks/search.py`` (``--sizes 38858`` for the small corpus only).
The first run builds stores and indexes under --work (1M: ~15 min); later runs reuse them.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sqlite3
import time
from pathlib import Path

import numpy as np
import psutil

from paperboy.engine import Engine
from paperboy.index.vectors import VectorIndex
from paperboy.query import parse_query
from paperboy.services.search import Searcher

ROOT = Path(__file__).resolve().parents[1]


def real_docs(data: Path) -> list[tuple[str, str]]:
    docs = []
    with gzip.open(data / "arxiv" / "quant_ph_records.jsonl.gz", "rt", encoding="utf-8") as f:
        docs += [(o["title"], o["abstract"]) for o in map(json.loads, f)]
    with open(data / "beir" / "scifact" / "corpus.jsonl", encoding="utf-8") as f:
        docs += [(o["title"], o["text"]) for o in map(json.loads, f)]
    return docs


def build_corpus(path: Path, docs: list[tuple[str, str]], n: int, rng: random.Random) -> list[tuple[int, int]]:
    """Write n records; returns the (title doc, abstract doc) pair each was made of."""
    pairs = [(i, i) for i in range(n)] if n <= 38_858 else [
        (rng.randrange(len(docs)), rng.randrange(len(docs))) for _ in range(n)]
    if not path.exists():  # BEIR format: papers keyed by id, never merged by (repeated) titles
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            for i, (a, b) in enumerate(pairs):
                f.write(json.dumps({"_id": f"b{i}", "title": docs[a][0], "text": docs[b][1]}) + "\n")
    return pairs


def title_vectors(engine: Engine, docs: list[tuple[str, str]], cache: Path) -> np.ndarray:
    if cache.exists():
        return np.load(cache, allow_pickle=False)
    t = time.perf_counter()
    vecs = engine.embedder.encode([d[0] for d in docs], batch_size=64)
    print(f"embedded {len(docs)} titles in {time.perf_counter() - t:.0f} s")
    np.save(cache, vecs)
    return vecs


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.array(xs), p))


def timed(fn, queries) -> list[float]:
    out = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t) * 1000)
    return out


def fts5_latency(store_path: Path, work: Path, queries: list[str]) -> list[float]:
    """The same BM25 queries against SQLite FTS5 (built once over title + abstract)."""
    db = sqlite3.connect(work / "fts5.sqlite3")
    if not db.execute("SELECT name FROM sqlite_master WHERE name = 'f'").fetchone():
        db.execute("CREATE VIRTUAL TABLE f USING fts5(title, abstract, tokenize='porter')")
        db.execute(f"ATTACH '{store_path}' AS s")
        db.execute("INSERT INTO f (rowid, title, abstract) SELECT id, title, abstract FROM s.papers")
        db.commit()
    def run(q: str) -> None:
        terms = " OR ".join('"' + w + '"' for w in q.split() if w.isalnum())
        db.execute("SELECT rowid FROM f WHERE f MATCH ? ORDER BY bm25(f, 2.0, 1.0) LIMIT 10", (terms,)).fetchall()
    return timed(run, queries)


def bench(size: int, args, docs, rng) -> dict[str, object]:
    work = args.work / str(size)
    work.mkdir(parents=True, exist_ok=True)
    proc = psutil.Process()
    with Engine.from_settings(home=work / "home") as engine:
        pairs = build_corpus(work / "bench" / "corpus.jsonl", docs, size, rng)
        if engine.store.max_rev() < size:
            t = time.perf_counter()
            engine.ingest(work / "bench" / "corpus.jsonl", "beir")
            print(f"[{size}] ingest {time.perf_counter() - t:.0f} s")
        engine.embedder.encode_query("load the model before measuring index memory")
        rss0 = proc.memory_info().rss
        t = time.perf_counter()
        lexical = engine.lexical
        print(f"[{size}] lexical index ready ({len(lexical)} docs) in {time.perf_counter() - t:.0f} s")
        rss_lex = proc.memory_info().rss
        tv = title_vectors(engine, docs, args.work / "title_vectors.npy")
        vdir = work / "vectors"
        if VectorIndex.exists(vdir):
            vi = VectorIndex.load(vdir, engine.embedder.model_id)
        else:
            t = time.perf_counter()
            a, b = np.array(pairs).T
            noise = np.random.default_rng(0)
            vi = VectorIndex(engine.embedder.model_id, tv.shape[1], hnsw_threshold=engine.settings["hnsw_threshold"])
            for s in range(0, size, 100_000):
                chunk = tv[a[s:s + 100_000]] + 0.5 * tv[b[s:s + 100_000]]
                chunk += 0.05 * noise.standard_normal(chunk.shape, dtype=np.float32)
                vi.upsert(np.arange(s + 1, s + 1 + len(chunk)), chunk)  # paper ids are 1..n
            vi.save(vdir)
            print(f"[{size}] vector index built in {time.perf_counter() - t:.0f} s")
        rss_vec = proc.memory_info().rss
        searcher = Searcher(engine.store, lexical, vi, engine.embedder)
        titles = [docs[i][0].split() for i in rng.sample(range(38_858), args.queries)]
        queries = []
        for words in titles:
            n = rng.randint(2, 5)
            start = rng.randrange(max(1, len(words) - n + 1))
            queries.append(" ".join(words[start:start + n]))
        engine.embedder.encode_query("warm up")
        encode = timed(engine.embedder.encode_query, queries)
        parsed = [parse_query(q) for q in queries]
        bm25 = timed(lambda q: searcher.bm25(q, 10), parsed)
        qvecs = {q.raw: engine.embedder.encode_query(q.free_text()) for q in parsed}
        dense = timed(lambda q: searcher.dense(q, qvecs[q.raw], 100), parsed)
        hybrid = timed(lambda q: searcher.search(q, per_page=10), queries)
        fts = fts5_latency(engine.store.path, work, queries) if args.fts5 else []
    row = {"papers": size, "encode": encode, "bm25": bm25, "dense": dense, "hybrid": hybrid, "fts5": fts,
           "lex_mb": (rss_lex - rss0) / 2**20, "vec_mb": (rss_vec - rss_lex) / 2**20,
           "disk_mb": sum(f.stat().st_size for f in (work / "home" / "index").rglob("*") if f.is_file()) / 2**20,
           "hnsw": len(vi) >= vi.hnsw_threshold}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path("/tmp/paperboy-bench-search"))
    ap.add_argument("--sizes", default="38858,1000000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--no-fts5", dest="fts5", action="store_false")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    docs = real_docs(args.data)
    rows = [bench(int(s), args, docs, random.Random(1)) for s in args.sizes.split(",")]
    print("\n| papers | query | p50 ms | p99 ms |\n|--:|---|--:|--:|")
    for r in rows:
        for name in ("encode", "bm25", "fts5", "dense", "hybrid"):
            if r[name]:
                print(f"| {r['papers']:,} | {name} | {pct(r[name], 50):.1f} | {pct(r[name], 99):.1f} |")
    print("\n| papers | lexical RSS MB | vector RSS MB | bytes/paper in RAM | index on disk MB | HNSW |\n|--:|--:|--:|--:|--:|---|")
    for r in rows:
        per = (r["lex_mb"] + r["vec_mb"]) * 2**20 / r["papers"]
        print(f"| {r['papers']:,} | {r['lex_mb']:.0f} | {r['vec_mb']:.0f} | {per:.0f} | {r['disk_mb']:.0f} | {r['hnsw']} |")
    print("\nbm25 = tantivy top-10 (title + abstract, title again x0.25, authors); dense = vector top-100 + constraint check;"
          " hybrid = Engine search end to end incl. query encoding, fusion, cut-off and loading the page's papers;"
          " encode = the model on the query alone.", args.queries, "queries per row.")


if __name__ == "__main__":
    main()
