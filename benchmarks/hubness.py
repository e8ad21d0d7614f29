"""Hubness of similar-paper lists: plain cosine neighbours against paperboy's re-ranking
(``paperboy/services/similar.py``: cosine + lexical weight x TF-IDF cosine - hub weight x CSLS hub score).

Every paper with a vector in the store gets its k-paper list (k=10) from ``SimilarPapers.neighbours``,
once by cosine and once per (hub weight, lexical weight) pair. N_k(y) is how many lists paper y appears in; its skewness is the
usual hubness measure (Radovanović et al., 2010). Reported per ranking: skewness and max of N_k, the
share of lists holding one of that ranking's top-1% papers by N_k (and one of the cosine ranking's),
the share of papers in no list (anti-hubs), the mean cosine of the listed papers, the overlap with
the cosine list, and p50/p99 per ``neighbours()`` call (with the lexical term: its TF-IDF cosines
included). Precision needs labels: ``paperboy eval similar``. Hub scores are timed cold (fresh cache dir),
loaded from the cache, and computed through the HNSW graph's batch search (the path taken above
~100k papers) to compare time and scores.

Needs a store with embeddings (``paperboy ingest ../shared/data/arxiv/quant_ph_records.jsonl.gz &&
paperboy embed``, ~30 min on 2 cores). Opening it brings its vector index up to date (a write under
--home, as any search does). Run: ``.venv/bin/python benchmarks/hubness.py [--home DIR]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from paperboy.engine import Engine
from paperboy.services import similar as smod
from paperboy.services.similar import SimilarPapers


def lists(sp: SimilarPapers, ids: np.ndarray, k: int, hubness: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, k) neighbour ids (-1 padded) and cosines of every paper, and each call's seconds."""
    out, cos, took = np.full((len(ids), k), -1, np.int64), np.full((len(ids), k), np.nan), np.empty(len(ids))
    for r, i in enumerate(ids.tolist()):
        t = time.perf_counter()
        got = sp.neighbours(i, k, hubness=hubness)
        took[r] = time.perf_counter() - t
        out[r, :len(got)] = [g[0] for g in got]
        cos[r, :len(got)] = [g[1] for g in got]
    return out, cos, took


def k_occurrence(ids: np.ndarray, nbrs: np.ndarray) -> np.ndarray:
    """N_k: in how many lists each paper (row of the sorted ``ids``) appears."""
    return np.bincount(np.searchsorted(ids, nbrs[nbrs >= 0]), minlength=len(ids)).astype(np.float64)


