"""Search quality per query type, for bm25, dense and both hybrid fusions (issue 11):

- claims: long natural-language queries, the BEIR SciFact test claims (nDCG@10 against their qrels);
- keywords: short keyword queries made from the topic folder names of a topic-folder file, no hand
  tuning ("Medical_Image_Segmentation" -> "medical image segmentation"; relevant = the folder's papers;
  nDCG@10 and P@10);
- titles: each paper's exact title as the query (a seeded sample of the SciFact documents and of the
  topic papers; relevant = the papers with that normalized title), success@1 and MRR@10;
- half titles: the first half of the words of those titles of 6 words or more (a half-remembered
  title, which the exact-title rule does not catch), MRR@10.

Every hybrid row is run with and without the exact-title rule (``Searcher.exact_title_first``); the
cut-off is off as in ``paperboy eval beir``. Latency: ``Searcher.rank`` over every query with the rule
off and on (interleaved; query vectors cached, so it is the ranking alone), and the rule's own lookup.

Uses the store ``paperboy eval beir`` built for SciFact, and a home holding the topic papers
(``paperboy ingest jsonl FILE --map id=url,date=year`` + ``paperboy embed``), which is copied first
(opening it may rebuild its lexical index).

Run: ``.venv/bin/python benchmarks/search_types.py --beir-home ~/.local/share/paperboy/eval/scifact
--topics-home HOME``
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from paperboy.engine import Engine
from paperboy.eval.beir import doc_ids, load_qrels, load_queries, mrr, ndcg, plain_query
from paperboy.eval.topics import read_rows, resolve
from paperboy.normalize import title_key

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
Task = tuple[str, dict[str, int]]  # (query, relevant doc -> grade)


def cached_encoder(engine: Engine) -> None:
    """Encode each query once for all methods (the vectors do not depend on the method)."""
    enc, memo = engine.embedder.encode_query, {}
    engine.embedder.encode_query = lambda text: memo[text] if text in memo else memo.setdefault(text, enc(text))


def stored_titles(store: Any) -> dict[int, str]:
    """Paper id -> title as stored ('' for an untitled document; ``Paper.title`` would show its text)."""
    out: dict[int, str] = {}
    rev = 0
    while rows := store.papers_since(rev, 50_000):
        out.update({r["id"]: r["title"] for r in rows})
        rev = rows[-1]["rev"]
    return out


def title_tasks(titles: dict[int, str], ids: list[int], n: int, seed: int = 0) -> list[Task]:
    """``n`` sampled papers' titles as queries; relevant = every paper with the same title key."""
    by_key: dict[str, list[int]] = {}
    for i, t in titles.items():
        if k := title_key(t):
            by_key.setdefault(k, []).append(i)
    titled = [i for i in ids if title_key(titles.get(i, ""))]
    pick = random.Random(seed).sample(titled, min(n, len(titled)))
    return [(titles[i], {str(j): 1 for j in by_key[title_key(titles[i])]}) for i in pick]


