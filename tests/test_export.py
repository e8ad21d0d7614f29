"""Library exports (BibTeX, CSL-JSON, RIS): they read back into the same papers through paperboy's own
importers and rispy, hostile titles and names survive, citation keys are stable, and the CLI, the API
and the library page serve them (issue 12)."""

from __future__ import annotations

import re

import orjson
import pytest
import rispy
from bibtexparser.bparser import BibTexParser
from click.testing import CliRunner

from paperboy.cli import EXIT_FAILED, EXIT_OK, main
from paperboy.errors import BadRequest, NotFound
from paperboy.models import BadRecord, PaperRecord
from paperboy.normalize import check_record
from paperboy.services import export as ex
from paperboy.services.library import import_library
from paperboy.sources import bibtex, csl_json
from test_web import sign_up

# Titles and names a library really holds, and some that try to break a writer: every LaTeX special,
# math that must stay math, quotes, non-Latin scripts, a newline.
HOSTILE = [
    ("Attention & Memory: 50% of #1_x in {BERT} for \\CP violation", ["Zoë O'Brien-Smith", "Ludwig van Beethoven"]),
    ("Bounds on $x_{ij}^2$ and the \"quoted\" 'single' ~ tilde", ["Martin Luther King Jr.", "ATLAS Collaboration"]),
    ("Ünïcödé 量子 Θεωρία — em dash, naïve café\nsecond line", ["José Ñúñez", "李 小龍", "Plato"]),
    ("Costs $5 and $10 with a back\\slash", ["Anne-Marie {Brace} Dupont", "Smith, John"]),
]


def _hostile_records() -> list[PaperRecord]:
    out = []
    for n, (title, authors) in enumerate(HOSTILE, start=1):
        r = PaperRecord(source="t", source_id=f"h{n}", title=title, abstract=f"Abstract {n}: 5% & $y$ {{ok}}.",
                        authors=authors, arxiv_id=f"2402.{n:05d}", arxiv_version=1, submitted="2024-02-0{}".format(n),
                        categories=["cs.CL"], primary_category="cs.CL", doi=f"10.1234/h_{n}%x" if n % 2 else None,
                        journal_ref="J. Hostile 1 (2024) & more" if n == 2 else None)
        assert check_record(r) is None  # the ingest gate, as `paperboy ingest` runs it
        out.append(r)
    return out


@pytest.fixture
def reader(engine):
    """A reader with real papers in two folders (one in both), ratings, and the hostile papers."""
    store = engine.store
    store.upsert_papers(_hostile_records())
    uid = store.create_user("reader", None, "x")
    ids = [store.get_paper(ref).id for ref in ("0704.0001", "gr-qc/9210004", "2402.00001", "2402.00002",
                                               "2402.00003", "2402.00004")]
    for i in ids:
        store.save(uid, i, "physics" if i in ids[:2] else "hostile")
    store.save(uid, ids[0], "to read")
    store.set_feedback(uid, ids[0], "up")
    store.set_feedback(uid, ids[2], "down")
    return uid, ids


def _same(text: str) -> str:
    return " ".join(text.split())


def test_bibtex_reads_back_into_the_same_papers(engine, reader, tmp_path):
    uid, ids = reader
    res = ex.export_library(engine.store, uid, "bibtex", name="reader")
    assert res.count == 6 and res.filename == "paperboy-reader.bib" and res.media_type.startswith("application/x-bibtex")
    path = tmp_path / "lib.bib"
    path.write_text(res.text)
    records = [r for r in bibtex.read(path)]
    assert not [r for r in records if isinstance(r, BadRecord)]
    for r in records:
        assert check_record(r) is None
    papers = engine.store.get_papers(ids)
    by_arxiv = {p.arxiv_id: p for p in papers.values()}
    assert {r.arxiv_id for r in records} == set(by_arxiv)
    for r in records:
        p = by_arxiv[r.arxiv_id]
        assert (r.title, r.authors, r.doi, r.submitted) == (_same(p.title), p.authors, p.doi, p.submitted), r.source_id
        assert r.abstract == _same(p.abstract) and r.primary_category == p.primary_category
        assert r.journal_ref == p.journal_ref
    # paperboy's own importer saves the very same papers into another reader's library, none new
    other = engine.store.create_user("other", None, "x")
    before = engine.store.stats()["papers"]
    out = import_library(engine, other, path, "from bibtex")
    assert out["skipped"] == [] and out["saved"] == 6 and engine.store.stats()["papers"] == before
    assert {s["paper_id"] for s in engine.store.saves(other)} == set(ids)


