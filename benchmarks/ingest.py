"""Ingest benchmark: throughput (records/s for parse + normalize + store) and peak RSS of the real
``paperboy ingest`` path, at 1x and 10x input size, to show that memory stays flat as input grows.

Inputs are built in a temporary directory from real public data under ``--data`` (default
``<repo>/../shared/data``), read-only:

* quant-ph (format ``jsonl``): ``arxiv/quant_ph_records.jsonl.gz``, 38,858 records. 1x is the file
  as is; 10x is the file followed by 9 replayed copies (gzipped, like the original).
* Kaggle snapshot (format ``kaggle``): ``arxiv/kaggle_snapshot_first200.jsonl``, 200 real lines
  replayed to 38,858 lines (1x) and 388,580 lines (10x), plain JSON lines like the real snapshot.

Copy 0 of each input keeps its real ids. Every replayed record gets a new, unique, valid new-style
arXiv id ``YYMM.NNNNN`` (YYMM 9001, 9002, ...; counter 00001..99999, ids that real arXiv never
issued), checked with ``paperboy.normalize.parse_arxiv_id``. Replayed copies also get
" (replay k)" appended to the title and ".replay-k" to the DOI: paperboy's dedup looks up stored
papers by DOI and title key, so thousands of papers sharing one title (never the case in real
data) would turn into a quadratic worst case rather than a throughput measurement. Pass
``--real-titles`` to keep titles and DOIs verbatim and measure that worst case. All other fields
stay real.

Each measurement runs ``paperboy --home <fresh dir> ingest -q --json FORMAT FILE`` in a fresh
process (started from a tiny launcher, so that it does not inherit this process's RSS), timed by
wall clock; its peak RSS is its own ru_maxrss.
The JSON summary must show every record read and inserted, none skipped. A second run over the same
file (all records unchanged: the daily re-harvest case) is timed too. Wall time includes Python
start-up, timed with ``paperboy --version`` (median of 3) and also subtracted in its own column.

Run: ``.venv/bin/python benchmarks/ingest.py`` (about 8 minutes on 2 cores), or ``--quick`` for 1x
only. ``--repeat N`` repeats each measurement (default 3 at 1x, 1 at 10x); medians are reported,
and the maximum peak RSS.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import orjson

from paperboy.normalize import parse_arxiv_id

QUANT_PH = "arxiv/quant_ph_records.jsonl.gz"
KAGGLE = "arxiv/kaggle_snapshot_first200.jsonl"
BASE = 38_858  # records at 1x: the size of the quant-ph file
PAPERBOY = Path(sys.executable).with_name("paperboy")


def new_ids() -> Iterator[str]:
    """Unique new-style arXiv ids 9001.00001, ..., 9001.99999, 9002.00001, ..."""
    for n in count():
        block, num = divmod(n, 99_999)
        year, month = divmod(block, 12)
        yield f"{90 + year:02d}{month + 1:02d}.{num + 1:05d}"


def replay(records: list[dict[str, Any]], total: int, real_titles: bool) -> Iterator[bytes]:
    """``total`` JSON lines cycling through ``records``; copies after the first get new ids."""
    ids, seen = new_ids(), set()
    for i in range(total):
        copy, obj = divmod(i, len(records))[0], records[i % len(records)]
        if copy:
            obj = dict(obj, id=next(ids))
            if not real_titles:
                obj["title"] = f"{obj['title']} (replay {copy})"
                if obj.get("doi"):
                    obj["doi"] = f"{obj['doi']}.replay-{copy}"
        parsed = parse_arxiv_id(obj["id"])
        assert parsed and parsed[0] not in seen, f"bad or duplicate id {obj['id']!r}"
        seen.add(parsed[0])
        yield orjson.dumps(obj) + b"\n"


def build(data: Path, work: Path, sizes: list[int], real_titles: bool) -> list[tuple[str, str, int, Path]]:
    """Write the inputs; returns (label, format, records, path) per measurement."""
    with gzip.open(data / QUANT_PH, "rb") as f:
        quant = [orjson.loads(line) for line in f if line.strip()]
    kaggle = [orjson.loads(line) for line in (data / KAGGLE).read_bytes().splitlines() if line.strip()]
    inputs = []
    for mult in sizes:
        q = work / f"quant_ph_{mult}x.jsonl.gz"
        if mult == 1:
            q = data / QUANT_PH  # the file as is
        else:
            with gzip.open(q, "wb", compresslevel=6) as out:
                out.writelines(replay(quant, len(quant) * mult, real_titles))
        k = work / f"kaggle_{mult}x.jsonl"
        with open(k, "wb") as out:
            out.writelines(replay(kaggle, BASE * mult, real_titles))
        inputs += [(f"quant-ph {mult}x", "jsonl", len(quant) * mult, q),
                   (f"Kaggle {mult}x", "kaggle", BASE * mult, k)]
    return inputs


# Each child runs under a tiny launcher: a child's ru_maxrss also counts the memory of the process
# it was forked from, so forking paperboy from this (input-holding) process would inflate it.
LAUNCHER = """import resource, subprocess, sys, time
t0 = time.perf_counter()
with open(sys.argv[1], "wb") as out:
    rc = subprocess.run(sys.argv[2:], stdout=out).returncode
