"""Calibrate the relevance cut-off on BEIR SciFact: how many relevant documents survive it, and how
many results queries about nothing in the corpus still get.

On-topic: the 300 SciFact test claims (their judged-relevant documents). Off-topic: 30 queries from
other fields (sport, cooking, law, music, quantum physics...), which SciFact's biomedical abstracts do
not answer. Uses the store ``paperboy eval beir`` built (run that first).

Run: ``.venv/bin/python benchmarks/cutoff.py --home ~/.local/share/paperboy/eval/scifact``
"""

from __future__ import annotations

import argparse
from pathlib import Path

from paperboy.engine import Engine
from paperboy.eval.beir import doc_ids, load_qrels, load_queries, ndcg, plain_query

OFF_TOPIC = [
    "football transfer window rumours", "best sourdough bread recipe", "medieval castle architecture",
    "jazz guitar chord progressions", "how to file taxes as a freelancer", "chess opening theory for beginners",
    "renaissance oil painting techniques", "stock market index fund returns", "tips for learning to surf",
    "history of the roman senate", "wedding photography lighting", "electric guitar amplifier tubes",
    "copyright law for song lyrics", "formula one tyre strategy", "knitting patterns for winter scarves",
    "quantum error correcting surface codes", "black hole information paradox", "compiler register allocation",
    "graph neural networks for recommendation", "blockchain consensus protocols", "volcano eruption forecasting",
    "desert hiking trails in utah", "espresso machine maintenance", "video game speedrun routes",
    "origami crane folding", "parliamentary election polling", "sailing knots for beginners",
    "opera singers of the 19th century", "mountain bike suspension setup", "cryptocurrency tax rules",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--home", type=Path, required=True, help="the eval store of paperboy eval beir")
    ap.add_argument("--beir", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/beir/scifact")
    args = ap.parse_args()
    with Engine.from_settings(home=args.home) as engine:
        s = engine.searcher()
        doc_of = doc_ids(engine.store)
        queries, qrels = load_queries(args.beir / "queries.jsonl"), load_qrels(args.beir / "qrels" / "test.tsv")
        on = {qid: s.rank(plain_query(queries[qid]), "hybrid", 100, cutoff=False)[0] for qid in qrels}
        off = [s.rank(plain_query(q), "hybrid", 100, cutoff=False)[0] for q in OFF_TOPIC]
        print("| z_min | min_cosine | relevant kept | nDCG@10 | results/on-topic query | results/off-topic query | off-topic queries with 0 |")
        print("|--:|--:|--:|--:|--:|--:|--:|")
        for z_min in (0.0, 1.0, 2.0, 3.0):
            for floor in (0.0, 0.15, 0.2, 0.25, 0.3):
                s.z_min, s.min_cosine = z_min, floor
                kept = total = 0
                nd = n_on = 0.0
                for qid, rows in on.items():
                    alive = [r for r in rows if s._relevant(r)]
                    rel = qrels[qid]
                    total += sum(doc_of[r["id"]] in rel for r in rows)
                    kept += sum(doc_of[r["id"]] in rel for r in alive)
                    nd += ndcg([doc_of[r["id"]] for r in alive], rel)
                    n_on += len(alive)
                sizes = [len([r for r in rows if s._relevant(r)]) for rows in off]
                print(f"| {z_min} | {floor} | {kept / max(total, 1):.3f} | {nd / len(on):.4f} | {n_on / len(on):.1f} "
                      f"| {sum(sizes) / len(sizes):.1f} | {sum(x == 0 for x in sizes)}/{len(sizes)} |")


if __name__ == "__main__":
    main()