def test_csl_json_reads_back_into_the_same_papers(engine, reader, tmp_path):
    uid, ids = reader
    res = ex.export_library(engine.store, uid, "csl-json", name="reader")
    assert res.filename.endswith(".json") and "csl+json" in res.media_type
    items = orjson.loads(res.text)
    first = next(i for i in items if i["number"] == "arXiv:0704.0001")
    assert first["type"] == "article-journal" and first["container-title"]  # 0704.0001 has a journal reference
    assert first["keyword"] == "physics, to read" and "rated up" in first["note"]
    assert all({"family", "given"} <= set(a) or set(a) == {"literal"} for i in items for a in i.get("author", []))
    path = tmp_path / "lib.json"
    path.write_text(res.text)
    records = list(csl_json.read(path))
    assert all(isinstance(r, PaperRecord) and check_record(r) is None for r in records)
    by_arxiv = {p.arxiv_id: p for p in engine.store.get_papers(ids).values()}
    for r in records:
        p = by_arxiv[r.arxiv_id]
        assert (r.title, r.authors, r.abstract, r.doi, r.submitted) == (_same(p.title), p.authors, _same(p.abstract),
                                                                        p.doi, p.submitted)
        assert r.categories == p.categories and r.journal_ref == p.journal_ref
    other = engine.store.create_user("other", None, "x")
    out = import_library(engine, other, path)
    assert out["skipped"] == [] and {s["paper_id"] for s in engine.store.saves(other)} == set(ids)


def test_ris_reads_back_with_rispy(engine, reader):
    uid, ids = reader
    res = ex.export_library(engine.store, uid, "ris")
    assert res.media_type.startswith("application/x-research-info-systems") and res.text.startswith("TY  - ")
    refs = rispy.loads(res.text)
    papers = {p.arxiv_id: p for p in engine.store.get_papers(ids).values()}
    assert len(refs) == 6
    for r in refs:
        p = papers[r["accession_number"]]
        assert r["title"] == _same(p.title) and r["type_of_reference"] == ("JOUR" if p.journal_ref else "ELEC")
        assert len(r.get("authors", [])) == len(p.authors) and r["year"] == p.submitted[:4]
        assert r["date"] == p.submitted.replace("-", "/") and r.get("doi") == p.doi
        assert r["urls"] == [f"https://arxiv.org/abs/{p.arxiv_id}"] and r["abstract"] == _same(p.abstract)
    first = next(r for r in refs if r["accession_number"] == "0704.0001")
    assert first["keywords"] == ["physics", "to read"] and first["notes"] == ["paperboy rating: rated up"]
    king = next(r for r in refs if r["accession_number"] == "2402.00002")
    assert king["authors"] == ["King, Martin Luther, Jr.", "ATLAS Collaboration"]


def test_bibtex_escapes_specials_and_keeps_math():
    assert ex.tex("50% & #1_x ~ ^ \\") == r"50\% \& \#1\_x \textasciitilde{} \textasciicircum{} \textbackslash{}"
    assert ex.tex("a {b} c") == r"a \{b\} c"
    assert ex.tex("lone } and { reversed") == r"lone \textbraceright{} and \textbraceleft{} reversed"
    assert ex.tex("Bounds on $x_{ij}^2$ at 5%") == r"Bounds on $x_{ij}^2$ at 5\%"
    assert ex.tex("$a{$ broken") == r"\$a\textbraceleft{}\$ broken"  # not math LaTeX could read back
    assert ex.tex("BERT and GPT-4 beat LaTeX", protect=True) == "{BERT} and {GPT-4} beat {LaTeX}"
    # every entry of a hostile library parses, braces balanced, one entry per paper
    papers = [r for r in _hostile_records()]
    entries = [ex.Entry(ex_paper(r, n), f"k{n}", ["a, b", "c"], "2024", "up") for n, r in enumerate(papers)]
    parsed = BibTexParser(common_strings=True).parse(ex.to_bibtex(entries)).entries
    assert [e["ID"] for e in parsed] == [f"k{n}" for n in range(len(papers))]