def top_percent(nk: np.ndarray) -> np.ndarray:
    return np.argsort(-nk, kind="stable")[:max(1, len(nk) // 100)]


def stats(ids: np.ndarray, nbrs: np.ndarray, cos: np.ndarray, took: np.ndarray, plain: np.ndarray,
          plain_hubs: np.ndarray) -> dict[str, float]:
    nk = k_occurrence(ids, nbrs)
    hubs = top_percent(nk)

    def in_list(h: np.ndarray) -> float:  # share of lists holding one of these papers
        return float(np.isin(nbrs, ids[h]).any(axis=1).mean())

    overlap = np.mean([len(set(a) & set(b)) for a, b in zip(nbrs.tolist(), plain.tolist())]) / nbrs.shape[1]
    return {"skew": float(((nk - nk.mean()) ** 3).mean() / nk.std() ** 3), "max": nk.max(),
            "hub_lists": in_list(hubs), "plain_hub_lists": in_list(plain_hubs), "anti": (nk == 0).mean(),
            "cos": float(np.nanmean(cos)), "overlap": overlap, "p50": np.percentile(took, 50) * 1e3,
            "p99": np.percentile(took, 99) * 1e3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--home", type=Path, default=Path("/tmp/paperboy-quantph"))
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--bank-k", type=int, default=50)
    ap.add_argument("--weights", default="0.5:0.5,0.5:0,1:0",
                    help="comma-separated HUB:LEXICAL weight pairs, one re-ranked column each (default first)")
    ap.add_argument("--candidates", type=int, default=100)
    args = ap.parse_args()

    with Engine.from_settings(home=args.home) as engine:
        run(engine, args)


def run(engine: Engine, args: argparse.Namespace) -> None:
    papers = engine.stats()["papers"]
    t = time.perf_counter()
    vi = engine.vectors()
    t_sync = time.perf_counter() - t
    if vi is None or len(vi) < 2:
        raise SystemExit(f"no embeddings in {args.home}: run paperboy embed first")
    ids = np.sort(vi.matrix()[0])
    hnsw = "HNSW" if vi._hnsw is not None else "exact"
    print(f"{len(vi):,} vectors for {papers:,} papers in {args.home} ({vi.model_id}, dim {vi.dim}, "
          f"{hnsw} search; index loaded in {t_sync:.1f} s)")

    cols: dict[str, dict[str, float]] = {}
    timing: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        plain_sp = SimilarPapers(vi, None, bank_k=args.bank_k, candidates=args.candidates)
        plain, cos, took = lists(plain_sp, ids, args.k, hubness=False)
        plain_hubs = top_percent(k_occurrence(ids, plain))
        cols["cosine"] = stats(ids, plain, cos, took, plain, plain_hubs)
        weights = [tuple(float(x) for x in w.split(":")) for w in args.weights.split(",")]
        cache = Path(tmp) / "hub"
        t = time.perf_counter()
        h = SimilarPapers(vi, cache, bank_k=args.bank_k).hub_scores()
        cold = time.perf_counter() - t
        t = time.perf_counter()
        warm_sp = SimilarPapers(vi, cache, bank_k=args.bank_k)
        warm_sp.hub_scores()
        timing.append(f"hub scores for {len(h.ids):,} papers in {cold:.1f} s ({warm_sp.last_refresh['method'] or 'exact'} "
                      f"search of the bank), loaded from the cache in {(time.perf_counter() - t) * 1e3:.0f} ms")
        engine.tfidf()  # built (or loaded) before timing: a served instance has it from `paperboy embed`
        for hub_w, lex_w in weights:
            sp = SimilarPapers(vi, cache, bank_k=args.bank_k, hub_weight=hub_w, lexical_weight=lex_w,
                               candidates=args.candidates, lexical=engine.tfidf_cosines)
            nbrs, cos, took = lists(sp, ids, args.k, hubness=True)
            cols[f"hub {hub_w:g}, lexical {lex_w:g}"] = stats(ids, nbrs, cos, took, plain, plain_hubs)
        if hnsw == "HNSW":
            smod._EXACT_PAIRS, pairs = 0, smod._EXACT_PAIRS  # force the graph's batch search
            sp = SimilarPapers(vi, None, bank_k=args.bank_k)
            t = time.perf_counter()
            hh = sp.hub_scores()
            smod._EXACT_PAIRS = pairs
            d = np.abs(hh.h - h.h)
            timing.append(f"hub scores through {sp.last_refresh['method']} batch search: "
                          f"{time.perf_counter() - t:.1f} s, |h_hnsw - h| mean {d.mean():.4f}, max {d.max():.3f}")

    rows = [("skewness of N_k", "skew", "{:.2f}"), ("max N_k", "max", "{:.0f}"),
            ("lists with a top-1% paper (by N_k) of this ranking", "hub_lists", "{:.1%}"),
            ("lists with a top-1% paper of the cosine ranking", "plain_hub_lists", "{:.1%}"),
            ("papers in no list (anti-hubs)", "anti", "{:.1%}"), ("mean cosine of listed papers", "cos", "{:.3f}"),
            ("overlap with the cosine list", "overlap", "{:.1%}"),
            ("neighbours() p50 ms", "p50", "{:.2f}"), ("neighbours() p99 ms", "p99", "{:.2f}")]
    print(f"\nk={args.k}, bank_k={args.bank_k}, candidates={args.candidates}, {len(ids):,} lists\n")
    print("| metric | " + " | ".join(cols) + " |\n|---|" + "--:|" * len(cols))
    for label, key, fmt in rows:
        print(f"| {label} | " + " | ".join(fmt.format(c[key]) for c in cols.values()) + " |")
    print()
    for line in timing:
        print(f"- {line}")


if __name__ == "__main__":
    main()
