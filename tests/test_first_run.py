"""A new user's first `paperboy run`: the bundled sample (paperboy/sample.py) is real arXiv metadata of
several fields with authors on every paper, and the daily list and Trending are populated from the
Hugging Face upvotes it carries. The browser test runs `paperboy run --no-embed` (the README's first
command, without the minutes of embedding) in real uvicorn and looks with headless Chromium.

With ``PAPERBOY_SCREENSHOTS=docs/screenshots`` it also writes the README's screenshots (1280 px
wide PNGs of the daily list, Trending, a paper and search results); it then runs the whole
`paperboy run`, embedding included (minutes), so that the paper shows similar papers and search is
hybrid, and prints how long the run took until it served."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from paperboy import sources
from paperboy.engine import Engine
from paperboy.models import BadRecord, PaperRecord
from paperboy.sample import FILES, ingest_sample, paths
from support import CHROMIUM, free_port, serving

SHOTS = os.environ.get("PAPERBOY_SCREENSHOTS")
FIELDS = {"cs", "math", "physics", "stat"}  # arXiv's groups, by category prefix below


def group(category: str) -> str:
    """arXiv's group of a category: cs.LG -> cs, math.PR -> math, hep-th / astro-ph.CO -> physics."""
    archive = category.split(".")[0]
    return archive if archive in ("cs", "math", "stat", "q-bio", "q-fin", "eess", "econ") else "physics"


@pytest.fixture(scope="module")
def records() -> dict[str, list[PaperRecord]]:
    """Every record of every sample file, read by the source `paperboy run` reads it with."""
    out: dict[str, list[PaperRecord]] = {}
    for path, fmt in paths():
        got = list(sources.module(fmt).read(path))
        assert not [r for r in got if isinstance(r, BadRecord)], f"{path.name} has malformed records"
        out[path.name] = got
    return out


def test_every_sample_paper_has_authors_and_several_arxiv_fields_are_present(records):
    everything = [r for rs in records.values() for r in rs]
    assert 2500 <= len(everything) <= 5000
    assert all(r.arxiv_id and r.title and r.abstract for r in everything)
    assert not [r.arxiv_id for r in everything if not r.authors or not all(a.strip() for a in r.authors)]
    assert len({r.arxiv_id for r in everything}) == len(everything), "a paper is in the sample twice"
    groups = Counter(group(c) for r in everything for c in r.categories)
    assert FIELDS <= set(groups) and all(groups[g] >= 5 for g in ("cs", "math", "physics")), groups
    archives = {c.split(".")[0] for r in everything for c in r.categories}
    assert {"hep-ph", "astro-ph", "cond-mat", "quant-ph", "math", "cs"} <= archives


def test_sample_dates_are_real_and_the_hf_papers_carry_upvotes(records):
    hf = records["sample_hf.json.gz"]
    assert len(hf) == 753 and all(r.extra.get("upvotes", 0) > 0 for r in hf)
    assert len({r.submitted for r in hf}) > 60  # dozens of days with Hugging Face papers
    kaggle = records["sample.jsonl.gz"]
    # Papers known only by a year keep just the year, never a made-up 1 January.
    years = [r for r in kaggle if r.submitted and len(r.submitted) == 4]
    assert len(years) > 1000 and not any(r.categories or r.versions for r in years)
    assert all(len(r.submitted) in (4, 10) for r in kaggle if r.submitted)
    assert all(r.submitted <= (r.updated or r.submitted) for r in kaggle if r.submitted)


def test_the_sample_ingests_once(tmp_path):
    """Idempotent: a second ingest adds nothing, changes nothing and doubles no upvotes."""
    with Engine.from_settings(home=tmp_path / "home") as e:
        first = ingest_sample(e)
        ids = e.store.day_ids("2000-01-01", "2099-12-31")
        votes = e.store.votes(ids)
        second = ingest_sample(e)
        assert (first.inserted, first.skipped) == (first.read, 0) and first.read == e.stats()["papers"]
        assert (second.inserted, second.updated, second.unchanged) == (0, 0, first.read)
        assert e.store.votes(ids) == votes and sum(votes.values()) > 10_000
        assert [name for name, _ in FILES] == [p.name for p, _ in paths()]


