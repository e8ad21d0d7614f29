"""``paperboy eval``: search on BEIR folders, similar papers and recommendations on topic folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .cli import Context, emit, errors_to_exit, json_option, progress_bar
from .engine import Engine


@click.group("eval")
def eval_group() -> None:
    """Built-in evaluation."""


def _eval_engine(obj: Context, name: str) -> Engine:
    """An engine on its own store, ``<home>/eval/<name>``: the evaluation's corpus never mixes with
    the reader's papers, and its embeddings are computed once."""
    overrides = {**obj.overrides}
    base = Engine.from_settings(**overrides).settings["home"]
    overrides["home"] = base / "eval" / name
    return Engine.from_settings(**overrides)


@eval_group.command("beir")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--split", default="test", show_default=True)
@click.option("--modes", default="bm25,dense,hybrid", show_default=True, help="Comma-separated.")
@json_option
@click.pass_obj
def eval_beir(obj: Context, folder: Path, split: str, modes: str, as_json: bool) -> None:
    """nDCG@10, recall@100, MRR@10 on a BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv)."""
    from .eval.beir import evaluate

    with errors_to_exit():
        with _eval_engine(obj, folder.resolve().name) as engine, progress_bar("embed", as_json) as bar:
            table = evaluate(engine, folder, split, tuple(m.strip() for m in modes.split(",")), progress=bar)
    emit(table, as_json, lambda: "\n".join(
        [f"{'method':14} {'nDCG@10':>8} {'recall@100':>10} {'MRR@10':>8}"]
        + [f"{k:14} {v['nDCG@10']:8.4f} {v['recall@100']:10.4f} {v['MRR@10']:8.4f}" for k, v in table.items()]))


@eval_group.command("similar")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--map", "mapping", help="Field mapping for the jsonl rows (default: id=url,date=year where needed).")
@click.option("--k", default=10, show_default=True)
@click.option("--methods", default="paperboy,cosine,tfidf,arxiv-sanity", show_default=True,
              help="Comma-separated; arxiv-sanity fits one SVM per paper (about 20 per second at 2,000 papers).")
@json_option
@click.pass_obj
def eval_similar(obj: Context, path: Path, mapping: str | None, k: int, methods: str, as_json: bool) -> None:
    """P@k, R@k, nDCG@k and hubness (N_k skewness, max N_k, share never listed) of similar papers on
    topic folders (JSON lines with topic_folder): paperboy's, plain cosine, TF-IDF cosine and
    arxiv-sanity-lite's per-paper SVM. Two papers are related when they share a folder."""
    from .eval.similar import evaluate
    from .eval.topics import prepare

    with errors_to_exit():
        with _eval_engine(obj, path.name) as engine:
            with progress_bar("embed", as_json) as bar:
                folders, missed = prepare(engine, path, mapping, progress=bar)
            with progress_bar("arxiv-sanity SVMs", as_json) as bar:
                res = evaluate(engine, folders, k, [m.strip() for m in methods.split(",") if m.strip()], progress=bar)
    res["unmatched_rows"] = missed
    emit(res, as_json, lambda: "\n".join(
        [f"{res['papers']} papers in {res['folders']} folders, k = {k}"
         + (f" ({missed} rows matched no stored paper)" if missed else ""),
         f"{'method':22} {f'P@{k}':>7} {f'R@{k}':>7} {f'nDCG@{k}':>8} {'skew':>6} {f'max N{k}':>7} {'never':>6}"]
        + [f"{m:22} {v['precision']:7.4f} {v['recall']:7.4f} {v['ndcg']:8.4f} {v['skewness']:6.2f} "
           f"{v['max_occurrence']:7d} {v['never_listed']:6.1%}" for m, v in res["methods"].items()]))


def _recs_text(runs: list[dict[str, Any]], k: int) -> str:
    lines = []
    for r in runs:
        lines.append(f"seed {r['seed']}: {r['readers']} readers over {r['topics']} topics, e.g. {r['examples'][0]!r}")
        lines.append(f"  {'method':14} {f'recall@{k}':>10} {f'nDCG@{k}':>8} {f'Vendi@{k}':>8}")
        lines += [f"  {m:14} {v['recall']:10.4f} {v['ndcg']:8.4f} {v['vendi']:8.2f}" for m, v in r["methods"].items()]
    if len(runs) > 1:
        lines.append(f"mean over {len(runs)} seeds:")
        lines += [f"  {m:14} {sum(r['methods'][m]['recall'] for r in runs) / len(runs):10.4f} "
                  f"{sum(r['methods'][m]['ndcg'] for r in runs) / len(runs):8.4f} "
                  f"{sum(r['methods'][m]['vendi'] for r in runs) / len(runs):8.2f}" for m in runs[0]["methods"]]
    return "\n".join(lines)


@eval_group.command("recs")
@click.option("--topics", "topics_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Simulate readers from the topic folders of this JSON lines file (with topic_folder), "
                   "ingested into its own store; default: title phrases of the home's corpus.")
@click.option("--map", "mapping", help="Field mapping for --topics rows (default: id=url,date=year where needed).")
@click.option("--readers", default=200, show_default=True, help="Simulated readers (1-3 topics each).")
@click.option("--per-topic", default=10, show_default=True, help="Library papers (and hidden papers) per topic.")
@click.option("--k", default=20, show_default=True)
@click.option("--max-df", default=400, show_default=True, help="Largest title-phrase topic (papers with the phrase).")
@click.option("--seed", "seeds", default=(0,), multiple=True, type=int, show_default=True,
              help="Reader set; repeat for several (--seed 0 --seed 1 --seed 2).")
@json_option
@click.pass_obj
def eval_recs(obj: Context, topics_file: Path | None, mapping: str | None, readers: int, per_topic: int, k: int,
              max_df: int, seeds: tuple[int, ...], as_json: bool) -> None:
    """Recall@k, nDCG@k and Vendi diversity for paperboy's recommender, a single-centroid baseline
    and arxiv-sanity-lite's TF-IDF + SVM, on simulated readers."""
    from .eval.recs import evaluate
    from .eval.topics import prepare

    runs = []
    with errors_to_exit():
        engine = _eval_engine(obj, topics_file.name) if topics_file else obj.engine()
        with engine:
            folders = None
            if topics_file:
                with progress_bar("embed", as_json) as bar:
                    folders, _ = prepare(engine, topics_file, mapping, progress=bar)
            for seed in seeds:
                with progress_bar(f"readers (seed {seed})", as_json) as bar:
                    runs.append({"seed": seed, **evaluate(engine, readers, per_topic, k, seed, max_df, progress=bar,
                                                          folders=folders)})
    out: dict[str, Any] = runs[0]
    if len(runs) > 1:  # and the mean over the reader sets
        out = {"runs": runs, "mean": {m: {x: sum(r["methods"][m][x] for r in runs) / len(runs) for x in v}
                                      for m, v in runs[0]["methods"].items()}}
    emit(out, as_json, lambda: _recs_text(runs, k))
