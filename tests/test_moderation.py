"""Roles, moderation and the audit log (web, in-process), and the operator's `paperboy user` commands
(the real CLI over a real store)."""

from __future__ import annotations

import json
import re
from datetime import date

from click.testing import CliRunner

from paperboy.cli import main
from paperboy.services.accounts import Accounts
from test_accounts import PASSWORD, csrf, log_in, new_client, paper_id, sign_up


def moderator(engine, name: str = "mod", role: str = "moderator"):
    Accounts(engine.store, engine.settings, b"k").add_user(name, PASSWORD, role=role)
    c = new_client(engine, "192.0.2.200")
    assert log_in(c, name).status_code == 303
    return c


def test_members_cannot_moderate(engine):
    c = new_client(engine)
    sign_up(c, "member")
    assert c.get("/moderation").status_code == 403
    sign_up(new_client(engine, "192.0.2.3"), "other")
    token = csrf(c, "/")
    other = engine.store.user_by_name("other")["id"]
    r = c.post("/moderation/user", data={"user_id": other, "action": "suspend", "csrf": token})
    assert r.status_code == 403 and engine.store.user_by_name("other")["suspended_at"] is None
    assert new_client(engine).get("/moderation", follow_redirects=False).status_code == 303
    assert "Moderation</a>" not in c.get("/").text


def test_a_moderator_hides_and_unhides_a_comment(engine):
    member = new_client(engine)
    sign_up(member, "talker")
    pid = paper_id(engine)
    member.post("/comment", data={"paper_id": pid, "body": "buy cheap pills", "csrf": csrf(member, "/")})
    member.post("/comment", data={"paper_id": pid, "body": "a fair point", "csrf": csrf(member, "/")})
    mod = moderator(engine)
    page = mod.get("/papers/0704.0001").text
    assert "Moderation</a>" in page and 'value="hide"' in page
    spam = next(c for c in engine.store.recent_comments() if "pills" in c["body"])
    r = mod.post("/moderation/comment", data={"comment_id": spam["id"], "action": "hide", "reason": "spam",
                                             "csrf": csrf(mod, "/")}, follow_redirects=False)
    assert r.status_code == 303
    assert "pills" not in member.get("/papers/0704.0001").text and "a fair point" in member.get("/papers/0704.0001").text
    assert [c["body"] for c in member.get("/api/papers/0704.0001/comments").json()] == ["a fair point"]
    assert member.get("/api/papers/0704.0001").json()["numComments"] == 1
    listing = mod.get("/moderation").text
    assert "buy cheap pills" in listing and "hidden" in listing and "spam" in listing
    audit = engine.store.audit_log()
    assert (audit[0]["actor"], audit[0]["action"], audit[0]["target_kind"], audit[0]["target_id"]) == \
        ("mod", "hide", "comment", spam["id"])
    mod.post("/moderation/comment", data={"comment_id": spam["id"], "action": "unhide", "csrf": csrf(mod, "/")})
    assert len(member.get("/api/papers/0704.0001/comments").json()) == 2
    assert engine.store.audit_log()[0]["action"] == "unhide"


def test_a_hidden_submission_drops_from_the_daily_list(engine):
    today = date.today().isoformat()
    member = new_client(engine)
    sign_up(member, "submitter")
    pid = paper_id(engine, "0704.0001")
    engine.store.submit(pid, engine.store.user_by_name("submitter")["id"], today)
    listed = lambda: [x["paper"]["id"] for x in member.get("/api/daily_papers", params={"date": today}).json()]  # noqa: E731
    assert listed() == ["0704.0001"]
    mod = moderator(engine)
    assert "Hide this submission" in mod.get("/papers/0704.0001").text
    mod.post("/moderation/submission", data={"paper_id": pid, "action": "hide", "csrf": csrf(mod, "/")})
    assert listed() == [] and "submitted by submitter" not in member.get(f"/?date={today}").text
    assert member.get("/api/daily_papers", params={"date": today, "submitter": "submitter"}).json() == []
    assert "hidden" in mod.get("/moderation").text
    mod.post("/moderation/submission", data={"paper_id": pid, "action": "unhide", "csrf": csrf(mod, "/")})
    assert listed() == ["0704.0001"]
    r = mod.post("/moderation/submission", data={"paper_id": paper_id(engine, "gr-qc/9210004"), "action": "hide",
                                                "csrf": csrf(mod, "/")})
    assert r.status_code == 404


