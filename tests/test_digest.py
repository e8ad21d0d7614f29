"""Email digests through a real local SMTP server (aiosmtpd), parsed as received."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from conftest import DATA
from paperboy.cli import main
from paperboy.engine import Engine
from paperboy.services.library import import_library
from paperboy.web.app import create_app
from support import free_port

BASE = "http://papers.example"
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def engine(built_home, smtp):
    home = built_home
    with Engine.from_settings(home=home, secret_key="k", base_url=BASE, smtp_host="127.0.0.1",
                              smtp_port=smtp[0].port, digest_size=5, digest_trending=3) as e:
        list_on(e, NOW.date().isoformat(), DATA / "hf_daily.json")
        voter = e.store.create_user("voter", None, "x")  # the community upvotes two older papers
        for ref in ("0704.0001", "gr-qc/9210004"):
            e.store.set_vote(voter, e.store.get_paper(ref).id, True)
        yield e


def list_on(engine, day: str, path) -> None:
    """Members put the papers of ``path`` on ``day``'s list (the day's new papers)."""
    engine.ingest(path)
    data = json.loads(path.read_text())
    for arxiv_id in (list(data) if isinstance(data, dict) else [x["paper"]["id"] for x in data]):
        engine.store.submit(engine.store.get_paper(arxiv_id).id, None, day)
    engine.embed()


def reader(engine, name="reader", quiet="skip", hour=8) -> int:
    uid = engine.store.create_user(name, f"{name}@example.org", "x")
    engine.store.mark_email_verified(uid)  # digests go to verified addresses only
    import_library(engine, uid, DATA / "library" / "zotero.bib")
    engine.store.update_profile(uid, digest="daily", digest_hour=hour, timezone="Europe/Berlin", quiet_days=quiet)
    return uid


def links(msg) -> list[str]:
    html = msg.get_body(("html",)).get_content()
    return re.findall(r'href="([^"]+)"', html)


def ids_in(msg) -> list[str]:
    return re.findall(r"/papers/(\S+)", msg.get_body(("plain",)).get_content())


def test_digest_content_links_and_unsubscribe(engine, smtp):
    uid = reader(engine)
    run = engine.digests().run(now=NOW)
    assert (run.sent, run.failed) == (1, [])
    msg = smtp[1].messages[0]
    assert msg["To"] == "reader@example.org" and "papers for you" in msg["Subject"]
    assert msg.get_body(("plain",)) is not None and msg.get_body(("html",)) is not None
    assert links(msg) and all(u.startswith(BASE + "/") for u in links(msg))
    text = msg.get_body(("plain",)).get_content()
    print(text)
    assert "Why: matches your interest" in text and "Trending in the community" in text
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsub = re.search(r"<([^>]+)>", str(msg["List-Unsubscribe"])).group(1).replace("\n", "").replace(" ", "")
    assert unsub.startswith(BASE + "/unsubscribe/")
    sent = engine.store.sent_ids(uid)
    listed = {engine.store.get_paper(i).id for i in ids_in(msg)}
    assert listed and listed == sent  # everything mailed is in the ledger, and only that

    with TestClient(create_app(engine)) as c:  # the links work on the site
        for url in links(msg):
            assert c.get(url.replace(BASE, "")).status_code == 200, url
        path = unsub.replace(BASE, "")
        assert "Unsubscribe from digests" in c.get(path).text and engine.store.profile(uid)["digest"] == "daily"
        r = c.post(path, content=b"List-Unsubscribe=One-Click",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 200 and engine.store.profile(uid)["digest"] == "off"
        assert c.post(path[:-3] + "bad").status_code == 404
    assert engine.digests().run(now=NOW + timedelta(days=1)).sent == 0


def test_never_twice_and_the_hour_and_time_zone(engine, smtp):
    reader(engine, hour=11)  # 11:00 in Berlin is 10:00 UTC
    assert engine.digests().run(now=NOW).not_due == 1 and not smtp[1].messages
    assert engine.digests().run(now=NOW + timedelta(hours=1)).sent == 1
    assert engine.digests().run(now=NOW + timedelta(hours=2)).sent == 0  # one per day
    first = set(ids_in(smtp[1].messages[0]))
    # Next day: more papers are listed; the next digest has only what was not sent before.
    list_on(engine, (NOW + timedelta(days=1)).date().isoformat(), DATA / "hf_scrape_excerpt.json")
    assert engine.digests().run(now=NOW + timedelta(days=1, hours=1)).sent == 1
    second = set(ids_in(smtp[1].messages[-1]))
    assert second and not first & second


def test_crash_before_mailing_resumes_without_gaps_or_duplicates(engine, smtp):
    uid = reader(engine)
    engine.settings["smtp_port"] = free_port()  # nothing listens: the mail cannot go out
    run = engine.digests().run(now=NOW)
    assert run.sent == 0 and len(run.failed) == 1 and "cannot send mail" in run.failed[0]
    pending = engine.store.pending_digests()
    assert len(pending) == 1 and set(pending[0]["paper_ids"]) <= engine.store.sent_ids(uid)
    engine.settings["smtp_port"] = smtp[0].port
    run = engine.digests().run(now=NOW + timedelta(minutes=5))
    assert (run.sent, run.resumed) == (1, 1) and len(smtp[1].messages) == 1
    mailed = {engine.store.get_paper(i).id for i in ids_in(smtp[1].messages[0])}
    assert mailed == set(pending[0]["paper_ids"] + pending[0]["trending_ids"])
    assert engine.store.pending_digests() == []
    assert engine.digests().run(now=NOW + timedelta(minutes=10)).sent == 0


def test_quiet_days_skip_or_note(engine, smtp):
    for name, quiet in (("skipper", "skip"), ("noter", "note")):
        uid = reader(engine, name, quiet)
        engine.store.update_profile(uid, include_terms=[], exclude_terms=[], categories=["no-such-category"])
    engine.settings["digest_trending"] = 0
    run = engine.digests().run(now=NOW)
    assert run.skipped_quiet == 1 and run.sent == 1
    msg = smtp[1].messages[0]
    assert msg["To"] == "noter@example.org" and "quiet day" in msg["Subject"]


def test_cli_dry_run_records_nothing(engine, smtp, tmp_path):
    uid = reader(engine)
    r = CliRunner().invoke(main, ["--home", str(engine.settings["home"]), "digest", "send", "--dry-run", "--force",
                                  "--json"], env={"PAPERBOY_SMTP_PORT": str(smtp[0].port), "PAPERBOY_SECRET_KEY": "k"})
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["previews"][0]["user"] == "reader" and out["previews"][0]["papers"]
    assert smtp[1].messages == [] and engine.store.pending_digests() == [] and engine.store.sent_ids(uid) == set()
