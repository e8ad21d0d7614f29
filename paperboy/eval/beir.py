"""Evaluation on any BEIR-format folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.

Reports nDCG@10, recall@100 and MRR@10 (binary or graded gains, as pytrec_eval computes them) for
BM25, dense and the hybrid fusions. The corpus goes into its own store (``<home>/eval/<name>``), so
embeddings are computed once and reused by later runs.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ..errors import FormatError
from ..query import Clause, Query


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """query id -> {doc id: grade}; the header line and CRLF endings are handled."""
    qrels: dict[str, dict[str, int]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t"):
            if len(row) < 3 or row[0] == "query-id":
                continue
            try:
                grade = int(row[2])
            except ValueError as e:
                raise FormatError(f"{path}: bad relevance grade {row[2]!r}") from e
            if grade > 0:
                qrels.setdefault(row[0].strip(), {})[row[1].strip()] = grade
    return qrels


def load_queries(path: Path) -> dict[str, str]:
    with open(path, "rb") as f:
        return {str(o["_id"]): str(o["text"]) for o in map(orjson.loads, f) if o}


def ndcg(ranked: list[str], rel: dict[str, int], k: int = 10) -> float:
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(rel.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall(ranked: list[str], rel: dict[str, int], k: int = 100) -> float:
    return len(set(ranked[:k]) & set(rel)) / len(rel) if rel else 0.0


def mrr(ranked: list[str], rel: dict[str, int], k: int = 10) -> float:
    return next((1.0 / (i + 1) for i, d in enumerate(ranked[:k]) if d in rel), 0.0)


def doc_ids(store: Any) -> dict[int, str]:
    """Paper row id -> BEIR document id (the tail of the canonical id ``beir:<name>:<doc id>``)."""
    out: dict[int, str] = {}
    rev = 0
    while papers := store.papers_since(rev, 50_000):
        out.update({p["id"]: p["canonical_id"].rsplit(":", 1)[-1] for p in papers})
        rev = papers[-1]["rev"]
    return out


def plain_query(text: str) -> Query:
    """A benchmark query as plain words: quotes or a leading '-' in a claim are not operators."""
    return Query(clauses=[Clause(text=text, field=None, phrase=False, negate=False)], categories=[],
                 exclude_categories=[], ids=[], date_from=None, date_to=None, sort=None, raw=text)


def evaluate(engine: Any, folder: Path, split: str = "test", modes: tuple[str, ...] = ("bm25", "dense", "hybrid"),
             fusions: tuple[str, ...] = ("rrf", "score"), progress: Callable[[int], None] | None = None
             ) -> dict[str, dict[str, float]]:
    """Run every query of ``split`` through the engine's searcher; mean metrics per method."""
    corpus, qfile, qrels_file = folder / "corpus.jsonl", folder / "queries.jsonl", folder / "qrels" / f"{split}.tsv"
    for p in (corpus, qfile, qrels_file):
        if not p.exists():
            raise FormatError(f"{folder} is not a BEIR folder: {p.name} is missing")
    engine.ingest(corpus, "beir")
    if any(m != "bm25" for m in modes):
        engine.embed(progress=progress or (lambda n: None))
    searcher = engine.searcher()
    doc_of = doc_ids(engine.store)
    queries, qrels = load_queries(qfile), load_qrels(qrels_file)
    methods = [(m, None) for m in modes if m != "hybrid"] + [("hybrid", f) for f in fusions if "hybrid" in modes]
    results: dict[str, dict[str, float]] = {}
    for mode, fusion in methods:
        if fusion:
            searcher.fusion = fusion
        sums = {"nDCG@10": 0.0, "recall@100": 0.0, "MRR@10": 0.0}
        for qid, rel in qrels.items():
            rows, _, _ = searcher.rank(plain_query(queries[qid]), mode, 100, cutoff=False)
            ranked = [doc_of[r["id"]] for r in rows]
            sums["nDCG@10"] += ndcg(ranked, rel)
            sums["recall@100"] += recall(ranked, rel)
            sums["MRR@10"] += mrr(ranked, rel)
        results[f"{mode}+{fusion}" if fusion else mode] = {k: v / len(qrels) for k, v in sums.items()}
    return results
