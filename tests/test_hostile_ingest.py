"""Hostile and unlucky input to `paperboy ingest` (issue 9, defects 5 and 7): every case is a reported
bad record (exit 3) or one clear error (exit 1), never a traceback, "Aborted!" or a silent loss, and
no control or XML-invalid character reaches the store. Real CLI (CliRunner and one subprocess), real
SQLite stores, a real HTTP server for harvests."""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from conftest import DATA
from paperboy import ingest, sources
from paperboy.cli import EXIT_FAILED, EXIT_OK, EXIT_SKIPPED, EXIT_USAGE, main
from paperboy.errors import FormatError, PaperboyError
from paperboy.models import BadRecord, PaperRecord
from paperboy.sources import base
from paperboy.normalize import check_record
from paperboy.store.sqlite import SQLiteStore

KAGGLE = DATA / "kaggle_excerpt.jsonl"
OAI_DC = DATA / "arxiv" / "oai_pmh" / "listrecords_oai_dc_cs_a.xml"
OAI_ARXIV = DATA / "arxiv" / "listrecords_arxiv_handmade.xml"
ATOM = DATA / "arxiv" / "api_atom" / "run_20260212T041036Z.xml"  # 5 entries
BIB = DATA / "library" / "zotero.bib"
CSL = DATA / "library" / "zotero.json"
# What XML 1.0 cannot carry, and C0/C1 controls that are not whitespace.
INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
GOOD = {"id": "2401.00001", "title": "A good paper", "abstract": "It is good.", "authors": ["Ann Lee"]}


@pytest.fixture
def cli(tmp_path):
    """Run the real CLI; fail on any exception, traceback or click "Aborted!"."""
    runner = CliRunner()
    home = tmp_path / "home"

    def invoke(*args: str, env: dict[str, str] | None = None):
        r = runner.invoke(main, ["--home", str(home), *args], env=env)
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            raise r.exception
        assert "Traceback" not in r.output and "Aborted!" not in r.output, r.output
        return r
    invoke.home = home  # type: ignore[attr-defined]
    return invoke


def rows(home: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(home / "paperboy.sqlite3")
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM papers ORDER BY id").fetchall()
    finally:
        conn.close()


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    return []


def stored_text(home: Path) -> list[str]:
    """Every text value of every paper and source row, JSON columns (authors, extra...) decoded."""
    conn = sqlite3.connect(home / "paperboy.sqlite3")
    try:
        out = []
        for table in ("papers", "paper_sources"):
            for row in conn.execute(f"SELECT * FROM {table}"):
                for v in row:
                    if isinstance(v, str) and v[:1] in "[{":
                        try:
                            out += _strings(json.loads(v))
                            continue
                        except ValueError:
                            pass
                    out += _strings(v)
        return out
    finally:
        conn.close()


def titles(home: Path) -> list[str]:
    return sorted(r["title"] for r in rows(home))


def jsonl(path: Path, *lines: object) -> Path:
    path.write_bytes(b"".join((x if isinstance(x, bytes) else orjson.dumps(x)) + b"\n" for x in lines))
    return path


def kaggle_line(n: int, **over: object) -> dict:
    obj = json.loads(KAGGLE.read_text().splitlines()[0])
    obj.update({"id": f"2402.{n:05d}", "title": f"Kaggle paper {n}", **over})
    return obj


# -- 1. wrong JSON types: one bad record each, the rest kept ------------------------------------------

WRONG_TYPES = [
    ({"title": "t", "authors": 5}, "field 'authors' must be a list of names or text, got number"),
    ({"title": "t", "doi": {"x": 1}}, "field 'doi' must be a DOI (text) or a list of them, got object"),
    ({"title": ["a", "list"]}, "field 'title' must be text, got array"),
    ({"title": "t", "categories": 7}, "field 'categories' must be a list of texts or text, got number"),
    ({"title": "t", "abstract": {"x": 1}}, "field 'abstract' must be text, got object"),
    ({"title": "t", "authors": [1, 2]}, "field 'authors' item 0 must be a name"),
    ({"title": "t", "id": [1]}, "field 'id' must be text or a whole number, got array"),
    ({"title": "t", "date": {"y": 1}}, "field 'date' must be a date (text), got object"),
    ([1, 2], "expected a JSON object, got array"),
    (5, "expected a JSON object, got number"),
    ("just a string", "expected a JSON object, got string"),
    (None, "expected a JSON object, got null"),
]


def test_wrong_json_types_in_jsonl_are_bad_records(cli, tmp_path):
    path = jsonl(tmp_path / "types.jsonl", GOOD, *(obj for obj, _ in WRONG_TYPES),
                 {**GOOD, "id": "2401.00002", "title": "Another good one"})
    r = cli("ingest", str(path))
    assert r.exit_code == EXIT_SKIPPED
    for line, (_, reason) in enumerate(WRONG_TYPES, start=2):
        assert f"skipped {path}:{line}: {reason}" in r.stderr
    assert f"{len(WRONG_TYPES) + 2} read, 2 new" in r.stdout and f"{len(WRONG_TYPES)} skipped" in r.stdout
    assert titles(cli.home) == ["A good paper", "Another good one"]
    r = cli("ingest", str(path))  # a rerun does not crash either, and changes nothing
    assert r.exit_code == EXIT_SKIPPED and "0 new" in r.stdout


def test_wrong_json_types_with_a_field_map(cli, tmp_path):
    path = jsonl(tmp_path / "mapped.jsonl", {"name": "Mapped", "text": "Body."}, {"name": ["x"], "text": "B"},
                 {"name": "Bad body", "text": 3})
    r = cli("ingest", "--map", "title=name,abstract=text", str(path))
    assert r.exit_code == EXIT_SKIPPED
    assert f"{path}:2: field 'name' must be text, got array" in r.stderr
    assert f"{path}:3: field 'text' must be text, got number" in r.stderr
    assert [(p["title"], p["abstract"]) for p in rows(cli.home)] == [("Mapped", "Body.")]


def test_wrong_json_types_in_kaggle(cli, tmp_path):
    path = jsonl(tmp_path / "snap.jsonl", kaggle_line(1),
                 kaggle_line(2, title=["x"]), kaggle_line(3, doi={"x": 1}), kaggle_line(4, categories=5),
                 kaggle_line(5, authors=5, authors_parsed=None), kaggle_line(6, versions="v1"),
                 kaggle_line(7, authors_parsed=[[1, 2]]), kaggle_line(8, abstract={"a": 1}),
                 kaggle_line(9, comments=["c"]), kaggle_line(10, id={"x": 1}), [1], kaggle_line(11))
    r = cli("ingest", "kaggle", str(path))
    assert r.exit_code == EXIT_SKIPPED
    for line, what in [(2, "'title' must be text"), (3, "'doi' must be text"), (4, "'categories' must be"),
                       (5, "'authors' must be"), (6, "'versions' must be an array"),
                       (7, "'authors_parsed' item 0 must be a list of texts"), (8, "'abstract' must be text"),
                       (9, "'comments' must be text"), (10, "'id' must be text or a whole number"),
                       (11, "expected a JSON object, got array")]:
        assert f"{path}:{line}: field {what}" in r.stderr or f"{path}:{line}: {what}" in r.stderr, what
    assert titles(cli.home) == ["Kaggle paper 1", "Kaggle paper 11"]


def test_wrong_json_types_in_hf_daily_scrape_csl_and_beir(cli, tmp_path):
    daily = tmp_path / "daily.json"
    daily.write_text(json.dumps([
        {"paper": {"id": "2401.00011", "title": "Daily ok", "summary": "s", "authors": [{"name": "A"}], "upvotes": 3}},
        {"paper": {"id": "2401.00012", "title": ["x"], "summary": "s"}},
        {"paper": {"id": "2401.00013", "title": "t", "summary": {"a": 1}}},
        {"paper": {"id": "2401.00014", "title": "t", "summary": "s", "authors": 5}},
        {"paper": {"id": "2401.00015", "title": "t", "summary": "s", "upvotes": "many"}},
        {"paper": "not an object", "title": "t"}, 42]))
    r = cli("ingest", str(daily))
    assert r.exit_code == EXIT_SKIPPED and "7 read, 1 new" in r.stdout
    for i, what in [(2, "'title' must be text"), (3, "'summary' must be text"), (4, "'authors' must be"),
                    (5, "'upvotes' must be a whole number"), (6, "'paper' must be an object")]:
        assert f"{daily}:record {i}: field {what}" in r.stderr
    assert f"{daily}:record 7: expected a JSON object, got number" in r.stderr

    scrape = tmp_path / "scrape.json"
    scrape.write_text(json.dumps({
        "2401.00021": {"title": "Scrape ok", "abstract": "a", "upvotes": 1, "authors": ["B C"]},
        "2401.00022": {"title": {"x": 1}, "abstract": "a", "upvotes": 1},
        "2401.00023": {"title": "t", "abstract": "a", "upvotes": 1, "authors": 5},
        "2401.00024": 5}))
    r = cli("ingest", str(scrape))
    assert r.exit_code == EXIT_SKIPPED and "4 read, 1 new" in r.stdout
    assert "record 2 (2401.00022): field 'title' must be text, got object" in r.stderr
    assert "record 4 (2401.00024): expected a JSON object, got number" in r.stderr

    csl = tmp_path / "lib.json"
    csl.write_text(json.dumps([
        {"type": "article", "id": "ok", "title": "CSL ok", "DOI": "10.1/ok"},
        {"type": "article", "id": "t", "title": ["x"]},
        {"type": "article", "id": "d", "title": "t", "DOI": {"x": 1}},
        {"type": "article", "id": "a", "title": "t", "author": 5},
        {"type": "article", "id": "i", "title": "t", "issued": "2024"},
        {"type": "article", "id": {"x": 1}, "title": "t"}]))
    r = cli("ingest", "csl-json", str(csl))
    assert r.exit_code == EXIT_SKIPPED and "6 read, 1 new" in r.stdout
    for i, what in [(1, "'title' must be text"), (2, "'DOI' must be text"), (3, "'author' must be an array"),
                    (4, "'issued' must be an object"), (5, "'id' must be text or a whole number")]:
        assert f"{csl}:record {i + 1}: field {what}" in r.stderr

    (tmp_path / "beir").mkdir()
    corpus = jsonl(tmp_path / "beir" / "corpus.jsonl",
                   {"_id": "d1", "title": "Beir ok", "text": "body"}, {"_id": {"x": 1}, "title": "t", "text": "b"},
                   {"_id": "d3", "title": ["t"], "text": "b"}, {"_id": "d4", "text": 5}, {"_id": 7, "text": "numeric id"})
    r = cli("ingest", "beir", str(corpus))
    assert r.exit_code == EXIT_SKIPPED and "5 read, 2 new" in r.stdout
    assert f"{corpus}:2: field '_id' must be text or a whole number, got object" in r.stderr
    assert f"{corpus}:4: field 'text' must be text, got number" in r.stderr
    assert {"CSL ok", "Daily ok", "Scrape ok", "Beir ok"} <= set(titles(cli.home))
    untitled = [r for r in rows(cli.home) if r["abstract"] == "numeric id"]  # stored untitled: text counted once
    assert [r["title"] for r in untitled] == [""]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)
