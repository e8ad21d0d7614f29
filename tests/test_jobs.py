"""Background jobs: a submission is queued in the store and completed off the request path, survives a
restart, is retried with back-off when arXiv is down, and never runs twice (issue 9, defect 3)."""

from __future__ import annotations

import re
import threading
import time
from datetime import date

from fastapi.testclient import TestClient
from test_arxiv_remote import ROTATION, Server

from paperboy.engine import Engine
from paperboy.web.app import create_app

ATOM = {"Content-Type": "application/atom+xml"}


def atom_server() -> Server:
    return Server(lambda n, params: (200, ATOM, ROTATION.read_bytes()))


def test_a_queued_submission_survives_a_restart(engine):
    home = engine.settings["home"]
    uid = engine.store.create_user("kim", None, "x")
    done = engine.submit("https://arxiv.org/abs/1903.02058v2", uid)
    assert done.paper is None and done.job_id and engine.store.job(done.job_id)["status"] == "queued"
    assert engine.submit("1903.02058", uid).job_id == done.job_id  # one live job per paper
    engine.close()
    server = atom_server()
    try:
        with Engine.from_settings(home=home, api_url=f"{server.url}/api/query", api_delay=0.0,
                                  submit_embeds=False) as again:
            run = again.run_jobs()
            assert (run.done, run.failed) == (1, [])
            job = again.store.job(done.job_id)
            assert job["status"] == "done" and job["result"]["arxiv_id"] == "1903.02058"
            paper = again.paper("1903.02058")
            assert again.store.submissions([paper.id])[paper.id]["day"] == date.today().isoformat()
            assert again.run_jobs().done == 0  # nothing left
    finally:
        server.close()


def test_a_dead_upstream_is_retried_with_back_off_then_given_up(engine):
    server = Server(lambda n, params: (503, {"Retry-After": "0"}, b"down"))
    try:
        engine.settings.update(api_url=f"{server.url}/api/query", api_delay=0.0, job_max_attempts=2,
                               submit_embeds=False)
        job_id = engine.submit("1903.02058", None).job_id
        first = engine.run_jobs()
        assert first.retried == 1 and not first.failed
        job = engine.store.job(job_id)
        assert job["status"] == "queued" and job["attempts"] == 1 and job["last_error"]
        assert engine.run_jobs().retried == 0  # backing off: not due yet
        engine.store.conn.execute("UPDATE jobs SET run_after = '2000-01-01T00:00:00+00:00'")  # time passes
        second = engine.run_jobs()
        assert len(second.failed) == 1 and "gave up after 2 attempts" in second.failed[0]
        assert engine.store.job(job_id)["status"] == "failed"
        assert engine.submit("1903.02058", None).job_id != job_id  # a new submission starts afresh
    finally:
        server.close()


def test_a_job_runs_once_however_many_workers_claim_it(engine):
    home = engine.settings["home"]
    job_id, _ = engine.store.enqueue_job("submit", "1903.02058", {"arxiv_id": "1903.02058"})
    workers = [Engine.from_settings(home=home) for _ in range(4)]
    claims: list = []
    barrier = threading.Barrier(len(workers))

    def claim(i: int) -> None:
        barrier.wait()
        claims.append(workers[i].store.claim_job(f"w{i}", 600))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [c for c in claims if c is not None]
    assert len(won) == 1 and won[0]["id"] == job_id
    for w in workers:
        w.close()


def test_a_crashed_workers_job_is_taken_up_when_its_lease_runs_out(engine):
    job_id, _ = engine.store.enqueue_job("submit", "1903.02058", {"arxiv_id": "1903.02058"})
    assert engine.store.claim_job("crashed", 0.2)["id"] == job_id
    assert engine.store.claim_job("other", 600) is None  # leased
    time.sleep(0.3)
    retaken = engine.store.claim_job("other", 600)
    assert retaken["id"] == job_id and retaken["attempts"] == 2
    assert not engine.store.finish_job(job_id, "crashed", "done")  # the lease moved on
    assert engine.store.finish_job(job_id, "other", "done")


