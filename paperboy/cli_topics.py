"""``paperboy topics``: fit the topic map (a batch step) and list its topics."""

from __future__ import annotations

import click

from .cli import Context, emit, errors_to_exit, json_option


@click.group("topics")
def topics_group() -> None:
    """The topic map: topics over the whole corpus (NMF on TF-IDF), shown on /topics."""


@topics_group.command("fit")
@click.option("--k", type=click.IntRange(2, 500), help="Number of topics (default: about sqrt(papers)/2, 4..60).")
@json_option
@click.pass_obj
def topics_fit(obj: Context, k: int | None, as_json: bool) -> None:
    """Refit the topics on every paper and save them under <home>/index/topics. New papers join the
    fitted topics as they arrive (embed, web workers); refit when the corpus has changed a lot."""
    from .services.topics import fit_topics

    with errors_to_exit(), obj.engine() as engine:
        model = fit_topics(engine, k)
        out = {"topics": model.k, "papers": len(model.ids), "fit_seconds": model.meta["fit_seconds"],
               "labels": model.labels}
    emit(out, as_json, lambda: f"topics: {model.k} topics over {len(model.ids)} papers in "
                               f"{model.meta['fit_seconds']} s; see /topics or `paperboy topics list`")


@topics_group.command("list")
@json_option
@click.pass_obj
def topics_list(obj: Context, as_json: bool) -> None:
    """The topics: slug, papers, papers of the last 30 days, rise, label."""
    with errors_to_exit(), obj.engine() as engine:
        infos = engine.topics().infos(engine.tfidf())
        rows = [i.as_json() for i in infos]
    emit(rows, as_json, lambda: "\n".join(
        [f"{'slug':32} {'papers':>7} {'30 days':>7} {'rise':>5}  label"]
        + [f"{r['slug'][:32]:32} {r['papers']:7d} {r['recent_papers']:7d} {r['rise']:5.2f}  {r['label']}"
           for r in sorted(rows, key=lambda r: -r["papers"])]))
