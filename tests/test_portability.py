"""A whole account exported to one JSON file and imported into another paperboy (issue 12): round trip
between two real SQLite homes gives identical files, an import is idempotent and matches papers the
other home already has, no secret leaves, and bad files are refused with nothing written."""

from __future__ import annotations

import re
import shutil

import orjson
import pytest
from click.testing import CliRunner

from conftest import DATA
from paperboy.cli import EXIT_FAILED, EXIT_OK, main
from paperboy.engine import Engine
from paperboy.errors import BadRequest, NotFound
from paperboy.models import PaperRecord
from paperboy.normalize import arxiv_links
from paperboy.services import portability as pt
from test_web import sign_up

REFS = ("0704.0001", "gr-qc/9210004", "0704.0002")


def _fill(engine: Engine) -> int:
    """alice, with everything an account has: profile, folders, ratings, interests, votes, comments,
    and the secrets that must not leave (password hash, API token, feed token, session)."""
    store = engine.store
    uid = store.create_user("alice", "alice@example.org", "$argon2id$v=19$m=65536,t=3,p=4$c2VjcmV0$SECRETHASH")
    a, b, c = (store.get_paper(r).id for r in REFS)
    with_time = {"saves": [{"paper_id": a, "folder": "to read", "created_at": "2024-03-01T10:00:00+00:00"},
                           {"paper_id": a, "folder": "quantum", "created_at": "2024-03-02T10:00:00+00:00"},
                           {"paper_id": b, "folder": "quantum", "created_at": "2024-03-03T10:00:00+00:00"}],
                 "feedback": [{"paper_id": b, "kind": "up", "created_at": "2024-03-04T10:00:00+00:00"},
                              {"paper_id": c, "kind": "dismiss", "created_at": "2024-03-05T10:00:00+00:00"}],
                 "votes": [{"paper_id": c, "created_at": "2024-03-06T10:00:00+00:00"}],
                 "comments": [{"paper_id": a, "body": "Nice {proof} & 100% \"right\"\nsecond line",
                               "created_at": "2024-03-07T10:00:00+00:00", "hidden": False},
                              {"paper_id": b, "body": "hidden by a moderator", "created_at": "2024-03-08T10:00:00+00:00",
                               "hidden": True}],
                 "interest_prefs": [{"key": f"p{a}", "name": "Quantum stuff", "muted": 1, "deleted": 0, "members": [a, b]},
                                    {"key": f"p{c}", "name": None, "muted": 0, "deleted": 1, "members": [c]},
                                    {"key": "statement", "name": "My statement", "muted": 0, "deleted": 0, "members": []}],
                 "profile": {"statement": "quantum error correction", "include_terms": ["qubit"],
                             "exclude_terms": ["review"], "categories": ["quant-ph"], "digest": "weekly",
                             "digest_hour": 9, "timezone": "Europe/Berlin", "quiet_days": "note"}}
    store.restore_library(uid, with_time)
    store.create_api_token(uid, "t", "TOKENHASHSECRET")
    store.update_profile(uid, feed_token_hash="FEEDHASHSECRET")
    store.create_session("SESSIONHASHSECRET", uid, 1)
    return uid


@pytest.fixture
def home_b(tmp_path):
    """A second, fresh paperboy home (its own SQLite file) that has none of the papers."""
    with Engine.from_settings(home=tmp_path / "b", store="sqlite", secret_key="k") as e:
        yield e


def _export(engine: Engine, name: str) -> bytes:
    return pt.dumps(pt.export_account(engine.store, engine.store.user_by_name(name)["id"]))