def test_submitting_never_waits_on_arxiv(engine):
    """The upstream is held until the test lets it go: the request must answer before that, and
    the site keeps serving meanwhile (before, both waited up to http_timeout)."""
    release = threading.Event()

    def answer(n, params):
        release.wait(60)
        return 200, ATOM, ROTATION.read_bytes()

    server = Server(answer)
    engine.settings.update(api_url=f"{server.url}/api/query", api_delay=0.0, submit_embeds=False,
                           job_poll_seconds=0.2)
    try:
        with TestClient(create_app(engine)) as c:
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', c.get("/signup").text).group(1)
            c.post("/signup", data={"name": "kim", "password": "violet tapestry 42", "csrf": csrf})
            page = c.post("/settings/tokens", data={"name": "t", "csrf": csrf}).text
            auth = {"Authorization": "Bearer " + re.search(r"(pb_[A-Za-z0-9_-]+)", page).group(1)}
            r = c.post("/api/submit", json={"ref": "1903.02058"}, headers=auth)
            assert r.status_code == 202 and r.json()["status"] == "queued"
            assert not release.is_set()
            assert c.get("/").status_code == 200 and c.get("/api/search", params={"q": "quantum"}).status_code == 200
            status = c.get(r.json()["status_url"], headers=auth).json()
            assert status["status"] in ("queued", "running")
            assert c.get(r.json()["status_url"]).status_code == 403  # a job's status is its submitter's
            release.set()
            deadline = time.monotonic() + 60
            while status["status"] != "done" and time.monotonic() < deadline:
                time.sleep(0.2)
                status = c.get(r.json()["status_url"], headers=auth).json()
            assert status["status"] == "done", status
            assert c.get("/api/papers/1903.02058").status_code == 200
    finally:
        release.set()
        server.close()


def test_a_library_file_cannot_put_made_up_metadata_on_a_public_list(engine, tmp_path):
    """Anyone's BibTeX can name an arXiv id with any title (a red-team "FREE BITCOIN" paper by
    "Albert Einstein"): it is not listed by its date, and a submission of it asks arXiv first,
    whose metadata replaces the file's."""
    from paperboy.services.library import import_library, recommend as library_recommend

    uid = engine.store.create_user("eve", None, "x")
    today = date.today()
    bib = tmp_path / "fake.bib"
    bib.write_text("@article{fake, title={FREE BITCOIN at http://evil.example}, author={Einstein, Albert},\n"
                   f"  eprint={{1903.02058}}, archivePrefix={{arXiv}}, year={{{today.year}}}, month={{{today.month}}},\n"
                   "  abstract={Visit now}}\n")
    import_library(engine, uid, bib, source="upload")  # what a member's web upload does
    fake = engine.paper("1903.02058")
    assert fake.title.startswith("FREE BITCOIN")
    day = fake.submitted
    assert fake.id not in engine.store.day_ids(day, day)  # not public by its date
    assert fake.id in {s["paper_id"] for s in engine.store.saves(uid)}  # but in the member's library
    assert not [h for h in engine.search("BITCOIN", mode="bm25").hits if h.paper.id == fake.id]  # nor in search
    other = engine.store.create_user("bob", None, "x")
    engine.store.update_profile(other, statement="free bitcoin: visit now")  # a reader the fake fits
    recs, _ = library_recommend(engine, other, 50)
    assert recs and fake.id not in [r.paper.id for r in recs]  # nor recommended to anyone
    server = atom_server()
    try:
        engine.settings.update(api_url=f"{server.url}/api/query", api_delay=0.0, submit_embeds=False)
        done = engine.submit("1903.02058", uid)
        assert done.paper is None and done.job_id  # queued: arXiv is asked first
        assert engine.run_jobs().done == 1 and len(server.log) == 1
    finally:
        server.close()
    real = engine.paper("1903.02058")
    assert real.title == "Rotatable random sequences in local fields" and "Albert Einstein" not in real.authors
    assert real.id in engine.store.day_ids(today.isoformat(), today.isoformat())
    assert [h.paper.id for h in engine.search("Rotatable random sequences", mode="bm25").hits][:1] == [real.id]


def test_the_operators_own_library_files_are_trusted(engine, tmp_path):
    """`paperboy library import` / `ingest bibtex` are the operator's: their papers are public."""
    from paperboy.services.library import import_library

    uid = engine.store.create_user("op", None, "x")
    bib = tmp_path / "mine.bib"
    bib.write_text("@article{m, title={Zyxwv operator paper}, abstract={Mine.}, year={2020}}\n")
    import_library(engine, uid, bib)
    assert [h.paper.title for h in engine.search("zyxwv", mode="bm25").hits] == ["Zyxwv operator paper"]


def test_a_job_whose_runs_never_finish_is_given_up(engine):
    """A job that kills its worker each time (claimed, never finished) must not run forever after
    every restart: past job_max_attempts claims it fails for good."""
    engine.settings["job_max_attempts"] = 2
    job_id, _ = engine.store.enqueue_job("submit", "1903.02058", {"arxiv_id": "1903.02058"})
    for _ in range(3):  # three workers died with it
        assert engine.store.claim_job("doomed", 0.001)["id"] == job_id
        time.sleep(0.01)
    run = engine.run_jobs()
    assert run.done == 0 and len(run.failed) == 1 and "never finished" in run.failed[0]
    assert engine.store.job(job_id)["status"] == "failed"


