"""Embedding on Ray Data against the plain loop (issue 10): texts/s on N real papers.

A store of the first N quant-ph records (``../shared/data/arxiv/quant_ph_records.jsonl.gz``, else the
bundled sample) is built once; every run embeds a fresh copy of it from scratch with the real model:
the plain loop (``embed_pending``, this process) and ``embed_pending_ray`` with 1 and 2 actors on a
local Ray. Ray's start-up (``ray.init`` of a local instance) is timed apart, as its own row; the Ray
rows include what each run pays on top: the actors' start and model load (once per actor), planning,
moving the texts and vectors through the object store, and the commits. Each Ray run's vectors are
compared with the plain run's, byte for byte. The fixed cost of a Ray run is measured on a
one-paper store, and the last column takes it off to show the rate once the actors are up. Runs are
interleaved (plain, Ray start-up, fixed cost, 1 actor, 2 actors; again), median of ``--runs``.

Run: ``.venv/bin/python benchmarks/ray_embed.py [--papers 400] [--runs 3]``
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import tempfile
import time
from importlib.resources import files
from pathlib import Path

from paperboy.embed import embed_pending
from paperboy.embed.ray_batch import WORKER_ENV, embed_pending_ray
from paperboy.embed.sbert import SbertEmbedder
from paperboy.engine import Engine
from paperboy.store.sqlite import SQLiteStore

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "arxiv" / "quant_ph_records.jsonl.gz"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def build(tmp: Path, n: int, name: str = "base") -> Path:
    src = SHARED if SHARED.exists() else Path(str(files("paperboy") / "data" / "sample.jsonl.gz"))
    part = tmp / f"{name}.jsonl"
    with gzip.open(src, "rt", encoding="utf-8") as f, part.open("w", encoding="utf-8") as out:
        for i, line in enumerate(f):
            if i == n:
                break
            out.write(line)
    home = tmp / name
    with Engine.from_settings(home=home) as e:
        e.ingest(part)
    return home / "paperboy.sqlite3"


def run(base: Path, tmp: Path, fn) -> tuple[float, dict[str, int], dict[int, bytes]]:
    path = tmp / "run.sqlite3"
    for p in tmp.glob("run.sqlite3*"):
        p.unlink()
    shutil.copy(base, path)
    store = SQLiteStore(path)
    store.migrate()
    try:
        t = time.perf_counter()
        counts = fn(store)
        took = time.perf_counter() - t
        return took, counts, {pid: vec for pid, _seq, vec in store.embeddings_since(MODEL, 0, 10**9)}
    finally:
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--papers", type=int, default=400)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    import ray

    tmp = Path(tempfile.mkdtemp(prefix="paperboy-bench-ray-"))
    try:
        base, one = build(tmp, args.papers), build(tmp, 1, "one")
        rows: list[tuple[str, list[float], int, str]] = []
        embedder = SbertEmbedder()
        _ = embedder.model  # the plain loop's model load is not part of its rate (a Ray actor's is)
        plain: dict[int, bytes] = {}
        times, starts, fixed, by_actors = [], [], [], {1: [], 2: []}
        same = {1: True, 2: True}
        for _ in range(args.runs):  # interleaved, so a busy moment hits every variant alike
            took, counts, plain = run(base, tmp, lambda s: embed_pending(s, embedder))
            times.append(took)
            t = time.perf_counter()
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": WORKER_ENV})
            starts.append(time.perf_counter() - t)
            try:
                fixed.append(run(one, tmp, lambda s: embed_pending_ray(s, SbertEmbedder(), actors=1))[0])
                for actors in (1, 2):
                    took, counts, got = run(base, tmp, lambda s, n=actors: embed_pending_ray(s, SbertEmbedder(), actors=n))
                    by_actors[actors].append(took)
                    same[actors] &= got == plain
            finally:
                ray.shutdown()
        rows.append(("plain loop (this process, model already loaded)", times, counts["embedded"], "reference"))
        rows.append(("Ray start-up (local ray.init, no dashboard)", starts, 0, ""))
        rows.append(("Ray fixed cost per run (1 paper, 1 actor: actor start + model load)", fixed, 0, ""))
        for actors in (1, 2):
            rows.append((f"Ray Data, {actors} actor{'s' * (actors > 1)} (incl. actor start + model load)",
                         by_actors[actors], counts["embedded"],
                         "identical bytes" if same[actors] else "DIFFERENT"))
        print(f"{args.papers} papers, {os.cpu_count()} CPUs, median of {args.runs} runs\n")
        print("| run | seconds (median) | min-max | texts | texts/s | texts/s less the fixed cost | vectors vs plain |")
        print("|---|--:|--:|--:|--:|--:|---|")
        cost = statistics.median(fixed)
        for name, ts, n, note in rows:
            med = statistics.median(ts)
            rate = f"{n / med:.1f}" if n else ""
            steady = f"{n / (med - cost):.1f}" if n and name.startswith("Ray Data") and med > cost else ""
            print(f"| {name} | {med:.2f} | {min(ts):.2f}-{max(ts):.2f} | {n or ''} | {rate} | {steady} | {note} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
