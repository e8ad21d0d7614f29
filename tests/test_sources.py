import gzip
import shutil

import pytest

from conftest import DATA, shared
from paperboy import sources
from paperboy.errors import FormatError
from paperboy.models import BadRecord, PaperRecord


def records(fmt, path):
    return list(sources.module(fmt).read(path))


def test_kaggle_snapshot_fields():
    recs = records("kaggle", DATA / "kaggle_excerpt.jsonl")
    assert len(recs) == 12 and all(isinstance(r, PaperRecord) for r in recs)
    r = recs[0]
    assert r.arxiv_id == "0704.0001" and r.arxiv_version == 2 and r.authoritative
    assert r.authors == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C.-P. Yuan"]
    assert r.doi == "10.1103/PhysRevD.76.013009"
    assert r.categories == ["hep-ph"] and r.primary_category == "hep-ph"
    assert r.submitted == "2007-04-02" and r.versions[1] == "2007-04-02"
    assert r.journal_ref == "Phys.Rev.D76:013009,2007"


def test_kaggle_gzip_streams_same_records(tmp_path):
    gz = tmp_path / "snap.json.gz"
    with open(DATA / "kaggle_excerpt.jsonl", "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert sources.detect(gz) == "kaggle"
    assert [r.arxiv_id for r in records("kaggle", gz)] == [r.arxiv_id for r in records("kaggle", DATA / "kaggle_excerpt.jsonl")]


def test_full_kaggle_first200():
    recs = records("kaggle", shared("arxiv/kaggle_snapshot_first200.jsonl"))
    assert len(recs) == 200 and not [r for r in recs if isinstance(r, BadRecord)]


def test_hf_daily_api_json():
    recs = records("hf-daily", DATA / "hf_daily.json")
    assert len(recs) == 4
    r = recs[0]
    assert r.arxiv_id == "2312.17653" and r.title.startswith("LARP: Language-Agent Role Play")
    assert r.authors[:2] == ["Ming Yan", "Ruihao Li"]
    assert r.extra["submitted_by"] == "akhaliq" and r.extra["daily_date"] == "2024-01-01"
    assert isinstance(r.extra["upvotes"], int) and r.submitted == "2023-12-29"


def test_hf_scrape_with_upvotes():
    recs = records("hf-scrape", DATA / "hf_scrape_excerpt.json")
    assert [r.arxiv_id for r in recs][:2] == ["2312.17653", "2312.17681"]
    assert all("upvotes" in r.extra for r in recs)


def test_hf_scrape_full_753():
    recs = records("hf-scrape", shared("hf/paperexplorer_papers.json"))
    assert len(recs) == 753 and len({r.arxiv_id for r in recs}) == 753


def test_jsonl_mapping_and_ids(tmp_path):
    recs = records("jsonl", DATA / "quant_ph_excerpt.jsonl")
    assert recs[0].arxiv_id == "gr-qc/9210004" and recs[0].submitted == "1992-10-07"
    p = tmp_path / "custom.jsonl"
    p.write_text('{"name": "A paper", "summary": "About things.", "ident": "x1", "who": ["Ann Bee"]}\n')
    mod = sources.module("jsonl")
    (r,) = mod.read(p, mod.parse_mapping("title=name,abstract=summary,id=ident,authors=who"))
    assert (r.title, r.abstract, r.authors, r.arxiv_id, r.source_id) == ("A paper", "About things.", ["Ann Bee"], None, "custom:x1")
    with pytest.raises(FormatError, match="bad field mapping"):
        mod.parse_mapping("nonsense=1")


def test_beir_corpus_keeps_same_titles_apart():
    recs = records("beir", DATA / "beir_tiny" / "corpus.jsonl")
    assert [r.source_id for r in recs][-2:] == ["200", "201"]
    assert all(r.source == "beir:beir_tiny" and not r.match_title for r in recs)


def test_beir_untitled_document_counts_its_text_once(tmp_path, store):
    """Issue 11: the start of an untitled document's text was copied into its title, so BM25's title
    field and the embedded title + abstract saw it twice. The title stays empty; pages show the text."""
    from paperboy.embed.base import paper_text
    from paperboy.index.lexical import LexicalIndex
    from paperboy.ingest import ingest_file
    from paperboy.query import parse_query

    text = "Graphene sheets conduct heat along the plane far better than across it, " * 3
    corpus = tmp_path / "mini" / "corpus.jsonl"
    corpus.parent.mkdir()
    corpus.write_text(f'{{"_id": "1", "title": "", "text": "{text}"}}\n'
                      '{"_id": "2", "text": "Heat in copper."}\n'
                      '{"_id": "3", "title": "Phonons in graphene", "text": "Heat carried by lattice waves."}\n'
                      '{"_id": "4", "title": "", "text": ""}\n')
    recs = records("beir", corpus)
    assert [r.title for r in recs] == ["", "", "Phonons in graphene", ""]
    summary = ingest_file(store, corpus, "beir")
    assert summary.inserted == 3 and summary.skipped == 1 and "missing title" in summary.errors[0]
    rows = {r["canonical_id"]: r for r in store.papers_since(0, 10)}
    row = rows["beir:mini:1"]
    assert row["title"] == "" and paper_text(row["title"], row["abstract"]) == text.strip()
    idx = LexicalIndex(None)
    idx.sync(store)
    titled = [store.get_papers([pid])[pid].canonical_id for pid, _ in idx.search(idx.build(parse_query("ti:graphene")), 10)[0]]
    assert titled == ["beir:mini:3"]  # the untitled document's words are not in its title field
    papers = store.get_papers([row["id"], rows["beir:mini:2"]["id"]])
    assert papers[row["id"]].title == ("Graphene sheets conduct heat along the plane far better than across it, "
                                       "Graphene sheets conduct\u2026")
    assert papers[rows["beir:mini:2"]["id"]].title == "Heat in copper."


@pytest.mark.parametrize("rel, fmt", [
    ("kaggle_excerpt.jsonl", "kaggle"), ("quant_ph_excerpt.jsonl", "jsonl"), ("hf_daily.json", "hf-daily"),
    ("hf_scrape_excerpt.json", "hf-scrape"), ("beir_tiny/corpus.jsonl", "beir"),
    ("hf_page/blank_separated.txt", "hf-page"), ("library/zotero.bib", "bibtex"), ("library/zotero.json", "csl-json"),
])
def test_detect(rel, fmt):
    assert sources.detect(DATA / rel) == fmt


def test_detect_refuses_unknown_and_empty(tmp_path):
    (tmp_path / "x.csv").write_text("a,b,c\n1,2,3\n")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(FormatError, match="cannot tell the format"):
        sources.detect(tmp_path / "x.csv")
    with pytest.raises(FormatError, match="empty"):
        sources.detect(tmp_path / "empty.jsonl")
    with pytest.raises(FormatError, match="no such file"):
        sources.detect(tmp_path / "missing.jsonl")


def test_wrong_format_is_one_clear_error(tmp_path):
    xml = tmp_path / "page.jsonl"
    xml.write_text("<OAI-PMH><ListRecords/></OAI-PMH>\n")
    with pytest.raises(FormatError, match="does not look like a Kaggle arXiv snapshot"):
        records("kaggle", xml)
    with pytest.raises(FormatError, match="not an OAI-PMH response"):
        records("oai-pmh", DATA / "kaggle_excerpt.jsonl")
    with pytest.raises(FormatError, match="not valid JSON"):
        records("hf-daily", DATA / "kaggle_excerpt.jsonl")
    with pytest.raises(FormatError, match="JSON object keyed by arXiv id"):
        records("hf-scrape", DATA / "hf_daily.json")
