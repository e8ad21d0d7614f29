import json

import pytest
from click.testing import CliRunner

from conftest import DATA
from paperboy.cli import EXIT_FAILED, EXIT_OK, EXIT_SKIPPED, main
from paperboy.store.migrations import LATEST
from support import free_port, serving


@pytest.fixture
def cli(tmp_path):
    runner = CliRunner()

    def invoke(*args, **kw):
        return runner.invoke(main, ["--home", str(tmp_path / "home"), *args], catch_exceptions=False, **kw)
    return invoke


def test_init_is_idempotent(cli, tmp_path):
    r = cli("init")
    assert r.exit_code == EXIT_OK and f"schema version {LATEST}" in r.output
    r = cli("init", "--json")
    assert json.loads(r.output)["schema_version"] == LATEST
    assert (tmp_path / "home" / "paperboy.sqlite3").exists()


def test_ingest_detects_format_and_reports(cli):
    r = cli("ingest", str(DATA / "kaggle_excerpt.jsonl"))
    assert r.exit_code == EXIT_OK
    assert r.output.strip().endswith("12 read, 12 new, 0 updated, 0 unchanged, 0 skipped")
    r = cli("ingest", "--json", "kaggle", str(DATA / "kaggle_excerpt.jsonl"))
    out = json.loads(r.output)
    assert (out["read"], out["unchanged"], out["inserted"]) == (12, 12, 0)


def test_ingest_several_files_and_stats(cli):
    r = cli("ingest", str(DATA / "hf_scrape_excerpt.json"), str(DATA / "hf_daily.json"))
    assert r.exit_code == EXIT_OK and "total: 10 read, 6 new" in r.output
    st = json.loads(cli("stats", "--json").output)
    assert st["papers"] == 6 and st["by_source"] == {"hf-scrape": 6, "hf-daily": 4}
    assert "papers       6" in cli("stats").output


def test_skipped_records_exit_code_and_reasons(cli, tmp_path):
    bad = tmp_path / "bad.jsonl"
    lines = (DATA / "kaggle_excerpt.jsonl").read_text().splitlines()
    bad.write_text("\n".join([lines[0], "{not json", lines[1]]) + "\n")
    r = cli("ingest", "kaggle", str(bad))
    assert r.exit_code == EXIT_SKIPPED
    assert f"skipped {bad}:2: invalid JSON" in r.stderr
    assert "2 new" in r.stdout and "1 skipped" in r.stdout


def test_wrong_format_and_missing_file_fail_clearly(cli, tmp_path):
    r = cli("ingest", "oai-pmh", str(DATA / "kaggle_excerpt.jsonl"))
    assert r.exit_code == EXIT_FAILED and r.stderr.startswith("error: ") and "not an OAI-PMH response" in r.stderr
    assert "Traceback" not in r.output
    r = cli("ingest", str(tmp_path / "nope.jsonl"))
    assert r.exit_code == EXIT_FAILED and "no such file" in r.stderr
    r = cli("ingest", "kaggle")
    assert r.exit_code == 2


def test_show_by_any_id(cli):
    cli("ingest", str(DATA / "kaggle_excerpt.jsonl"))
    for ref in ("0704.0001", "arXiv:0704.0001v1", "https://arxiv.org/abs/0704.0001", "10.1103/PhysRevD.76.013009"):
        r = cli("show", ref)
        assert r.exit_code == EXIT_OK and r.output.startswith("Calculation of prompt diphoton"), ref
    paper = json.loads(cli("show", "--json", "0704.0001").output)
    assert paper["authors"][0] == "C. Balázs" and paper["sources"][0]["source"] == "kaggle"
    r = cli("show", "9999.99999")
    assert r.exit_code == EXIT_FAILED and "no paper matches" in r.stderr


def test_run_ingests_bundled_sample(cli):
    r = cli("run", "-q", "--no-embed", "--no-serve")
    assert r.exit_code == EXIT_OK
    assert "sample corpus: 2978 read, 2978 new" in r.output and "papers       2978" in r.output
    assert "search index: 2978 papers" in r.output and "source       hf-scrape: 753" in r.output
    r = cli("run", "-q", "--no-embed", "--no-serve")
    assert r.exit_code == EXIT_OK and "sample corpus: 2978 read, 0 new, 0 updated, 2978 unchanged" in r.output


def test_run_serves_the_sample_corpus(tmp_path):
    """The README's main job, as a process: ingest the sample, then serve it over HTTP."""
    import os
    import sys

    import requests

    port = free_port()
    env = dict(os.environ, PAPERBOY_HOME=str(tmp_path / "home"), PAPERBOY_WEB_PORT=str(port))
    with serving([sys.executable, "-m", "paperboy.cli", "run", "-q", "--no-embed"], port, env=env, ready_path="/",
                 timeout=90) as site:
        r = requests.get(f"{site}/", timeout=2)
        assert r.status_code == 200 and "<h1>Daily papers" in r.text and r.text.count('class="entry"') > 0


def test_bad_config_is_a_clear_error(cli, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("batch_size = 'many'\n")
    r = cli("stats")
    assert r.exit_code == EXIT_FAILED and "batch_size" in r.stderr and "not a number" in r.stderr
    (home / "config.toml").write_text("bogus = 1\n")
    assert "unknown setting 'bogus'" in cli("stats").stderr


def test_the_listener_of_several_workers_turns_nagle_off():
    """`serve --workers N` shares one listener; its connections must have TCP_NODELAY, or each
    keep-alive request after the first waits ~40 ms for a delayed ACK (Kludex/uvicorn#3149)."""
    import socket

    import uvicorn

    from paperboy.cli import bind_listener
    from support import free_port

    sock = bind_listener(uvicorn.Config("paperboy.web.app:app_from_env", host="127.0.0.1", port=free_port()))
    try:
        sock.listen()
        with socket.create_connection(sock.getsockname()) as _client:
            conn, _ = sock.accept()
            with conn:
                assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        sock.close()
