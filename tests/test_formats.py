"""The formats people have (issue 12, part 2): CSV exports of arXiv scrapers, arXiv-API-style JSON
lines, arXiv's own .abs files (a file, a folder, a tar archive), --map for the newer fields, dates
known only to the year or month, and every DOI a record lists. Real-shaped fixtures written from
real arXiv records (tests/data/formats, from the Kaggle snapshot rows), malformed ones beside them;
the real CLI and real stores (SQLite, or PostgreSQL with PAPERBOY_TEST_STORE=postgres)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import DATA
from paperboy import sources
from paperboy.cli import EXIT_FAILED, EXIT_OK, EXIT_SKIPPED, main
from paperboy.errors import FormatError
from paperboy.index.lexical import LexicalIndex, day_number
from paperboy.ingest import ingest_file
from paperboy.models import BadRecord, Paper, PaperRecord
from paperboy.normalize import check_record, date_start, sane_date
from paperboy.query import parse_query
from paperboy.sources import arxiv_abs, csv_table
from paperboy.store import connect
from paperboy.web.feeds import _date as feed_date

F = DATA / "formats"


def read(fmt: str, path: Path, mapping=None) -> tuple[list[PaperRecord], list[BadRecord]]:
    """A source's records, each through the store's gate, split into kept and refused."""
    items = sources.module(fmt).read(path, mapping) if mapping is not None else sources.module(fmt).read(path)
    kept, bad = [], []
    for r in items:
        if isinstance(r, PaperRecord) and (why := check_record(r)):
            r = BadRecord("?", why)
        (bad if isinstance(r, BadRecord) else kept).append(r)
    return kept, bad


@pytest.fixture
def cli(tmp_path):
    """The real CLI; fails on any exception or traceback."""
    runner = CliRunner()
    home = tmp_path / "home"

    def invoke(*args: str):
        r = runner.invoke(main, ["--home", str(home), *args])
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            raise r.exception
        assert "Traceback" not in r.output, r.output
        return r
    invoke.home = home  # type: ignore[attr-defined]
    return invoke


def stored(home: Path, url: str) -> dict[str, Paper]:
    """The papers the CLI stored (in the home's SQLite file, or the test's PostgreSQL), by title."""
    store = connect(url, home)
    try:
        return {p.title: p for p in store.paper_page(None, 1000)}
    finally:
        store.close()


# -- CSV --------------------------------------------------------------------------------------------

def test_scraper_csv_lists_as_python_json_or_text_and_bad_rows_reported():
    assert sources.detect(F / "scraper.csv") == "csv"  # BOM, CRLF, index,title,tags,authors,abstract
    kept, bad = read("csv", F / "scraper.csv")
    assert [r.title[:30] for r in kept] == ["Calculation of prompt diphoton", "From dyadic $\\Lambda_{\\alpha}$",
                                            "Sparsity-certifying Graph Deco", "Bosonic characters of atomic C"]
    python_lists, json_lists, plain = kept[:3]
    assert python_lists.authors == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C.-P. Yuan"]
    assert python_lists.categories == ["hep-ph"] and python_lists.primary_category == "hep-ph"
    assert python_lists.abstract.startswith("A fully differential calculation") and "\n" not in python_lists.abstract
    assert json_lists.authors == ["Wael Abu-Shammala", "Alberto Torchinsky"]
    assert json_lists.categories == ["math.CA", "math.FA"]
    assert plain.authors == ["Ileana Streinu", "Louis Theran"] and plain.categories == ["math.CO", "cs.CG"]
    assert python_lists.source_id == "scraper:0"  # the row index: a rerun updates, never duplicates
    assert [str(b) for b in bad] == [
        f"{F / 'scraper.csv'}:34: row has 6 cells but the header has 5 columns",
        f"{F / 'scraper.csv'}:48: a list cell must hold texts only"]


def test_semicolon_csv_all_fields_and_every_doi():
    kept, bad = read("csv", F / "semicolon.csv")
    assert not bad and len(kept) == 2
    r = kept[0]  # Title;Authors;Categories;Year;DOI;Journal;Comments;Updated;Primary Category;URL
    assert (r.arxiv_id, r.submitted, r.updated) == ("0704.0033", "2007", "2022-03-31")  # the year stays a year
    assert r.doi == "10.1364/josaa.23.002578" and r.links["doi2"] == "https://doi.org/10.1364/josaa.32.002407"
    assert r.journal_ref.startswith("J.Opt.Soc.Am.A 23") and r.comments.startswith("23 pages, 5 figures")
    assert r.primary_category == "physics.optics" and r.categories == ["physics.optics", "physics.comp-ph"]
    assert kept[1].submitted == "2007-04"  # month precision


def test_csv_map_columns_and_clear_errors(tmp_path):
    p = tmp_path / "mine.csv"
    p.write_text("Name,Text,Who,When,Note\nA mapped paper,About it.,\"['Ann Bee', 'Cy Dee']\",2024,see v2\n")
    with pytest.raises(FormatError, match="cannot tell the format"):
        sources.detect(p)  # no title column: not taken for CSV without a --map
    with pytest.raises(FormatError, match="names no title column"):
        list(csv_table.read(p))
    mapping = sources.module("jsonl").parse_mapping("title=Name,abstract=Text,authors=Who,date=When,comments=Note")
    (r,) = csv_table.read(p, mapping)
    assert (r.title, r.abstract, r.authors, r.submitted, r.comments) == (
        "A mapped paper", "About it.", ["Ann Bee", "Cy Dee"], "2024", "see v2")
    with pytest.raises(FormatError, match="no column 'Nope'"):
        list(csv_table.read(p, sources.module("jsonl").parse_mapping("title=Name,doi=Nope")))


def test_csv_huge_field_bad_utf8_and_code_in_a_list_cell(tmp_path):
    p = tmp_path / "hostile.csv"
    canary = tmp_path / "pwned"
    rows = [b"title,authors,abstract",
            b"First,Ann Bee,fine",
            b'Huge,Ann Bee,"' + b"x" * 300_000 + b'"',  # over csv's default 128 KiB field limit
            b"Bad bytes \xff,Ann Bee,text",
            b"Code,\"[open('" + str(canary).encode() + b"', 'w')]\",not run",
            b"Nested,\"" + b"[" * 50 + b"]" * 50 + b"\",lists of lists",
            b"Deep,\"" + b"[" * 5000 + b"]" * 5000 + b"\",nested past what the parsers take",
            b"Last,Cy Dee,fine too"]
    p.write_bytes(b"\r\n".join(rows) + b"\r\n")
    items = list(csv_table.read(p))
    kept = [r for r in items if isinstance(r, PaperRecord) and not check_record(r)]
    refused = [check_record(r) for r in items if isinstance(r, PaperRecord) and check_record(r)]
    bad = [str(b) for b in items if isinstance(b, BadRecord)]
    assert [r.title for r in kept] == ["First", "Code", "Last"]
    assert not canary.exists()  # the cell is text, never evaluated
    assert kept[1].authors == ["[open]"]  # read as an author text ("(...)" is an affiliation, dropped)
    # The huge row is read whole and refused with its reason; the 5000-deep one is text, too long a name.
    assert refused == ["abstract too long (300000 chars > 20000)", "author name too long (> 300 chars)"]
    assert bad == [f"{p}:4: invalid UTF-8 at byte 10", f"{p}:6: a list cell must hold texts only"]


def test_csv_long_list_cells_python_literals_only_up_to_64_kib(tmp_path):
    """literal_eval is slow on long cells (~2 s per MiB): a Python list over 64 KiB is refused for its
    row with a clear reason; JSON lists are read at any length, small Python lists as before."""
    p = tmp_path / "lists.csv"
    big_py = "[" + ", ".join(["'cs.LG'"] * 12_000) + "]"  # ~100 KiB of Python literal
    big_json = "[" + ", ".join(["{}"] * 300_000) + "]"  # ~1.2 MiB, parses fast, holds no texts
    rows = ['title,tags,abstract', "Small,\"['cs.LG', 'cs.AI']\",fine",
            f'Big python,"{big_py}",refused', f'Big json,"{big_json}",refused too', "Last,cs.CL,fine"]
    p.write_text("\n".join(rows) + "\n")
    items = list(csv_table.read(p))
    kept = [r for r in items if isinstance(r, PaperRecord)]
    assert [(r.title, r.categories) for r in kept] == [("Small", ["cs.LG", "cs.AI"]), ("Last", ["cs.CL"])]
    assert [str(b) for b in items if isinstance(b, BadRecord)] == [
        f"{p}:3: a list cell over 64 KiB must be a JSON list (this one is {len(big_py) >> 10} KiB)",
        f"{p}:4: a list cell must hold texts only"]


def test_csv_truncated_gzip_keeps_the_rows_before_the_break(tmp_path):
    lines = ["title,abstract"] + [f"Paper {i},Abstract {i} " + "words " * 50 for i in range(300)]
    data = gzip.compress("\n".join(lines).encode())
    p = tmp_path / "cut.csv.gz"
    p.write_bytes(data[: len(data) // 2])
    assert sources.detect(p) == "csv"
    items = list(csv_table.read(p))
    kept = [r for r in items if isinstance(r, PaperRecord)]
    assert 10 < len(kept) < 300 and [r.title for r in kept] == [f"Paper {i}" for i in range(len(kept))]
    assert isinstance(items[-1], BadRecord) and "truncated" in items[-1].reason


def test_cli_ingest_csv_named_and_detected(cli, store_url):
    r = cli("ingest", "csv", str(F / "scraper.csv"))
    assert r.exit_code == EXIT_SKIPPED, r.output  # two rows skipped, listed
    assert "row has 6 cells" in r.output and "4 new" in r.output
    r = cli("ingest", str(F / "scraper.csv"))
    assert r.exit_code == EXIT_SKIPPED and "0 new" in r.output and "4 unchanged" in r.output
    r = cli("ingest", "--map", "date=Updated", str(F / "semicolon.csv"))  # --map on a detected CSV
    assert r.exit_code == EXIT_OK, r.output
    assert stored(cli.home, store_url)["Convergence of the discrete dipole approximation. I. Theoretical analysis"
                                       ].submitted == "2022-03-31"
    r = cli("ingest", "bibtex", "--map", "title=x", str(F / "scraper.csv"))
    assert r.exit_code != EXIT_OK and "jsonl and csv formats only" in r.output


# -- arXiv API JSON lines ---------------------------------------------------------------------------

def test_arxiv_jsonl_detected_and_every_field_kept():
    assert sources.detect(F / "arxiv_api.jsonl") == "arxiv-jsonl"
    kept, bad = read("arxiv-jsonl", F / "arxiv_api.jsonl")
    assert [r.arxiv_id for r in kept] == ["0704.0001", "0704.0033", "0704.0005", "0704.0019"]
    r = kept[0]
    assert (r.arxiv_version, r.submitted, r.updated, r.versions) == (
        2, "2007-04-02", "2007-07-24", {1: "2007-04-02", 2: "2007-07-24"})
    assert r.authors == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C.-P. Yuan"]  # from {"name": ...}
    assert (r.comments, r.journal_ref, r.doi) == ("37 pages, 15 figures; published version",
                                                  "Phys.Rev.D76:013009,2007", "10.1103/physrevd.76.013009")
    assert r.links["pdf"] == "http://arxiv.org/pdf/0704.0001v2" and r.links["doi"].endswith("PhysRevD.76.013009")
    assert r.authoritative and r.source == "arxiv-jsonl"
    two = kept[1]  # authors as plain names; two DOIs
    assert two.authors[0] == "Maxim A. Yurkin" and two.links["doi2"] == "https://doi.org/10.1364/josaa.32.002407"
    assert two.primary_category == "physics.optics" and two.categories == ["physics.optics", "physics.comp-ph"]
    assert [str(b).split(": ", 1)[1] for b in bad] == [
        "field 'authors' must be a list of names or text, got number", "missing or invalid arXiv id 'not an id'"]


def test_arxiv_jsonl_sniff_needs_arxiv_keys(tmp_path):
    p = tmp_path / "plain.jsonl"
    p.write_text('{"arxiv_id": "2401.00001", "title": "Only a title"}\n')
    assert sources.detect(p) == "jsonl"  # no summary/published/primary_category: the generic reader
    p.write_text('{"entry_id": "http://arxiv.org/abs/2401.00001v3", "title": "T", "summary": "S",'
                 ' "primary_category": {"term": "cs.LG"}, "categories": "cs.LG stat.ML"}\n')
    (r,) = read("arxiv-jsonl", p)[0]
    assert (r.arxiv_id, r.arxiv_version, r.primary_category, r.categories) == (
        "2401.00001", 3, "cs.LG", ["cs.LG", "stat.ML"])


# -- arXiv .abs files -------------------------------------------------------------------------------

def test_abs_file_every_field():
    assert sources.detect(F / "abs" / "0704" / "0704.0001.abs") == "abs"
    (r,), _ = read("abs", F / "abs" / "0704" / "0704.0001.abs")
    assert (r.arxiv_id, r.arxiv_version, r.versions) == ("0704.0001", 2, {1: "2007-04-02", 2: "2007-07-24"})
    assert (r.submitted, r.updated) == ("2007-04-02", "2007-07-24")
    assert r.title == "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    assert r.authors == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C.-P. Yuan"]
    assert (r.categories, r.comments, r.journal_ref, r.doi) == (
        ["hep-ph"], "37 pages, 15 figures; published version", "Phys.Rev.D76:013009,2007", "10.1103/physrevd.76.013009")
    assert r.abstract.startswith("A fully differential calculation") and r.abstract.endswith("selection of events.")
    assert r.extra == {"report_no": "ANL-HEP-PR-07-12", "submitter": "Pavel Nadolsky"}  # no mail address


def test_abs_folder_recursive_with_old_style_ids():
    assert sources.detect(F / "abs") == "abs"
    kept, bad = read("abs", F / "abs")
    assert not bad and [r.arxiv_id for r in kept] == ["0704.0001", "0704.0005", "0704.0033", "gr-qc/9210004"]
    old = kept[-1]
    assert (old.title, old.submitted, old.categories) == (
        "The Spacetime Approach to Quantum Mechanics", "1992-10-07", ["gr-qc", "quant-ph"])
    assert kept[2].doi == "10.1364/josaa.23.002578" and kept[2].links["doi2"].endswith("10.1364/josaa.32.002407")
    assert kept[2].extra["license"] == "http://creativecommons.org/licenses/by-nc-nd/4.0/"


def test_abs_malformed_files_each_reported():
    kept, bad = read("abs", F / "abs_bad")
    assert [r.arxiv_id for r in kept] == ["0704.0002"]
    reasons = sorted(str(b).split("abs_bad/", 1)[1] for b in bad)
    assert reasons == [
        "b_no_id.abs:3: no arXiv id (a 'Paper:' or 'arXiv:' line)",
        "c_no_title.abs:3: 0704.0002: no 'Title:' line",
        "d_not_abs.abs: not an arXiv .abs record (no '\\\\' line before the header)",
        "e_bad_utf8.abs: invalid UTF-8 at byte 249",
        "f_bad_id.abs:3: no arXiv id (a 'Paper:' or 'arXiv:' line); found 'not-an-id'"]


def _member(tar: tarfile.TarFile, name: str, data: bytes, kind: bytes = tarfile.REGTYPE, **kw) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, len(data) if kind == tarfile.REGTYPE else 0
    for k, v in kw.items():
        setattr(info, k, v)
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def test_abs_tar_gz_read_as_a_stream_hostile_members_skipped(tmp_path):
    archive = tmp_path / "meta.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        _member(tar, "0704", b"", tarfile.DIRTYPE)
        for p in sorted((F / "abs").rglob("*.abs")):
            _member(tar, f"0704/{p.name}", p.read_bytes())
        _member(tar, "0704/README.txt", b"not metadata")
        _member(tar, "../../escape.abs", (F / "abs_bad" / "a_good.abs").read_bytes())  # never written anywhere
        _member(tar, "0704/link.abs", b"", tarfile.SYMTYPE, linkname="/etc/passwd")
        _member(tar, "0704/huge.abs", b"\\\\\n" + b" " * (arxiv_abs.MAX_FILE_BYTES + 1))
    assert sources.detect(archive) == "abs"
    kept, bad = read("abs", archive)
    assert [r.arxiv_id for r in kept] == ["0704.0001", "0704.0005", "0704.0033", "gr-qc/9210004", "0704.0002"]
    assert [str(b).split("meta.tar.gz:", 1)[1] for b in bad] == [
        "0704/link.abs: not a regular file (a link or device); skipped",
        "0704/huge.abs: larger than 4 MiB; not an .abs file"]
    assert not (tmp_path.parent / "escape.abs").exists() and not list(tmp_path.rglob("escape.abs"))
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[:-2000])
    items = list(arxiv_abs.read(cut))
    assert isinstance(items[-1], BadRecord) and "truncated or corrupt" in items[-1].reason
    assert [r.arxiv_id for r in items if isinstance(r, PaperRecord)][:3] == ["0704.0001", "0704.0005", "0704.0033"]
    not_tar = tmp_path / "x.tar.gz"
    not_tar.write_bytes(gzip.compress(b"ustar" * 10))
    with pytest.raises(FormatError):
        list(arxiv_abs.read(not_tar)) if tarfile.is_tarfile(not_tar) else sources.detect(not_tar)


def test_abs_tar_with_many_members_reads_in_bounded_memory(tmp_path):
    """tarfile keeps every member header it reads, even in a stream; the reader drops them as it goes
    (a full arXiv metadata dump has millions of members)."""
    archive = tmp_path / "many.tar"
    with tarfile.open(archive, "w") as tar:
        for n in range(5000):
            _member(tar, f"0704/{'x' * 80}{n}.txt", b"")
        _member(tar, "0704/0704.0002.abs", (F / "abs_bad" / "a_good.abs").read_bytes())
    tracemalloc.start()
    try:
        items = list(arxiv_abs.read(archive))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [r.arxiv_id for r in items if isinstance(r, PaperRecord)] == ["0704.0002"] and len(items) == 1
    assert peak < 1 << 20, peak  # 5,000 kept headers take ~2.6 MB


def test_cli_ingest_abs_file_folder_and_archive(cli, tmp_path, store_url):
    r = cli("ingest", "abs", str(F / "abs"))
    assert r.exit_code == EXIT_OK and "4 new" in r.output, r.output
    r = cli("ingest", str(F / "abs_bad"))  # a folder, detected
    assert r.exit_code == EXIT_SKIPPED and "1 new" in r.output and "no 'Title:' line" in r.output, r.output
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(F / "abs" / "gr-qc" / "9210004.abs", arcname="gr-qc/9210004.abs")
    r = cli("ingest", str(archive))
    assert r.exit_code == EXIT_OK and "1 unchanged" in r.output, r.output
    p = stored(cli.home, store_url)["The Spacetime Approach to Quantum Mechanics"]
    assert (p.arxiv_id, p.submitted, p.primary_category) == ("gr-qc/9210004", "1992-10-07", "gr-qc")
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli("ingest", "abs", str(empty))
    assert r.exit_code == EXIT_FAILED and "no .abs files in this folder" in r.output
    r = cli("ingest", str(empty))
    assert r.exit_code == EXIT_FAILED and "directory" in r.output


# -- --map for the newer fields, partial dates, DOIs -------------------------------------------------

def test_jsonl_map_updated_comments_journal_ref_primary(tmp_path, store):
    p = tmp_path / "mine.jsonl"
    p.write_text(json.dumps({"ident": "2401.01234v2", "name": "Mapped", "text": "Abs.", "made": 2024,
                             "modified": "2024-08", "note": "12 pages", "venue": "J. Things 1", "main": "cs.LG",
                             "cats": ["stat.ML"]}) + "\n")
    mapping = sources.module("jsonl").parse_mapping(
        "id=ident,title=name,abstract=text,date=made,updated=modified,comments=note,journal_ref=venue,"
        "primary_category=main,categories=cats")
    ingest_file(store, p, mapping=mapping)
    paper = store.get_paper("2401.01234")
    assert (paper.submitted, paper.updated, paper.comments, paper.journal_ref) == (
        "2024", "2024-08", "12 pages", "J. Things 1")
    assert (paper.primary_category, paper.categories, paper.arxiv_version) == ("cs.LG", ["cs.LG", "stat.ML"], 2)


def test_topics_year_stays_a_year(cli, store_url):
    r = cli("ingest", "jsonl", "--map", "id=url,date=year", str(DATA / "topics_excerpt.jsonl"))
    assert r.exit_code in (EXIT_OK, EXIT_SKIPPED), r.output
    years = {p.submitted for p in stored(cli.home, store_url).values()}
    assert years and all(len(y) == 4 and y.isdigit() for y in years), years  # never YYYY-01-01


def test_partial_dates_sort_and_filter_as_the_start_of_their_period(store):
    assert [sane_date(d) for d in ("2024", "2024-08", "1799", "2999-01", "2024-13")] == [
        "2024", "2024-08", None, None, None]
    assert [date_start(d) for d in ("2024", "2024-08", "2024-08-05", None)] == [
        "2024-01-01", "2024-08-01", "2024-08-05", None]
    assert [day_number(d) for d in ("2024", "2024-08", "2024-08-05")] == [20240101, 20240801, 20240805]
    assert feed_date("2024").isoformat() == "2024-01-01T00:00:00+00:00"  # Atom needs a full date
    store.upsert_papers([PaperRecord(source="t", source_id=str(i), title=f"Paper {d}", submitted=d, abstract="x")
                         for i, d in enumerate(["2024", "2024-08", "2024-08-05", "2023-12-31"])])
    idx = LexicalIndex(None)
    idx.sync(store)
    papers = store.get_papers(idx.filtered_ids(parse_query("year:2024"), 10)[0])
    assert sorted(p.submitted for p in papers.values()) == ["2024", "2024-08", "2024-08-05"]
    ids, _ = idx.filtered_ids(parse_query("after:2024-08-01"), 10)
    assert sorted(store.get_papers(ids)[i].submitted for i in ids) == ["2024-08", "2024-08-05"]
    ids, _ = idx.filtered_ids(parse_query(""), 10)  # newest first: a period sorts as its first day
    assert [store.get_papers(ids)[i].submitted for i in ids] == ["2024-08-05", "2024-08", "2024", "2023-12-31"]
    assert store.day_ids("2024-01-01", "2024-12-31") and store.latest_day("2099-01-01") == "2024-08-05"
    assert {p.submitted for p in store.get_papers(store.day_ids("2024-01-01", "2024-12-31")).values()} == {"2024-08-05"}


def test_every_doi_is_kept(tmp_path, store):
    p = tmp_path / "k.jsonl"
    p.write_text(json.dumps({"id": "0704.0033", "title": "Convergence of the discrete dipole approximation",
                             "doi": "10.1364/JOSAA.23.002578 10.1364/JOSAA.32.002407"}) + "\n"
                 + json.dumps({"id": "x2", "title": "Listed", "doi": ["10.1000/abc.1", "10.1000/abc.2"]}) + "\n")
    ingest_file(store, p)
    papers = {pp.title: pp for pp in store.get_papers(list(range(1, 3))).values()}
    assert papers["Convergence of the discrete dipole approximation"].dois == [
        "10.1364/josaa.23.002578", "10.1364/josaa.32.002407"]
    assert papers["Listed"].doi == "10.1000/abc.1" and papers["Listed"].dois == ["10.1000/abc.1", "10.1000/abc.2"]
    assert Paper(1, "c", "t", "", [], doi=None).dois == []


def test_formats_listed(cli):
    out = cli("formats").output
    for fmt in ("csv", "arxiv-jsonl", "abs"):
        assert f"\n{fmt} " in "\n" + out


def test_paper_page_shows_every_doi(engine, client):
    engine.ingest(F / "arxiv_api.jsonl")
    page = client.get("/papers/0704.0033")
    assert page.status_code == 200
    assert 'href="https://doi.org/10.1364/josaa.23.002578"' in page.text
    assert 'href="https://doi.org/10.1364/josaa.32.002407"' in page.text


def test_an_interrupted_folder_ingest_resumes_and_a_changed_one_restarts(tmp_path, store):
    folder = tmp_path / "meta"
    for p in sorted((F / "abs").rglob("*.abs")):
        (folder / p.parent.name).mkdir(parents=True, exist_ok=True)
        (folder / p.parent.name / p.name).write_bytes(p.read_bytes())
    first = ingest_file(store, folder, "abs", batch_size=2)
    assert (first.inserted, first.resumed_from) == (4, 0)
    size, mtime = sources.signature(folder, "abs")
    store.set_cursor(f"file:{folder.resolve()}", {"format": "abs", "size": size, "mtime_ns": mtime,
                                                  "items": 2, "complete": False})  # as if it broke off
    again = ingest_file(store, folder, "abs")
    assert (again.resumed_from, again.read) == (2, 2)
    store.set_cursor(f"file:{folder.resolve()}", {"format": "abs", "size": size, "mtime_ns": mtime,
                                                  "items": 2, "complete": False})
    nested = folder / "0704" / "0704.0001.abs"  # a file deep inside changes: read from the start
    nested.write_text(nested.read_text().replace("37 pages", "38 pages"))
    changed = ingest_file(store, folder, "abs")
    assert (changed.resumed_from, changed.read, changed.updated) == (0, 4, 1)
