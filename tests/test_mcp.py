"""``paperboy mcp`` answers the MCP SDK's own client: the real server process (``python -m
paperboy.cli --home H mcp``) over stdio on the small embedded corpus, every tool called, bad input
and refused tokens answered as tool errors while the server keeps serving."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")

from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

from paperboy.services.accounts import Accounts  # noqa: E402
from paperboy.settings import secret_key  # noqa: E402
from paperboy.web.auth import Auth  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LARP = "2312.17653"  # in hf_daily.json: listed on 2024-01-01 with upvotes
PUBLIC = {"search", "daily", "trending", "paper", "similar"}
PERSONAL = {"recommendations", "library", "save", "unsave", "feedback", "me"}


@asynccontextmanager
async def server(home: Path, errlog: Path, token: str | None = None) -> AsyncIterator[ClientSession]:
    """A session with a fresh ``paperboy mcp`` process (its stderr kept in ``errlog``)."""
    env = {k: v for k, v in os.environ.items() if k.startswith("PAPERBOY_") and k != "PAPERBOY_TOKEN"}
    env |= {"HF_HUB_OFFLINE": "1", **({"PAPERBOY_TOKEN": token} if token else {})}
    params = StdioServerParameters(command=sys.executable, args=["-m", "paperboy.cli", "--home", str(home), "mcp"],
                                   env=env, cwd=str(ROOT))
    with open(errlog, "a") as err:
        async with stdio_client(params, errlog=err) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


async def ok(s: ClientSession, tool: str, **args: Any) -> Any:
    """A successful call's JSON (the text and the structured content say the same; the client has
    checked the latter against the tool's output schema)."""
    r = await s.call_tool(tool, args)
    assert not r.is_error, (tool, args, r.content[0].text)
    data = json.loads(r.content[0].text)
    assert data == r.structured_content
    return data


async def fails(s: ClientSession, tool: str, **args: Any) -> str:
    r = await s.call_tool(tool, args)
    assert r.is_error, (tool, args, r.content)
    return r.content[0].text


def user_with_token(engine, name: str, scope: str) -> tuple[int, str]:
    """An account made by the accounts service and an API token made as the web's Settings page does."""
    uid = Accounts(engine.store, engine.settings, secret_key(engine.settings)).add_user(name, "correct horse battery")
    return uid, Auth(engine.store, engine.settings).new_api_token(uid, "agent", scope)