def test_a_suspended_member_cannot_log_in_post_vote_or_use_tokens(engine):
    member = new_client(engine)
    sign_up(member, "troll")
    r = member.post("/settings/tokens", data={"name": "t", "csrf": csrf(member, "/settings/tokens")})
    auth = {"Authorization": "Bearer " + re.search(r'id="new-token">(pb_[\w-]+)<', r.text).group(1)}
    pid = paper_id(engine)
    token = csrf(member, "/")
    member.post("/comment", data={"paper_id": pid, "body": "flame", "csrf": token})
    mod = moderator(engine)
    cid = engine.store.recent_comments()[0]["id"]
    mod.post("/moderation/comment", data={"comment_id": cid, "action": "suspend-author", "csrf": csrf(mod, "/")})
    user = engine.store.user_by_name("troll")
    assert user["suspended_at"] and engine.store.comment(cid)["hidden_at"]
    assert ">troll</a>" not in member.get("/").text  # the session ended
    assert member.post("/vote", data={"paper_id": pid, "up": 1, "csrf": token}).status_code == 403
    assert member.post("/comment", data={"paper_id": pid, "body": "again", "csrf": token}).status_code == 403
    assert member.get("/api/me", headers=auth).status_code == 403
    assert member.post("/api/papers/0704.0001/vote", json={"up": True}, headers=auth).status_code == 403
    r = log_in(new_client(engine), "troll")
    assert r.status_code == 403 and "suspended" in r.text
    assert [a["action"] for a in engine.store.audit_log()[:2]] == ["hide", "suspend"]  # newest first: suspended, then hidden
    mod.post("/moderation/user", data={"user_id": user["id"], "action": "unsuspend", "csrf": csrf(mod, "/")})
    assert log_in(new_client(engine), "troll").status_code == 303
    assert member.get("/api/me", headers=auth).status_code == 200


def test_moderators_cannot_suspend_their_peers_or_admins(engine):
    moderator(engine, "boss", "admin")
    mod = moderator(engine, "mod2")
    for name in ("boss", "mod2"):
        uid = engine.store.user_by_name(name)["id"]
        r = mod.post("/moderation/user", data={"user_id": uid, "action": "suspend", "csrf": csrf(mod, "/")})
        assert r.status_code == 403 and engine.store.user_by_name(name)["suspended_at"] is None
    admin = new_client(engine, "192.0.2.201")
    assert log_in(admin, "boss").status_code == 303
    r = admin.post("/moderation/user", data={"user_id": engine.store.user_by_name("mod2")["id"], "action": "suspend",
                                             "csrf": csrf(admin, "/")}, follow_redirects=False)
    assert r.status_code == 303 and engine.store.user_by_name("mod2")["suspended_at"]


def test_operator_cli_user_commands(engine):
    home = str(engine.settings["home"])
    run = lambda *args, input=None: CliRunner().invoke(main, ["--home", home, "user", *args], input=input)  # noqa: E731
    r = run("add", "Quinn", "--email", "quinn@example.org", "--role", "moderator", "--password-stdin",
            input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert run("add", "quinn", "--password-stdin", input=PASSWORD + "\n").exit_code == 1  # case-folded: taken
    r = run("add", "weak", "--password-stdin", input="password\n")
    assert r.exit_code == 1 and "stronger password" in r.output
    assert run("add", "bad", "--email", "x@y\r\nBcc: z", "--password-stdin", input=PASSWORD + "\n").exit_code == 1
    users = json.loads(run("list", "--json").output)
    assert [(u["name"], u["role"], u["email"]) for u in users] == [("Quinn", "moderator", "quinn@example.org")]
    assert "Quinn" in run("list").output
    assert log_in(new_client(engine), "quinn").status_code == 303

    assert run("set-role", "quinn", "admin").exit_code == 0
    assert engine.store.user_by_name("quinn")["role"] == "admin"
    assert run("set-role", "quinn", "emperor").exit_code == 2
    assert run("set-role", "nobody", "admin").exit_code == 1

    web = new_client(engine)
    assert log_in(web, "quinn").status_code == 303
    assert run("set-password", "quinn", input="new tulip harbor\n").exit_code == 0
    assert ">Quinn</a>" not in web.get("/").text  # every session ended
    assert log_in(new_client(engine), "quinn", "new tulip harbor").status_code == 303

    assert run("suspend", "quinn", "--reason", "testing").exit_code == 0
    assert log_in(new_client(engine), "quinn", "new tulip harbor").status_code == 403
    assert run("suspend", "quinn", "--undo").exit_code == 0
    assert log_in(new_client(engine), "quinn", "new tulip harbor").status_code == 303

    uid = engine.store.user_by_name("quinn")["id"]
    assert run("delete", "quinn", input="n\n").exit_code == 1 and engine.store.user_by_name("quinn")
    assert run("delete", "quinn", "--yes").exit_code == 0
    assert engine.store.user_by_name("quinn") is None and engine.store.account(uid)["deleted_at"]
    assert json.loads(run("list", "--json").output) == []
    actions = [a["action"] for a in engine.store.audit_log()]
    assert actions[:6] == ["delete", "unsuspend", "suspend", "set-password", "set-role", "add"]
    assert all(a["actor"] == "operator" for a in engine.store.audit_log())


def test_a_refused_suspension_hides_nothing(engine):
    """A moderator may not suspend an admin: 'suspend the author' of an admin's comment must leave
    the comment as it was (it used to be hidden before the suspension was refused)."""
    boss = moderator(engine, "boss2", "admin")
    pid = paper_id(engine)
    boss.post("/comment", data={"paper_id": pid, "body": "admin here", "csrf": csrf(boss, "/")})
    mod = moderator(engine, "mod3")
    cid = next(c["id"] for c in engine.store.recent_comments() if c["body"] == "admin here")
    r = mod.post("/moderation/comment", data={"comment_id": cid, "action": "suspend-author", "csrf": csrf(mod, "/")})
    assert r.status_code == 403
    assert "admin here" in [c["body"] for c in boss.get("/api/papers/0704.0001/comments").json()]
    assert not [a for a in engine.store.audit_log() if a["target_kind"] == "comment" and a["target_id"] == cid]