def test_round_trip_between_two_homes_is_identical_and_idempotent(engine, home_b):
    uid = _fill(engine)
    # stored text (as the bundled sample has it) that converting its LaTeX once more would change
    rec = PaperRecord(source="t", source_id="tex", title="PIM-GPT at $\\frac{a}{b}$",
                      abstract="achieves 41$-137 \u00d7 , 631 \u00d7 $ speedup", arxiv_id="2310.09385",
                      links=arxiv_links("2310.09385"))
    engine.store.upsert_papers([rec])
    engine.store.save(uid, engine.store.get_paper("2310.09385").id, "latex")
    first = _export(engine, "alice")
    doc = orjson.loads(first)
    assert doc["paperboy_account"] == 1 and doc["user"] == {"name": "alice", "email": "alice@example.org"}
    assert [p["ref"] for p in doc["papers"]] == sorted(f"arxiv:{r}" for r in (*REFS, "2310.09385"))
    assert all(p["title"] and p["abstract"] for p in doc["papers"])
    assert doc["profile"]["timezone"] == "Europe/Berlin" and doc["profile"]["digest"] == "weekly"
    assert {i["key"] for i in doc["interests"]} == {"paper", "statement"}
    for secret in (b"SECRETHASH", b"argon2", b"TOKENHASHSECRET", b"FEEDHASHSECRET", b"SESSIONHASHSECRET"):
        assert secret not in first
    assert set(doc) == {"paperboy_account", "user", "profile", "papers", "saves", "feedback", "votes", "comments",
                        "interests"}  # no role, no export time, no digests

    res = pt.import_account(home_b, first, embed=False, trusted=True)  # the operator moving an account
    assert res["created"] and res["papers_new"] == 4 and res["saves"] == 4 and res["comments"] == 2
    assert orjson.loads(_export(home_b, "alice")) == doc
    assert _export(home_b, "alice") == first  # the same bytes
    b = home_b.store
    alice = b.user_by_name("alice")
    assert alice["email"] == "alice@example.org" and not alice["email_verified_at"] and alice["role"] == "member"
    assert not b.api_tokens(alice["id"]) and b.profile(alice["id"])["feed_token_hash"] is None
    # the deleted interest's papers stay out of the reader model there too
    deleted = [p for p in b.interest_prefs(alice["id"]).values() if p["deleted"]]
    assert [b.get_papers(d["members"])[d["members"][0]].arxiv_id for d in deleted] == ["0704.0002"]

    papers, saves = b.stats()["papers"], len(b.saves(alice["id"]))
    again = pt.import_account(home_b, first, embed=False, trusted=True)
    assert not again["created"] and (again["papers_new"], again["saves"], again["feedback"], again["votes"],
                                     again["comments"]) == (0, 0, 0, 0, 0)
    assert b.stats()["papers"] == papers and len(b.saves(alice["id"])) == saves and len(b.comments_of(alice["id"])) == 2
    assert _export(home_b, "alice") == first


def test_untrusted_import_keeps_papers_private_and_leaves_votes_and_comments_out(engine, home_b):
    """An account file is the reader's to edit: by default its papers are a member's upload (off public
    lists and search until arXiv confirms them) and its votes and comments (public, dated by the file)
    stay out; the rest round-trips byte for byte."""
    _fill(engine)
    first = _export(engine, "alice")
    doc = orjson.loads(first)
    res = pt.import_account(home_b, first, embed=False)
    assert (res["papers_new"], res["saves"], res["feedback"], res["votes"], res["comments"]) == (3, 3, 2, 0, 0)
    assert any("1 votes and 2 comments not imported" in w for w in res["warnings"])
    b = home_b.store
    ids = [b.get_paper(r).id for r in REFS]
    assert b.uploads_only(ids) == set(ids)  # hidden as members' uploads are
    assert all(s["source"] == "upload" for r in REFS for s in b.get_paper(r).sources)
    alice = b.user_by_name("alice")["id"]
    assert not b.votes_of(alice) and not b.comments_of(alice)
    assert orjson.loads(_export(home_b, "alice")) == doc | {"votes": [], "comments": []}
    # once arXiv has the paper it is public, as an uploaded library's paper becomes
    home_b.ingest(DATA / "kaggle_excerpt.jsonl")
    assert b.uploads_only(ids) == {b.get_paper("gr-qc/9210004").id}
    # trusted (the operator vouches): papers public at once, votes and comments in
    res = pt.import_account(home_b, first, user="olga", embed=False, trusted=True)
    assert (res["votes"], res["comments"], res["warnings"]) == (1, 2, [])
    assert not b.uploads_only(ids)