def test_every_tool_over_stdio_with_a_read_write_token(engine, built_home, tmp_path):
    uid, token = user_with_token(engine, "agent-ada", "write")
    errlog = tmp_path / "stderr.txt"

    async def main() -> None:
        async with server(built_home, errlog, token) as s:
            tools = {t.name: t for t in (await s.list_tools()).tools}
            assert set(tools) == PUBLIC | PERSONAL
            assert all(t.description and t.output_schema for t in tools.values())
            assert tools["search"].input_schema["properties"]["limit"]["maximum"] == 50
            assert tools["search"].input_schema["properties"]["mode"]["enum"] == ["hybrid", "bm25", "dense"]
            assert tools["feedback"].input_schema["required"] == ["id", "kind"]
            assert tools["search"].annotations.read_only_hint and not tools["save"].annotations.read_only_hint

            # search: the query language, modes, paging
            res = await ok(s, "search", query='"diphoton production"', mode="bm25")
            assert res["total"] == 1 and res["results"][0]["id"] == "0704.0001"
            hit = res["results"][0]
            assert "diphoton" in hit["title"].lower() and hit["url"] == "https://arxiv.org/abs/0704.0001"
            assert hit["pdf"] == "https://arxiv.org/pdf/0704.0001" and hit["authors"] and hit["score"] > 0
            res = await ok(s, "search", query="language agents role play games", limit=3)  # hybrid: the model
            assert res["mode"] == "hybrid" and LARP in [h["id"] for h in res["results"]] and len(res["results"]) <= 3
            page2 = await ok(s, "search", query="quantum", mode="bm25", limit=2, page=2)
            page1 = await ok(s, "search", query="quantum", mode="bm25", limit=2)
            assert not {h["id"] for h in page1["results"]} & {h["id"] for h in page2["results"]}
            assert "bad id" in await fails(s, "search", query="id:notanid")
            assert "less than or equal to 50" in await fails(s, "search", query="quantum", limit=10_000)
            assert "1000 deep" in await fails(s, "search", query="quantum", limit=50, page=1000)
            assert "mode" in await fails(s, "search", query="quantum", mode="nonsense")
            assert "at most 1000" in await fails(s, "search", query="x" * 5000)
            assert "limit" in await fails(s, "search", query="quantum", limit="lots")
            assert "query" in await fails(s, "search")

            # the daily list and trending, with the fixture's Hugging Face upvotes
            day = await ok(s, "daily")
            assert day["period"] == "2024-01-01" and day["kind"] == "day" and day["prev"] < "2024-01-01"
            votes = [e["upvotes"] for e in day["results"]]
            assert votes and votes == sorted(votes, reverse=True) and votes[0] > 0
            assert all(e["listed_on"] == "2024-01-01" for e in day["results"])
            week = await ok(s, "daily", week="2024-W01", limit=50)
            assert len(week["results"]) >= len(day["results"])
            assert (await ok(s, "daily", month="1992-11"))["kind"] == "month"
            assert "bad date" in await fails(s, "daily", date="2024-13-45")
            assert "at most 32" in await fails(s, "daily", date="9" * 10_000)
            trend = await ok(s, "trending", limit=5)
            scores = [e["trending_score"] for e in trend["results"]]
            assert 0 < len(scores) <= 5 and scores == sorted(scores, reverse=True) and scores[0] > 0

            # one paper; similar papers
            p = await ok(s, "paper", id=LARP)
            assert p["title"].startswith("LARP") and "Ming Yan" in p["authors"] and p["authors_total"] == 6
            assert p["upvotes"] > 0 and p["num_comments"] == 0 and p["listed_on"] == "2024-01-01"
            assert p["url"] == f"https://arxiv.org/abs/{LARP}" and len(p["abstract"]) > 300
            assert (await ok(s, "paper", id=f"https://arxiv.org/abs/{LARP}v1"))["id"] == LARP
            assert "no paper" in await fails(s, "paper", id="9999.99999")
            assert "at most 300" in await fails(s, "paper", id="x" * 1000)
            assert "at least 1" in await fails(s, "paper", id="")
            sim = await ok(s, "similar", id=LARP, k=5)
            ids = [x["id"] for x in sim["results"]]
            assert sim["id"] == LARP and len(ids) == 5 == len(set(ids)) and LARP not in ids
            assert all(-1 <= x["similarity"] <= 1 for x in sim["results"])
            assert "no paper" in await fails(s, "similar", id="9999.99999")
            assert "less than or equal to 50" in await fails(s, "similar", id=LARP, k=10**9)

            # the reader's tools
            assert await ok(s, "me") == {"user": "agent-ada", "scope": "write"}
            assert (await ok(s, "recommendations"))["results"] == []  # nothing saved yet
            assert (await ok(s, "save", id=LARP, folder="agents"))["changed"] is True
            assert (await ok(s, "save", id=LARP, folder="agents"))["changed"] is False
            assert (await ok(s, "save", id="0704.0001"))["folder"] == "saved"
            lib = await ok(s, "library")
            assert lib["folders"] == {"agents": 1, "saved": 1} and lib["total"] == 2
            assert (await ok(s, "library", folder="agents"))["results"][0]["id"] == LARP
            saved = {(x["paper_id"], x["folder"]) for x in engine.store.saves(uid)}  # the real library
            assert saved == {(engine.paper(LARP).id, "agents"), (engine.paper("0704.0001").id, "saved")}
            assert "a letter or digit" in await fails(s, "save", id=LARP, folder="   ")
            assert "no paper" in await fails(s, "save", id="9999.99999")
            recs = await ok(s, "recommendations", k=5)
            assert 0 < len(recs["results"]) <= 5 and recs["user"] == "agent-ada" and recs["interests"]
            assert all(r["why"].startswith("matches your interest") for r in recs["results"])
            assert not {r["paper"]["id"] for r in recs["results"]} & {LARP, "0704.0001"}
            first = recs["results"][0]["paper"]["id"]
            assert await ok(s, "feedback", id=first, kind="dismiss") == {"id": first, "kind": "dismiss"}
            pid = engine.paper(first).id
            assert engine.store.feedback(uid) == {pid: "dismiss"}
            again = await ok(s, "recommendations", k=5)
            assert first not in [r["paper"]["id"] for r in again["results"]]
            assert "kind" in await fails(s, "feedback", id=first, kind="bogus")
            assert (await ok(s, "feedback", id=first, kind="none"))["kind"] is None
            assert engine.store.feedback(uid) == {}
            assert (await ok(s, "unsave", id=LARP, folder="agents"))["changed"] is True
            assert (await ok(s, "library"))["folders"] == {"saved": 1}

            # a token revoked while the server runs stops at once; the public tools go on
            engine.store.revoke_api_token(uid, engine.store.api_tokens(uid)[0]["id"])
            assert "not valid" in await fails(s, "me")
            assert "not valid" in await fails(s, "save", id=LARP)
            assert (await ok(s, "search", query="diphoton", mode="bm25"))["results"]

    asyncio.run(asyncio.wait_for(main(), 600))
    assert "unexpected exception" not in errlog.read_text()  # every error above was anticipated