def test_bibtex_escapes_math_spans_that_run_file_or_definition_commands():
    """Uploaded metadata is anyone's: a math span that would read or write files or redefine TeX when
    the .bib is typeset is escaped as text; ordinary math (\\left, \\leq, \\delta) stays as written."""
    hostile = ["$\\input{/etc/passwd}$", "$\\include{secret}$", "$\\immediate\\write18{rm -rf ~}$",
               "$\\write18{id}$", "$\\openin5=/etc/passwd$", "$\\openout1=x.tex$", "$\\catcode`\\@=11$",
               "$\\def\\x{y}$", "$x \\gdef\\y{z}$", "$\\csname input\\endcsname{a}$", "$^^5cinput{a}$",
               "$\\let\\a=\\input$", "$\\newcommand{\\z}{1}$"]
    for span in hostile:
        out = ex.tex(f"Title {span} end")
        assert "$" not in out.replace("\\$", ""), out  # no math span left: every dollar escaped
        assert "\\textbackslash{}" in out or "\\textasciicircum{}\\textasciicircum{}" in out, out
        assert not re.search(r"\\(input|include|write|open|catcode|def|gdef|let)", out), out  # no raw command
    assert ex.tex("$\\left(x\\leq y\\right)$ and $\\delta\\defeq 1$ at $\\mathrm{d}x$") == \
        "$\\left(x\\leq y\\right)$ and $\\delta\\defeq 1$ at $\\mathrm{d}x$"
    entry = ex.Entry(ex_paper(PaperRecord(source="t", source_id="h", title="Evil $\\input{/etc/passwd}$",
                                          abstract="$\\immediate\\write18{curl x}$ too", arxiv_id="2401.00001",
                                          authors=["A B"]), 0), "k0", [], "2024", "up")
    bib = ex.to_bibtex([entry])
    assert "$\\input" not in bib and "\\write18" not in bib.replace("\\textbackslash{}write18", "")
    assert BibTexParser(common_strings=True).parse(bib).entries[0]["ID"] == "k0"


def ex_paper(r: PaperRecord, n: int):
    from paperboy.models import Paper

    return Paper(id=n, canonical_id=f"arxiv:{r.arxiv_id}", title=r.title, abstract=r.abstract, authors=r.authors,
                 arxiv_id=r.arxiv_id, doi=r.doi, submitted=r.submitted, journal_ref=r.journal_ref)


def test_names_split_sensibly():
    assert ex.split_name("Ludwig van Beethoven") == ex.Name(given="Ludwig", family="van Beethoven")
    assert ex.split_name("Martin Luther King Jr.") == ex.Name(given="Martin Luther", family="King", suffix="Jr.")
    assert ex.split_name("J. R. R. Tolkien") == ex.Name(given="J. R. R.", family="Tolkien")
    for literal in ("Plato", "ATLAS Collaboration", "Smith, John", "Tom and Jerry", "A {B} C", ""):
        assert ex.split_name(literal) == ex.Name(literal=literal)