def test_import_matches_papers_already_there_and_into_a_named_user(engine, home_b):
    _fill(engine)
    data = _export(engine, "alice")
    home_b.ingest(DATA / "kaggle_excerpt.jsonl")  # has 0704.0001 and 0704.0002, from arXiv itself
    b = home_b.store
    known = {r: b.get_paper(r).id for r in ("0704.0001", "0704.0002")}
    before = b.stats()["papers"]
    res = pt.import_account(home_b, data, user="carol", embed=False)
    assert res["user"] == "carol" and res["created"] and res["papers_new"] == 1  # only gr-qc/9210004 is new
    assert b.stats()["papers"] == before + 1
    carol = b.user_by_name("carol")["id"]
    saved = {s["paper_id"] for s in b.saves(carol)}
    assert known["0704.0001"] in saved and b.get_paper("gr-qc/9210004").id in saved
    assert b.feedback(carol)[known["0704.0002"]] == "dismiss"
    assert b.get_paper("0704.0001").title == engine.store.get_paper("0704.0001").title
    # into an existing account: its address is kept, the library merged, nothing doubled
    dave = b.create_user("dave", "dave@example.org", "x")
    b.save(dave, known["0704.0001"], "mine")
    pt.import_account(home_b, data, user="dave", embed=False)
    pt.import_account(home_b, data, user="dave", embed=False)
    assert b.account(dave)["email"] == "dave@example.org"
    assert sorted(s["folder"] for s in b.saves(dave)) == ["mine", "quantum", "quantum", "to read"]
    assert b.stats()["papers"] == before + 1


def _bad(doc: dict) -> bytes:
    return orjson.dumps(doc)


def test_bad_files_are_refused_and_nothing_is_written(engine, home_b):
    _fill(engine)
    good = orjson.loads(_export(engine, "alice"))
    b = home_b.store
    cases = {
        b"{not json": "does not parse",
        b"[1, 2]": 'expected a JSON object with "paperboy_account"',
        _bad({"hello": 1}): "paperboy_account",
        _bad(good | {"paperboy_account": 2}): "version 2; this paperboy reads version 1",
        _bad(good | {"paperboy_account": True}): "version True",
        _bad(good | {"paperboy_account": "1"}): "version 1;",
        _bad(good | {"saves": {"a": 1}}): "saves: Input should be a valid list",
        _bad(good | {"papers": [good["papers"][0] | {"title": 42}, *good["papers"][1:]]}): "papers.0.title",
        _bad(good | {"profile": good["profile"] | {"digest_hour": 25}}): "profile.digest_hour",
        _bad(good | {"profile": good["profile"] | {"timezone": "Mars/Olympus"}}): "unknown time zone",
        _bad(good | {"feedback": [{"paper": good["papers"][0]["ref"], "kind": "love", "at": "2024-01-01T00:00:00"}]}):
            "feedback.0.kind",
        _bad(good | {"votes": [{"paper": "arxiv:9999.99999", "at": "2024-01-01T00:00:00"}]}): "is not in papers",
        _bad(good | {"saves": [{"paper": good["papers"][0]["ref"], "folder": "f", "at": "yesterday at noon"}]}): "not an ISO date",
        _bad(good | {"votes": [{"paper": good["papers"][0]["ref"], "at": "2999-01-01T00:00:00+00:00"}]}): "in the future",
        _bad(good | {"user": {"name": "x" * 41}}): "user.name",
        _bad(good | {"surprise": 1}): "surprise: Extra inputs are not permitted",
        _bad(good | {"interests": [{"key": "p1", "members": []}]}): "must be 'paper'",
        _bad(good | {"papers": [good["papers"][0] | {"title": "t" * 1001}, *good["papers"][1:]]}): "papers.0.title",
        _bad(good | {"papers": good["papers"] + good["papers"][:1]}): "appears twice",
        b" " * (pt.MAX_BYTES + 1): "at most 64 MB",
    }
    for data, why in cases.items():
        with pytest.raises(BadRequest, match=re.escape(why)):
            pt.import_account(home_b, data, embed=False)
    with pytest.raises(BadRequest, match="user name"):
        pt.import_account(home_b, _export(engine, "alice"), user="bad name!", embed=False)
    assert b.stats()["papers"] == 0 and b.list_users() == []
    with pytest.raises(NotFound):
        pt.export_account(b, 12345)


