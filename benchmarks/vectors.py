"""Compact vectors at full-arXiv size: memory, recall against exact f32 search, and latency of the
vector index (f16 rows memory-mapped, int8 HNSW graph, picks re-scored from the f16 rows).

Vectors: embedding millions of abstracts on 2 CPU cores takes days, so the benchmark takes the real
embeddings of a home (``--home``, e.g. the 38,858 quant-ph papers) and gives synthetic paper i the
normalized mix ``v[a] + 0.5 * v[b] + 0.05 * noise`` of two random real vectors, as benchmarks/search.py
does for its 1M corpus. Queries are fresh mixes of the same kind (not in the index).

For each size the index is built once and cached under ``--work``; then a fresh process loads it and
answers the queries, so its resident memory is what a serving process holds: after the load, and after
the queries have touched the rows they re-score. Recall@10 is measured against exact search over the
f32 vectors (regenerated from the same seed), both for the HNSW path and for exact search over f16.

Run: ``.venv/bin/python benchmarks/vectors.py --home <home> --papers 300000,1000000,2700000``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CHUNK = 100_000
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def real_vectors(home: Path) -> np.ndarray:
    from paperboy.index.sync import vector_dir
    from paperboy.index.vectors import VectorIndex

    vi = VectorIndex.load(vector_dir(home, MODEL), MODEL)
    return np.asarray(vi.matrix()[1], np.float32)


def mixes(base: np.ndarray, n: int, seed: int):
    """(start, f32 unit rows) of n synthetic vectors, in chunks, the same for the same seed."""
    rng = np.random.default_rng(seed)
    for s in range(0, n, CHUNK):
        m = min(CHUNK, n - s)
        a, b = rng.integers(0, len(base), m), rng.integers(0, len(base), m)
        x = base[a] + 0.5 * base[b] + 0.05 * rng.standard_normal((m, base.shape[1]), dtype=np.float32)
        yield s, x / np.linalg.norm(x, axis=1, keepdims=True)


def build(base: np.ndarray, n: int, out: Path) -> float:
    from paperboy.index.vectors import VectorIndex

    t = time.perf_counter()
    vi = VectorIndex(MODEL, base.shape[1])
    for s, x in mixes(base, n, seed=1):
        vi.upsert(np.arange(s + 1, s + 1 + len(x)), x)  # paper ids 1..n
        print(f"  [{n}] {s + len(x):,} vectors in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    vi.save(out)
    return time.perf_counter() - t


def exact_top10(base: np.ndarray, n: int, q: np.ndarray) -> np.ndarray:
    best_s, best_i = np.full((len(q), 0), -np.inf, np.float32), np.zeros((len(q), 0), np.int64)
    for s, x in mixes(base, n, seed=1):
        sims = np.concatenate([best_s, q @ x.T], axis=1)
        idx = np.concatenate([best_i, np.broadcast_to(np.arange(s + 1, s + 1 + len(x)), (len(q), len(x)))], axis=1)
        top = np.argpartition(-sims, 9, axis=1)[:, :10]
        best_s, best_i = np.take_along_axis(sims, top, 1), np.take_along_axis(idx, top, 1)
    return best_i


def serve(directory: str, queries: str, result: str) -> None:
    """In a fresh process: load, measure RSS, search every query (one thread, as the web does)."""
    import psutil
    from threadpoolctl import threadpool_limits

    from paperboy.index.vectors import VectorIndex

    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    t = time.perf_counter()
    vi = VectorIndex.load(Path(directory), MODEL)
    load_s = time.perf_counter() - t
    rss_load = proc.memory_info().rss
    q = np.load(queries)
    lat, got = [], []
    with threadpool_limits(1):
        for v in q:
            t = time.perf_counter()
            ids, _ = vi.search(v, 10)
            lat.append((time.perf_counter() - t) * 1000)
            got.append(ids)
        rss_q = proc.memory_info().rss  # before the exact scan below, which touches every row
        exact = vi.search_many(q[:50], 10, exact=True)[0]  # exact search over the f16 rows
    Path(result).write_text(json.dumps({
        "load_s": load_s, "rss_load_mb": (rss_load - rss0) / 2**20, "rss_mb": (rss_q - rss0) / 2**20,
        "p50_ms": float(np.median(lat)), "p99_ms": float(np.percentile(lat, 99)),
        "hnsw": [g.tolist() for g in got], "exact16": exact.tolist()}))


def recall(got: list[list[int]], want: np.ndarray) -> float:
    return float(np.mean([len(set(g) & set(w.tolist())) / 10 for g, w in zip(got, want)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", type=Path, required=True, help="a paperboy home with embedded papers")
    ap.add_argument("--papers", default="300000", help="comma-separated sizes")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--work", type=Path, default=Path("/tmp/paperboy-vectors-bench"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    base = real_vectors(args.home)
    q = next(mixes(base, args.queries, seed=2))[1]
    args.work.mkdir(parents=True, exist_ok=True)
    np.save(qpath := args.work / "queries.npy", q)
    rows = []
    for n in (int(s) for s in args.papers.split(",")):
        d = args.work / str(n)
        built = build(base, n, d) if not (d / "index.json").exists() else None
        res = args.work / f"serve-{n}.json"
        subprocess.run([sys.executable, __file__, "--serve", str(d), str(qpath), str(res)], check=True)
        r = json.loads(res.read_text())
        want = exact_top10(base, n, q)
        disk = sum(f.stat().st_blocks * 512 for f in d.iterdir()) / 2**20  # allocated: spare rows are holes
        rows.append({"papers": n, "build_s": built, "load_s": r["load_s"], "rss_load_mb": r["rss_load_mb"],
                     "rss_mb": r["rss_mb"], "bytes_per_paper": r["rss_mb"] * 2**20 / n, "disk_mb": disk,
                     "search_p50_ms": r["p50_ms"], "search_p99_ms": r["p99_ms"],
                     "recall10_hnsw": recall(r["hnsw"], want), "recall10_exact_f16": recall(r["exact16"], want[:50])})
    print("| papers | build s | load s | RSS after load MB | RSS after queries MB | B/paper | disk MB | "
          "search p50 / p99 ms | recall@10 HNSW | recall@10 exact f16 |")
    print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in rows:
        b = "cached" if r["build_s"] is None else f"{r['build_s']:.0f}"
        print(f"| {r['papers']:,} | {b} | {r['load_s']:.1f} | {r['rss_load_mb']:.0f} | {r['rss_mb']:.0f} | "
              f"{r['bytes_per_paper']:.0f} | {r['disk_mb']:.0f} | {r['search_p50_ms']:.2f} / {r['search_p99_ms']:.2f} | "
              f"{r['recall10_hnsw']:.4f} | {r['recall10_exact_f16']:.4f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        serve(*sys.argv[2:])
    else:
        main()