print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)"""


def run(args: list[str], out: Path) -> tuple[float, float, int]:
    """Run ``paperboy ARGS``, stdout to ``out``; returns (wall seconds, peak RSS MiB, exit code)."""
    res = subprocess.run([sys.executable, "-c", LAUNCHER, str(out), str(PAPERBOY), *args],
                         capture_output=True, text=True, check=True)
    seconds, kib, rc = res.stdout.split()
    return float(seconds), int(kib) / 1024, int(rc)  # ru_maxrss is KiB on Linux


def ingest(home: Path, fmt: str, path: Path, expect: int, field: str) -> tuple[float, float]:
    """One ``paperboy ingest``; checks that all ``expect`` records were read and counted as ``field``."""
    out = home / "out.json"
    seconds, rss, rc = run(["--home", str(home), "ingest", "-q", "--json", fmt, str(path)], out)
    text = out.read_bytes()
    if rc != 0:
        sys.exit(f"paperboy ingest {fmt} {path} exited {rc}: {text[-2000:].decode(errors='replace')}")
    s = orjson.loads(text)
    if s["read"] != expect or s[field] != expect or s["skipped"]:
        sys.exit(f"{path}: expected {expect} {field}, got {s}")
    return seconds, rss


def measure(work: Path, fmt: str, path: Path, n: int, repeat: int) -> dict[str, float]:
    first, again, rss = [], [], []
    for r in range(repeat):
        with tempfile.TemporaryDirectory(dir=work, prefix="home-") as home:
            s, m = ingest(Path(home), fmt, path, n, "inserted")
            first.append(s)
            rss.append(m)
            again.append(ingest(Path(home), fmt, path, n, "unchanged")[0])
        print(f"  {path.name} run {r + 1}: {s:.1f} s, {m:.0f} MiB, re-ingest {again[-1]:.1f} s",
              file=sys.stderr, flush=True)
    return {"seconds": statistics.median(first), "again": statistics.median(again), "rss": max(rss)}


def main() -> None:
    default_data = Path(__file__).resolve().parents[2] / "shared/data"
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=default_data, help=f"data dir (default {default_data})")
    ap.add_argument("--quick", action="store_true", help="1x only (a smoke test)")
    ap.add_argument("--repeat", type=int, help="runs per measurement (default 3 at 1x, 1 at 10x)")
    ap.add_argument("--real-titles", action="store_true",
                    help="keep titles and DOIs of replayed copies verbatim (dedup worst case)")
    ap.add_argument("--workdir", type=Path, help="where to build inputs (default: a temp dir)")
    a = ap.parse_args()
    if not PAPERBOY.exists():
        sys.exit(f"no paperboy command next to {sys.executable}; run with the venv's python")
    sizes = [1] if a.quick else [1, 10]
    with tempfile.TemporaryDirectory(dir=a.workdir, prefix="paperboy-bench-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        inputs = build(a.data, work, sizes, a.real_titles)
        print(f"built inputs in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        versions = [run(["--version"], work / "version.txt") for _ in range(3)]
        startup, startup_rss = statistics.median(v[0] for v in versions), max(v[1] for v in versions)
        results = []
        for label, fmt, n, path in sorted(inputs, key=lambda x: (x[1], x[2])):
            repeat = a.repeat or (3 if n <= BASE else 1)
            results.append((label, fmt, n, measure(work, fmt, path, n, repeat)))
    print("| input | format | records | seconds | records/s | records/s excl. start-up "
          "| peak RSS MiB | re-ingest records/s |")
    print("|---|---|--:|--:|--:|--:|--:|--:|")
    for label, fmt, n, r in results:
        print(f"| {label} | {fmt} | {n:,} | {r['seconds']:.1f} | {n / r['seconds']:,.0f} "
              f"| {n / max(r['seconds'] - startup, 1e-9):,.0f} | {r['rss']:.0f} | {n / r['again']:,.0f} |")
    print(f"\nPython start-up (`paperboy --version`, median of 3): {startup:.2f} s, {startup_rss:.0f} MiB "
          "peak RSS; the time is included in 'seconds' and subtracted in 'excl. start-up'.")
    for fmt in ("jsonl", "kaggle"):
        peaks = [r["rss"] for _, f, _, r in results if f == fmt]  # sorted by size: 1x, 10x
        if len(peaks) == 2:
            print(f"peak RSS 10x/1x, {fmt}: {peaks[1]:.0f} / {peaks[0]:.0f} MiB = {peaks[1] / peaks[0]:.2f}")

if __name__ == "__main__":
    main()
