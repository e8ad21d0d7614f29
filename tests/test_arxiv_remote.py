"""arXiv over the network, for real: OAI-PMH harvests and API fetches against a local HTTP server
that replays recorded arXiv responses (tests/data/arxiv), into a real SQLite store."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from click.testing import CliRunner

from paperboy import ingest, settings
from paperboy.cli import main
from paperboy.errors import Conflict, SourceError
from paperboy.models import BadRecord, PaperRecord
from paperboy.sources import arxiv_api, arxiv_oai
from paperboy.store import open_store

DATA = Path(__file__).parent / "data" / "arxiv"
PAGE_A = (DATA / "oai_pmh" / "listrecords_oai_dc_cs_a.xml").read_bytes()
PAGE_B_RAW = (DATA / "oai_pmh" / "listrecords_oai_dc_cs_b.xml").read_bytes()
TOKEN = "6960524|1001"
# As recorded, page B repeats page A's records *and* token; it is served as the last page.
PAGE_B = PAGE_B_RAW.replace(f">{TOKEN}</resumptionToken>".encode(), b"></resumptionToken>")
HANDMADE = DATA / "listrecords_arxiv_handmade.xml"
BAD_LINE = 78  # line of the <record> with &foo; in HANDMADE (record 3)
ROTATION = DATA / "api_atom" / "run_20260212T040931Z.xml"  # 3 entries, 1903.02058v2 first
A_IDS = ["1303.2033", "2401.14034", "2401.14036", "2401.14038", "2401.14040"]
QUERY = {"verb": "ListRecords", "metadataPrefix": "oai_dc", "set": "cs", "from": "2024-01-25"}
NEXT = {"verb": "ListRecords", "resumptionToken": TOKEN}
OAI_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
NO_RECORDS = OAI_HEAD + (b'<responseDate>2024-01-27T18:00:00Z</responseDate><error code="noRecordsMatch">'
                         b"The combination of the values of the from, until, set and metadataPrefix "
                         b"arguments results in an empty list.</error></OAI-PMH>")
BAD_TOKEN = OAI_HEAD + (b'<responseDate>2024-01-27T18:00:00Z</responseDate><error code="badResumptionToken">'
                        b"The value of the resumptionToken argument is invalid or expired.</error></OAI-PMH>")


class Server:
    """A real HTTP server on 127.0.0.1 (port 0) in a daemon thread. ``answer(n, params)`` gives
    (status, headers, body) for the n-th request; every request is logged as (time, path, params)."""

    def __init__(self, answer):
        self.log: list[tuple[float, str, dict[str, str]]] = []
        lock, log = threading.Lock(), self.log

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlsplit(self.path)
                with lock:
                    log.append((time.monotonic(), url.path, dict(parse_qsl(url.query))))
                    n = len(log) - 1
                status, headers, body = answer(n, log[n][2])
                self.send_response(status)
                for k, v in {"Content-Type": "text/xml; charset=utf-8", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def params(self) -> list[dict[str, str]]:
        return [p for _, _, p in self.log]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def ok(body: bytes) -> tuple[int, dict, bytes]:
    return 200, {}, body


def oai(special: dict[int, tuple[int, dict, bytes]] | None = None):
    """The recorded harvest: page A for a query, page B for A's token; ``special`` maps request
    numbers to other answers (503, 500, OAI errors)."""
    special = special or {}

    def answer(n, params):
        if n in special:
            return special[n]
        if n > 20:  # a runaway harvest fails instead of hanging the test
            return 500, {}, b"too many requests"
        return ok(PAGE_B if "resumptionToken" in params else PAGE_A)
    return answer


@pytest.fixture
def serve():
    servers: list[Server] = []

    def start(answer) -> Server:
        servers.append(Server(answer))
        return servers[-1]
    yield start
    for s in servers:
        s.close()


@pytest.fixture
def store(tmp_path):
    st = open_store("sqlite", tmp_path)
    yield st
    st.close()


def oai_settings(tmp_path, server, **more):
    return settings.load({"oai_url": f"{server.url}/oai2", "oai_delay": 0, "oai_retry_after": 1,
                          "oai_prefix": "oai_dc", "home": str(tmp_path), **more},
                         env={"PAPERBOY_CONFIG": str(tmp_path / "no-config.toml")})


def cursor(store, s):
    return store.get_cursor(f"oai:{s['oai_url']}:cs:{s['oai_prefix']}")


def papers(store) -> int:
    return store.stats()["papers"]


# -- parsing recorded and hand-written pages --------------------------------------------------------

def test_recorded_oai_dc_pages_parse():
    recs = list(arxiv_oai.read(DATA / "oai_pmh" / "listrecords_oai_dc_cs_a.xml"))
    assert [r.arxiv_id for r in recs] == A_IDS
    assert recs[0].title == "Extended Fourier analysis of signals"
    assert recs[0].authors == ["Vilnis Liepins"]
    assert (recs[0].submitted, recs[0].updated, recs[0].comments) == ("2013-03-08", "2024-01-23", "32 pages, 9 figures")
    assert recs[2].authors == ["Jiu-Cheng Xie", "Jun Yang", "Wenqing Wang", "Feng Xu", "Hao Gao"]
    assert recs[4].title == "(Chat)GPT v BERT: Dawn of Justice for Semantic Change Detection"
    assert recs[4].authors == ["Francesco Periti", "Haim Dubossarsky", "Nina Tahmasebi"]
    assert arxiv_oai.parse_page(PAGE_A, "a").token == TOKEN
    assert arxiv_oai.parse_page(PAGE_B, "b").token is None
    assert list(arxiv_oai.read(DATA / "oai_pmh" / "listrecords_oai_dc_cs_b.xml")) == recs  # LF vs CRLF


def test_handmade_arxiv_format_page_parses_and_reports_the_bad_record():
    items = list(arxiv_oai.read(HANDMADE))
    good = [i for i in items if isinstance(i, PaperRecord)]
    bad = [i for i in items if isinstance(i, BadRecord)]
    assert len(items) == 4  # the deleted 0704.0004 is dropped silently
    assert [r.arxiv_id for r in good] == ["0704.0001", "0704.0002", "0704.0009"]
    p = good[0]
    assert p.title == "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    assert p.authors == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan"]
    assert (p.doi, p.journal_ref, p.primary_category) == (
        "10.1103/physrevd.76.013009", "Phys.Rev.D76:013009,2007", "hep-ph")
    assert (p.submitted, p.updated, p.comments) == (
        "2007-04-02", "2007-07-24", "37 pages, 15 figures; published version")
    assert good[1].categories == ["math.CO", "cs.CG"] and good[1].primary_category == "math.CO"
    assert good[2].authors[5] == "Neal J. Evans II" and good[2].doi == "10.1086/518646"
    assert bad[0].location == f"{HANDMADE}:{BAD_LINE} (record 3)"
    assert "Entity 'foo' not defined" in bad[0].reason


# -- live OAI-PMH harvests -------------------------------------------------------------------------

def test_harvest_retries_503_follows_token_and_continues_from_saved_date(tmp_path, serve, store):
    server = serve(oai({0: (503, {"Retry-After": "1"}, b"busy")}))
    s = oai_settings(tmp_path, server)
    summary = ingest.harvest_arxiv(store, s, set_spec="cs", from_date="2024-01-25")
    assert server.params == [QUERY, QUERY, NEXT]  # the 503 was retried, then the token followed
    assert server.log[1][0] - server.log[0][0] >= 1.0  # Retry-After honoured
    assert {p for _, p, _ in server.log} == {"/oai2"}
    # 10 records read; as recorded, page B holds the same 5 papers as page A: stored once
    assert (summary.read, summary.inserted, summary.unchanged, summary.skipped) == (10, 5, 5, 0)
    assert papers(store) == 5
    assert store.get_paper("2401.14040").authors == ["Francesco Periti", "Haim Dubossarsky", "Nina Tahmasebi"]
    today = datetime.now(timezone.utc).date().isoformat()
    saved = cursor(store, s)
    assert (saved["complete"], saved["token"], saved["next_from"]) == (True, None, today)

    again = ingest.harvest_arxiv(store, s, set_spec="cs")  # no from_date: continue from the cursor
    assert server.params[3:] == [{**QUERY, "from": today}, NEXT]
    assert (again.read, again.inserted) == (10, 0) and papers(store) == 5


def test_crash_on_page_b_then_rerun_resumes_from_token(tmp_path, serve, store):
    server = serve(oai({1: (500, {}, b"Internal Server Error")}))
    s = oai_settings(tmp_path, server)
    with pytest.raises(SourceError, match="500"):
        ingest.harvest_arxiv(store, s, set_spec="cs", from_date="2024-01-25")
    assert papers(store) == 5
    saved = cursor(store, s)
    assert (saved["complete"], saved["token"]) == (False, TOKEN)
    assert store.stats()["recent_runs"][0]["status"] == "failed"

    summary = ingest.harvest_arxiv(store, s, set_spec="cs", from_date="2024-01-25")
    assert server.params == [QUERY, NEXT, NEXT]  # the rerun asked for page B by token only
    assert (summary.read, summary.inserted, summary.unchanged) == (5, 0, 5)
    assert papers(store) == 5 and cursor(store, s)["complete"] is True


def test_bad_resumption_token_restarts_from_dates(tmp_path, serve, store):
    server = serve(oai({1: (500, {}, b"boom"), 2: ok(BAD_TOKEN)}))
    s = oai_settings(tmp_path, server)
    with pytest.raises(SourceError):
        ingest.harvest_arxiv(store, s, set_spec="cs", from_date="2024-01-25")
    summary = ingest.harvest_arxiv(store, s, set_spec="cs", from_date="2024-01-25")
    assert server.params == [QUERY, NEXT, NEXT, QUERY, NEXT]
    assert (summary.read, summary.inserted, summary.skipped) == (10, 0, 0)
    assert papers(store) == 5
    assert cursor(store, s)["complete"] is True


def test_crashed_incremental_harvest_resumes_without_from(tmp_path, serve, store):
    """A scheduled `harvest arxiv --set cs` (no --from) that crashed resumes by token, not from scratch."""
    server = serve(oai({3: (500, {}, b"boom")}))
    s = oai_settings(tmp_path, server)
    ingest.harvest_arxiv(store, s, set_spec="cs", from_date="2024-01-25")
    next_from = cursor(store, s)["next_from"]
    with pytest.raises(SourceError):
        ingest.harvest_arxiv(store, s, set_spec="cs")
    ingest.harvest_arxiv(store, s, set_spec="cs")
    assert server.params[2:] == [{**QUERY, "from": next_from}, NEXT, NEXT]
    assert cursor(store, s)["complete"] is True and papers(store) == 5


def test_a_repeated_resumption_token_fails_instead_of_looping(tmp_path, serve, store):
    server = serve(oai({1: ok(PAGE_A)}))  # page A again for its own token
    s = oai_settings(tmp_path, server)
    with pytest.raises(SourceError, match="repeated resumptionToken"):
        ingest.harvest_arxiv(store, s, set_spec="cs", from_date="2024-01-25")
    assert server.params == [QUERY, NEXT]
    assert papers(store) == 5


def test_no_records_match_is_a_complete_empty_harvest(tmp_path, serve, store):
    server = serve(lambda n, params: ok(NO_RECORDS))
    s = oai_settings(tmp_path, server)
    summary = ingest.harvest_arxiv(store, s, set_spec="cs", from_date="2030-01-01")
    assert server.params == [{**QUERY, "from": "2030-01-01"}]
    assert (summary.read, summary.skipped, papers(store)) == (0, 0, 0)
    assert cursor(store, s)["complete"] is True
    assert store.stats()["recent_runs"][0]["status"] == "ok"


# -- arXiv API -------------------------------------------------------------------------------------

def api_settings(tmp_path, server):
    return settings.load({"api_url": f"{server.url}/api/query", "api_delay": 0.2, "home": str(tmp_path)},
                         env={"PAPERBOY_CONFIG": str(tmp_path / "no-config.toml")})


def test_fetch_by_url_stores_the_paper_and_spaces_calls(tmp_path, serve, store):
    server = serve(lambda n, params: (200, {"Content-Type": "application/atom+xml"}, ROTATION.read_bytes()))
    s = api_settings(tmp_path, server)
    summary = ingest.fetch_arxiv(store, s, ["https://arxiv.org/abs/1903.02058v2"])
    assert server.log[0][1] == "/api/query"
    assert server.params[0] == {"id_list": "1903.02058v2", "max_results": "1"}
    assert (summary.read, summary.inserted, summary.skipped) == (3, 3, 0)  # the recording holds 3 entries
    p = store.get_paper("arXiv:1903.02058")
    assert p.title == "Rotatable random sequences in local fields"
    assert p.authors == ["Steven N. Evans", "Daniel Raban"]
    assert (p.primary_category, p.arxiv_version, p.submitted) == ("math.PR", 2, "2019-03-05")
    assert p.versions == {2: "2019-05-16"}

    again = ingest.fetch_arxiv(store, s, ["1903.02058v2"])
    assert (again.read, again.unchanged) == (3, 3)
    assert server.log[1][0] - server.log[0][0] >= s["api_delay"]


def test_api_error_entry_is_reported_as_skipped(tmp_path, serve, store):
    server = serve(lambda n, params: ok((DATA / "api_error.xml").read_bytes()))
    s = api_settings(tmp_path, server)
    summary = ingest.fetch_arxiv(store, s, ["1234.12345"])
    assert server.params[0]["id_list"] == "1234.12345"
    assert (summary.read, summary.inserted, summary.skipped) == (1, 0, 1)
    assert summary.errors == [f"{s['api_url']}:record 1: arXiv API error: incorrect id format for 1234.12345"]
    assert papers(store) == 0 and store.stats()["recent_runs"][0]["status"] == "partial"


def test_recorded_api_responses_parse():
    files = sorted((DATA / "api_atom").glob("*.xml"))
    counts, totals = [], []
    for f in files:
        recs = list(arxiv_api.read(f))
        assert all(isinstance(r, PaperRecord) for r in recs)
        request = json.loads(f.with_suffix(".request.json").read_text())
        assert len(recs) <= request["params"]["max_results"]
        counts.append(len(recs))
        totals.append(arxiv_api.parse_feed(f.read_bytes(), f.name)[1])
    assert counts == [1, 1, 3, 5]
    assert totals == [702, 702, 3, 37976]
    first = next(arxiv_api.read(files[0]))
    assert (first.arxiv_id, first.arxiv_version, first.title) == ("2410.19022", 1, "Heterogeneous Random Forest")
    assert first.authors == ["Ye-eun Kim", "Seoung Yun Kim", "Hyunjoong Kim"] and first.primary_category == "cs.LG"


# -- the command line ------------------------------------------------------------------------------

@pytest.mark.parametrize("first_page, code, line, stored", [
    (PAGE_A, 0, "arxiv cs: 10 read, 5 new, 0 updated, 5 unchanged, 0 skipped", 5),
    (NO_RECORDS, 0, "arxiv cs: 0 read, 0 new, 0 updated, 0 unchanged, 0 skipped", 0),
    (HANDMADE.read_bytes(), 3, "arxiv cs: 4 read, 3 new, 0 updated, 0 unchanged, 1 skipped", 3),
], ids=["recorded", "no-records", "bad-entity"])
def test_cli_harvest(tmp_path, serve, first_page, code, line, stored):
    server = serve(lambda n, p: ok(PAGE_B if "resumptionToken" in p else first_page))
    env = {"PAPERBOY_OAI_URL": f"{server.url}/oai2", "PAPERBOY_OAI_DELAY": "0",
           "PAPERBOY_CONFIG": str(tmp_path / "no-config.toml")}
    result = CliRunner().invoke(main, ["--home", str(tmp_path), "harvest", "arxiv", "--set", "cs",
                                       "--from", "2024-01-25"], env=env)
    assert result.exit_code == code, result.output
    assert result.stdout.strip() == line
    assert server.params[0] == {**QUERY, "metadataPrefix": "arXiv"}  # the default prefix
    if code == 3:  # the reason names the URL, the line and the record number in the page
        params = {"metadataPrefix": "arXiv", "set": "cs", "from": "2024-01-25"}
        assert result.stderr.startswith(f"skipped {server.url}/oai2 {params}:{BAD_LINE} (record 3): ")
        assert "malformed XML: Entity 'foo' not defined" in result.stderr
    else:
        assert result.stderr == ""
    with open_store("sqlite", tmp_path) as st:
        assert st.stats()["papers"] == stored


def test_one_harvest_of_a_set_at_a_time_whichever_host_starts_it(tmp_path, serve, store):
    server = serve(oai({}))
    s = oai_settings(tmp_path, server)
    lease = f"harvest:oai:{s['oai_url']}:cs:{s['oai_prefix']}"
    assert store.take_lease(lease, "other-host:4242", 60)  # another host's cron is harvesting cs
    with pytest.raises(Conflict, match="already running"):
        ingest.harvest_arxiv(store, s, set_spec="cs", from_date="2024-01-25")
    assert server.params == [] and papers(store) == 0  # arXiv was not asked twice
    assert (ingest.harvest_arxiv(store, s, set_spec="math", from_date="2024-01-25").read == 10)  # other sets run
    store.release_lease(lease, "other-host:4242")
    assert ingest.harvest_arxiv(store, s, set_spec="cs", from_date="2024-01-25").read == 10
    assert store.take_lease(lease, "other-host:4242", 60)  # released at the end (also after a failure)
