"""Code and project links (issue 13): `has:code` / `has:project` / `has:hf` in the query language
(every search mode, filter-only queries newest first, exclusion), the "with code" filter of the
daily lists, Trending and the feeds, the link row on lists and paper pages (escaped, http(s) only,
rel="nofollow noopener", also in Chromium), and the lexical index rebuilt on its own after the
layout bump that added its ``has`` field.

Corpus: the embedded test corpus (``built``) plus 13 real Daily Papers abstracts
(tests/data/code_links.json, from ../shared/data/hf/paperexplorer_papers.json: code repositories,
project pages, Hub models/datasets/Spaces and none), one real quant-ph abstract whose code link is
only in its arXiv comments, and papers with hostile URLs. Which paper has what was read off the
abstracts by hand (below), not computed by the code under test."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path
from xml.etree import ElementTree

import lxml.html
import pytest
from fastapi.testclient import TestClient

from paperboy.engine import Engine
from paperboy.index.lexical import LAYOUT, SIDE, LexicalIndex
from paperboy.query import QueryError, parse_query
from paperboy.services.listing import has_kinds, paper_links, safe_url
from support import CHROMIUM, free_port, serving

DATA = Path(__file__).parent / "data"
FIXTURE = DATA / "code_links.json"
ATOM = "{http://www.w3.org/2005/Atom}"

# Read off the abstracts by hand.
CODE = {"2401.01335": "https://github.com/uclaml/SPIN", "2401.02385": "https://github.com/jzhang38/TinyLlama",
        "2402.05120": "https://anonymous.4open.science/r/more_agent_is_all_you_need",
        "2402.06187": "https://github.com/PremierTACO/premier-taco",
        "2403.10395": "https://github.com/pkunliu/Isotropic3D",
        "2402.07625": "https://github.com/yifanzhang-pro/AutoMathText",
        "1601.05262": "https://github.com/qwork-lab/chaotic-work",  # in the arXiv comments only
        "2401.99902": "https://github.com/evil/repo"}  # hostile, cut at its quote
PROJECT = {"2401.02117": "https://mobile-aloha.github.io", "2401.02416": "https://odin-seg.github.io",
           "2402.06187": "https://premiertaco.github.io", "2403.10395": "https://isotropic3d.github.io/",
           "2402.07872": "https://pivot-prompt.github.io", "2312.17653": "https://miao-ai-lab.github.io/LARP/",
           "2401.99902": "https://evil.example/", "2401.99903": "https://acme.github.io/page?a=1&b="}
HF = {"2402.07827": "https://huggingface.co/CohereForAI/aya-101",
      "2402.07872": "https://huggingface.co/spaces/pivot-prompt/pivot-prompt-demo",
      "2402.07625": "https://huggingface.co/datasets/math-ai/AutoMathText"}
NONE = {"2402.00838", "2402.00159", "2402.00786", "2401.99901"}  # real abstracts without links; a hostile one
LATEST = "2024-03-20"  # the day the comment-only and hostile papers are listed on (the newest day)

HOSTILE = [  # arXiv-snapshot records; quotes and markup try to leave the href attribute
    {"id": "2401.99901", "title": "Links that are scripts", "authors": "Eve Mallory", "categories": "cs.CR",
     "abstract": "We test links. Run javascript:alert(document.cookie) or open "
                 "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg== or vbscript:msgbox(1).",
     "comments": "<a href=\"javascript:alert(1)\">code</a>"},
    {"id": "2401.99902", "title": "Links that leave their attribute", "authors": "Eve Mallory", "categories": "cs.CR",
     "abstract": "Project page: https://evil.example/\"><script>alert(1)</script> and code at "
                 "https://github.com/evil/repo'onmouseover='alert(2)' for everyone.",
     "comments": None},
    {"id": "2401.99903", "title": "Links with markup in their query", "authors": "Eve Mallory", "categories": "cs.CR",
     "abstract": "Our website is https://acme.github.io/page?a=1&b=<img src=x onerror=alert(3)> today.",
     "comments": None},
    {"id": "1601.05262", "authors": "Real Quantum Authors", "categories": "quant-ph",
     "title": "Quantum-Classical Correspondence Principle for Work Distributions in a Chaotic System",
     "abstract": "We numerically study the work distributions in a chaotic system and examine the relationship "
                 "between quantum work and classical work. Our numerical results suggest that there exists a "
                 "correspondence principle between quantum and classical work distributions in a chaotic system. "
                 "This correspondence was proved for one-dimensional (1D) integrable systems in a recent work "
                 "[Jarzynski, Quan, and Rahav, Phys. Rev. X 5, 031038 (2015)]. Our investigation further justifies "
                 "the definition of quantum work via two point energy measurements.",
     "comments": "6 pages, 4 figures. Code: https://github.com/qwork-lab/chaotic-work"},
]


@pytest.fixture(scope="module")
def home(built, tmp_path_factory) -> Path:
    """The embedded test corpus plus the fixture's papers, the comment-only and the hostile ones,
    embedded; the last four listed on LATEST."""
    home = tmp_path_factory.mktemp("code-links") / "home"
    shutil.copytree(built[0], home)
    extra = home.parent / "hostile.jsonl"
    extra.write_text("".join(json.dumps({**r, "versions": [{"version": "v1", "created": "Wed, 20 Mar 2024 10:00:00 GMT"}]})
                             + "\n" for r in HOSTILE))
    with Engine.from_settings(home=home, store="sqlite") as e:
        e.ingest(FIXTURE)
        e.ingest(extra, "kaggle")
        for r in HOSTILE:
            e.store.submit(e.store.get_paper(r["id"]).id, None, LATEST)
        e.embed()
    return home


@pytest.fixture
def eng(home):
    with Engine.from_settings(home=home, store="sqlite", secret_key="test-key") as e:
        yield e


@pytest.fixture
def web(eng):
    from paperboy.web.app import create_app

    with TestClient(create_app(eng)) as c:
        yield c


def ids(result) -> list[str]:
    return [h.paper.arxiv_id for h in result.hits]


def css(tag: str, cls: str) -> str:
    """XPath of a ``tag`` element with class ``cls`` (what CSS writes ``tag.cls``)."""
    return f"{tag}[contains(concat(' ', normalize-space(@class), ' '), ' {cls} ')]"


ENTRY, PAPER, LINKS = css("article", "entry"), css("article", "paper"), css("p", "links")


def anchors(html: str, xpath: str = "//a") -> list[lxml.html.HtmlElement]:
    return lxml.html.fromstring(html).xpath(xpath)


def entry_ids(html: str) -> list[str]:
    """arXiv ids of the entries of a list page, in order."""
    return [a.get("href").rsplit("/", 1)[-1] for a in anchors(html, f"//{ENTRY}//h2/a")]


# -- the query language ---------------------------------------------------------------------------


def test_has_parses_and_an_unknown_kind_says_which_exist():
    q = parse_query('graph HAS:Code has:code -has:hf has:"project"')
    assert (q.has, q.exclude_has, q.free_text(), q.has_text) == (["code", "project"], ["hf"], "graph", True)
    assert not parse_query("has:code -has:project").has_text  # filters only: newest first
    assert parse_query("has: code").clauses[0].text == "has:"  # a bare prefix is a word, as ti: is
    for bad in ("has:github", "-has:pdf", 'has:"code and data"', "has:" + "x" * 5000):
        with pytest.raises(QueryError, match=r"unknown 'has:.{0,40}': use has:code, has:project, has:hf$"):
            parse_query(bad, max_length=10_000)


def test_kinds_of_real_abstracts(eng):
    for arxiv_id in json.loads(FIXTURE.read_text()) | {r["id"]: r for r in HOSTILE}:
        p = eng.store.get_paper(arxiv_id)
        want = tuple(k for k, table in (("code", CODE), ("project", PROJECT), ("hf", HF)) if arxiv_id in table)
        assert has_kinds(p) == want, arxiv_id
        got = {link.kind: link.url for link in paper_links(p)}
        assert got == {k: t[arxiv_id] for k, t in (("code", CODE), ("project", PROJECT), ("hf", HF))
                       if arxiv_id in t}, arxiv_id


# -- search: every mode, filters only, exclusion ----------------------------------------------------


def test_has_code_finds_exactly_the_papers_with_code(eng):
    res = eng.search("has:code", per_page=100)
    assert set(ids(res)) == set(CODE) and res.total == len(CODE)
    dates = [h.paper.submitted for h in res.hits]
    assert dates == sorted(dates, reverse=True)  # filters only: newest first
    every = eng.search("", per_page=100).total
    assert eng.search("-has:code", per_page=100).total == every - len(CODE)
    assert not set(ids(eng.search("-has:code", per_page=100))) & set(CODE)
    assert set(ids(eng.search("has:code has:project"))) == set(CODE) & set(PROJECT)
    assert set(ids(eng.search("has:hf"))) == set(HF)
    assert set(ids(eng.search("has:hf -has:code"))) == set(HF) - set(CODE)
    assert set(ids(eng.search("has:code cat:quant-ph"))) == {"1601.05262"}
    # has:project over the whole corpus: the hand-read ones and the project pages of the arXiv
    # snapshot's comments (paper_meta's rule), nothing else
    projects = set(ids(eng.search("has:project", per_page=100)))
    assert set(PROJECT) <= projects
    assert all("project" in has_kinds(eng.store.get_paper(i)) for i in projects)
    # paging through a filter-only list gives each paper once
    pages = [ids(eng.search("has:code", per_page=3, page=n)) for n in (1, 2, 3)]
    assert sum(pages, []) == ids(res)


@pytest.mark.parametrize("mode", ["bm25", "hybrid", "dense"])
def test_has_code_in_every_mode(eng, mode):
    text = "language model"
    everything = set(ids(eng.search(text, mode=mode, per_page=50)))
    with_code = set(ids(eng.search(f"{text} has:code", mode=mode, per_page=50)))
    without = set(ids(eng.search(f"{text} -has:code", mode=mode, per_page=50)))
    assert with_code and with_code <= set(CODE), mode
    assert without and not without & set(CODE), mode
    assert everything - with_code - without == set()  # a paper has code or has not
    # an exact title keeps its filter: the TinyLlama title finds it with has:code, not with -has:code
    title = "TinyLlama: An Open-Source Small Language Model"
    assert ids(eng.search(f"{title} has:code", mode=mode))[:1] == ["2401.02385"]
    assert "2401.02385" not in ids(eng.search(f"{title} -has:code", mode=mode))


def test_the_comments_reach_the_index(eng):
    row = next(r for r in eng.store.papers_since(0, 10_000) if r["arxiv_id"] == "1601.05262")
    assert row["comments"] == HOSTILE[3]["comments"]
    assert ids(eng.search('"work distributions" has:code', mode="bm25")) == ["1601.05262"]


def test_unknown_kind_is_a_clear_error_on_every_front_end(web):
    for path in ("/search?q=has:github", "/api/search?q=has:github", "/feeds/search.atom?q=has:github"):
        r = web.get(path)
        assert r.status_code == 400, path
        assert "use has:code, has:project, has:hf" in r.text, path
    assert web.get("/api/search", params={"q": "-has:code attention"}).status_code == 200


# -- lists and feeds ------------------------------------------------------------------------------


def test_the_with_code_filter_on_daily_lists(web, eng):
    listed = entry_ids(web.get("/?month=2024-02").text)
    want = [i for i in listed if i in CODE]
    assert want and len(want) < len(listed)
    for sort in ("votes", "date", "trending"):
        page = web.get(f"/?month=2024-02&sort={sort}&code=1").text
        got = entry_ids(page)
        assert set(got) == set(want), sort
        assert got == [i for i in entry_ids(web.get(f"/?month=2024-02&sort={sort}").text) if i in CODE], sort
        nav = {a.text_content().strip(): a.get("href") for a in anchors(page, f"//{css('nav', 'periods')}//a")}
        assert nav["all papers"] == f"/?month=2024-02&sort={sort}"  # the toggle back
        assert all(h.endswith("&code=1") for t, h in nav.items() if t != "all papers"), nav  # kept on every link
        assert "with code" in page and "<strong>with code</strong>" in page
    plain = web.get("/?month=2024-02").text
    toggle = [a for a in anchors(plain, f"//{css('nav', 'periods')}//{css('*', 'filters')}//a") if a.text_content() == "with code"]
    assert toggle and toggle[0].get("href") == "/?month=2024-02&sort=votes&code=1"
    latest = entry_ids(web.get("/?code=1").text)  # the newest day: only its paper with code
    assert set(latest) == {"1601.05262", "2401.99902"}
    assert "No papers with code on this list." in web.get("/?date=2024-02-01&code=1").text
    assert set(entry_ids(web.get("/?week=2024-W06&code=1").text)) == {"2402.06187"}
    for bad in ("code=2", "code=maybe", "code=" + "1" * 5000):
        r = web.get("/?" + bad)
        assert r.status_code == 400 and "code" in r.text, bad
    assert eng.listings.with_link([], "code") == []
    with pytest.raises(QueryError, match="use one of code, project, hf"):
        eng.listings.with_link([1], "pdf")


def test_the_with_code_filter_on_trending(web):
    everything = entry_ids(web.get("/trending").text)
    got = entry_ids(web.get("/trending?code=1").text)
    assert got == [i for i in everything if i in CODE] and got
    page = web.get("/trending?code=1").text
    assert [a.get("href") for a in anchors(page, f"//{css('*', 'filters')}//a")] == ["/trending"]


def feed_ids(xml: str) -> tuple[list[str], str]:
    root = ElementTree.fromstring(xml)
    self_link = next(link.get("href") for link in root.findall(ATOM + "link") if link.get("rel") == "self")
    return [e.find(ATOM + "id").text.rsplit("/", 1)[-1] for e in root.findall(ATOM + "entry")], self_link


def test_the_with_code_filter_on_feeds(web):
    daily, _ = feed_ids(web.get("/feeds/daily.atom").text)
    coded, self_link = feed_ids(web.get("/feeds/daily.atom?code=1").text)
    assert set(daily) == {r["id"] for r in HOSTILE} and set(coded) == {"1601.05262", "2401.99902"}
    assert self_link.endswith("/feeds/daily.atom?code=1")
    trending, _ = feed_ids(web.get("/feeds/trending.atom").text)
    assert feed_ids(web.get("/feeds/trending.atom?code=1").text)[0] == [i for i in trending if i in CODE]
    found, self_link = feed_ids(web.get("/feeds/search.atom", params={"q": "has:code"}).text)
    assert set(found) == set(CODE) and self_link.endswith("/feeds/search.atom?q=has%3Acode")
    found, _ = feed_ids(web.get("/feeds/search.atom", params={"q": "language model has:code -has:project"}).text)
    assert found and set(found) <= set(CODE) - set(PROJECT)
    assert web.get("/feeds/daily.atom?code=yes%3C").status_code == 400


def test_the_with_code_filter_on_the_api_lists(web):
    ids = lambda r: [item["paper"]["id"] for item in r.json()]  # noqa: E731
    month = ids(web.get("/api/daily_papers", params={"month": "2024-02"}))
    coded = ids(web.get("/api/daily_papers", params={"month": "2024-02", "code": "1"}))
    assert coded and coded == [i for i in month if i in CODE] and len(coded) < len(month)
    trending = ids(web.get("/api/trending"))
    assert ids(web.get("/api/trending", params={"code": "true"})) == [i for i in trending if i in CODE]
    assert web.get("/api/trending", params={"code": "maybe"}).status_code == 400


# -- the links as shown: escaped, http(s) only ----------------------------------------------------


def test_safe_url_passes_only_plain_http_urls():
    for url in ("https://github.com/a/b", "http://example.org/x?a=1&b=2", "HTTPS://Example.org/"):
        assert safe_url(url) == url
    for url in ("javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,<script>", "vbscript:x",
                "https://", "https:///path", "//evil.example/x", "https://a.b/\"onmouseover=x", "https://a.b/'x",
                "https://a.b/<script>", " https://a.b/", "https://a.b/\nx", "https://a.b/\x00", "", None,
                "ftp://example.org/x", "https://[::1", "https://a.b/`x`"):
        assert safe_url(url) is None, url


def test_links_render_escaped_on_lists_and_paper_pages(web):
    page = web.get("/?month=2024-02").text
    rows = {a.getparent().getparent().xpath(".//h2/a")[0].get("href").rsplit("/", 1)[-1]:
            {x.text_content(): x.get("href") for x in a.getparent().xpath("./a[@rel]")}
            for a in anchors(page, f"//{ENTRY}//{LINKS}/a[@rel]")}
    assert rows["2402.07625"] == {"code": CODE["2402.07625"], "🤗 HF": HF["2402.07625"]}
    assert rows["2402.06187"] == {"code": CODE["2402.06187"], "project": PROJECT["2402.06187"]}
    assert "2402.00838" not in rows  # no link, no row
    for a in anchors(page, f"//{ENTRY}//a[@rel]"):
        assert a.get("rel") == "nofollow noopener" and a.get("href").startswith("https://")
    paper = web.get("/papers/2402.07625").text
    shown = {a.text_content(): a.get("href") for a in anchors(paper, f"//{PAPER}//{LINKS}/a[@rel]")}
    assert shown == {"Code: github.com/yifanzhang-pro/AutoMathText": CODE["2402.07625"],
                     "🤗 Dataset: math-ai/AutoMathText": HF["2402.07625"]}
    shown = {a.text_content(): a.get("href") for a in anchors(web.get("/papers/2402.07872").text, f"//{PAPER}//a[@rel]")}
    assert shown == {"Project page: pivot-prompt.github.io": PROJECT["2402.07872"],
                     "🤗 Space: pivot-prompt/pivot-prompt-demo": HF["2402.07872"]}


def test_a_hostile_url_never_becomes_a_link(web):
    pages = [web.get(f"/papers/{r['id']}").text for r in HOSTILE[:3]] + [web.get(f"/?date={LATEST}").text]
    for html in pages:
        tree = lxml.html.fromstring(html)
        for el in tree.iter():
            assert not any(k.lower().startswith("on") for k in el.attrib), (el.tag, dict(el.attrib))
            for attr in ("href", "src", "action"):
                value = (el.get(attr) or "").strip().lower()
                assert not value.startswith(("javascript:", "data:", "vbscript:")), (el.tag, value)
        assert not tree.xpath("//script[not(@src)]") and "<script>alert" not in html
        assert "alert(1)" not in "".join(a.get("href") or "" for a in tree.xpath("//a"))
    one = web.get("/papers/2401.99901").text
    assert not anchors(one, f"//{PAPER}//a[@rel]")  # javascript:, data:, vbscript: and a markup link: no link at all
    assert "javascript:alert(document.cookie)" in lxml.html.fromstring(one).text_content()  # shown as text
    two = {a.text_content(): a.get("href") for a in anchors(web.get("/papers/2401.99902").text, f"//{PAPER}//a[@rel]")}
    assert two == {"Code: github.com/evil/repo": "https://github.com/evil/repo",
                   "Project page: evil.example": "https://evil.example/"}
    raw = web.get("/papers/2401.99903").text
    assert 'href="https://acme.github.io/page?a=1&amp;b="' in raw  # & escaped in the attribute


# -- the lexical index: layout bump, rebuilt on its own -------------------------------------------


def test_an_index_of_the_old_layout_is_rebuilt_on_its_own(home, tmp_path, caplog):
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    folder = copy / "index" / "lexical"
    shutil.rmtree(folder)
    with Engine.from_settings(home=copy, store="sqlite") as e:  # what a version before the has field left
        old = LexicalIndex(folder)  # no tags: no paper has a has value
        old.sync(e.store)
        assert len(old) > 60 and old.filtered_ids(parse_query("has:code"), 100) == ([], 0)
        del old
    side = json.loads((folder / SIDE).read_text())
    (folder / SIDE).write_text(json.dumps({**side, "layout": LAYOUT - 1}))
    with caplog.at_level(logging.INFO, logger="paperboy.index.lexical"), \
            Engine.from_settings(home=copy, store="sqlite") as e:
        assert set(ids(e.search("has:code", per_page=100))) == set(CODE)
    assert json.loads((folder / SIDE).read_text())["layout"] == LAYOUT
    assert any(f"layout {LAYOUT - 1}, this version writes {LAYOUT}" in r.getMessage() for r in caplog.records)


def test_a_new_index_folder_names_its_layout_before_the_first_commit(tmp_path, caplog):
    folder = tmp_path / "lexical"
    first = LexicalIndex(folder)
    assert json.loads((folder / SIDE).read_text())["layout"] == LAYOUT and first.synced == 0
    files = sorted(p.name for p in folder.iterdir())
    with caplog.at_level(logging.WARNING, logger="paperboy.index.lexical"):
        second = LexicalIndex(folder)  # another process opening it mid-build follows, never deletes it
    assert sorted(p.name for p in folder.iterdir()) == files and not caplog.records and second.synced == 0


# -- in Chromium ----------------------------------------------------------------------------------


def test_in_chromium(home, tmp_path, browser):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    served = tmp_path / "home"
    shutil.copytree(home, served)
    env = {**os.environ, "PAPERBOY_HOME": str(served), "HF_HUB_OFFLINE": "1", "PAPERBOY_STORE": "sqlite"}
    port = free_port()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with serving([sys.executable, "-m", "paperboy.cli", "serve", "--port", str(port)], port, env=env,
                 ready_path="/api/openapi.json") as url:
        page = browser.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url + "/?month=2024-02")
        listed = page.locator("article.entry").count()
        page.click("nav.periods .filters a:has-text('with code')")
        page.wait_for_url("**code=1")
        entries = page.locator("article.entry")
        assert 0 < entries.count() < listed
        for i in range(entries.count()):
            link = entries.nth(i).locator("a.code-link")
            assert link.count() == 1 and link.get_attribute("rel") == "nofollow noopener"
            assert link.get_attribute("href").startswith("https://") and link.is_visible()
        page.screenshot(path=str(shots / "daily_with_code.png"), full_page=True)
        page.click("text=all papers")
        page.wait_for_url(lambda u: "code=1" not in u)
        assert page.locator("article.entry").count() == listed
        page.goto(url + "/papers/2402.07625")
        assert page.locator("article.paper a.hf-link").inner_text() == "🤗 Dataset: math-ai/AutoMathText"
        page.screenshot(path=str(shots / "paper_links.png"), full_page=True)
        for r in HOSTILE[:3]:
            page.goto(url + f"/papers/{r['id']}")
            links = page.locator("article.paper a[rel]")
            for i in range(links.count()):
                assert links.nth(i).get_attribute("href").startswith(("https://", "http://"))
            page.mouse.move(300, 300)
        page.goto(url + "/trending?code=1")
        assert page.locator("article.entry").count() > 0
        assert not dialogs, dialogs
    assert (shots / "daily_with_code.png").stat().st_size > 10_000
