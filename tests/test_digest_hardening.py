"""Digests on a public instance (issue 9, defect 2 and the account lifecycle): one bad address or
one failing recipient never blocks the other readers' mail; retries back off and give up without
losing papers; only verified, live accounts get mail; unsubscribe links are bound to one
subscription; hostile titles cannot break a message. Every test talks to a real aiosmtpd server."""

from __future__ import annotations

import email
import json
import re
from datetime import datetime, timedelta
from email import policy

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from conftest import DATA
from paperboy.cli import main
from paperboy.engine import Engine
from paperboy.services.digest import unsubscribe_token
from paperboy.services.library import import_library
from paperboy.settings import secret_key
from paperboy.store import connect
from paperboy.web.app import create_app
from support import free_port, smtp_server
from test_digest import BASE, NOW, ids_in, list_on

PERIOD = f"daily:{NOW.date().isoformat()}"


class Server:
    """An SMTP server that answers RCPT for the addresses in ``refuse`` with the given reply."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[list[str]] = []
        self.rcpts: list[str] = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd hook
        self.rcpts.append(address)
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        self.envelopes.append(list(envelope.rcpt_tos))
        return "250 OK"

    def to(self) -> list[str]:
        return [a for env in self.envelopes for a in env]


@pytest.fixture
def smtp():
    server = Server()
    # Like many real servers, this one does not take internationalized addresses (no SMTPUTF8).
    with smtp_server(server, enable_SMTPUTF8=False) as controller:
        yield controller, server


@pytest.fixture
def engine(built_home, smtp):
    home = built_home
    with Engine.from_settings(home=home, secret_key="k", base_url=BASE, smtp_host="127.0.0.1",
                              smtp_port=smtp[0].port, digest_size=5, digest_trending=3,
                              digest_max_attempts=3, digest_retry_minutes=5.0) as e:
        list_on(e, NOW.date().isoformat(), DATA / "hf_daily.json")
        voter = e.store.create_user("voter", None, "x")  # the community upvotes two older papers
        for ref in ("0704.0001", "gr-qc/9210004"):
            e.store.set_vote(voter, e.store.get_paper(ref).id, True)
        yield e


def reader(engine, name: str, address: str | None = None, verified: bool = True, library: bool = False) -> int:
    """A daily reader; ``address`` is written straight to the store, as rows stored before
    addresses were validated are; the quiet-day note makes sure every reader is due a mail."""
    uid = engine.store.create_user(name, f"{name}@example.org", "x")
    if address is not None:
        engine.store.set_email(uid, address)
    if verified:
        engine.store.mark_email_verified(uid)
    if library:
        import_library(engine, uid, DATA / "library" / "zotero.bib")
    engine.store.update_profile(uid, digest="daily", digest_hour=8, timezone="Europe/Berlin", quiet_days="note")
    return uid


def cli(engine, smtp_port: int, *args: str):
    return CliRunner().invoke(main, ["--home", str(engine.settings["home"]), "digest", "send", "--json", *args],
                              env={"PAPERBOY_SMTP_PORT": str(smtp_port), "PAPERBOY_SMTP_HOST": "127.0.0.1",
                                   "PAPERBOY_SECRET_KEY": "k", "PAPERBOY_DIGEST_MAX_ATTEMPTS": "3"})


def test_bad_addresses_and_refused_recipients_never_block_the_others(engine, smtp):
    controller, server = smtp
    server.refuse["refused@example.org"] = "550 5.1.1 no such mailbox"
    first = reader(engine, "first")
    bad = {"crlf": "crlf@example.org\r\nBcc: victim@example.org", "huge": "x" * 100_000 + "@example.org",
           "noat": "no-at-sign.example.org"}
    bad_ids = {name: reader(engine, name, address) for name, address in bad.items()}
    refused = reader(engine, "refused", "refused@example.org")
    umlaut = reader(engine, "umlaut", "jörg@exämple.org")  # valid, but this server has no SMTPUTF8
    last = reader(engine, "last")

    run = engine.digests().run(now=NOW)
    assert run.sent == 2 and sorted(server.to()) == ["first@example.org", "last@example.org"]
    assert all(len(env) == 1 for env in server.envelopes) and "victim@example.org" not in server.rcpts
    assert sorted(line.split(":")[0] for line in run.invalid) == ["crlf", "huge", "noat"]
    assert all(len(line) < 400 for line in run.invalid + run.failed)
    for uid in bad_ids.values():  # skipped before anything is recorded: no digest, no ledger, no retry
        assert engine.store.digest(uid, PERIOD) is None and engine.store.sent_ids(uid) == set()
    # The server refused these two for good: given up at once, papers released, reasons kept.
    assert sorted(run.given_up) == [f"refused ({PERIOD})", f"umlaut ({PERIOD})"]
    gone = engine.store.digest(refused, PERIOD)
    assert gone["status"] == "failed" and gone["attempts"] == 1 and "550" in gone["last_error"]
    assert engine.store.sent_ids(refused) == set() and engine.store.sent_ids(umlaut) == set()
    assert "SMTPUTF8" in engine.store.digest(umlaut, PERIOD)["last_error"]
    assert engine.store.pending_digests() == []

    # The next day: the good readers get mail again, the bad ones are reported again, never block.
    run = engine.digests().run(now=NOW + timedelta(days=1))
    assert run.sent == 2 and len(run.invalid) == 3 and len(run.given_up) == 2
    assert {engine.store.digest(u, f"daily:{(NOW + timedelta(days=1)).date()}")["status"]
            for u in (first, last)} == {"sent"}

    # The command reports counts and reasons and exits 3: some failed, the run itself went through.
    r = cli(engine, controller.port, "--force")
    assert r.exit_code == 3, r.output
    out = json.loads(r.output)
    assert len(out["invalid"]) == 3 and not out["unreachable"]
    r = cli(engine, controller.port, "--force", "--user", "first")  # nothing failed: exit 0
    assert r.exit_code == 0, r.output


def test_a_failing_digest_backs_off_gives_up_and_its_papers_come_later(engine, smtp):
    _, server = smtp
    server.refuse["flaky@example.org"] = "451 4.3.0 try again later"  # transient: retried
    flaky = reader(engine, "flaky", "flaky@example.org", library=True)
    reader(engine, "other")  # a second reader, whose mail goes through

    run = engine.digests().run(now=NOW)
    assert run.sent == 1 and server.to() == ["other@example.org"] and len(run.failed) == 1
    assert "451" in run.failed[0] and "attempt 1" in run.failed[0] and run.given_up == []
    d = engine.store.digest(flaky, PERIOD)
    assert (d["status"], d["attempts"]) == ("pending", 1) and "451" in d["last_error"]
    assert datetime.fromisoformat(d["next_attempt_at"]) == NOW + timedelta(minutes=5)
    held = set(d["paper_ids"] + d["trending_ids"])
    assert held and held <= engine.store.sent_ids(flaky)  # held in the ledger while it may still go out

    tries = len(server.rcpts)
    run = engine.digests().run(now=NOW + timedelta(minutes=4))  # too early: not tried, no new digest either
    assert (run.waiting, run.resumed, run.sent) == (1, 0, 0) and len(server.rcpts) == tries
    run = engine.digests().run(now=NOW + timedelta(minutes=5))
    assert run.resumed == 1 and "attempt 2" in run.failed[0]
    d = engine.store.digest(flaky, PERIOD)
    assert datetime.fromisoformat(d["next_attempt_at"]) == NOW + timedelta(minutes=15)  # 5 min, then 10
    assert engine.digests().run(now=NOW + timedelta(minutes=14)).waiting == 1
    run = engine.digests().run(now=NOW + timedelta(minutes=15))  # attempt 3 of 3: given up for good
    assert run.given_up == [f"flaky ({PERIOD})"] and "given up" in run.failed[0]
    d = engine.store.digest(flaky, PERIOD)
    assert (d["status"], d["attempts"], d["next_attempt_at"]) == ("failed", 3, None)
    assert engine.store.sent_ids(flaky) == set() and engine.store.pending_digests() == []

    # The mailbox works again: the next digest carries the papers that never went out.
    del server.refuse["flaky@example.org"]
    run = engine.digests().run(now=NOW + timedelta(days=1))
    assert run.sent == 2 and run.failed == []
    mine = next(m for m in server.messages if m["To"] == "flaky@example.org")
    assert {engine.store.get_paper(i).id for i in ids_in(mine)} == held


def test_repeat_failures_go_last_and_an_unreachable_server_charges_no_one(engine, smtp):
    controller, server = smtp
    a, b, c = (reader(engine, n) for n in ("a", "b", "c"))
    dead = free_port()
    engine.settings["smtp_port"] = dead
    run = engine.digests().run(now=NOW)  # the first send finds no server: the rest are not tried
    assert run.unreachable and run.sent == 0 and run.deferred == 2 and len(run.failed) == 1
    assert engine.store.digest(a, PERIOD)["attempts"] == 1
    assert engine.store.digest(b, PERIOD) is None and engine.store.digest(c, PERIOD) is None
    r = cli(engine, dead, "--force")
    assert r.exit_code == 1 and json.loads(r.output)["unreachable"], r.output

    # A crash left b's digest pending with no attempt: it is tried before a's, which failed before.
    engine.store.record_digest(b, PERIOD, [], [engine.store.get_paper("0704.0001").id])
    assert [d["user_id"] for d in engine.store.pending_digests()] == [b, a]
    engine.settings["smtp_port"] = controller.port  # the operator fixed it and retries now
    run = engine.digests().run(now=NOW + timedelta(hours=1), force=True)
    assert run.sent == 3 and run.resumed == 2 and server.to() == ["b@example.org", "a@example.org", "c@example.org"]
    assert engine.store.pending_digests() == []


def test_a_digest_that_cannot_be_built_is_retried_and_blocks_no_one(engine, smtp):
    _, server = smtp
    broken, fine = reader(engine, "broken"), reader(engine, "fine")
    paper = engine.store.get_paper("0704.0001").id
    for uid in (broken, fine):  # as a crash between ledger and mail leaves them
        engine.store.record_digest(uid, PERIOD, [], [paper])
    engine.store.conn.execute("UPDATE digests SET paper_ids = '{not json' WHERE user_id = ?", (broken,))
    run = engine.digests().run(now=NOW)
    assert run.sent == 1 and server.to() == ["fine@example.org"]
    assert len(run.failed) == 1 and "cannot build the message" in run.failed[0] and "damaged" in run.failed[0]
    d = engine.store.digest(broken, PERIOD)
    assert (d["status"], d["attempts"]) == ("pending", 1) and d["next_attempt_at"]


def test_digests_go_only_to_verified_live_accounts(engine, smtp, tmp_path):
    _, server = smtp
    reader(engine, "verified")
    reader(engine, "unverified", verified=False)
    for name, column in (("suspended", "suspended_at"), ("deleted", "deleted_at")):
        uid = reader(engine, name)
        engine.store.conn.execute(f"UPDATE users SET {column} = '2026-11-01T00:00:00+00:00' WHERE id = ?", (uid,))
    moved = reader(engine, "moved")
    engine.store.set_email(moved, "moved@example.net")  # a new address is not verified yet
    engine.store.set_email(reader(engine, "same"), "same@example.org")  # the same address stays verified
    assert engine.digests().run(now=NOW).sent == 2
    assert sorted(server.to()) == ["same@example.org", "verified@example.org"]

    engine.settings["digest_require_verified"] = False  # an operator's trusted user list
    run = engine.digests().run(now=NOW)
    assert run.sent == 2 and sorted(server.to()[2:]) == ["moved@example.net", "unverified@example.org"]


def test_an_unsubscribe_link_works_only_for_its_subscription(engine, smtp):
    _, server = smtp
    uid = reader(engine, "reader")
    assert engine.digests().run(now=NOW).sent == 1
    old = re.search(r"<([^>]+)>", str(server.messages[0]["List-Unsubscribe"])).group(1).replace(BASE, "")
    one_click = {"content": b"List-Unsubscribe=One-Click",
                 "headers": {"Content-Type": "application/x-www-form-urlencoded"}}
    with TestClient(create_app(engine)) as c:
        engine.store.update_profile(uid, digest="weekly")  # a changed schedule is the same subscription
        assert c.get(old).status_code == 200
        assert c.post(old, **one_click).status_code == 200 and engine.store.profile(uid)["digest"] == "off"
        assert c.post(old, **one_click).status_code == 200  # again: still that subscription, still off

        engine.store.update_profile(uid, digest="daily")  # subscribes again: the old link has expired
        r = c.get(old)
        assert r.status_code == 410 and "expired" in r.text
        r = c.post(old, **one_click)
        assert r.status_code == 410 and "expired" in r.text and engine.store.profile(uid)["digest"] == "daily"

        assert engine.digests().run(now=NOW + timedelta(days=1)).sent == 1
        new = re.search(r"<([^>]+)>", str(server.messages[1]["List-Unsubscribe"])).group(1).replace(BASE, "")
        assert new != old and new in server.messages[1].get_body(("html",)).get_content()
        assert c.post(new, **one_click).status_code == 200 and engine.store.profile(uid)["digest"] == "off"

        # A link of a subscription from before they were dated still works until the next one.
        key = secret_key(engine.settings)
        engine.store.conn.execute("UPDATE profiles SET subscribed_at = NULL, digest = 'daily' WHERE user_id = ?",
                                  (uid,))
        assert c.post(f"/unsubscribe/{unsubscribe_token(key, uid)}", **one_click).status_code == 200
        forged = unsubscribe_token(b"another key", uid, engine.store.profile(uid)["subscribed_at"])
        ghost = unsubscribe_token(key, 10**6)  # well signed, but no such reader
        tampered = old.rsplit("/", 1)[1][:-1] + ("1" if old.endswith("0") else "0")
        for bad in (forged, ghost, tampered, "%C2%B2.x", f"{'9' * 30}.{'0' * 32}", "1.x.y.z"):
            assert c.get(f"/unsubscribe/{bad}").status_code == 404, bad
            assert c.post(f"/unsubscribe/{bad}", **one_click).status_code == 404, bad


def test_a_hostile_title_cannot_break_the_message(engine, smtp):
    _, server = smtp
    uid = reader(engine, "reader")
    hostile = "Quantum\r\nBcc: victim@example.org\r\n\r\n<b>bold</b> \ufffe\x01\x00 end\u2028more"
    pid, other = engine.store.get_paper("0704.0001").id, engine.store.get_paper("gr-qc/9210004").id
    engine.store.conn.execute("UPDATE papers SET title = ? WHERE id = ?", (hostile, pid))
    engine.store.conn.execute("UPDATE papers SET title = ? WHERE id = ?", ("\x01\ufffe" + "long " * 400, other))
    engine.store.record_digest(uid, PERIOD, [pid], [other])
    assert engine.digests().run(now=NOW).sent == 1
    assert server.envelopes == [["reader@example.org"]] and "victim@example.org" not in server.rcpts
    msg = server.messages[0]
    assert msg["Bcc"] is None and msg.defects == [] and all(p.defects == [] for p in msg.walk())
    text, html = msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()
    assert "- Quantum Bcc: victim@example.org <b>bold</b> end more" in text
    assert "Quantum Bcc: victim@example.org &lt;b&gt;bold&lt;/b&gt; end more" in html
    for body in (text, html):
        assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\u2028]", body)


def test_a_period_recorded_by_another_process_is_neither_recorded_twice_nor_an_error(engine, smtp, tmp_path):
    _, server = smtp
    uid = reader(engine, "reader")
    paper = engine.store.get_paper("0704.0001").id
    other = connect(engine.settings["store"], engine.settings["home"])  # a second scheduler or cron
    try:
        first = other.record_digest(uid, PERIOD, [], [paper])
        assert first and engine.store.record_digest(uid, PERIOD, [paper], []) is None
        assert engine.store.pending_digests()[0]["id"] == first["id"] and engine.store.sent_ids(uid) == {paper}
    finally:
        other.close()
    run = engine.digests().run(now=NOW)
    assert (run.sent, run.resumed, run.failed) == (1, 1, []) and len(server.messages) == 1


def test_the_reported_case_a_pending_digest_to_a_crlf_address_no_longer_stops_every_run(engine, smtp):
    """Issue 9, defect 2 as reproduced: the bad reader's digest was left pending (it raised), and
    every later run died on it first, so no later reader got mail."""
    _, server = smtp
    bad = reader(engine, "bad", "bad@example.org\r\nBcc: victim@example.org")
    good = reader(engine, "good")
    stuck = engine.store.record_digest(bad, PERIOD, [], [engine.store.get_paper("0704.0001").id])
    run = engine.digests().run(now=NOW)
    assert run.sent == 1 and server.to() == ["good@example.org"] and run.given_up == [f"bad ({PERIOD})"]
    assert any(line.startswith("bad: not a valid email address") for line in run.invalid)
    gone = engine.store.digest(bad, PERIOD)
    assert gone["id"] == stuck["id"] and gone["status"] == "failed" and "not valid" in gone["last_error"]
    assert engine.store.sent_ids(bad) == set() and engine.store.pending_digests() == []
    later, next_period = engine.digests().run(now=NOW + timedelta(days=1)), f"daily:{(NOW + timedelta(days=1)).date()}"
    assert later.sent == 1 and later.failed == [] and engine.store.digest(bad, next_period) is None
    assert engine.store.digest(good, next_period)["status"] == "sent"


def test_two_hosts_sending_at_once_mail_each_digest_once(engine, smtp):
    """Two `digest send` (two hosts' cron, here two engines on the same store in two threads) find
    the same pending digests: each is mailed once, by whichever takes its lease."""
    import threading
    import time

    controller, server = smtp
    slow = server.handle_DATA

    async def handle_data(*a):  # a slow SMTP server: both runs list the digests before one is done
        time.sleep(0.3)
        return await slow(*a)

    server.handle_DATA = handle_data
    uids = [reader(engine, f"r{i}") for i in range(3)]
    for uid in uids:  # recorded by a run that died before mailing: both runs resume them
        assert engine.store.record_digest(uid, PERIOD, [], [engine.store.get_paper("0704.0001").id])
    runs = []
    with Engine.from_settings(**{k: engine.settings[k] for k in ("home", "secret_key", "base_url", "smtp_host",
                                                                 "smtp_port", "store")}) as other:
        threads = [threading.Thread(target=lambda e=e: runs.append(e.digests().run(now=NOW))) for e in (engine, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert sorted(m["To"] for m in server.messages) == [f"r{i}@example.org" for i in range(3)]
    assert sum(r.sent for r in runs) == 3 and sum(r.elsewhere for r in runs) == 3
    assert all(engine.store.digest(uid, PERIOD)["status"] == "sent" for uid in uids)
