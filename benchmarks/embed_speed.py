"""Faster embedding (issue 14): texts/s of each embedding path on the same real texts.

Texts: the first ``--papers`` SciFact abstracts (``../shared/data/beir/scifact/corpus.jsonl``, embedded
as paperboy embeds a paper: title and abstract) and, as a second set, their titles alone. Rows:

- torch, today's loop: slices of ``--batch`` in the given order, one ``model.encode`` per slice
  (sentence-transformers sorts only within a slice)
- torch, length-sorted: ``SbertEmbedder.encode`` (the whole input sorted by length, then batched)
- ONNX fp32, length-sorted batches
- ONNX int8, one text per call (what ``embed_backend = onnx-int8`` runs: a vector never depends on its
  batch-mates, and one text needs no padding), as the backend runs it (one-thread calls from as many
  Python threads as cores) and on one session with intra-op threads
- ONNX int8, length-sorted batches (for comparison only: int8 vectors then shift with their batch-mates)
- two worker processes of one thread each, torch length-sorted and ONNX int8, each embedding half

Every row uses the machine's cores (torch's and ONNX Runtime's threads, or the backend's parallel
calls, set to ``os.cpu_count()``; the workers have one thread each). Model load and the ONNX export are outside the timings (each path
embeds a few texts first). Runs are interleaved (every row once, then again), median of ``--runs``;
the ratio column divides by today's torch loop of the same run, so a busy machine shifts the rates
more than the ratios. Run under ``nice``: ``nice -n 10 .venv/bin/python benchmarks/embed_speed.py``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paperboy.embed import length_batches, paper_text  # noqa: E402
from paperboy.embed.onnx import OnnxEmbedder, ensure_model  # noqa: E402
from paperboy.embed.sbert import SbertEmbedder  # noqa: E402

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir" / "scifact" / "corpus.jsonl"
CORES = os.cpu_count() or 1


def load(n: int) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for _, line in zip(range(n), SCIFACT.open(encoding="utf-8"))]
    return [paper_text(r["title"], r["text"]) for r in rows], [r["title"] for r in rows]


def torch_today(e: SbertEmbedder, texts: list[str], batch: int) -> np.ndarray:
    """The loop before issue 14: slice first, then one model call per slice."""
    return np.vstack([e.model.encode(texts[i:i + batch], batch_size=batch, normalize_embeddings=True,
                                     show_progress_bar=False) for i in range(0, len(texts), batch)])


def int8_calls(e: OnnxEmbedder, texts: list[str], batch: int, threads: int) -> np.ndarray:
    """int8 in length-sorted batches of ``batch`` on one session of ``threads`` intra-op threads (not
    what the backend runs, except as to the vectors at batch 1; see the module docstring)."""
    session = e._session(threads)
    encs = e.tokenizer.encode_batch(texts)
    out = np.zeros((len(texts), e.dim), dtype=np.float32)
    for idx in length_batches([len(x.ids) for x in encs], batch):
        out[idx] = e._run(session, [encs[i] for i in idx])
    return out


# -- two worker processes, one thread each ---------------------------------------------------------

_WORKER: dict[str, object] = {}


def _init_worker(kind: str, models_dir: str) -> None:
    import torch

    torch.set_num_threads(1)
    if kind == "torch":
        e: object = SbertEmbedder()
    else:
        e = OnnxEmbedder(quant="int8", models_dir=Path(models_dir), threads=1)
    e.encode(["warm up"])  # type: ignore[attr-defined]
    _WORKER["e"] = e


def _work(texts: list[str]) -> int:
    return len(_WORKER["e"].encode(texts))  # type: ignore[attr-defined]


class Workers:
    """A pool of two 1-thread processes with the model loaded; ``run`` times only the embedding."""

    def __init__(self, kind: str, models_dir: Path) -> None:
        self.pool = mp.get_context("spawn").Pool(2, _init_worker, (kind, str(models_dir)))
        self.pool.map(_work, [["a"], ["b"]])  # both started and warm

    def __call__(self, texts: list[str]) -> None:
        half = len(texts) // 2
        self.pool.map(_work, [texts[:half], texts[half:]], chunksize=1)

    def close(self) -> None:
        self.pool.close()
        self.pool.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--papers", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--models", type=Path, help="models folder (default: a temporary one, exported here)")
    ap.add_argument("--no-workers", action="store_true", help="skip the two-process rows")
    args = ap.parse_args()
    if not SCIFACT.exists():
        sys.exit(f"needs {SCIFACT}")
    import torch

    torch.set_num_threads(CORES)
    abstracts, titles = load(args.papers)
    tmp = tempfile.TemporaryDirectory()
    models = args.models or Path(tmp.name)
    t = time.perf_counter()
    ensure_model(models, "fp32")
    ensure_model(models, "int8")
    print(f"ONNX export and quantization: {time.perf_counter() - t:.1f} s (once per home)\n", file=sys.stderr)

    st = SbertEmbedder()
    fp32 = OnnxEmbedder(quant="fp32", models_dir=models, threads=CORES)
    int8 = OnnxEmbedder(quant="int8", models_dir=models, threads=CORES)
    for e in (st, fp32, int8):
        e.encode(["warm up"])
    b = args.batch
    rows: dict[str, Callable[[list[str]], object]] = {
        "torch, today's loop (slices of %d)" % b: lambda x: torch_today(st, x, b),
        "torch, length-sorted": lambda x: st.encode(x, batch_size=b),
        "ONNX fp32, length-sorted": lambda x: fp32.encode(x, batch_size=b),
        f"ONNX int8, one text per call, {CORES} calls at once on 1 thread each (the backend)": int8.encode,
        f"ONNX int8, one text per call, {CORES} intra-op threads": lambda x: int8_calls(int8, x, 1, CORES),
        f"ONNX int8, length-sorted batches, {CORES} intra-op threads (batch-dependent)":
            lambda x: int8_calls(int8, x, b, CORES),
    }
    pools: list[Workers] = []
    if not args.no_workers:
        for kind, label in (("torch", "torch, length-sorted"), ("int8", "ONNX int8, one text per call")):
            w = Workers(kind, models)
            pools.append(w)
            rows[f"2 processes x 1 thread: {label}"] = w

    # quality beside speed: cosine to today's torch vectors, and int8's batch dependence
    ref = torch_today(st, abstracts, b)
    cos = {name: float((np.asarray(fn(abstracts[:60])) * ref[:60]).sum(1).min())
           for name, fn in list(rows.items())[1:6]}

    rates: dict[str, dict[str, list[float]]] = {"abstracts": {k: [] for k in rows}, "titles": {k: [] for k in rows}}
    for _ in range(args.runs):
        for kind, texts in (("abstracts", abstracts), ("titles", titles)):
            for name, fn in rows.items():
                t = time.perf_counter()
                fn(texts)
                rates[kind][name].append(len(texts) / (time.perf_counter() - t))
    for w in pools:
        w.close()

    base = next(iter(rows))
    print(f"{args.papers} SciFact texts, {CORES} cores, batch {b}, median of {args.runs} interleaved runs\n")
    print("| path | abstracts/s | x today | titles/s | x today | min cosine to torch (60 abstracts) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in rows:
        cells = []
        for kind in ("abstracts", "titles"):
            r = statistics.median(rates[kind][name])
            ratio = statistics.median(x / y for x, y in zip(rates[kind][name], rates[kind][base]))
            cells += [f"{r:.1f}", f"{ratio:.2f}"]
        c = f"{cos[name]:.4f}" if name in cos else ("1" if name == base else "")
        print(f"| {name} | " + " | ".join(cells) + f" | {c} |")
    tmp.cleanup()


if __name__ == "__main__":
    main()
