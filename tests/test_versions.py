"""Papers that change (issue 13, part 4): a new arXiv version is re-embedded and re-indexed, shown as
"updated to vN (date)", told once to the readers who saved it; a withdrawn version flags the paper and
takes it out of recommendations and digests; an older version harvested late never rolls it back.

The records are real arXiv metadata (CC0, tests/data/versions/, from ../shared/data/arxiv): an oai_dc
record (1303.2033, its first date only: how v1 was delivered), an arXiv API response (2410.19022v1)
and a Kaggle snapshot line (0704.0179). Each v2 is made the way that source delivers a new version:
OAI-PMH adds a ``dc:date``, the API's entry id says ``v2`` and ``updated`` moves, the snapshot's
``versions`` list grows; the abstract gains a sentence. The withdrawal is shaped like the snapshot's
real withdrawn 0704.0156 (its abstract and comments are arXiv's notice).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from conftest import DATA
from paperboy.embed import paper_text
from paperboy.engine import Engine
from paperboy.models import Paper, PaperRecord
from paperboy.services import library
from paperboy.services.versions import latest, update_note, version_key
from paperboy.store.merge import older, record_row
from paperboy.web.app import create_app

V = DATA / "versions"
# Put first: the model reads only the first 256 word pieces, so a change in a long abstract's tail
# (1303.2033 has 330 words) is re-embedded to the same vector (the keyword indexes still see it).
ADDED = "In this revised version we add a zebrafish benchmark of the method. "
WITHDRAWN = "This paper has been withdrawn by the authors."  # 0704.0156's abstract, as arXiv has it
BASE = "http://papers.example"
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)


# -- v2 the way each source delivers it ---------------------------------------------------------

def oai_dc(v2: bool) -> str:
    """1303.2033 over OAI-PMH oai_dc: v2 adds its date (2024-01-23, the real record's) and the change."""
    text = (V / "oai_dc_1303.2033v1.xml").read_text()
    if v2:
        text = text.replace("<dc:date>2013-03-08</dc:date>", "<dc:date>2013-03-08</dc:date>\n<dc:date>2024-01-23</dc:date>")
        text = text.replace("<dc:description> This summary", "<dc:description> " + ADDED + "This summary")
    return text


def api(version: int, abstract_extra: str = "") -> str:
    """2410.19022 from the arXiv API: the entry id and links say vN, ``updated`` is vN's date."""
    text = (V / "api_2410.19022v1.xml").read_text()
    if version > 1:
        text = text.replace("2410.19022v1", f"2410.19022v{version}")
        text = text.replace("<updated>2024-10-24T09:18:55Z</updated>\n    <link",
                            f"<updated>2024-11-0{version}T08:00:00Z</updated>\n    <link")
    return text.replace("<summary>", "<summary>" + abstract_extra)


def kaggle(versions: int, abstract: str | None = None, comments: str | None = None, title: str | None = None) -> str:
    """0704.0179 as a Kaggle snapshot line with ``versions`` entries (v2 on 2 May 2024, v3 on 3 May)."""
    obj = json.loads((V / "kaggle_0704.0179v1.jsonl").read_text())
    obj["versions"] += [{"version": f"v{n}", "created": f"Thu, {n} May 2024 10:00:00 GMT"} for n in range(2, versions + 1)]
    obj.update({k: v for k, v in (("abstract", abstract), ("comments", comments), ("title", title)) if v is not None})
    return json.dumps(obj) + "\n"


KAGGLE_V1 = json.loads((V / "kaggle_0704.0179v1.jsonl").read_text())["abstract"]
FORMATS = {  # id, v1 text, v2 text, file suffix, v2's date
    "oai-pmh": ("1303.2033", oai_dc(False), oai_dc(True), ".xml", "2024-01-23"),
    "arxiv-api": ("2410.19022", api(1), api(2, ADDED), ".xml", "2024-11-02"),
    "kaggle": ("0704.0179", kaggle(1), kaggle(2, abstract=ADDED + KAGGLE_V1), ".jsonl", "2024-05-02"),
}


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def lexical_ids(engine: Engine, q: str) -> list[int]:
    return [h.paper.id for h in engine.search(q, mode="bm25").hits]


def tfidf_row(engine: Engine, pid: int) -> np.ndarray:
    tf = engine.tfidf()
    return tf.matrix[int(tf.rows_of([pid])[0])].toarray()[0]


# -- 1. re-embedded and re-indexed --------------------------------------------------------------

@pytest.mark.parametrize("fmt", list(FORMATS))
def test_a_new_version_is_reembedded_and_reindexed(engine, tmp_path, fmt):
    ref, v1, v2, suffix, day = FORMATS[fmt]
    assert engine.ingest(write(tmp_path, "v1" + suffix, v1)).inserted == 1
    engine.embed()
    p1 = engine.store.get_paper(ref)
    model = engine.embedder.model_id
    hash1 = engine.store.embedding_hashes(model, [p1.id])[p1.id]
    vec1 = engine.vectors().vector(p1.id).copy()
    row1 = tfidf_row(engine, p1.id)
    assert update_note(p1) is None and p1.id not in lexical_ids(engine, "zebrafish")

    assert engine.ingest(write(tmp_path, "v2" + suffix, v2)).updated == 1
    counts = engine.embed()
    assert counts["embedded"] == 1  # only the changed paper goes to the model
    p2 = engine.store.get_paper(ref)
    assert p2.abstract.startswith(ADDED.strip()) and latest(p2) == (2, day)
    assert update_note(p2) == f"updated to v2 ({day})"
    assert engine.store.embedding_hashes(model, [p2.id])[p2.id] != hash1
    vec2 = engine.vectors().vector(p2.id)
    assert float(np.dot(vec1, vec2)) < 0.9999
    assert np.allclose(vec2, engine.embedder.encode([paper_text(p2.title, p2.abstract)])[0], atol=1e-3)  # f16 rows
    engine.refresh(force=True)
    assert lexical_ids(engine, "zebrafish") == [p2.id]  # BM25 indexes the new abstract
    assert not np.allclose(tfidf_row(engine, p2.id), row1)  # and TF-IDF replaced the paper's row

    # The same v1 harvested late (another file, read in full): nothing rolls back, nothing re-embeds.
    late = engine.ingest(write(tmp_path, "late-v1" + suffix, v1))
    assert late.read == 1 and late.updated == 0
    p3 = engine.store.get_paper(ref)
    assert (p3.abstract, p3.versions, update_note(p3)) == (p2.abstract, p2.versions, update_note(p2))
    assert engine.embed()["embedded"] == 0


def arxiv_format(created: str, updated: str | None, abstract: str) -> str:
    """1303.2033 as an OAI-PMH record in the ``arXiv`` metadata format (dates, no version numbers)."""
    upd = f"<updated>{updated}</updated>" if updated else ""
    return ('<?xml version="1.0" encoding="UTF-8"?><OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
            '<ListRecords><record><header><identifier>oai:arXiv.org:1303.2033</identifier>'
            '<datestamp>2024-01-25</datestamp></header><metadata><arXiv xmlns="http://arxiv.org/OAI/arXiv/">'
            f'<id>1303.2033</id><created>{created}</created>{upd}<authors><author><keyname>Liepins</keyname>'
            '<forenames>Vilnis</forenames></author></authors><title>Extended Fourier analysis of signals</title>'
            f'<categories>cs.DS cs.IT math.IT</categories><abstract>{abstract}</abstract></arXiv></metadata>'
            '</record></ListRecords></OAI-PMH>')


def test_out_of_order_harvests_never_roll_back(store, tmp_path):
    """Every pairing of sources: an older version after a newer one changes nothing but the dates it
    adds; the arXiv OAI format (no version numbers) is ordered by its ``updated`` date."""
    from paperboy.ingest import ingest_file

    new = arxiv_format("2013-03-08", "2024-01-23", "The revised abstract.")
    old = arxiv_format("2013-03-08", None, "The first abstract.")
    for first, then in ((new, old), (new, oai_dc(False)), (oai_dc(True), old)):
        ingest_file(store, write(tmp_path, "a.xml", first))
        before = store.get_paper("1303.2033")
        ingest_file(store, write(tmp_path, "b.xml", then))
        after = store.get_paper("1303.2033")
        assert (after.abstract, after.updated) == (before.abstract, before.updated), (first[:60], then[:60])
    # a later version in the arXiv format after numbered ones does update (and makes up no number)
    ingest_file(store, write(tmp_path, "c.xml", arxiv_format("2013-03-08", "2025-02-01", "A third abstract.")))
    p = store.get_paper("1303.2033")
    assert p.abstract == "A third abstract." and update_note(p) == "updated 2025-02-01"


def test_version_rules_on_odd_shapes():
    def paper(**kw):
        return Paper(id=1, canonical_id="x", title="t", abstract="a", authors=[], **kw)

    assert update_note(paper()) is None and version_key(paper()) == ":"
    assert update_note(paper(versions={1: "2020-01-01"}, submitted="2020-01-01", updated="2020-01-01")) is None
    assert update_note(paper(versions={1: None, 2: None})) == "updated to v2"
    assert update_note(paper(arxiv_version=5)) == "updated to v5"
    assert update_note(paper(versions={1: "2020-01-01", 3: "2021-06-30"})) == "updated to v3 (2021-06-30)"
    assert update_note(paper(submitted="2020", updated="2020")) is None  # a year alone: no update
    rec = PaperRecord("arxiv-api", "1", "t", arxiv_id="1", arxiv_version=1, versions={1: "2020-01-01"},
                      authoritative=True)
    row = record_row(PaperRecord("arxiv-oai", "1", "t", arxiv_id="1", versions={1: "2020-01-01", 2: "2021-01-01"},
                                 authoritative=True))
    assert older(row, rec) and not older(record_row(rec), rec)


# -- 2. "updated to vN" on lists, the paper page, the library -----------------------------------

def sign_up(c: TestClient, name: str) -> str:
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', c.get("/signup").text).group(1)
    assert c.post("/signup", data={"name": name, "password": "correct horse", "csrf": token},
                  follow_redirects=False).status_code == 303
    return token


def test_updated_to_v2_on_lists_paper_page_and_library(engine, tmp_path):
    engine.ingest(write(tmp_path, "v1.jsonl", kaggle(1)))
    pid = engine.store.get_paper("0704.0179").id
    engine.store.submit(pid, None, "2024-05-02")
    engine.ingest(write(tmp_path, "v2.jsonl", kaggle(2, abstract=ADDED + KAGGLE_V1,
                                                     title="Experimental nonclassicality <b>revised</b>")))
    engine.embed()
    note = "updated to v2 (2024-05-02)"
    with TestClient(create_app(engine)) as c:
        token = sign_up(c, "ada")
        pages = {"paper": c.get("/papers/0704.0179"), "daily": c.get("/?date=2024-05-02"),
                 "search": c.get("/search", params={"q": "zebrafish"})}
        assert c.post("/library/save", data={"csrf": token, "paper_id": pid, "folder": "saved"},
                      follow_redirects=False).status_code in (200, 303)
        pages["library"] = c.get("/library")
        for name, r in pages.items():
            assert r.status_code == 200 and note in r.text, name
            assert "<b>revised</b>" not in r.text and "&lt;b&gt;revised&lt;/b&gt;" in r.text, name
        one = engine.store.get_paper("0704.0179")
        assert "Submitted 2007-04-02" in pages["paper"].text and note in pages["paper"].text
        feed = c.get("/feeds/search.atom", params={"q": "zebrafish"}).text
        assert note in feed
    # a paper with one version says nothing of versions
    with TestClient(create_app(engine)) as c:
        assert "updated to" not in c.get("/papers/0704.0004").text.split("<h2>Abstract")[0]
        assert "updated to v2 (2007-07-24)" in c.get("/papers/0704.0001").text  # the corpus's own v2
    assert one.versions == {1: "2007-04-02", 2: "2024-05-02"}


def test_updated_to_v2_in_chromium(built, tmp_path, browser):
    import os
    import shutil
    import subprocess
    import sys

    from support import free_port, serving

    home = tmp_path / "home"
    shutil.copytree(built[0], home)
    env = dict(os.environ, PAPERBOY_HOME=str(home), HF_HUB_OFFLINE="1")
    for n, text in ((1, kaggle(1)), (2, kaggle(2, abstract=ADDED + KAGGLE_V1))):
        subprocess.run([sys.executable, "-m", "paperboy.cli", "ingest", "kaggle",
                        str(write(tmp_path, f"v{n}.jsonl", text)), "-q"], env=env, check=True)
    port = free_port()
    with serving([sys.executable, "-m", "paperboy.cli", "serve", "--port", str(port)], port, env=env,
                 ready_path="/api/openapi.json") as url:
        page = browser.new_page()
        page.goto(url + "/papers/0704.0179")
        assert page.locator(".meta .updated").first.inner_text() == "updated to v2 (2024-05-02)"
        assert "zebrafish" in page.locator(".abstract-full").inner_text()
        shots = Path(os.environ.get("PAPERBOY_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))
        (shots / "screenshots").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "screenshots" / "paper-updated.png"), full_page=True)
        page.close()


# -- 3. the digest tells readers who saved it, once ---------------------------------------------

@pytest.fixture
def mail_engine(built_home, smtp):
    with Engine.from_settings(home=built_home, secret_key="k", base_url=BASE, smtp_host="127.0.0.1",
                              smtp_port=smtp[0].port, digest_size=5, digest_trending=3) as e:
        yield e


def digest_reader(engine: Engine, name: str = "reader") -> int:
    uid = engine.store.create_user(name, f"{name}@example.org", "x")
    engine.store.mark_email_verified(uid)
    engine.store.update_profile(uid, digest="daily", digest_hour=8, timezone="Europe/Berlin", quiet_days="skip")
    return uid


def plain(msg) -> str:
    return msg.get_body(("plain",)).get_content()


def section(text: str, title: str) -> str:
    """The lines of one digest section (up to the next blank-line-separated heading)."""
    if title not in text:
        return ""
    return re.split(r"\n(?=[A-Z][^\n]*:\n)", text.split(title, 1)[1], maxsplit=1)[0]


def test_readers_who_saved_it_are_told_once(mail_engine, smtp, tmp_path):
    e, inbox = mail_engine, smtp[1]
    e.ingest(write(tmp_path, "v1.jsonl", kaggle(1)))
    e.embed()
    pid = e.store.get_paper("0704.0179").id
    saver = digest_reader(e, "saver")
    digest_reader(e, "other")  # saved nothing: told nothing
    e.store.save(saver, pid)
    # It was mailed to the saver before (in the sent ledger): that must not keep its update out.
    old = e.store.record_digest(saver, "daily:2026-11-20", [pid], [])
    e.store.mark_digest(old["id"], "sent")
    assert pid in e.store.sent_ids(saver)

    e.digests().run(now=NOW)  # v1 only: nothing to tell
    assert all("Updated in your library" not in plain(m) for m in inbox.messages)

    e.ingest(write(tmp_path, "v2.jsonl", kaggle(2, abstract=ADDED + KAGGLE_V1)))
    e.embed()
    inbox.messages.clear()
    run = e.digests().run(now=NOW + timedelta(days=1))
    mails = {m["To"]: m for m in inbox.messages}
    assert run.failed == [] and "saver@example.org" in mails
    assert "other@example.org" not in mails or "Updated in your library" not in plain(mails["other@example.org"])
    msg = mails["saver@example.org"]
    text, html = plain(msg), msg.get_body(("html",)).get_content()
    told = section(text, "Updated in your library:")
    assert "Experimental nonclassicality of single-photon-added thermal light states: now v2 (2024-05-02)" in told
    assert f"{BASE}/papers/0704.0179" in told
    assert "<h2>Updated in your library</h2>" in html and "now v2 (2024-05-02)" in html
    assert "quiet day" not in msg["Subject"]

    inbox.messages.clear()
    e.digests().run(now=NOW + timedelta(days=2))  # told once: not again
    assert all("Updated in your library" not in plain(m) for m in inbox.messages)

    # v3 withdraws it: the saver hears of that version too, once, flagged.
    e.ingest(write(tmp_path, "v3.jsonl", kaggle(3, abstract=WITHDRAWN, comments=WITHDRAWN)))
    inbox.messages.clear()
    e.digests().run(now=NOW + timedelta(days=3))
    mails = {m["To"]: m for m in inbox.messages}
    assert "now v3 (2024-05-03), withdrawn" in section(plain(mails["saver@example.org"]), "Updated in your library:")
    inbox.messages.clear()
    e.digests().run(now=NOW + timedelta(days=4))
    assert all("Updated in your library" not in plain(m) for m in inbox.messages)


def _v2_digest_refused(e: Engine, inbox, tmp_path: Path, attempts: int):  # noqa: ANN202 - the run's summary
    """A saver of 0704.0179 at v1; v2 lands; the next digest (recorded with v2) is refused by the mail
    server, with ``attempts`` allowed; the server works again afterwards."""
    e.ingest(write(tmp_path, "v1.jsonl", kaggle(1)))
    pid = e.store.get_paper("0704.0179").id
    uid = digest_reader(e, "saver")
    e.store.save(uid, pid)
    e.digests().run(now=NOW)
    e.ingest(write(tmp_path, "v2.jsonl", kaggle(2, abstract=ADDED + KAGGLE_V1)))
    inbox.messages.clear()
    e.settings["digest_max_attempts"] = attempts
    port, e.settings["smtp_port"] = e.settings["smtp_port"], 1  # refused
    run = e.digests().run(now=NOW + timedelta(days=1))
    e.settings["smtp_port"] = port
    assert not inbox.messages
    return run


def test_an_update_in_a_digest_that_failed_for_good_is_told_later(mail_engine, smtp, tmp_path):
    e, inbox = mail_engine, smtp[1]
    assert _v2_digest_refused(e, inbox, tmp_path, attempts=1).given_up  # given up at once
    inbox.messages.clear()
    e.digests().run(now=NOW + timedelta(days=2))
    assert "now v2 (2024-05-02)" in section(plain(inbox.messages[0]), "Updated in your library:")


def test_a_version_landing_before_a_retried_digest_is_sent_is_told_once(mail_engine, smtp, tmp_path):
    """v2 is recorded in a digest whose sending fails; v3 lands before the retry. The retried mail names
    v2 (what it was recorded with, and what counts as told), the next digest v3: each version once."""
    e, inbox = mail_engine, smtp[1]
    run = _v2_digest_refused(e, inbox, tmp_path, attempts=5)
    assert run.failed and not run.given_up  # retried later
    e.ingest(write(tmp_path, "v3.jsonl", kaggle(3, abstract=ADDED + KAGGLE_V1)))  # between recording and sending
    e.digests().run(now=NOW + timedelta(days=1, hours=1))  # the retry
    told = [section(plain(m), "Updated in your library:") for m in inbox.messages]
    assert len(told) == 1 and "now v2 (2024-05-02)" in told[0] and "v3" not in told[0], told
    inbox.messages.clear()
    e.digests().run(now=NOW + timedelta(days=2))
    told = [section(plain(m), "Updated in your library:") for m in inbox.messages]
    assert len(told) == 1 and "now v3 (2024-05-03)" in told[0] and "v2" not in told[0], told
    inbox.messages.clear()
    e.digests().run(now=NOW + timedelta(days=3))
    assert all("Updated in your library" not in plain(m) for m in inbox.messages)


# -- 4. withdrawn: flagged everywhere, out of recommendations and digests ------------------------

def test_withdrawn_is_flagged_and_leaves_recommendations_and_digests(mail_engine, smtp, tmp_path):
    from paperboy.services.library import import_library

    e, inbox = mail_engine, smtp[1]
    day = NOW.date().isoformat()
    e.ingest(write(tmp_path, "v1.jsonl", kaggle(1)))
    e.embed()
    pid = e.store.get_paper("0704.0179").id
    e.store.submit(pid, None, day)  # on today's list, and upvoted: trending
    for n in range(3):
        e.store.set_vote(e.store.create_user(f"voter{n}", None, "x"), pid, True)
    uid = digest_reader(e, "reader")
    import_library(e, uid, DATA / "library" / "zotero.bib")
    profile = e.store.profile(uid)
    assert pid in library.rules(e.store, profile)([pid])
    assert pid in {x.paper.id for x in e.listings.trending(limit=10)}
    before = e.digests().run(now=NOW, dry_run=True).previews
    assert [pid in p["papers"] + p["trending"] for p in before] == [True]  # what v2 takes away
    e.store.update_profile(uid, quiet_days="note")

    e.ingest(write(tmp_path, "v2.jsonl", kaggle(2, abstract=WITHDRAWN, comments=WITHDRAWN + " Accepted in PRA.")))
    e.embed()
    e.refresh(force=True)
    assert library.rules(e.store, profile)([pid]) == {}  # never a candidate again
    recs, _ = library.recommend(e, uid, 50, candidates=[pid] + e.store.day_ids(day, day))
    assert pid not in {r.paper.id for r in recs}
    e.digests().run(now=NOW)
    assert inbox.messages and all("/papers/0704.0179" not in plain(m) for m in inbox.messages)

    with TestClient(create_app(e)) as c:
        paper = c.get("/papers/0704.0179").text
        assert "<strong>Withdrawn</strong> (2024-05-02)" in paper and "updated to v2 (2024-05-02)" in paper
        for path in (f"/?date={day}", "/trending", "/search?q=nonclassicality+thermal"):
            r = c.get(path)
            card = r.text.split('href="/papers/0704.0179"', 1)
            assert len(card) == 2 and 'class="withdrawn">withdrawn</strong>' in card[1].split("</article>")[0], path
        assert c.get("/api/papers/0704.0179").json()["withdrawnAt"].startswith("2024-05-02")
        assert "[Withdrawn] Experimental nonclassicality" in c.get("/feeds/trending.atom").text
    assert pid in lexical_ids(e, "nonclassicality thermal")  # a search still finds it
