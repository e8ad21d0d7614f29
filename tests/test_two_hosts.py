"""Two hosts, one PostgreSQL database: two `paperboy serve` processes (one with two workers), each with
its own home and derived indexes, see each other's writes within seconds: a member signed up on one
is signed in on the other, votes, comments and submits there; a CLI ingest from a third home is
searchable on both, and its embedding gives it similar papers on both."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest

from paperboy.store import open_store
from paperboy.store.copy import copy_store
from pgserver import fresh_database
from support import free_port, serving

MARK = "zqxhosts"
NEW = {"id": "2612.00077", "title": f"Entanglement witnesses for {MARK} many-body states",
       "abstract": "We construct entanglement witnesses for many-body quantum states of spin chains and "
                   "measure them with few local observables.",
       "authors": "Ada Lovelace, Alan Turing", "categories": "quant-ph", "update_date": "2026-12-01"}


def eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> float:
    """Seconds until ``check()`` held; fails the test after ``timeout``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            pytest.fail(f"not within {timeout:g} s: {what}")
        time.sleep(0.2)
    return time.monotonic() - start


def csrf(c: httpx.Client, path: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', c.get(path).text).group(1)


@pytest.fixture
def hosts(built, tmp_path):
    """(url of host A with 2 workers, url of host B, env of a CLI on the same database)."""
    with fresh_database() as url:
        with open_store("sqlite", built[0]) as src, open_store(url, tmp_path, 4) as dst:
            copy_store(src, dst)
        env = {**os.environ, "PAPERBOY_STORE": url, "PAPERBOY_SECRET_KEY": "one-secret-for-all-hosts",
               "PAPERBOY_INDEX_SYNC_SECONDS": "0.5", "PAPERBOY_JOB_POLL_SECONDS": "0.5", "HF_HUB_OFFLINE": "1"}
        homes = []
        for name in ("a", "b", "cli"):
            home = tmp_path / name
            shutil.copytree(built[0], home, ignore=shutil.ignore_patterns("paperboy.sqlite3*"))
            homes.append(home)
        pa, pb = free_port(), free_port()
        cmd = [sys.executable, "-m", "paperboy.cli"]
        with serving([*cmd, "--home", homes[0], "serve", "--port", pa, "--workers", "2"], pa, env=env,
                     timeout=120) as a, \
                serving([*cmd, "--home", homes[1], "serve", "--port", pb], pb, env=env, timeout=120) as b:
            yield a, b, env | {"PAPERBOY_HOME": str(homes[2])}
        for home in homes[:2]:
            assert not (home / "paperboy.sqlite3").exists()  # nothing fell back to a local file


def test_two_hosts_one_database(hosts, tmp_path):
    a, b, cli_env = hosts
    with httpx.Client(base_url=a, timeout=60) as on_a, httpx.Client(base_url=b, timeout=60) as on_b:
        r = on_a.post("/signup", data={"name": "kim", "password": "violet tapestry 42", "csrf": csrf(on_a, "/signup")})
        assert r.status_code == 303
        on_b.cookies = on_a.cookies  # the same browser, sent to the other host by the proxy
        assert "kim" in on_b.get("/").text  # the session is in the store: signed in there too

        paper = on_a.get("/api/papers/0704.0001").json()
        before = paper["upvotes"]
        token = csrf(on_a, "/submit")  # a form served by host A, posted to host B: CSRF holds across hosts
        pid = int(paper["discussionId"])
        assert on_b.post("/vote", data={"paper_id": pid, "up": 1, "csrf": token}).status_code == 303
        assert on_b.post("/comment", data={"paper_id": pid, "body": "seen from host B", "csrf": token}).status_code == 303
        assert on_b.post("/submit", data={"ref": "gr-qc/9210004", "csrf": token}).status_code == 303
        today = time.strftime("%Y-%m-%d", time.gmtime())

        def on_both(check: Callable[[httpx.Client], bool]) -> bool:
            return check(on_a) and check(on_b)

        eventually(lambda: on_both(lambda c: c.get("/api/papers/0704.0001").json()["upvotes"] == before + 1), "the vote")
        eventually(lambda: on_both(lambda c: any(x["body"] == "seen from host B" for x in
                                                 c.get("/api/papers/0704.0001/comments").json())), "the comment")
        eventually(lambda: on_both(lambda c: any(p["paper"]["id"] == "gr-qc/9210004" for p in
                                                 c.get("/api/daily_papers", params={"date": today}).json())),
                   "the submission on today's list")

        new = tmp_path / "new.jsonl"
        new.write_text(json.dumps(NEW) + "\n")
        cli = [sys.executable, "-m", "paperboy.cli"]
        done = subprocess.run([*cli, "ingest", "-q", str(new)], env=cli_env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

        def found(c: httpx.Client) -> bool:
            hits = c.get("/api/search", params={"q": MARK, "mode": "bm25"}).json()["hits"]
            return [h["paper"]["id"] for h in hits] == [NEW["id"]]

        lag = eventually(lambda: on_both(found), "the CLI-ingested paper searchable on both hosts")
        assert lag < 15
        assert on_a.get(f"/api/papers/{NEW['id']}/similar").json() == []  # no vector yet
        done = subprocess.run([*cli, "embed", "-q"], env=cli_env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr

        def similar(c: httpx.Client) -> bool:
            r = c.get(f"/api/papers/{NEW['id']}/similar", params={"k": 3})
            return r.status_code == 200 and len(r.json()) == 3
        eventually(similar_on_both := (lambda: on_both(similar)), "its embedding on both hosts")
        assert similar_on_both()