def test_partial_dates():
    assert ex.date_parts("2024") == [2024] and ex.date_parts("2024-08") == [2024, 8]
    assert ex.date_parts("2024-08-15") == [2024, 8, 15] and ex.date_parts(None) == [] and ex.date_parts("x") == []
    from paperboy.models import Paper

    p = Paper(id=1, canonical_id="doi:10.1/x", title="A year only", abstract="", authors=["Ada Lovelace"],
              doi="10.1/x", submitted="2024-08")
    e = ex.Entry(p, "lovelace2024year")
    assert ex.csl_item(e)["issued"] == {"date-parts": [[2024, 8]]}
    assert ex.ris_entry(e)["date"] == "2024/08" and ex.ris_entry(e)["year"] == "2024"
    bib = ex.bibtex_entry(e)
    assert (bib["year"], bib["month"].name, "date" in bib) == ("2024", "aug", False)
    assert "month = aug," in ex.to_bibtex([e])
    assert ex.csl_item(e)["URL"] == "https://doi.org/10.1/x" and ex.csl_item(e)["type"] == "article"


def test_citation_keys_are_stable_and_deduplicated(engine, reader):
    uid, ids = reader
    store = engine.store
    keys = [e.key for e in ex.library_entries(store, uid)]
    assert len(set(keys)) == len(keys) and all(re.fullmatch(r"[a-z0-9]+", k) for k in keys)
    assert "obriensmith2024attention" in keys  # firstauthorYEARfirstword, accents and "&" gone
    # two papers with the same first author, year and first word: the later-saved one gets "a"
    store.upsert_papers([PaperRecord(source="t", source_id=f"d{n}", title=f"Attention again {n}", authors=["Zoë O'Brien-Smith"],
                                     submitted="2024-05-01", arxiv_id=f"2403.0000{n}") for n in (1, 2)])
    for n in (1, 2):
        store.save(uid, store.get_paper(f"2403.0000{n}").id, "dupes")
    by_paper = {e.paper.arxiv_id: e.key for e in ex.library_entries(store, uid)}
    assert by_paper["2402.00001"] == "obriensmith2024attention"  # saved first: keeps the plain key
    assert {by_paper["2403.00001"], by_paper["2403.00002"]} == {"obriensmith2024attentiona", "obriensmith2024attentionb"}
    # a folder's export uses the whole library's keys; the export is the same every time
    assert {e.paper.arxiv_id: e.key for e in ex.library_entries(store, uid, "dupes")} == {
        k: v for k, v in by_paper.items() if k.startswith("2403.")}
    assert ex.export_library(store, uid, "bibtex").text == ex.export_library(store, uid, "bibtex").text


def test_one_entry_per_paper_with_every_folder(engine, reader):
    uid, ids = reader
    entries = ex.library_entries(engine.store, uid)
    assert len(entries) == len(ids)
    first = next(e for e in entries if e.paper.id == ids[0])
    assert first.folders == ["physics", "to read"] and first.rating == "up"
    assert [e.paper.id for e in ex.library_entries(engine.store, uid, "to read")] == [ids[0]]
    bib = BibTexParser(common_strings=True).parse(ex.to_bibtex([first])).entries[0]
    assert bib["keywords"] == "physics, to read" and "rated up" in bib["annote"]


def test_bad_requests(engine, reader):
    uid, _ = reader
    with pytest.raises(NotFound, match="no folder"):
        ex.export_library(engine.store, uid, "bibtex", "nope")
    with pytest.raises(BadRequest, match="unknown export format"):
        ex.export_library(engine.store, uid, "docx")
    empty = engine.store.create_user("empty", None, "x")
    assert ex.export_library(engine.store, empty, "ris").text == ""
    assert orjson.loads(ex.export_library(engine.store, empty, "csl-json").text) == []


def test_cli_library_export(engine, reader, tmp_path):
    runner = CliRunner()
    home = str(engine.settings["home"])
    out = tmp_path / "lib.ris"
    r = runner.invoke(main, ["--home", home, "library", "export", "reader", "--format", "ris", "--folder", "physics",
                             "-o", str(out)], catch_exceptions=False)
    assert r.exit_code == EXIT_OK and "2 papers as ris" in r.output
    assert {x["accession_number"] for x in rispy.loads(out.read_text())} == {"0704.0001", "gr-qc/9210004"}
    r = runner.invoke(main, ["--home", home, "library", "export", "reader"], catch_exceptions=False)
    assert r.exit_code == EXIT_OK and r.output.count("\n@") + r.output.startswith("@") == 6
    r = runner.invoke(main, ["--home", home, "library", "export", "nobody"], catch_exceptions=False)
    assert r.exit_code == EXIT_FAILED and "no user 'nobody'" in r.output
    r = runner.invoke(main, ["--home", home, "library", "export", "reader", "--folder", "x"], catch_exceptions=False)
    assert r.exit_code == EXIT_FAILED and "no folder 'x'" in r.output