def test_read_only_suspended_and_missing_tokens_are_refused(engine, built_home, tmp_path):
    uid, token = user_with_token(engine, "agent-bo", "read")
    engine.store.save(uid, engine.paper(LARP).id, "agents")
    errlog = tmp_path / "stderr.txt"

    async def main() -> None:
        async with server(built_home, errlog, token) as s:
            assert await ok(s, "me") == {"user": "agent-bo", "scope": "read"}
            assert (await ok(s, "library"))["results"][0]["id"] == LARP
            for tool, args in [("save", {"id": LARP}), ("unsave", {"id": LARP, "folder": "agents"}),
                               ("feedback", {"id": LARP, "kind": "up"})]:
                assert "read-only" in await fails(s, tool, **args)
            assert [s_["folder"] for s_ in engine.store.saves(uid)] == ["agents"] and engine.store.feedback(uid) == {}
            Accounts(engine.store, engine.settings, secret_key(engine.settings)).suspend(uid, None, reason="test")
            assert "suspended" in await fails(s, "library")
            assert (await ok(s, "paper", id=LARP))["id"] == LARP
        async with server(built_home, errlog) as s:  # no token: the personal tools say how to get one
            for tool, args in [("recommendations", {}), ("library", {}), ("me", {}), ("save", {"id": LARP}),
                               ("feedback", {"id": LARP, "kind": "up"})]:
                assert "API token" in await fails(s, tool, **args)
            assert (await ok(s, "trending"))["results"]

    asyncio.run(asyncio.wait_for(main(), 600))
    assert "unexpected exception" not in errlog.read_text()


def test_a_bad_token_is_reported_on_stderr_at_start(built_home, tmp_path):
    errlog = tmp_path / "stderr.txt"

    async def main() -> None:
        async with server(built_home, errlog, "pb_not-a-token") as s:
            assert "not valid" in await fails(s, "me")

    asyncio.run(asyncio.wait_for(main(), 300))
    assert "API token is not valid" in errlog.read_text()


def test_stdout_carries_only_the_protocol_and_garbage_is_ignored(built_home):
    """A raw client: a line that is not JSON, then a handshake, a call and an unknown tool. Every
    stdout line is a JSON-RPC message (logs go to stderr) and each request is answered."""
    import subprocess
    import threading

    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.pop("PAPERBOY_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "paperboy.cli", "--home", str(built_home), "mcp"], cwd=ROOT,
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(120, proc.kill)  # a hung server ends the reads below with EOF
    watchdog.start()
    messages = [{"jsonrpc": "2.0", "id": 1, "method": "initialize",
                 "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                            "clientInfo": {"name": "raw", "version": "0"}}},
                {"jsonrpc": "2.0", "method": "notifications/initialized"},
                {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                 "params": {"name": "paper", "arguments": {"id": LARP}}},
                {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "nope", "arguments": {}}}]
    try:
        proc.stdin.write("this is not json\n" + "".join(json.dumps(m) + "\n" for m in messages))
        proc.stdin.flush()
        answers = {}
        while len(answers) < 3 and (line := proc.stdout.readline()):
            msg = json.loads(line)  # nothing but protocol on stdout
            answers[msg["id"]] = msg
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0 and proc.stdout.read() == ""
    finally:
        watchdog.cancel()
        proc.kill()
    assert answers[1]["result"]["serverInfo"]["name"] == "paperboy"
    assert json.loads(answers[2]["result"]["content"][0]["text"])["id"] == LARP
    assert answers[3]["result"]["isError"] and "nope" in answers[3]["result"]["content"][0]["text"]