KEYS = ["id", "_id", "arxiv_id", "title", "abstract", "summary", "authors", "authors_parsed", "author", "doi",
        "DOI", "categories", "versions", "update_date", "date", "published", "comments", "journal-ref", "text",
        "paper", "upvotes", "numComments", "submittedBy", "publishedAt", "url", "publication_date", "issued",
        "URL", "type", "keyword", "number", "note", "container-title"]
RECORDS = st.dictionaries(st.sampled_from(KEYS), JSON_VALUES | st.just("2401.00001") | st.just("A title"),
                          max_size=10)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=RECORDS | JSON_VALUES)
def test_no_json_value_crashes_any_json_source(obj):
    """Schema-driven fuzz: any JSON value in any field of any JSON source is a record or a BadRecord,
    and a record that passes the gate holds only clean text."""
    from paperboy.sources import arxiv_snapshot, beir, csl_json, fields, hf_daily, hf_scrape, jsonl as jsonl_src

    parsers = [arxiv_snapshot.parse, lambda o, loc: jsonl_src.parse(o, loc, Path("f.jsonl"), jsonl_src.ALIASES),
               lambda o, loc: beir.parse(o, loc, "d"), csl_json._record, hf_daily._parse,
               lambda o, loc: hf_scrape.parse("2401.00001", o, loc)]
    for parse in parsers:
        out = fields.parse_one(parse, obj, "loc")
        assert isinstance(out, (PaperRecord, BadRecord))
        if isinstance(out, PaperRecord) and check_record(out) is None:
            for value in (out.title, out.abstract, *out.authors, *out.categories):
                assert isinstance(value, str) and not INVALID.search(value)


# -- 2. truncated gzip: everything before the break kept, the break reported ---------------------------