def test_api_and_library_page(client, engine):
    token = sign_up(client, "webreader")
    uid = engine.store.user_by_name("webreader")["id"]
    for ref, folder in (("0704.0001", "ml"), ("gr-qc/9210004", "grav ity")):
        engine.store.save(uid, engine.store.get_paper(ref).id, folder)
    page = client.get("/library").text
    assert 'href="/library/export?format=ris&amp;folder="' in page
    r = client.get("/library/export", params={"format": "csl-json", "folder": "grav ity"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.citationstyles.csl+json")
    assert r.headers["content-disposition"] == 'attachment; filename="paperboy-webreader-grav-ity.json"'
    assert r.headers["cache-control"] == "private, no-store"  # one reader's data: no cache keeps it
    assert [i["number"] for i in r.json()] == ["arXiv:gr-qc/9210004"]
    assert client.get("/library/export", params={"format": "pdf"}).status_code == 400
    # the API, with a read-only token
    r = client.post("/settings/tokens", data={"csrf": token, "name": "t", "scope": "read"})
    auth = {"Authorization": "Bearer " + re.search(r'id="new-token">(pb_[\w-]+)<', r.text).group(1)}
    r = client.get("/api/library/export", params={"format": "bibtex"}, headers=auth)
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-bibtex; charset=utf-8"
    assert r.headers["content-disposition"] == 'attachment; filename="paperboy-webreader.bib"'
    assert r.headers["cache-control"] == "private, no-store"
    assert len(BibTexParser(common_strings=True).parse(r.text).entries) == 2
    r = client.get("/api/account/export", headers=auth)
    assert r.status_code == 200 and r.headers["cache-control"] == "private, no-store"
    assert client.get("/api/library/export", params={"folder": "none"}, headers=auth).json()["error"]["status"] == 404
    assert client.get("/api/library/export", params={"folder": "x" * 81}, headers=auth).status_code == 400
    assert client.get("/api/library/export").status_code == 403  # no token
    client.cookies.clear()
    assert client.get("/library/export", follow_redirects=False).headers["location"] == "/login"


def test_exports_import_into_a_fresh_home_as_the_same_papers(engine, reader, tmp_path):
    """BibTeX and CSL-JSON exports, imported by `paperboy library import` into a paperboy that has none
    of the papers, make papers with the same identity and metadata."""
    from paperboy.engine import Engine

    uid, ids = reader
    originals = {p.arxiv_id: p for p in engine.store.get_papers(ids).values()}
    with Engine.from_settings(home=tmp_path / "fresh", store="sqlite") as fresh:
        for fmt in ("bibtex", "csl-json"):
            path = tmp_path / f"lib.{ex.EXTENSIONS[fmt]}"
            path.write_text(ex.export_library(engine.store, uid, fmt).text)
            who = fresh.store.create_user(fmt.replace("-", ""), None, "x")
            out = import_library(fresh, who, path, "imported")
            assert out["skipped"] == [] and out["saved"] == len(ids), fmt
            got = fresh.store.get_papers([s["paper_id"] for s in fresh.store.saves(who)])
            assert {p.arxiv_id for p in got.values()} == set(originals)
            for p in got.values():
                o = originals[p.arxiv_id]
                assert (p.canonical_id, p.title, p.authors, p.doi, p.submitted, p.journal_ref) == (
                    o.canonical_id, _same(o.title), o.authors, o.doi, o.submitted, o.journal_ref), (fmt, p.arxiv_id)
        assert fresh.store.stats()["papers"] == len(ids)  # the second import matched the first's papers