def test_cli_account_export_and_import(engine, tmp_path):
    _fill(engine)
    runner = CliRunner()
    out = tmp_path / "alice.json"
    r = runner.invoke(main, ["--home", str(engine.settings["home"]), "account", "export", "alice", "-o", str(out)],
                      catch_exceptions=False)
    assert r.exit_code == EXIT_OK and "3 papers, 3 saves" in r.output
    home_b, sqlite = tmp_path / "b", {"PAPERBOY_STORE": "sqlite"}  # its own file, whatever store A is on
    r = runner.invoke(main, ["--home", str(home_b), "account", "import", str(out), "--user", "erin", "--no-embed"],
                      catch_exceptions=False, env=sqlite)
    assert r.exit_code == EXIT_OK and "new account erin: 3 papers (3 new here), 3 saves" in r.output, r.output
    assert "0 votes, 0 comments" in r.output and "1 votes and 2 comments not imported" in r.output  # untrusted
    r = runner.invoke(main, ["--home", str(home_b), "account", "export", "erin"], catch_exceptions=False, env=sqlite)
    same = {"user": None, "votes": [], "comments": []}
    assert orjson.loads(r.output) | same == orjson.loads(out.read_bytes()) | same
    r = runner.invoke(main, ["--home", str(home_b), "account", "import", str(out), "--user", "fay", "--no-embed",
                             "--trusted"], catch_exceptions=False, env=sqlite)
    assert r.exit_code == EXIT_OK and "1 votes, 2 comments" in r.output and "not imported" not in r.output, r.output
    r = runner.invoke(main, ["--home", str(home_b), "account", "export", "fay"], catch_exceptions=False, env=sqlite)
    assert orjson.loads(r.output) | {"user": None} == orjson.loads(out.read_bytes()) | {"user": None}
    bad = tmp_path / "bad.json"
    bad.write_text('{"paperboy_account": 7}')
    r = runner.invoke(main, ["--home", str(home_b), "account", "import", str(bad)], catch_exceptions=False, env=sqlite)
    assert r.exit_code == EXIT_FAILED and "version 7" in r.output
    r = runner.invoke(main, ["--home", str(home_b), "account", "export", "nobody"], catch_exceptions=False, env=sqlite)
    assert r.exit_code == EXIT_FAILED and "nobody" in r.output


def test_download_my_data_from_the_account_page(client, engine, tmp_path):
    sign_up(client, "webby")
    uid = engine.store.user_by_name("webby")["id"]
    engine.store.save(uid, engine.store.get_paper("0704.0001").id, "x")
    assert 'href="/settings/account/export"' in client.get("/settings/account").text
    r = client.get("/settings/account/export")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.headers["content-disposition"] == 'attachment; filename="paperboy-account-webby.json"'
    doc = r.json()
    assert doc["user"]["name"] == "webby" and [s["paper"] for s in doc["saves"]] == ["arxiv:0704.0001"]
    assert b"argon2" not in r.content
    client.cookies.clear()
    assert client.get("/settings/account/export", follow_redirects=False).headers["location"] == "/login"
    assert client.get("/api/account/export").status_code == 403
    # the downloaded file imports into another home
    other = tmp_path / "other"
    shutil.rmtree(other, ignore_errors=True)
    with Engine.from_settings(home=other, store="sqlite") as e:
        assert pt.import_account(e, r.content, embed=False)["saves"] == 1