def test_a_missing_sample_file_is_a_clear_error(tmp_path, monkeypatch):
    from paperboy import sample
    from paperboy.errors import PaperboyError

    monkeypatch.setattr(sample, "FILES", (("no-such-sample.jsonl.gz", "kaggle"),))
    with Engine.from_settings(home=tmp_path / "home") as e, pytest.raises(PaperboyError, match="no-such-sample"):
        ingest_sample(e)


def shot(page, name: str) -> None:
    """A 1280 px wide screenshot of the viewport (not the whole page: small files) into $PAPERBOY_SCREENSHOTS."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def authors_shown(page, store) -> int:
    """Check every listed paper shows its (stored) authors; the number of entries."""
    cards = page.locator("article.entry")
    n = cards.count()
    for i in range(n):
        card = cards.nth(i)
        ref = card.locator("h2 a").get_attribute("href").removeprefix("/papers/")
        paper = store.get_paper(ref)
        meta = card.locator(".meta").inner_text()
        assert paper.authors and meta.startswith(paper.authors[0]), (ref, meta)
    return n


def test_first_run_shows_a_populated_daily_list_and_trending(tmp_path, browser):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (CI installs it)")
    home, port = tmp_path / "home", free_port()
    env = dict(os.environ, PAPERBOY_HOME=str(home), PAPERBOY_WEB_PORT=str(port), HF_HUB_OFFLINE="1")
    started = time.monotonic()
    args = [sys.executable, "-m", "paperboy.cli", "run", "-q"] + ([] if SHOTS else ["--no-embed"])
    with serving(args, port, env=env, ready_path="/", timeout=3600 if SHOTS else 180) as site, \
            Engine.from_settings(home=home) as engine:
        print(f"`{' '.join(args[3:])}` served after {time.monotonic() - started:.0f} s")
        store = engine.store
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        hf_file = next(path for path, fmt in paths() if fmt == "hf-scrape")
        newest_hf = max(r.submitted for r in sources.module("hf-scrape").read(hf_file))
        # The first page: the newest day with papers (not an empty today), which is the sample's newest
        # Hugging Face day: most upvoted first, with the upvote counts.
        page.goto(site + "/")
        assert page.locator("h1").inner_text() == f"Daily papers {newest_hf}"
        assert authors_shown(page, store) >= 3
        counts = [int(c) for c in page.locator("article.entry .vote .count").all_inner_texts()]
        assert counts == sorted(counts, reverse=True) and counts[-1] > 0
        page.click("a[rel=prev]")
        page.wait_for_url("**/?date=*")
        assert page.url.rsplit("=", 1)[1] < newest_hf and authors_shown(page, store) >= 3  # the day before
        year, week, _ = date.fromisoformat(newest_hf).isocalendar()
        page.goto(f"{site}/?week={year}-W{week:02d}")
        assert authors_shown(page, store) >= 20
        shot(page, "daily")

        page.goto(site + "/trending")
        assert "Nothing trending yet" not in page.content()
        assert authors_shown(page, store) >= 20
        assert f"as of {newest_hf}" in page.locator(".note").inner_text()
        scores = [int(c) for c in page.locator("article.entry .vote .count").all_inner_texts()]
        assert all(s > 0 for s in scores)
        shot(page, "trending")

        page.locator("article.entry h2 a").first.click()
        page.wait_for_url("**/papers/**")
        paper = store.get_paper(page.url.rsplit("/papers/", 1)[1])
        assert page.locator("h1").inner_text() == paper.title
        assert paper.authors[0] in page.locator("main").inner_text()
        shot(page, "paper")

        page.goto(f"{site}/search?q=diffusion+models+for+video&mode={'hybrid' if SHOTS else 'bm25'}")
        assert authors_shown(page, store) >= 10
        shot(page, "search")
        page.close()