def test_submissions_go_before_long_imports(engine):
    engine.store.enqueue_job("library_import", "big", {"user_id": 1, "path": "/nonexistent", "name": "x", "folder": "x"})
    submit_id, _ = engine.store.enqueue_job("submit", "1903.02058", {"arxiv_id": "1903.02058"})
    assert engine.store.claim_job("w", 60)["id"] == submit_id


def test_stopping_the_server_does_not_wait_for_a_running_job(engine):
    """A job held by a slow upstream (or a long import) must not keep `paperboy serve` from
    stopping: the job is taken up again after a restart, when its lease runs out."""
    import os
    import subprocess
    import sys

    import httpx

    from support import free_port, serving

    release = threading.Event()
    fetching = threading.Event()

    def answer(n, params):
        fetching.set()
        release.wait(120)
        return 200, ATOM, ROTATION.read_bytes()

    upstream = Server(answer)
    home = engine.settings["home"]
    engine.close()
    port = free_port()
    env = dict(os.environ, PAPERBOY_API_URL=f"{upstream.url}/api/query", PAPERBOY_API_DELAY="0",
               PAPERBOY_SUBMIT_EMBEDS="false", PAPERBOY_JOB_POLL_SECONDS="0.2", HF_HUB_OFFLINE="1")
    subprocess.run([sys.executable, "-m", "paperboy.cli", "--home", str(home), "user", "add", "kim",
                    "--password-stdin"], input="violet tapestry 42\n", text=True, env=env, check=True)
    try:
        server = serving([sys.executable, "-m", "paperboy.cli", "--home", str(home), "serve", "--port", str(port)],
                         port, env=env)
        with server as url, httpx.Client(base_url=url, follow_redirects=False) as c:
            token = re.search(r'name="csrf" value="([0-9a-f]+)"', c.get("/login").text).group(1)
            assert c.post("/login", data={"name": "kim", "password": "violet tapestry 42", "csrf": token}).status_code == 303
            r = c.post("/submit", data={"ref": "1903.02058", "csrf": token})
            assert r.status_code == 303 and "/submit?job=" in r.headers["location"]
            assert fetching.wait(30)  # the job is running, held by the upstream
            started = time.monotonic()
            server.proc.terminate()
            server.proc.wait(20)
            assert time.monotonic() - started < 15
    finally:
        release.set()
        upstream.close()


def test_a_failing_runner_pass_is_reported_not_hung(engine):
    """A pass that raises (here: a store URL nobody can open) must reach the loop, which logs it
    and goes on; it used to leave the runner waiting forever on a future nobody settled."""
    import asyncio

    import pytest

    from paperboy.errors import ConfigError
    from paperboy.web.background import JobRunner

    runner = JobRunner(dict(engine.settings, store="nonsense://x"))
    with pytest.raises(ConfigError):
        asyncio.run(asyncio.wait_for(runner._run_pass(), 30))


def test_a_suspended_members_queued_jobs_do_not_land(engine, tmp_path):
    """Queued before the suspension (or the account's deletion), run after it: nothing of it lands
    (no submission on a list, no upload in a library), and the upload file is removed."""
    store = engine.store
    mallory = store.create_user("mallory", None, "x")
    known = store.get_paper("0704.0001")
    upload = tmp_path / "upload.bib"
    upload.write_text("@article{a, title={Spam spam spam}, author={Mallory, M}, year={2024}}\n")
    sub, _ = store.enqueue_job("submit", "0704.0001", {"arxiv_id": "0704.0001", "user_id": mallory,
                                                        "day": date.today().isoformat()})
    imp, _ = store.enqueue_job("library_import", "u1", {"user_id": mallory, "path": str(upload), "name": "upload.bib",
                                                        "folder": "imported"})
    assert store.set_suspended(mallory, True)
    run = engine.run_jobs()
    assert run.done == 0 and len(run.failed) == 2 and all("suspended or deleted" in f for f in run.failed)
    assert store.job(sub)["status"] == store.job(imp)["status"] == "failed"
    assert store.submission(known.id) is None and store.saves(mallory) == [] and not upload.exists()
    store.set_suspended(mallory, False)  # lifted: what is queued from now on runs again
    again, _ = store.enqueue_job("submit", "0704.0001", {"arxiv_id": "0704.0001", "user_id": mallory,
                                                          "day": date.today().isoformat()})
    assert engine.run_jobs().done == 1 and store.submission(known.id)["user_id"] == mallory
