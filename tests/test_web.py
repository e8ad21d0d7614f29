"""Every page and route in-process (real app, real SQLite store, real model), plus account safety."""

from __future__ import annotations

import re
from datetime import date

from fastapi.testclient import TestClient

from paperboy.web.app import create_app, linkify

HOSTILE = "<script>alert(1)</script>"


def new_client(engine) -> TestClient:
    return TestClient(create_app(engine))


def csrf(c: TestClient, path: str = "/") -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', c.get(path).text).group(1)


def sign_up(c: TestClient, name: str, password: str = "correct horse") -> str:
    token = csrf(c, "/signup")
    r = c.post("/signup", data={"name": name, "password": password, "csrf": token}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return token


def paper_id(c: TestClient, arxiv_id: str) -> int:
    return int(re.search(r'name="paper_id" value="(\d+)"', c.get(f"/papers/{arxiv_id}").text).group(1))


def test_daily_defaults_to_latest_day_and_navigates(client):
    r = client.get("/")
    assert r.status_code == 200
    latest = re.search(r"<h1>Daily papers <small>([\d-]+)</small>", r.text).group(1)
    assert latest == "2024-01-01"  # the newest date in the test corpus (hf_daily.json)
    prev = re.search(r'rel="prev" href="/\?date=([\d-]+)"', r.text).group(1)
    assert prev < latest and client.get(f"/?date={prev}").status_code == 200
    entries = r.text.count('class="entry"')
    assert entries > 0 and "arxiv.org/pdf/" in r.text and "comments" in r.text
    week = client.get("/?week=2024-W01")
    assert "2024-W01" in week.text and week.text.count('class="entry"') >= entries
    month = client.get("/?month=1992-11")
    assert "1992-11" in month.text and 'rel="next"' in month.text
    bad = client.get("/?date=2024-13-45")
    assert bad.status_code == 400 and "bad date" in bad.text


def test_daily_sorted_by_votes(client, engine):
    r = client.get("/?date=2024-01-01")
    counts = [int(x) for x in re.findall(r'<span class="count">(\d+)</span>', r.text)]
    assert counts == sorted(counts, reverse=True) and counts[0] > 0


def test_trending_uses_decayed_votes(client):
    r = client.get("/trending")
    assert r.status_code == 200 and r.text.count('class="entry"') > 0
    api = client.get("/api/trending").json()
    scores = [x["trendingScore"] for x in api]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0


def test_search_page_query_language_and_bad_input(client):
    r = client.get("/search", params={"q": "quantum cosmology"})
    assert r.status_code == 200 and r.text.count('class="entry"') > 0 and "results" in r.text
    r = client.get("/search", params={"q": '"diphoton production"', "mode": "bm25"})
    assert "diphoton" in r.text.lower() and r.text.count('class="entry"') == 1
    for q in ["x" * 10_000, 'unbalanced "quote', "ti:", "AND OR NOT ( ) * ~ ^", "量子 计算"]:
        r = client.get("/search", params={"q": q})
        assert r.status_code in (200, 400) and "Traceback" not in r.text, q
    assert client.get("/search", params={"q": "x" * 10_000}).status_code == 400
    assert client.get("/search", params={"q": "quantum", "mode": "nonsense"}).status_code == 400


def test_paper_page_with_similar_papers_and_sorts(client, engine):
    r = client.get("/papers/gr-qc/9210004")  # an old-style id
    assert r.status_code == 200
    for sort in ("similarity", "date", "votes"):
        r = client.get("/papers/0704.0001", params={"similar": sort})
        assert r.status_code == 200
        similar = re.search(r'<section class="similar".*?</section>', r.text, re.S).group(0)
        assert similar.count("<li>") == engine.settings["similar_k"], sort
    assert client.get("/papers/9999.99999").status_code == 404


def test_signup_login_logout_and_cookie_flags(client):
    token = csrf(client, "/signup")
    r = client.post("/signup", data={"name": "ada", "password": "long enough", "csrf": token}, follow_redirects=False)
    cookie = r.headers["set-cookie"]
    assert "pb_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert ">ada</a>" in client.get("/").text
    r = client.post("/signup", data={"name": "ada", "password": "long enough", "csrf": token})
    assert r.status_code == 409 and "taken" in r.text
    assert client.post("/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
    assert ">ada</a>" not in client.get("/").text
    r = client.post("/login", data={"name": "ada", "password": "long enough", "csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and ">ada</a>" in client.get("/").text
    short = client.post("/signup", data={"name": "bob", "password": "short", "csrf": token})
    assert short.status_code == 400 and "8 characters" in short.text


def test_every_state_change_needs_post_and_csrf(client, engine):
    token = sign_up(client, "carol")
    pid = paper_id(client, "0704.0001")
    forms = {"/vote": {"paper_id": pid, "up": 1}, "/comment": {"paper_id": pid, "body": "hi"},
             "/submit": {"ref": "0704.0001"}, "/logout": {}, "/settings/tokens": {"name": "t"},
             "/settings/tokens/revoke": {"token_id": 1}, "/login": {"name": "carol", "password": "x"},
             "/signup": {"name": "dave", "password": "long enough"}}
    for path, data in forms.items():
        for bad in ({}, {"csrf": "0" * 64}):
            r = client.post(path, data=data | bad, follow_redirects=False)
            assert r.status_code == 403 and "did not come from this site" in r.text, path
    for path in ("/vote", "/comment", "/logout", "/settings/tokens/revoke"):
        assert client.get(path).status_code in (404, 405), path
    assert engine.store.votes([pid]).get(pid, 0) == 0 and engine.store.comments(pid) == []
    assert client.post("/vote", data={"paper_id": pid, "up": 1, "csrf": token}, follow_redirects=False).status_code == 303


def test_upvote_once_per_user_and_undo(client, engine):
    token = sign_up(client, "erin")
    pid = paper_id(client, "0704.0001")
    before = engine.store.votes([pid]).get(pid, 0)
    for _ in range(2):
        client.post("/vote", data={"paper_id": pid, "up": 1, "csrf": token})
    assert engine.store.votes([pid])[pid] == before + 1
    other = new_client(engine)
    token2 = sign_up(other, "frank")
    r = other.post("/vote", data={"paper_id": pid, "up": 1, "csrf": token2}, headers={"X-Requested-With": "fetch"})
    assert r.json() == {"votes": before + 2, "voted": True}
    client.post("/vote", data={"paper_id": pid, "up": 0, "csrf": token})
    assert engine.store.votes([pid])[pid] == before + 1
    anon = new_client(engine)
    r = anon.post("/vote", data={"paper_id": pid, "up": 1, "csrf": csrf(anon)})
    assert r.status_code == 403 and "log in" in r.text


def test_comments_render_as_text_with_safe_links(client, engine):
    token = sign_up(client, "gus")
    pid = paper_id(client, "0704.0001")
    body = f'{HOSTILE} see https://example.org/a?b=1&c=2 and javascript:alert(2) <a href="x">x</a>'
    r = client.post("/comment", data={"paper_id": pid, "body": body, "csrf": token})
    assert r.status_code == 200
    assert HOSTILE not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    assert '<a href="https://example.org/a?b=1&amp;c=2" rel="nofollow noopener ugc">' in r.text
    assert 'href="javascript' not in r.text and '<a href="x">' not in r.text
    assert str(linkify("<b>")) == "&lt;b&gt;"
    assert client.post("/comment", data={"paper_id": pid, "body": " ", "csrf": token}).status_code == 400


def test_hostile_html_in_titles_and_authors_renders_as_text(client, engine, tmp_path):
    src = tmp_path / "hostile.jsonl"
    src.write_text('{"id": "2401.99999", "title": "%s", "abstract": "<img src=x onerror=alert(2)>", '
                   '"authors": "<b>Mallory</b>", "categories": "cs.CR", "update_date": "2024-01-02", '
                   '"versions": [{"version": "v1", "created": "Tue, 2 Jan 2024 10:00:00 GMT"}]}\n' % HOSTILE)
    engine.ingest(src, "kaggle")
    for path in ("/papers/2401.99999", "/?date=2024-01-02", "/search?q=alert&mode=bm25"):
        r = client.get(path)
        assert r.status_code == 200 and HOSTILE not in r.text and "<img src=x" not in r.text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text, path
    assert "default-src 'self'" in client.get("/").headers["content-security-policy"]


def test_login_rate_limit(client, engine):
    sign_up(client, "hana", "the right one")
    c = new_client(engine)
    token = csrf(c, "/login")
    for _ in range(engine.settings["login_max_failures"]):
        assert c.post("/login", data={"name": "hana", "password": "wrong", "csrf": token}).status_code == 403
    r = c.post("/login", data={"name": "hana", "password": "the right one", "csrf": token})
    assert r.status_code == 429 and "too many failed logins" in r.text


def test_api_tokens_are_private_and_revocable(client, engine):
    token = sign_up(client, "ivy")
    r = client.post("/settings/tokens", data={"name": "ivy laptop", "csrf": token})
    secret = re.search(r'id="new-token">(pb_[\w-]+)<', r.text).group(1)
    ivy_token_id = engine.store.api_tokens(engine.store.user_by_name("ivy")["id"])[0]["id"]
    auth = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/me", headers=auth).json()["name"] == "ivy"
    assert "pb_" not in client.get("/settings/tokens").text  # shown once only, stored hashed

    mallory = new_client(engine)
    token_m = sign_up(mallory, "mallory")
    page = mallory.get("/settings/tokens").text
    assert "ivy laptop" not in page and "No tokens yet" in page
    r = mallory.post("/settings/tokens/revoke", data={"token_id": ivy_token_id, "csrf": token_m})
    assert r.status_code == 404
    assert client.get("/api/me", headers=auth).status_code == 200  # still live

    client.post("/settings/tokens/revoke", data={"token_id": ivy_token_id, "csrf": token})
    r = client.get("/api/me", headers=auth)
    assert r.status_code == 403 and r.json()["error"]["status"] == 403
    assert new_client(engine).get("/settings/tokens", follow_redirects=False).status_code == 303


def test_api_writes_need_a_token_and_work_with_one(client, engine):
    token = sign_up(client, "jo")
    r = client.post("/settings/tokens", data={"name": "t", "csrf": token})
    auth = {"Authorization": "Bearer " + re.search(r'id="new-token">(pb_[\w-]+)<', r.text).group(1)}
    anon = new_client(engine)
    assert anon.post("/api/papers/0704.0001/vote", json={"up": True}).status_code == 403
    assert anon.post("/api/papers/0704.0001/vote", json={"up": True},
                     headers={"Authorization": "Bearer pb_forged"}).status_code == 403
    before = client.get("/api/papers/0704.0001").json()["upvotes"]
    r = client.post("/api/papers/0704.0001/vote", json={"up": True}, headers=auth)
    assert r.json()["upvotes"] == before + 1
    r = client.post("/api/papers/0704.0001/comments", json={"body": "nice"}, headers=auth)
    assert r.status_code == 201 and client.get("/api/papers/0704.0001/comments").json()[0]["body"] == "nice"
    r = client.post("/api/papers/0704.0001/comments", json={"body": ""}, headers=auth)
    assert r.status_code == 400 and "error" in r.json()
    assert client.get("/api/papers/nonexistent-paper").json()["error"]["status"] == 404


def test_api_search_similar_and_openapi(client):
    r = client.get("/api/search", params={"q": "quantum cosmology", "per_page": 5}).json()
    assert len(r["hits"]) == 5 and r["hits"][0]["paper"]["title"]
    sim = client.get("/api/papers/0704.0001/similar", params={"k": 3}).json()
    assert len(sim) == 3 and all(0 < x["similarity"] <= 1 for x in sim)
    spec = client.get("/api/openapi.json").json()
    for path in ("/api/daily_papers", "/api/papers/search", "/api/papers/{ref}", "/api/trending",
                 "/api/search", "/api/submit", "/api/papers/{ref}/vote"):
        assert path in spec["paths"], path
    assert not any(p.startswith("/vote") for p in spec["paths"])  # pages are not API


def test_submit_fetches_from_arxiv_and_merges_duplicates(engine, tmp_path):
    from test_arxiv_remote import ROTATION, Server

    server = Server(lambda n, params: (200, {"Content-Type": "application/atom+xml"}, ROTATION.read_bytes()))
    try:
        engine.settings.update(api_url=f"{server.url}/api/query", api_delay=0.0)
        a, b = new_client(engine), new_client(engine)
        ta, tb = sign_up(a, "kim"), sign_up(b, "lee")
        r = a.post("/submit", data={"ref": "https://arxiv.org/abs/1903.02058v2", "csrf": ta}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/submit?job=")  # queued, not fetched
        assert server.log == [] and "is being fetched" in a.get(r.headers["location"]).text
        again = b.post("/submit", data={"ref": "1903.02058", "csrf": tb}, follow_redirects=False)
        assert again.headers["location"] == "/submit?pending=1903.02058"  # one job for one paper: kim's
        assert "is being fetched" in b.get(again.headers["location"]).text
        assert b.get(r.headers["location"]).status_code == 404  # a job's status is its submitter's
        assert engine.run_jobs().done == 1  # what the background runner (or `paperboy jobs run`) does
        assert "is on today's list" in a.get(r.headers["location"]).text
        r = b.post("/submit", data={"ref": "1903.02058", "csrf": tb}, follow_redirects=False)
        assert r.headers["location"].endswith("?submitted=known")
        assert len(server.log) == 1  # fetched once
        today = date.today().isoformat()
        page = a.get(f"/?date={today}").text
        assert page.count("Rotatable random sequences in local fields") == 1 and "submitted by kim" in page
        api = a.get("/api/daily_papers", params={"date": today, "submitter": "kim"}).json()
        assert [x["paper"]["id"] for x in api] == ["1903.02058"]
        bad = a.post("/submit", data={"ref": "not an id", "csrf": ta})
        assert bad.status_code == 400 and "not an arXiv id" in bad.text
    finally:
        server.close()