def half_titles(tasks: list[Task]) -> list[Task]:
    """A remembered part of a title: the first half of the words of titles of 6 words or more
    (the rule does not fire; relevant = the same papers)."""
    out = []
    for title, rel in tasks:
        w = title.split()
        if len(w) >= 6:
            out.append((" ".join(w[:(len(w) + 1) // 2]), rel))
    return out


def keyword_tasks(folders: dict[str, list[int]]) -> list[Task]:
    return [(name.replace("_", " ").lower(), {str(i): 1 for i in ids}) for name, ids in sorted(folders.items())]


def run(searcher: Any, tasks: list[Task], mode: str, ids: Callable[[list[dict]], list[str]]) -> list[list[str]]:
    return [ids(searcher.rank(plain_query(text), mode, 100, cutoff=False)[0]) for text, _ in tasks]


def rule_latency(searcher: Any, tasks: list[Task], mode: str, out: dict[bool, list[float]]) -> None:
    """ms per ``rank`` with the exact-title rule off and on, interleaved query by query (in
    alternating order) so that load on the machine weighs on both alike."""
    for n, (text, _) in enumerate(tasks):
        for rule in ((False, True) if n % 2 else (True, False)):
            searcher.exact_title_first = rule
            t = time.perf_counter()
            searcher.rank(plain_query(text), mode, 100, cutoff=False)
            out[rule].append((time.perf_counter() - t) * 1000)


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--beir-home", type=Path, required=True, help="the SciFact store of paperboy eval beir")
    ap.add_argument("--beir", type=Path, default=SHARED / "beir" / "scifact")
    ap.add_argument("--topics-home", type=Path, required=True, help="a home with the topic papers (copied)")
    ap.add_argument("--topics", type=Path, default=SHARED / "topics" / "dev_topic_papers.jsonl")
    ap.add_argument("--titles", type=int, default=1000, help="title queries per corpus (seeded sample)")
    ap.add_argument("--alphas", default="0.3,0.4,0.5,0.6,0.7", help="dense weights to try in score fusion")
    args = ap.parse_args()
    alphas = [float(a) for a in args.alphas.split(",")]
    methods: list[tuple[str, str, str | None, float | None, bool]] = [
        ("bm25", "bm25", None, None, False), ("bm25", "bm25", None, None, True), ("dense", "dense", None, None, False),
        ("hybrid rrf", "hybrid", "rrf", None, False), ("hybrid rrf", "hybrid", "rrf", None, True)]
    for a in alphas:
        methods += [(f"hybrid score a={a}", "hybrid", "score", a, False), (f"hybrid score a={a}", "hybrid", "score", a, True)]
    results: dict[tuple[str, bool], dict[str, float]] = {}
    latency: dict[str, dict[bool, list[float]]] = {m: {False: [], True: []} for m in ("bm25", "hybrid")}
    lookup_ms: list[float] = []

    with tempfile.TemporaryDirectory() as tmp:
        topics_home = Path(tmp) / "topics"
        shutil.copytree(args.topics_home, topics_home)
        for corpus, home in (("scifact", args.beir_home), ("topics", topics_home)):
            with Engine.from_settings(home=home) as engine:
                cached_encoder(engine)
                s = engine.searcher()
                store = engine.store
                if corpus == "scifact":
                    doc_of = doc_ids(store)
                    queries, qrels = load_queries(args.beir / "queries.jsonl"), load_qrels(args.beir / "qrels" / "test.tsv")
                    sets = {"claims": [(queries[q], rel) for q, rel in qrels.items()]}
                    titles = title_tasks(stored_titles(store), sorted(doc_of), args.titles)
                    # title tasks are keyed by row id; claims by BEIR doc id
                    sets["scifact titles"] = titles
                    sets["scifact half titles"] = half_titles(titles)
                    ids_of = {"claims": lambda rows: [doc_of[r["id"]] for r in rows]}
                else:
                    folders, missed = resolve(store, read_rows(args.topics))
                    every = sorted({i for m in folders.values() for i in m})
                    titles = title_tasks(stored_titles(store), every, args.titles)
                    sets = {"keywords": keyword_tasks(folders), "topic titles": titles, "topic half titles": half_titles(titles)}
                    ids_of = {}
                for text, _ in sets.get("scifact titles", sets.get("topic titles", [])):
                    t = time.perf_counter()
                    s.lexical.title_matches(text)
                    lookup_ms.append((time.perf_counter() - t) * 1000)
                default = s.fusion, s.alpha
                for label, mode, fusion, alpha, rule in methods:
                    s.fusion, s.alpha, s.exact_title_first = fusion or "rrf", alpha or 0.5, rule
                    res = results.setdefault((label, rule), {})
                    for name, tasks in sets.items():
                        ids = ids_of.get(name, lambda rows: [str(r["id"]) for r in rows])
                        ranked = run(s, tasks, mode, ids)
                        rels = [rel for _, rel in tasks]
                        if "half titles" in name:
                            res[f"{name} MRR@10"] = mean([mrr(r, rel) for r, rel in zip(ranked, rels)])
                        elif "titles" in name:
                            res[f"{name} S@1"] = mean([float(bool(r[:1]) and r[0] in rel) for r, rel in zip(ranked, rels)])
                            res[f"{name} MRR@10"] = mean([mrr(r, rel) for r, rel in zip(ranked, rels)])
                        else:
                            res[f"{name} nDCG@10"] = mean([ndcg(r, rel) for r, rel in zip(ranked, rels)])
                            if name == "keywords":
                                res["keywords P@10"] = mean([len(set(r[:10]) & set(rel)) / 10 for r, rel in zip(ranked, rels)])
                s.fusion, s.alpha = default  # the settings' defaults: what a site runs
                for mode in latency:
                    for tasks in sets.values():
                        rule_latency(s, tasks, mode, latency[mode])
                counts = {k: len(v) for k, v in sets.items()}
                print(f"{corpus}: {counts}" + (f", {missed} topic rows matched no paper" if corpus == "topics" else ""))

    cols = ["claims nDCG@10", "keywords nDCG@10", "keywords P@10", "scifact titles S@1", "scifact titles MRR@10",
            "topic titles S@1", "topic titles MRR@10", "scifact half titles MRR@10", "topic half titles MRR@10"]
    print()
    print("| method | exact-title rule | " + " | ".join(cols) + " |")
    print("|---|---|" + "--:|" * len(cols))
    for (label, rule), res in results.items():
        print(f"| {label} | {'on' if rule else 'off'} | " + " | ".join(f"{res[c]:.3f}" for c in cols) + " |")
    print("\n| rank(), default fusion, every query above | rule off p50 / p90 ms | rule on p50 / p90 ms |")
    print("|---|--:|--:|")
    for mode, t in latency.items():
        q = {r: statistics.quantiles(t[r], n=10) for r in t}
        print(f"| {mode} | {statistics.median(t[False]):.2f} / {q[False][-1]:.2f} "
              f"| {statistics.median(t[True]):.2f} / {q[True][-1]:.2f} |")
    print(f"\nexact-title lookup alone (LexicalIndex.title_matches): p50 {statistics.median(lookup_ms):.3f} ms, "
          f"p99 {sorted(lookup_ms)[int(0.99 * len(lookup_ms))]:.3f} ms over {len(lookup_ms)} titles")


if __name__ == "__main__":
    main()
