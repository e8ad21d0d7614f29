"""A reader's recommendations at two (or more) corpus sizes: does a request grow with the corpus?

For each home (an embedded store: the 2,026 dev topic papers of ``paperboy eval recs --topics``, the
38,858 quant-ph papers, ...) the engine's own recommender (``services/recommend.py``, as pages, API,
feeds and digests use it) serves ``--readers`` readers with every signal: a library of 50 (25
nearest neighbours of each of two random papers, so two interests), 3 dismissed papers, an interest
statement (the first seed's title, embedded by the real model) and the reader's candidate rules.
Each reader asks ``--repeats`` times (``warm``: their models are cached, as on a second page view),
then saves one more paper and asks again (``cold``: that reader's models are retrained; the first
request of each reader is cold too). The statement is embedded once per reader, outside the timing
(``library.reader_for`` does that per request, ~10 ms). Numeric libraries run on one thread, as in
``paperboy serve``. Printed: a Markdown table of p50/p99 per home for cold and warm requests.

Run it under the code to compare (``PYTHONPATH=<checkout>``): the figures before issue 14 come
from the same script on the older code, where every request was cold. Opening a home brings its
indexes up to date (a write under --home, as any search does): point it at copies.
``nice -n 10 .venv/bin/python benchmarks/recs_scale.py --home /tmp/dev --home /tmp/qph [--json PATH]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from paperboy.engine import Engine
from paperboy.services.library import rules
from paperboy.services.recommend import Reader
from paperboy.threads import limit_numeric_threads

PROFILE = {"include_terms": [], "exclude_terms": [], "categories": []}


def percentiles(xs: list[float]) -> tuple[float, float]:
    return (float(np.percentile(xs, 50)) * 1e3, float(np.percentile(xs, 99)) * 1e3) if xs else (float("nan"),) * 2


def measure(home: Path, n_readers: int, repeats: int, seed: int) -> dict[str, Any]:
    with Engine.from_settings(home=home) as engine:
        t = time.perf_counter()
        rec = engine.recommender()  # loads vectors, lexical and TF-IDF indexes once, outside the timing
        vectors = engine.vectors()
        assert rec is not None and vectors is not None, f"{home}: no embedded corpus"
        ids, _ = vectors.matrix()
        ids = np.array(ids)
        rng = np.random.default_rng(seed)
        keep = rules(engine.store, PROFILE)
        rec.recommend(Reader([int(ids[0])]), 20, keep=keep)  # the first request opens TF-IDF and the window
        opened = time.perf_counter() - t
        cold: list[float] = []
        warm: list[float] = []
        for _ in range(n_readers):
            a, b = (int(i) for i in rng.choice(ids, 2, replace=False))
            lib = list(dict.fromkeys(int(i) for s in (a, b) for i in vectors.search(vectors.vector(s), 26)[0]))[:50]
            near = [int(i) for i in vectors.search(vectors.vector(a), 80)[0] if int(i) not in lib]
            negatives, extra = near[:3], near[3]
            title = engine.store.get_papers([a])[a].title
            statement = engine.embedder.encode_query(title)

            def ask(positives: list[int]) -> float:
                reader = Reader(list(positives), list(negatives), statement, set(positives) | set(negatives))
                t0 = time.perf_counter()
                recs, _ = rec.recommend(reader, 20, keep=keep)
                assert recs, "no recommendations"
                return time.perf_counter() - t0
            cold.append(ask(lib))
            warm += [ask(lib) for _ in range(repeats)]
            cold.append(ask(lib + [extra]))  # a save: this reader's models are retrained
        return {"home": str(home), "papers": len(vectors), "readers": n_readers, "open_s": opened,
                "cold_p50_ms": percentiles(cold)[0], "cold_p99_ms": percentiles(cold)[1],
                "warm_p50_ms": percentiles(warm)[0], "warm_p99_ms": percentiles(warm)[1],
                "window": engine.settings.get("recs_recent_window")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--home", type=Path, action="append", required=True, help="an embedded home; repeat")
    ap.add_argument("--readers", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5, help="warm requests per reader")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--label", default="", help="a name for the code measured (e.g. before / after)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    limit_numeric_threads(1)
    rows = [measure(h, args.readers, args.repeats, args.seed) for h in args.home]
    print(f"\n{args.label} recommendations, library of 50 + 3 dismissals + statement, top 20, one thread\n")
    print("| papers | cold p50 ms | cold p99 ms | warm p50 ms | warm p99 ms | first request s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['papers']:,} | {r['cold_p50_ms']:.0f} | {r['cold_p99_ms']:.0f} | {r['warm_p50_ms']:.0f} "
              f"| {r['warm_p99_ms']:.0f} | {r['open_s']:.1f} |")
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        print(f"\ngrowth {a['papers']:,} -> {b['papers']:,} papers ({b['papers'] / a['papers']:.1f}x): "
              f"cold p50 {b['cold_p50_ms'] / a['cold_p50_ms']:.2f}x, warm p50 {b['warm_p50_ms'] / a['warm_p50_ms']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"label": args.label, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
