"""The whole Hugging Face Papers API against paperboy (issue 12): the real ``huggingface_hub`` client
and its ``hf papers`` CLI, pointed at paperboy served by uvicorn on loopback, read every field and
route; hostile titles, bad cursors, huge limits and unknown ids get clear answers. The extraction
itself (keywords, links, withdrawal) is checked on real abstracts of ../shared/data where present."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import shared
from paperboy.models import PaperRecord
from paperboy.services import paper_meta
from paperboy.web.app import create_app

HOSTILE = 'Evil <svg onload=alert(1)> & "q" ]]> [x](javascript:alert(1)) <script>alert(2)</script>'
SVG = "{http://www.w3.org/2000/svg}"


def _add(engine) -> dict[str, int]:
    """Papers that exercise each field: links, a withdrawal, a hostile title, a partial date."""
    def rec(aid: str, **kw) -> PaperRecord:
        return PaperRecord(**({"source": "arxiv", "source_id": aid, "arxiv_id": aid, "arxiv_version": 1,
                               "authoritative": True, "title": f"Paper {aid}", "abstract": "Text.",
                               "authors": ["A. Author"], "categories": ["cs.LG"], "primary_category": "cs.LG",
                               "submitted": "2024-02-01"} | kw))
    engine.store.upsert_papers([
        rec("2402.00002", title="ToolNet: Linking Code and Weights",
            abstract="We study tool use. Code: \\url{https://github.com/example/toolnet}. Project page: "
                     "https://example.github.io/toolnet/.",
            comments="Weights at https://huggingface.co/example/toolnet-7b, data at "
                     "https://huggingface.co/datasets/example/tool-data; demo: https://huggingface.co/spaces/example/demo."),
        rec("2001.00001", title="A Withdrawn Result", submitted="2020-01-10", updated="2020-03-05", arxiv_version=2,
            versions={1: "2020-01-10", 2: "2020-03-05"},
            comments="This paper has been withdrawn by the author due to a crucial error in eq. 3"),
        rec("2402.00003", title=HOSTILE, abstract="A <b>bold</b> claim. [click](javascript:alert(3))",
            authors=["<img src=x onerror=alert(4)>", "B. Two"]),
        rec("2408.00004", title="A Paper Dated by Month Only", submitted="2024-08"),
    ])
    ids = {aid: engine.paper(aid).id for aid in ("2402.00002", "2001.00001", "2402.00003", "2408.00004")}
    uid = engine.store.create_user("reader", None, "hash")
    engine.store.submit(ids["2402.00002"], uid, "2024-03-01")  # a reader's submission
    return ids


@pytest.fixture
def hub(engine, monkeypatch):
    """(HfApi, base URL, ids of the added papers): paperboy under uvicorn on loopback."""
    import uvicorn
    from huggingface_hub import HfApi, constants

    # HF_HUB_OFFLINE=1 (no model downloads) also stops the client; it only talks to loopback here.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    ids = _add(engine)
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            threading.Event().wait(0.05)
        base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        yield HfApi(endpoint=base, token=False), base, ids
    finally:
        server.should_exit = True
        thread.join(10)


def _get(url: str, **kw):
    from huggingface_hub.utils import get_session

    return get_session().get(url, **kw)


def test_daily_items_carry_every_field_the_client_reads(hub):
    api, base, _ = hub
    daily = list(api.list_daily_papers(date="2024-01-01"))
    assert [p.id for p in daily][:1] == ["2312.17653"] and len(daily) == 4
    assert all(a.upvotes >= b.upvotes for a, b in zip(daily, daily[1:]))
    assert len(list(api.list_daily_papers(week="2024-W01", limit=2))) == 2
    larp = daily[0]
    assert larp.title.startswith("LARP") and larp.summary.startswith("Language agents")
    assert larp.authors[0].name == "Ming Yan" and larp.authors[0].user is None and larp.authors[0].status is None
    assert larp.authors[0].hidden is False and larp.published_at.date().isoformat() == "2023-12-29"
    assert larp.upvotes == 29 and larp.discussion_id and larp.source == "arxiv" and larp.comments == 0
    assert larp.submitted_at.date().isoformat() == "2024-01-01"
    # nobody here submitted it: the instance's harvest says so, as an organisation
    assert (larp.submitted_by.username, larp.submitted_by.user_type, larp.submitted_by.is_pro) == ("paperboy", "org", False)
    assert larp.ai_summary is None and larp.organization is None and larp.github_stars is None
    assert "open-world games" in larp.ai_keywords and "language agents" in larp.ai_keywords
    assert larp.project_page == "https://miao-ai-lab.github.io/LARP/" and larp.github_repo is None
    assert larp.mediaUrls == [] and larp.withdrawnAt is None
    assert larp.thumbnail == f"{base}/papers/2312.17653/thumbnail.svg"
    card = _get(larp.thumbnail)
    assert card.status_code == 200 and card.headers["content-type"].startswith("image/svg+xml")
    assert ET.fromstring(card.text).find(f"{SVG}title").text.startswith("LARP")
    # a reader's submission names the reader; the paper's code and page come from its text
    [mine] = api.list_daily_papers(date="2024-03-01")
    assert (mine.id, mine.submitted_by.username, mine.submitted_by.user_type) == ("2402.00002", "reader", "user")
    assert mine.github_repo == "https://github.com/example/toolnet"
    assert mine.project_page == "https://example.github.io/toolnet/"
    for item in _get(f"{base}/api/daily_papers", params={"date": "2024-01-01"}).json():  # the raw shape
        assert {"thumbnail", "submittedBy", "numComments", "mediaUrls", "withdrawnAt"} <= set(item)
        assert {"_id", "name", "fullname", "avatarUrl", "isPro", "type", "user"} <= set(item["submittedBy"])
        assert {"ai_keywords", "githubRepo", "projectPage", "thumbnail"} <= set(item["paper"])


def test_paper_info_linked_repos_withdrawal_and_partial_dates(hub):
    api, base, _ = hub
    info = api.paper_info("2402.00002")
    assert info.title == "ToolNet: Linking Code and Weights" and info.upvotes == 0
    assert info.github_repo == "https://github.com/example/toolnet"
    assert [m.id for m in info.linked_models] == ["example/toolnet-7b"] and info.num_total_models == 1
    assert [d.id for d in info.linked_datasets] == ["example/tool-data"] and info.num_total_datasets == 1
    assert [s.id for s in info.linked_spaces] == ["example/demo"]
    assert info.submitted_by.username == "reader" and info.submitted_at.date().isoformat() == "2024-03-01"
    larp = api.paper_info("2312.17653")
    assert larp.linked_models == [] and larp.linked_datasets == [] and larp.linked_spaces == []
    assert larp.submitted_by.username == "paperboy"
    gone = api.paper_info("2001.00001")
    assert gone.withdrawnAt == "2020-03-05T00:00:00.000Z"
    assert api.paper_info("2408.00004").published_at.isoformat().startswith("2024-08-01")
    repos = _get(f"{base}/api/arxiv/2402.00002/repos").json()
    from huggingface_hub.hf_api import DatasetInfo, ModelInfo, SpaceInfo

    assert [ModelInfo(**m).id for m in repos["models"]] == ["example/toolnet-7b"]
    assert [DatasetInfo(**d).id for d in repos["datasets"]] == ["example/tool-data"]
    assert [SpaceInfo(**s).author for s in repos["spaces"]] == ["example"]
    assert repos["codeRepos"] == ["https://github.com/example/toolnet"]
    assert _get(f"{base}/api/arxiv/2312.17653/repos").json() | {"projectPage": None} == {
        "models": [], "datasets": [], "spaces": [], "githubRepo": None, "codeRepos": [], "projectPage": None}


def test_search_limit_120_and_paging_over_all_papers(hub, engine):
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.utils._pagination import paginate

    api, base, _ = hub
    found = list(api.list_papers(query="role play language agents open-world games", limit=120))
    assert found[0].id == "2312.17653" and len(found) <= 120
    with pytest.raises(HfHubHTTPError) as e:
        list(api.list_papers(query="agents", limit=121))
    assert e.value.response.status_code == 400 and "less than or equal to 120" in e.value.response.text
    # every paper once, newest first, following the Link headers as the Hub's own paginate does
    walked = list(paginate(f"{base}/api/papers", params={"limit": 7}, headers={}))
    assert len(walked) == len({p["id"] for p in walked}) == engine.store.stats()["papers"]
    dated = [p["publishedAt"] for p in walked if p["publishedAt"]]
    assert dated == sorted(dated, reverse=True) and walked[0]["id"] == "2408.00004"
    first = _get(f"{base}/api/papers", params={"limit": 2})
    assert first.links["next"]["url"].startswith(f"{base}/api/papers?cursor=") and len(first.json()) == 2
    assert {"thumbnail", "ai_keywords", "withdrawnAt"} <= set(first.json()[0])
    last = _get(f"{base}/api/papers", params={"limit": 100})
    assert "next" not in last.links and len(last.json()) == len(walked)


@pytest.mark.parametrize("params, status, words", [
    ({"cursor": "not-a-cursor"}, 400, "bad cursor"),
    ({"cursor": "WzEsMl0"}, 400, "bad cursor"),  # valid base64 of [1,2]: not a key paperboy made
    ({"cursor": "W251bGwsLTFd"}, 400, "bad cursor"),  # [null,-1]
    ({"cursor": "x" * 201}, 400, "cursor"),
    ({"limit": 101}, 400, "limit"),
    ({"limit": 0}, 400, "limit"),
    ({"limit": 10**30}, 400, "limit"),
    ({"limit": "ten"}, 400, "limit"),
])
def test_bad_paging_requests_are_clear_errors(client, params, status, words):
    r = client.get("/api/papers", params=params)
    assert r.status_code == status and words in r.json()["error"]["message"]


def test_markdown_and_thumbnail_are_safe_for_hostile_titles(hub):
    from markdown_it import MarkdownIt

    api, base, ids = hub
    text = api.read_paper("2402.00003")
    assert text.startswith("# Evil \\<svg onload=alert(1)") and "## Abstract" in text
    html = MarkdownIt("commonmark").render(text)  # raw HTML allowed: escaping must keep it text
    assert "<svg" not in html and "<script" not in html and "<img" not in html and "<b>" not in html
    assert 'href="javascript' not in html and "&lt;svg onload=alert(1)&gt;" in html
    r = _get(f"{base}/papers/2402.00003.md")
    assert r.headers["content-type"] == "text/markdown; charset=utf-8"
    # it holds the discussion (a hidden comment must not stay cached for a day): five minutes
    assert r.headers["cache-control"] == "public, max-age=300"
    card = _get(f"{base}/papers/2402.00003/thumbnail.svg")
    root = ET.fromstring(card.text)  # well-formed whatever the title holds
    assert {el.tag.removeprefix(SVG) for el in root.iter()} <= {"svg", "title", "rect", "g", "text", "tspan"}
    assert not [a for el in root.iter() for a in el.attrib if a.lower().startswith("on") or "href" in a.lower()]
    assert root.find(f"{SVG}title").text == HOSTILE
    assert "sandbox" in card.headers["content-security-policy"] and card.headers["cache-control"] == "public, max-age=86400"
    again = _get(f"{base}/papers/2402.00003/thumbnail.svg", headers={"If-None-Match": card.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    page = _get(f"{base}/papers/2402.00003")  # the HTML page escapes it too
    assert page.status_code == 200 and "<svg onload" not in page.text and "<img src=x" not in page.text
    assert "&lt;svg onload=alert(1)&gt;" in page.text
    listed = _get(f"{base}/", params={"date": "2024-02-01"})  # and the daily list it is on
    assert "&lt;svg onload=alert(1)&gt;" in listed.text and "<svg onload" not in listed.text
    md = _get(f"{base}/papers/2001.00001.md").text
    assert "- **Withdrawn:** 2020-03-05" in md and "## Comments" in md


def test_unknown_ids_are_404_everywhere(hub):
    from huggingface_hub.errors import HfHubHTTPError

    api, base, _ = hub
    for call in (lambda: api.paper_info("9999.99999"), lambda: api.read_paper("9999.99999")):
        with pytest.raises(HfHubHTTPError) as e:
            call()
        assert e.value.response.status_code == 404
    for path in ("/papers/9999.99999/thumbnail.svg", "/api/arxiv/9999.99999/repos", "/papers/%3Cx%3E.md"):
        assert _get(base + path).status_code == 404, path


def _hf(base: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env |= {"HF_ENDPOINT": base, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf-home"), "NO_COLOR": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1"}
    return subprocess.run([str(Path(sys.executable).parent / "hf"), "papers", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_hf_papers_cli_ls_search_info_read(hub, tmp_path):
    _, base, _ = hub
    ls = _hf(base, tmp_path, "ls", "--date", "2024-01-01", "--json")
    assert ls.returncode == 0, ls.stderr
    rows = json.loads(ls.stdout)
    assert [r["id"] for r in rows] == ["2312.17653", "2312.17681", "2312.17276", "2312.17742"]
    assert rows[0]["submitted_by_name"] == "paperboy harvest" and rows[0]["upvotes"] == 29
    search = _hf(base, tmp_path, "search", "role play language agents open-world games", "--limit", "5", "--json")
    assert search.returncode == 0, search.stderr
    assert json.loads(search.stdout)[0]["id"] == "2312.17653"
    info = _hf(base, tmp_path, "info", "2402.00002", "--json")
    assert info.returncode == 0, info.stderr
    got = json.loads(info.stdout)
    assert got["github_repo"] == "https://github.com/example/toolnet" and got["title"].startswith("ToolNet")
    read = _hf(base, tmp_path, "read", "2312.17653")
    assert read.returncode == 0 and read.stdout.startswith("# LARP: Language-Agent Role Play") and "Ming Yan" in read.stdout
    missing = _hf(base, tmp_path, "info", "9999.99999")
    assert missing.returncode != 0 and "not found" in (missing.stdout + missing.stderr)


def test_links_on_the_hugging_face_daily_abstracts():
    """The 753 abstracts of ../shared/data/hf: code and page links found as the authors wrote them."""
    papers = json.loads(shared("hf/paperexplorer_papers.json").read_text())
    found = {k: paper_meta.links(v["abstract"]) for k, v in papers.items()}
    assert sum(bool(x.github_repo) for x in found.values()) == 126
    assert sum(bool(x.project_page) for x in found.values()) == 97
    assert found["2401.06071"].github_repo == "https://github.com/lzw-lzw/GroundingGPT"  # "https: //github.com"
    assert found["2403.13447"].github_repo == "https://github.com/DCDmllm/HyperLLaVA"  # "...HyperLLaVA}."
    assert found["2403.06775"].github_repo == "https://github.com/modelscope/facechain"  # "(https://...)."
    assert found["2403.10131"].github_repo == "https://github.com/ShishirPatil/gorilla"  # no scheme
    assert found["2403.20309"].project_page == "https://instantsplat.github.io"  # "instantsplat.github.io."
    assert found["2401.10171"].project_page == "https://shinobi.aengelhardt.com"  # not the YouTube video after it
    assert found["2402.06187"].project_page == "https://premiertaco.github.io"  # and its code repo
    assert found["2402.07625"].datasets == ("math-ai/AutoMathText",) and found["2401.13303"].models == ()  # an org


def test_keywords_and_withdrawal_on_real_text():
    papers = json.loads(shared("hf/paperexplorer_papers.json").read_text())
    tiny = papers["2401.02385"]
    words = paper_meta.keywords(tiny["title"], tiny["abstract"])
    assert "TinyLlama" in words and "small language model" in words and len(words) <= 10
    assert words == paper_meta.keywords(tiny["title"], tiny["abstract"])  # deterministic
    assert paper_meta.keywords("", "") == [] and paper_meta.keywords("<<<", "$$ \\x 12 ...") == []
    assert paper_meta.is_withdrawal("This paper has been withdrawn by the authors.")
    assert paper_meta.is_withdrawal("  Withdrawn by the author due to irreparable errors.")
    assert paper_meta.is_withdrawal("We have withdrawn this paper due to a fatal flaw in eqn(38).")
    assert not paper_meta.is_withdrawal("Patients withdrawn from the trial were excluded.")
    assert not paper_meta.is_withdrawal("I would have withdrawn the paper. But I think I'd rather post the attacks")