def _truncated_gz(path: Path, lines: list[dict], keep: float = 0.5) -> Path:
    data = gzip.compress(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    path.write_bytes(data[:int(len(data) * keep)])
    return path


def test_truncated_gz_keeps_readable_records_and_reports_the_break(cli, tmp_path):
    lines = [kaggle_line(i, abstract=f"Abstract {i} " + os.urandom(200).hex()) for i in range(1, 401)]
    path = _truncated_gz(tmp_path / "snap.jsonl.gz", lines)
    r = cli("ingest", str(path))
    assert r.exit_code == EXIT_SKIPPED
    m = re.search(r"skipped .*snap\.jsonl\.gz:(\d+): file is truncated \(.*\); records after line (\d+) were not read",
                  r.stderr)
    assert m, r.stderr
    kept = int(m.group(2))
    assert 50 < kept < 400 and len(rows(cli.home)) == kept  # every complete line before the break
    assert titles(cli.home) == sorted(f"Kaggle paper {i}" for i in range(1, kept + 1))
    assert f"{kept + 1} read, {kept} new" in r.stdout and "1 skipped" in r.stdout


def test_truncated_gz_in_a_real_process_is_no_abort(tmp_path):
    path = _truncated_gz(tmp_path / "snap.jsonl.gz", [kaggle_line(i) for i in range(1, 200)], keep=0.6)
    proc = subprocess.run([sys.executable, "-m", "paperboy.cli", "--home", str(tmp_path / "h"), "ingest", "-q", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == EXIT_SKIPPED, proc.stderr
    assert "file is truncated" in proc.stderr and "Aborted" not in proc.stderr and "Traceback" not in proc.stderr
    assert len(rows(tmp_path / "h")) > 0


def test_truncated_gz_of_one_document_formats(cli, tmp_path):
    daily = tmp_path / "daily.json.gz"
    data = gzip.compress((DATA / "hf_daily.json").read_bytes())
    daily.write_bytes(data[:len(data) // 2])
    r = cli("ingest", "hf-daily", str(daily))
    assert r.exit_code == EXIT_FAILED and "file is truncated" in r.stderr and "a JSON document is all or nothing" in r.stderr

    bib = tmp_path / "lib.bib.gz"
    data = gzip.compress(BIB.read_bytes())
    bib.write_bytes(data[:int(len(data) * 0.7)])
    r = cli("ingest", "bibtex", str(bib))
    assert r.exit_code == EXIT_SKIPPED and "file is truncated" in r.stderr and len(rows(cli.home)) > 0

    oai = tmp_path / "page.xml.gz"
    data = gzip.compress(OAI_DC.read_bytes())
    oai.write_bytes(data[:int(len(data) * 0.7)])
    r = cli("ingest", "oai-pmh", str(oai))
    assert r.exit_code == EXIT_SKIPPED and "file is truncated" in r.stderr
    assert r.stderr.count("skipped") == 1  # the break is reported once, with its real cause


def test_corrupt_gz_block_is_reported(cli, tmp_path):
    data = bytearray(gzip.compress(b"".join(orjson.dumps(kaggle_line(i)) + b"\n" for i in range(1, 300))))
    for i in range(len(data) // 2, len(data) // 2 + 40):
        data[i] ^= 0x5A
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(bytes(data))
    r = cli("ingest", "--json", "kaggle", str(path))
    assert r.exit_code == EXIT_SKIPPED
    assert re.search(r"file is (corrupt|truncated) \(.+\); records after line \d+ were not read",
                     json.loads(r.stdout)["errors"][-1])


# -- 3. truncated OAI-PMH and Atom pages ---------------------------------------------------------------

def test_truncated_oai_page_keeps_complete_records_and_says_so(cli, tmp_path):
    data = OAI_DC.read_bytes()
    cut = data.index(b"<record>", data.index(b"</record>") + 1)  # inside the second record
    cut = data.index(b"<dc:title>", cut)
    page = tmp_path / "page.xml"
    page.write_bytes(data[:cut])
    r = cli("ingest", str(page))
    assert r.exit_code == EXIT_SKIPPED
    assert "response is truncated (no closing </OAI-PMH>) after 1 complete records" in r.stderr
    assert [p["arxiv_id"] for p in rows(cli.home)] == ["1303.2033"]


def test_truncated_atom_page_keeps_closed_entries_only(cli, tmp_path):
    data = ATOM.read_bytes()
    cut = data.rfind(b"<entry")
    page = tmp_path / "atom.xml"
    page.write_bytes(data[:data.index(b"<summary>", cut) + 40])  # the 5th entry breaks off in its abstract
    r = cli("ingest", "arxiv-atom", str(page))
    assert r.exit_code == EXIT_SKIPPED
    assert f"{page}:record 5: malformed or truncated XML" in r.stderr
    assert len(rows(cli.home)) == 4  # the half-read 5th entry (a cut abstract) is not stored


def test_truncated_oai_page_over_http_stops_the_harvest_and_resumes(cli, tmp_path):
    from test_arxiv_remote import PAGE_A, PAGE_B, TOKEN, Server, ok

    broken = {"on": True}

    def answer(n, params):
        if "resumptionToken" in params:
            return ok(PAGE_B[:len(PAGE_B) // 2] if broken["on"] else PAGE_B)
        return ok(PAGE_A)
    server = Server(answer)
    env = {"PAPERBOY_OAI_URL": f"{server.url}/oai2", "PAPERBOY_OAI_DELAY": "0", "PAPERBOY_OAI_PREFIX": "oai_dc",
           "PAPERBOY_CONFIG": str(tmp_path / "none.toml")}
    try:
        r = cli("harvest", "arxiv", "--set", "cs", "--from", "2024-01-25", env=env)
        assert r.exit_code == EXIT_FAILED
        assert "broke off (no closing </OAI-PMH>" in r.stderr and "rerun to resume" in r.stderr
        assert len(rows(cli.home)) == 5  # page A is committed
        store = SQLiteStore(cli.home / "paperboy.sqlite3")
        (name,) = [n for (n,) in store.conn.execute("SELECT name FROM cursors")]
        assert store.get_cursor(name)["token"] == TOKEN and not store.get_cursor(name)["complete"]
        store.close()
        broken["on"] = False
        r = cli("harvest", "arxiv", "--set", "cs", "--from", "2024-01-25", env=env)
        assert r.exit_code == EXIT_OK
        assert server.params[-1] == {"verb": "ListRecords", "resumptionToken": TOKEN}  # resumed from the token
    finally:
        server.close()


# -- 4. --map is for jsonl only -----------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["kaggle", "bibtex", "oai-pmh", "csl-json"])
def test_map_with_another_format_is_a_usage_error(cli, fmt):
    r = cli("ingest", "--map", "title=name", fmt, str(KAGGLE))
    assert r.exit_code == EXIT_USAGE and f"--map applies to the jsonl and csv formats only, not {fmt}" in r.output


def test_map_without_a_format_reads_jsonl(cli, tmp_path):
    with pytest.raises(FormatError, match="jsonl and csv formats only"):  # the library call refuses it too
        ingest.ingest_file(SQLiteStore(tmp_path / "s.sqlite3"), KAGGLE, "kaggle", mapping={"title": ("x",)})
    path = jsonl(tmp_path / "x.jsonl", {"name": "Named", "abstract": "A.", "authors_parsed": [], "versions": [],
                                        "update_date": "2024-01-01"})  # sniffs as kaggle
    r = cli("ingest", "--map", "title=name", str(path))
    assert r.exit_code == EXIT_OK and titles(cli.home) == ["Named"]
    r = cli("ingest", "--map", "nonsense=1", str(path))
    assert r.exit_code == EXIT_FAILED and "bad field mapping" in r.stderr


# -- 5. arXiv-API-style JSON lines, and the warning when nothing has an id or abstract ------------------

def test_arxiv_api_style_json_lines_keep_id_abstract_and_date(cli, tmp_path):
    path = jsonl(tmp_path / "api.jsonl", *({"arxiv_id": f"2401.0{i:04d}v2", "title": f"API paper {i}",
                                            "summary": f"Summary {i}.", "published": "2024-01-05T12:00:00Z",
                                            "authors": [{"name": "Ann Lee"}, {"name": "Bo Chen"}],
                                            "category": "cs.LG"} for i in range(1, 6)))
    r = cli("ingest", "--json", str(path))
    assert r.exit_code == EXIT_OK and json.loads(r.stdout)["warnings"] == []
    got = rows(cli.home)
    assert [p["arxiv_id"] for p in got] == [f"2401.0{i:04d}" for i in range(1, 6)]
    assert all(p["abstract"].startswith("Summary") and p["submitted"] == "2024-01-05" for p in got)
    assert json.loads(got[0]["authors"]) == ["Ann Lee", "Bo Chen"] and json.loads(got[0]["categories"]) == ["cs.LG"]


def test_ingest_where_no_record_has_an_id_or_abstract_warns(cli, tmp_path):
    path = jsonl(tmp_path / "odd.jsonl", *({"title": f"Odd {i}", "ident": f"x{i}", "body": "text"} for i in range(3)))
    r = cli("ingest", "--json", str(path))
    assert r.exit_code == EXIT_OK
    warnings = json.loads(r.stdout)["warnings"]
    assert len(warnings) == 2 and "has an id" in warnings[0] and "has an abstract" in warnings[1]
    assert all(f"warning: {w}" in r.stderr for w in warnings)
    r = cli("ingest", str(path))  # text mode: the same lines on stderr
    assert "none of the 3 records has an id" in r.stderr and "see --map" in r.stderr
    r = cli("ingest", "--map", "id=ident,abstract=body", str(path))
    assert "warning" not in r.stderr
    # a multi-file --json run reports them too
    r = cli("ingest", "--json", str(path), str(KAGGLE))
    assert r.exit_code == EXIT_OK and "warning: " in r.stderr
    assert json.loads(r.stdout)["files"][0]["warnings"]


# -- 6. XML-invalid code points never reach the store ---------------------------------------------------

DIRTY = "Bad\x01 \ufffe title\uffff \x0b\x0c\x1f\x7f\x85\x9b zz"


def test_xml_invalid_characters_are_stripped_on_every_json_path(cli, tmp_path):
    jsonl(tmp_path / "dirty.jsonl", {"id": "2401.00031", "title": DIRTY, "abstract": DIRTY, "authors": [DIRTY],
                                     "categories": ["cs\x07.LG"], "doi": "10.1/\x01x"})
    jsonl(tmp_path / "snap.jsonl", kaggle_line(32, title=DIRTY, abstract=DIRTY, comments=DIRTY,
                                               **{"journal-ref": DIRTY, "categories": "cs.LG \x02math.CO"}))
    (tmp_path / "daily.json").write_text(json.dumps([{"paper": {
        "id": "2401.00033", "title": DIRTY, "summary": DIRTY, "authors": [{"name": DIRTY}]},
        "submittedBy": {"name": "bad\x01user\ufffe"}}]))
    (tmp_path / "lib.json").write_text(json.dumps([{"type": "article", "id": "k\x01ey", "title": DIRTY + " csl",
                                                    "abstract": DIRTY, "author": [{"family": DIRTY}],
                                                    "URL": "https://e.org/\x01", "keyword": DIRTY}]))
    bib = tmp_path / "lib.bib"
    bib.write_text("@article{dirty,\n  title = {" + DIRTY + " bib},\n  author = {Lee, Ann\x01},\n  abstract = {"
                   + DIRTY + "},\n  journal = {J\ufffe},\n keywords = {a\x02, b}\n}\n", encoding="utf-8")
    for name in ("dirty.jsonl", "snap.jsonl", "daily.json", "lib.json", "lib.bib"):
        r = cli("ingest", str(tmp_path / name))
        assert r.exit_code in (EXIT_OK, EXIT_SKIPPED) and "1 new" in r.stdout, (name, r.output)
    texts = stored_text(cli.home)
    assert len(rows(cli.home)) == 5
    assert not [t for t in texts if INVALID.search(t)]
    assert titles(cli.home) == ["Bad title zz", "Bad title zz", "Bad title zz", "Bad title zz bib", "Bad title zz csl"]


def test_xml_invalid_characters_in_oai_and_atom_are_bad_records(cli, tmp_path):
    data = OAI_ARXIV.read_bytes()
    first = data.index(b"<title>") + len(b"<title>")
    for i, junk in enumerate([b"&#xFFFE;", b"&#x1;", b"\x01", b"\xef\xbf\xbe", b"\xff"]):
        page = tmp_path / f"oai{i}.xml"
        page.write_bytes(data[:first] + junk + data[first:])
        r = cli("ingest", str(page))
        assert r.exit_code == EXIT_SKIPPED and f"{page}:9 (record 1): malformed XML" in r.stderr, junk
    assert sorted(p["arxiv_id"] for p in rows(cli.home)) == ["0704.0002", "0704.0009"]
    atom = ATOM.read_bytes()
    second = atom.index(b"<title>", atom.index(b"<entry", atom.index(b"<entry") + 1)) + len(b"<title>")
    (tmp_path / "atom.xml").write_bytes(atom[:second] + b"&#xFFFE;" + atom[second:])
    r = cli("ingest", "arxiv-atom", str(tmp_path / "atom.xml"))
    assert r.exit_code == EXIT_SKIPPED and "record 2: malformed or truncated XML" in r.stderr
    assert not any(INVALID.search(t) for t in stored_text(cli.home))


def test_check_record_cleans_every_text_field():
    rec = PaperRecord(source="s", source_id="id\x01", title=DIRTY, abstract="a\ud800b", authors=["A\ufffe", "\x01"],
                      categories=["c\x02"], primary_category="c\x02", comments="c\x03", journal_ref="j\uffff",
                      links={"url": "https://x/\x01"}, extra={"k\x01": ["v\ufffe", {"n": "\x02"}], "n": 3})
    assert check_record(rec) is None
    assert (rec.source_id, rec.title, rec.abstract, rec.authors) == ("id", "Bad title zz", "ab", ["A"])
    assert (rec.categories, rec.primary_category, rec.comments, rec.journal_ref) == (["c"], "c", "c", "j")
    assert rec.links == {"url": "https://x/"} and rec.extra == {"k": ["v", {"n": ""}], "n": 3}
    for bad, why in [({"authors": "A, B"}, "authors is not a list"), ({"doi": {"x": 1}}, "doi is not text"),
                     ({"title": ["t"]}, "title is not text"), ({"comments": "c" * 30_000}, "comments too long"),
                     ({"categories": ["c"] * 500}, "too many categories"), ({"extra": {"x": "y" * 100_000}}, "too large")]:
        assert why in check_record(PaperRecord(**{"source": "s", "source_id": "x", "title": "t", **bad})), why


# -- 7. hostile files -----------------------------------------------------------------------------------

def test_empty_binary_directory_and_missing(cli, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    for args in ([str(empty)], ["jsonl", str(empty)], ["bibtex", str(empty)]):
        r = cli("ingest", *args)
        assert r.exit_code == EXIT_FAILED and "is empty" in r.stderr
    folder = tmp_path / "folder"
    folder.mkdir()
    for args in ([str(folder)], ["kaggle", str(folder)]):
        r = cli("ingest", *args)
        assert r.exit_code == EXIT_FAILED and "is a directory, not a file" in r.stderr
    r = cli("ingest", "jsonl", str(tmp_path / "missing.jsonl"))
    assert r.exit_code == EXIT_FAILED and "no such file" in r.stderr
    blob = tmp_path / "blob.bin"
    blob.write_bytes(random.Random(9).randbytes(20_000))
    r = cli("ingest", str(blob))
    assert r.exit_code == EXIT_FAILED and "cannot tell the format" in r.stderr
    # several paths: a bad one is reported and the others are still ingested
    r = cli("ingest", str(folder), str(KAGGLE))
    assert r.exit_code == EXIT_FAILED and "is a directory" in r.stderr and "12 new" in r.stdout


@pytest.mark.parametrize("fmt", sources.FORMATS)
def test_binary_garbage_as_every_format(cli, tmp_path, fmt):
    blob = tmp_path / "blob.bin"
    blob.write_bytes(random.Random(fmt).randbytes(50_000))
    r = cli("ingest", fmt, str(blob))
    assert r.exit_code in (EXIT_FAILED, EXIT_SKIPPED), r.output
    assert not rows(cli.home)


def test_bom_and_crlf(cli, tmp_path):
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + orjson.dumps(GOOD) + b"\r\n"
                                         + orjson.dumps({**GOOD, "id": "2401.00002", "title": "Second"}) + b"\r\n")
    (tmp_path / "snap.jsonl").write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(orjson.dumps(kaggle_line(i)) for i in (1, 2)))
    (tmp_path / "lib.json").write_bytes(b"\xef\xbb\xbf" + CSL.read_bytes())
    (tmp_path / "lib.bib").write_bytes(b"\xef\xbb\xbf" + BIB.read_bytes().replace(b"\n", b"\r\n"))
    (tmp_path / "page.xml").write_bytes(OAI_ARXIV.read_bytes().replace(b"\n", b"\r\n"))
    for name, new in [("bom.jsonl", 2), ("snap.jsonl", 2), ("lib.json", None), ("lib.bib", None), ("page.xml", None)]:
        r = cli("ingest", str(tmp_path / name))
        assert r.exit_code in (EXIT_OK, EXIT_SKIPPED), (name, r.output)
        assert new is None or f"{new} new" in r.stdout
    assert {"A good paper", "Second", "Kaggle paper 1", "Kaggle paper 2"} <= set(titles(cli.home))
    assert not any(t.startswith("\ufeff") or "\r" in t for t in stored_text(cli.home))


def test_a_50_mb_line_and_oversized_fields(cli, tmp_path):
    path = tmp_path / "big.jsonl"
    with open(path, "wb") as f:
        f.write(orjson.dumps(GOOD) + b"\n")
        f.write(b'{"title": "huge", "abstract": "' + b"x" * (50 << 20) + b'"}\n')
        f.write(orjson.dumps(kaggle_line(3, comments="c" * 3_000_000, title="Long comments")) + b"\n")
        f.write(orjson.dumps({**GOOD, "id": "2401.00004", "title": "After"}) + b"\n")
    r = cli("ingest", "jsonl", str(path))
    assert r.exit_code == EXIT_SKIPPED
    assert f"{path}:2: line longer than 16 MiB; skipped" in r.stderr
    assert titles(cli.home) == ["A good paper", "After"] and "comments too long" in r.stderr  # jsonl reads comments
    r = cli("ingest", "kaggle", str(jsonl(tmp_path / "k.jsonl", kaggle_line(3, comments="c" * 3_000_000))))
    assert r.exit_code == EXIT_SKIPPED and "comments too long" in r.stderr


def test_a_gzip_bomb_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(base, "MAX_DOCUMENT_BYTES", 1 << 20)
    bomb = tmp_path / "bomb.json.gz"
    bomb.write_bytes(gzip.compress(b"[" + b" " * (8 << 20) + b"]"))
    with pytest.raises(FormatError, match="too large to read"):
        sources.module("csl-json").read(bomb).__next__()


def test_deeply_nested_json(cli, tmp_path):
    deep = b'{"title": "deep", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    path = tmp_path / "deep.jsonl"
    path.write_bytes(orjson.dumps(GOOD) + b"\n" + deep + b"\n")
    r = cli("ingest", str(path))
    assert r.exit_code == EXIT_SKIPPED and f"{path}:2: invalid JSON" in r.stderr
    (tmp_path / "deep.json").write_bytes(b"[" + b"[" * 100_000 + b"]" * 100_000 + b"]")
    r = cli("ingest", "hf-daily", str(tmp_path / "deep.json"))
    assert r.exit_code == EXIT_FAILED and "not valid JSON" in r.stderr


def test_invalid_utf8_in_every_format(cli, tmp_path):
    """A record with bytes that are not UTF-8 is a bad record where the format has records of its own
    (lines, entries, XML records); a one-document JSON file is one clear error."""
    cases = {
        "jsonl": (b"\n".join([orjson.dumps(GOOD), b'{"title": "bad \xff"}', b""]), EXIT_SKIPPED, ":2: invalid UTF-8"),
        "kaggle": (b"\n".join([orjson.dumps(kaggle_line(1)), b'{"id": "2402.00002", "title": "\xc3"}', b""]),
                   EXIT_SKIPPED, ":2: invalid UTF-8"),
        "beir": (b'{"_id": "1", "title": "t", "text": "b"}\n{"_id": "2", "text": "\xfe"}\n', EXIT_SKIPPED, ":2: invalid UTF-8"),
        "bibtex": (BIB.read_bytes().replace(b"title", b"title = {Bad \xff byte},\n  xtitle", 1), EXIT_SKIPPED,
                   "invalid UTF-8 in the entry"),
        "oai-pmh": (OAI_DC.read_bytes().replace(b"<dc:title>", b"<dc:title>\xff", 1), EXIT_SKIPPED, "malformed XML"),
        "arxiv-atom": (ATOM.read_bytes().replace(b"<title>", b"<title>\xff", 2), EXIT_SKIPPED, "invalid UTF-8 in the entry"),
        "hf-daily": ((DATA / "hf_daily.json").read_bytes().replace(b'"title"', b'"ti\xfftle"', 1), EXIT_FAILED, "not valid JSON"),
        "csl-json": (CSL.read_bytes().replace(b'"title"', b'"ti\xfftle"', 1), EXIT_FAILED, "not valid JSON"),
        "hf-scrape": ((DATA / "hf_scrape_excerpt.json").read_bytes().replace(b'"title"', b'"\xff"', 1), EXIT_FAILED,
                      "not valid JSON"),
    }
    for fmt, (data, code, message) in cases.items():
        path = tmp_path / f"bad-{fmt}"
        path.write_bytes(data)
        r = cli("ingest", fmt, str(path))
        assert r.exit_code == code and message in r.stderr, (fmt, r.output)
    assert not any("\ufffd" in t or INVALID.search(t) for t in stored_text(cli.home))


def test_bibtex_unbalanced_braces_and_latin1(cli, tmp_path):
    bib = tmp_path / "lib.bib"
    bib.write_text("@article{a,\n title={Good one},\n}\n@article{b,\n title={Bad {unbalanced,\n}\n"
                   "@article{c, title={Also good}}\n@article{d, title={Never closed\n", encoding="utf-8")
    r = cli("ingest", str(bib))
    assert r.exit_code == EXIT_SKIPPED and "(entry b): could not parse entry (unbalanced braces?)" in r.stderr
    assert "Good one" in titles(cli.home) and "Also good" in titles(cli.home)
    deep = tmp_path / "deep.bib"  # the parser's recursion gives out on one entry: that entry alone is lost
    deep.write_text("@string{jn = {Journal of Nesting}}\n@article{ok, title={Survives nesting}, journal=jn}\n"
                    "@article{deep, title={" + "{" * 5000 + "}" * 5000 + "}}\n@article{ok2, title={Also survives}}\n")
    r = cli("ingest", str(deep))
    assert r.exit_code == EXIT_SKIPPED and "(entry deep): could not parse entry" in r.stderr
    assert {"Survives nesting", "Also survives"} <= set(titles(cli.home))
    assert "Journal of Nesting" in [p["journal_ref"] for p in rows(cli.home)]
    latin = tmp_path / "old.bib"
    latin.write_bytes("@article{l,\n title={Caf\u00e9 na\u00efve},\n author={M\u00fcller, J\u00fcrgen}\n}\n".encode("latin-1"))
    r = cli("ingest", str(latin))
    assert r.exit_code == EXIT_OK and "Café naïve" in titles(cli.home)


def test_csl_json_that_is_an_object_and_jsonl_that_starts_wrong(cli, tmp_path):
    (tmp_path / "obj.json").write_text(json.dumps({"items": [{"type": "article", "title": "t"}]}, indent=2))
    r = cli("ingest", "csl-json", str(tmp_path / "obj.json"))
    assert r.exit_code == EXIT_FAILED and "expected a JSON array of items, got object" in r.stderr
    r = cli("ingest", "hf-scrape", str(CSL))
    assert r.exit_code == EXIT_FAILED and "got array" in r.stderr
    path = jsonl(tmp_path / "list.jsonl", [1, 2], GOOD)
    r = cli("ingest", "jsonl", str(path))
    assert r.exit_code == EXIT_FAILED and "does not look like JSON lines" in r.stderr and not rows(cli.home)


FIXTURES = [(KAGGLE, "kaggle"), (DATA / "hf_daily.json", "hf-daily"), (DATA / "hf_scrape_excerpt.json", "hf-scrape"),
            (OAI_ARXIV, "oai-pmh"), (ATOM, "arxiv-atom"), (BIB, "bibtex"), (CSL, "csl-json"),
            (DATA / "beir_tiny" / "corpus.jsonl", "beir"), (DATA / "quant_ph_excerpt.jsonl", "jsonl")]


@pytest.mark.parametrize("path, fmt", FIXTURES, ids=[f for _, f in FIXTURES])
def test_mutated_files_never_crash(tmp_path, path, fmt):
    """Byte-level fuzz of every format's real fixture: truncations, flipped and inserted bytes.
    Each run ends with records and bad records, or one PaperboyError, and stores only clean text."""
    rng = random.Random(f"paperboy-{fmt}")
    original = path.read_bytes()
    junk = [b"\x00", b"\xff", b"\x01", b"\xef\xbf\xbe", b"{", b"}", b"<", b"&#xFFFE;", b'"', b"\n", b"\\u0000", b"[" * 50]
    for n in range(25):
        data = bytearray(original)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(data))
            kind = rng.random()
            if kind < 0.3:
                data[at] = rng.randrange(256)
            elif kind < 0.8:
                data[at:at] = rng.choice(junk)
            else:
                del data[at:at + rng.randint(1, 200)]
        if rng.random() < 0.3:
            data = data[:rng.randrange(1, len(data))]
        mutated = tmp_path / f"m{n}{path.suffix}"
        mutated.write_bytes(gzip.compress(bytes(data)) if n % 5 == 4 else bytes(data))
        store = SQLiteStore(tmp_path / f"s{n}.sqlite3")
        store.migrate()
        try:
            summary = ingest.ingest_file(store, mutated, fmt)
            assert summary.read >= summary.skipped
        except PaperboyError:
            pass
        finally:
            texts = [v for row in store.conn.execute("SELECT title, abstract, authors, comments FROM papers")
                     for v in row if isinstance(v, str)]
            store.close()
        assert not any(INVALID.search(t) for t in texts)


# -- red-team round 2: numbers, dates, macros, ids, OAI splitting, reports ------------------------------

def _dates(home: Path) -> dict[str, tuple[str | None, str | None]]:
    return {r["title"]: (r["submitted"], r["updated"]) for r in rows(home)}


def test_csl_date_parts_that_overflow_cost_the_date_not_the_file(cli, tmp_path):
    csl = tmp_path / "lib.json"
    csl.write_text(json.dumps([
        {"type": "article", "title": "ok one", "DOI": "10.1/a", "issued": {"date-parts": [[2020, 1, 2]]}},
        {"type": "article", "title": "overflow", "issued": {"date-parts": [[99999999999]]}},
        {"type": "article", "title": "huge month", "issued": {"date-parts": [[2020, 10**30, 1]]}},
        {"type": "article", "title": "fullwidth", "issued": {"date-parts": [["\uff12\uff10\uff12\uff10"]]}},
        {"type": "article", "title": "string year", "issued": {"date-parts": [["2021"]]}}]))
    r = cli("ingest", "csl-json", str(csl))
    assert r.exit_code == EXIT_OK and "5 read, 5 new" in r.stdout, r.output
    assert _dates(cli.home) == {"ok one": ("2020-01-02", None), "overflow": (None, None),
                                "huge month": (None, None), "fullwidth": (None, None),
                                "string year": ("2021", None)}


def test_bibtex_month_and_day_that_overflow_or_are_not_ascii(cli, tmp_path):
    bib = tmp_path / "lib.bib"
    bib.write_text("@article{o, title={Overflow month}, year={2020}, month={99999999999999999999}}\n"
                   "@article{o2, title={Overflow day}, date={2020-01-99999999999999999999}}\n"
                   "@article{s, title={Superscript month}, year={2020}, month={\u00b2}}\n"
                   "@article{f, title={Fullwidth day}, year={2020}, month={3}, day={\uff15}}\n"
                   "@article{g, title={Good}, year={2020}, month=mar, day={4}}\n", encoding="utf-8")
    r = cli("ingest", "bibtex", str(bib))
    assert r.exit_code == EXIT_OK and "5 read, 5 new" in r.stdout, r.output
    assert _dates(cli.home) == {"Overflow month": ("2020", None), "Overflow day": (None, None),
                                "Superscript month": ("2020", None), "Fullwidth day": ("2020-03", None),
                                "Good": ("2020-03-04", None)}


def _library_user(cli) -> None:
    r = CliRunner().invoke(main, ["--home", str(cli.home), "user", "add", "ann", "--password-stdin"],
                           input="correct horse battery staple\n")
    assert r.exit_code == 0, r.output


def test_library_import_survives_overflow_reports_duplicates_and_exits_3(cli, tmp_path):
    cli("init")
    _library_user(cli)
    bib = tmp_path / "lib.bib"
    bib.write_text("@article{o, title={Overflow month}, year={2020}, month={99999999999999999999}}\n"
                   "@article{s, title={Superscript month}, year={2020}, month={\u00b2}}\n"
                   "@article{dup, title={First of two}, year={2021}}\n"
                   "@article{dup, title={Second of two}, year={2022}}\n", encoding="utf-8")
    r = cli("library", "import", "ann", str(bib))
    assert r.exit_code == EXIT_SKIPPED, r.output
    assert f"skipped {bib}:4 (entry dup): duplicate key 'dup' (first at line 3)" in r.stderr
    assert sorted(row["title"] for row in rows(cli.home)) == ["First of two", "Overflow month", "Superscript month"]
    ok = tmp_path / "ok.bib"
    ok.write_text("@article{k, title={Fine}, year={2020}}\n")
    assert cli("library", "import", "ann", str(ok)).exit_code == EXIT_OK


def test_ingest_reports_a_duplicate_bibtex_key(cli, tmp_path):
    bib = tmp_path / "lib.bib"
    bib.write_text("@article{dup, title={First}}\n\n@article{dup, title={Second}}\n@article{x, title={Third}}\n")
    r = cli("ingest", "bibtex", str(bib))
    assert r.exit_code == EXIT_SKIPPED and "3 read, 2 new, 0 updated, 0 unchanged, 1 skipped" in r.stdout, r.output
    assert f"skipped {bib}:3 (entry dup): duplicate key 'dup' (first at line 1); skipped" in r.stderr


@pytest.mark.parametrize("strings, bad", [
    ("@string{a = b}\n", ["1 (@string): uses an undefined @string macro 'b'"]),
    ("@string{c = c # c}\n", ["1 (@string): uses an undefined @string macro 'c'"]),
    ("@string{a = b}\n@string{b = a}\n", ["1 (@string): uses an undefined @string macro 'b'",
                                           "2 (@string): uses an undefined @string macro 'a'"]),
])
def test_a_bad_string_macro_costs_only_the_entries_that_use_it(cli, tmp_path, strings, bad):
    bib = tmp_path / "lib.bib"
    n = strings.count("\n")
    bib.write_text(strings + "@string{ok = {Good Journal}}\n"
                   "@article{uses, title = a # { loop } # c, year={2020}}\n"
                   "@article{ok1, title = {Fine entry}, journal = ok, eprint = {2101.00001}}\n"
                   "@article{ok2, title = {Another}, month = jan, year = {2021}}\n")
    r = cli("ingest", "bibtex", str(bib))
    assert r.exit_code == EXIT_SKIPPED, r.output
    for why in bad:
        assert f"skipped {bib}:{why}; the macro is ignored" in r.stderr
    assert f"skipped {bib}:{n + 2} (entry uses): uses an undefined @string macro" in r.stderr
    assert "unbalanced braces" not in r.stderr
    stored = {row["title"]: row for row in rows(cli.home)}
    assert set(stored) == {"Fine entry", "Another"}
    assert stored["Fine entry"]["journal_ref"] == "Good Journal" and stored["Another"]["submitted"] == "2021-01"


def test_dates_outside_the_sane_range_are_dropped_for_every_source(cli, tmp_path):
    from datetime import date, timedelta
    soon = (date.today() + timedelta(days=30)).isoformat()
    kaggle = jsonl(tmp_path / "k.jsonl", *(
        {"id": f"2412.0000{i}", "title": f"K {d}", "abstract": "a", "authors": "A B", "categories": "cs.LG",
         "update_date": d, "versions": [{"version": "v1", "created": d}]}
        for i, d in enumerate(["9999-12-31", "0001-01-01", "1799-12-31", "2999-01-01", "2020-05-05", soon])))
    r = cli("ingest", "kaggle", str(kaggle))
    assert r.exit_code == EXIT_OK and "6 read, 6 new" in r.stdout, r.output
    bib = tmp_path / "lib.bib"
    bib.write_text("@article{y, title={Year 99999}, year={99999999999}}\n@article{z, title={Year 9999}, year={9999}}\n"
                   "@article{w, title={Year 1850}, year={1850}}\n")
    assert cli("ingest", "bibtex", str(bib)).exit_code == EXIT_OK
    csl = tmp_path / "lib.json"
    csl.write_text(json.dumps([{"type": "article", "title": "CSL 9999", "issued": {"date-parts": [[9999, 12, 31]]}}]))
    assert cli("ingest", "csl-json", str(csl)).exit_code == EXIT_OK
    got = _dates(cli.home)
    assert got["K 9999-12-31"] == got["K 0001-01-01"] == got["K 1799-12-31"] == got["K 2999-01-01"] == (None, None)
    assert got["K 2020-05-05"] == ("2020-05-05", "2020-05-05") and got[f"K {soon}"] == (soon, soon)
    assert got["Year 99999"] == got["Year 9999"] == got["CSL 9999"] == (None, None)
    assert got["Year 1850"] == ("1850", None)  # a year alone stays a year
    versions = sqlite3.connect(cli.home / "paperboy.sqlite3").execute("SELECT versions FROM papers").fetchall()
    assert not any("9999" in (v or "") or "0001-01" in (v or "") for (v,) in versions)


@pytest.mark.parametrize("text", ["2401.0000\uff13", "2401.0000\u0663", "\u0662\u0664\u0660\u0661.00001",
                                  "hep-th/990100\uff11", "arXiv:2401.0000\uff13", "https://arxiv.org/abs/2401.0000\u0663",
                                  "2401.00001v\uff12"])
def test_arxiv_ids_take_ascii_digits_only(text):
    from paperboy.normalize import parse_arxiv_id
    assert parse_arxiv_id(text) is None
    assert parse_arxiv_id("2401.00003") == ("2401.00003", None)


def test_kaggle_id_with_a_fullwidth_digit_is_a_bad_record(cli, tmp_path):
    path = jsonl(tmp_path / "k.jsonl", kaggle_line(1), kaggle_line(2, id="2402.0000\uff13"))
    r = cli("ingest", "kaggle", str(path))
    assert r.exit_code == EXIT_SKIPPED and f"{path}:2: missing or invalid arXiv id" in r.stderr


def _oai(records: str, *, root_ns: str = "", decl: str = "", tail: str = "\n") -> str:
    return (f'{decl}<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"{root_ns}>\n<ListRecords>\n'
            f"{records}</ListRecords>\n</OAI-PMH>{tail}")


def _dc_record(n: int, title: str, declare: bool = True) -> str:
    ns = (' xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" xmlns:dc="http://purl.org/dc/elements/1.1/"'
          if declare else "")
    return (f"<record><header><identifier>oai:arXiv.org:2401.{n:05d}</identifier></header><metadata>"
            f"<oai_dc:dc{ns}><dc:title>{title}</dc:title><dc:description>About {n}.</dc:description>"
            f"<dc:date>2024-01-0{n}</dc:date></oai_dc:dc></metadata></record>\n")


def test_oai_record_inside_a_comment_is_not_ingested(cli, tmp_path):
    page = tmp_path / "p.xml"
    page.write_text(_oai(_dc_record(1, "One") + "<!-- a note\n" + _dc_record(9, "COMMENTED OUT") + "-->\n"
                         + _dc_record(2, "Two")))
    r = cli("ingest", "oai-pmh", str(page))
    assert r.exit_code == EXIT_OK and "2 read, 2 new" in r.stdout, r.output
    assert sorted(row["title"] for row in rows(cli.home)) == ["One", "Two"]


def test_oai_namespaces_declared_on_the_root(cli, tmp_path):
    page = tmp_path / "p.xml"
    root_ns = (' xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/"'
               ' xmlns:dc="http://purl.org/dc/elements/1.1/"')
    page.write_text(_oai(_dc_record(1, "One", False) + _dc_record(2, "Two", False), root_ns=root_ns))
    r = cli("ingest", "oai-pmh", str(page))
    assert r.exit_code == EXIT_OK and "2 read, 2 new" in r.stdout, r.output


def test_oai_page_in_latin1_keeps_its_characters(cli, tmp_path):
    page = tmp_path / "p.xml"
    page.write_bytes(_oai(_dc_record(1, "Caf\u00e9 na\u00efve") + _dc_record(2, "Two"),
                          decl='<?xml version="1.0" encoding="ISO-8859-1"?>\n').encode("latin-1"))
    r = cli("ingest", "oai-pmh", str(page))
    assert r.exit_code == EXIT_OK and "2 read, 2 new" in r.stdout, r.output
    assert sorted(row["title"] for row in rows(cli.home)) == ["Caf\u00e9 na\u00efve", "Two"]


def test_oai_trailing_whitespace_is_no_truncation_but_a_cut_still_is(cli, tmp_path):
    page = tmp_path / "p.xml"
    page.write_text(_oai(_dc_record(1, "One") + _dc_record(2, "Two"), tail="\n" + " \n" * 5000))
    r = cli("ingest", "oai-pmh", str(page))
    assert r.exit_code == EXIT_OK and "2 read, 2 new" in r.stdout and "truncated" not in r.stderr, r.output
    cut = tmp_path / "cut.xml"
    text = _oai(_dc_record(3, "Three") + _dc_record(4, "Four"))
    cut.write_text(text[:text.index("Four")] + " " * 3000)
    r = cli("ingest", "oai-pmh", str(cut))
    assert r.exit_code == EXIT_SKIPPED and "after 1 complete records" in r.stderr, r.output


def test_skip_lines_name_json_types_and_count_records_from_1(cli, tmp_path):
    daily = tmp_path / "daily.json"
    daily.write_text(json.dumps([None, [1], "s", 5, {}]))
    r = cli("ingest", "hf-daily", str(daily))
    for n, kind in enumerate(["null", "array", "string", "number"], start=1):
        assert f"skipped {daily}:record {n}: expected a JSON object, got {kind}" in r.stderr
    assert "NoneType" not in r.stderr and "list" not in r.stderr and ":item " not in r.stderr
    long = jsonl(tmp_path / "long.jsonl", {**GOOD, "title": "x" * 5000})
    r = cli("ingest", "jsonl", str(long))
    assert re.search(rf"skipped {re.escape(str(long))}:record 1 \(jsonl id [^)]*2401\.00001\): title too long", r.stderr)


def test_readme_describes_the_skip_report_as_it_is(cli, tmp_path):
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert "max_errors_shown" in readme and "... and N more skipped" in readme
    path = jsonl(tmp_path / "many.jsonl", GOOD, *([1] * 25))
    r = cli("ingest", "jsonl", str(path), env={"PAPERBOY_MAX_ERRORS_SHOWN": "3"})
    assert r.stderr.count("skipped /") == 3 and "... and 22 more skipped" in r.stderr


def test_a_string_macro_bomb_is_refused_in_bounded_memory(cli, tmp_path):
    """Thirty @string doublings are 10 GB once expanded (a red-team upload took the server to 21 GB):
    the macros past the bound and every entry using them are reported, the rest is kept."""
    lines = ['@string{m0 = "xxxxxxxxxx"}'] + [f"@string{{m{i + 1} = m{i} # m{i}}}" for i in range(30)]
    lines += ["@article{bomb, title = m30, eprint={2507.00002}}",
              "@article{fine, title = {A fine paper}, abstract = {ok}, eprint = {2507.00003}}"]
    path = tmp_path / "bomb.bib"
    path.write_text("\n".join(lines) + "\n")
    r = cli("ingest", "bibtex", str(path))
    assert r.exit_code == EXIT_SKIPPED, r.output
    assert "expands to more than" in r.output and "(entry bomb)" in r.output
    assert [row["title"] for row in rows(cli.home)] == ["A fine paper"]


def test_bibtex_files_too_big_to_parse_are_one_clear_error(cli, tmp_path):
    """bibtexparser is pure Python: 100,000 @strings (6 minutes of a server's job thread) or hundreds
    of thousands of entries are refused at once with a message that says to split the file."""
    many_strings = tmp_path / "strings.bib"
    many_strings.write_text("@string{a={x}}\n" + "".join(f"@string{{b{i} = a # a}}\n" for i in range(1000))
                            + "@article{k, title=b5, eprint={2507.00001}}\n")
    r = cli("ingest", "bibtex", str(many_strings))
    assert r.exit_code == EXIT_FAILED and "split it" in r.output
