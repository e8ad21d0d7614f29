"""BibTeX and CSL-JSON library imports (Zotero exports)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from paperboy.errors import FormatError
from paperboy.models import BadRecord, PaperRecord
from paperboy.sources import bibtex, csl_json
from paperboy.sources.base import read_head

LIB = Path(__file__).parent / "data" / "library"
BIB = LIB / "zotero.bib"
CSL = LIB / "zotero.json"

VASWANI = ["Ashish Vaswani", "Noam Shazeer", "Niki Parmar", "Jakob Uszkoreit", "Llion Jones",
           "Aidan N. Gomez", "Łukasz Kaiser", "Illia Polosukhin"]
SCHOLKOPF = ["Bernhard Schölkopf", "Francesco Locatello", "Stefan Bauer", "Nan Rosemary Ke",
             "Nal Kalchbrenner", "Anirudh Goyal", "Yoshua Bengio"]
BERT = "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding"


def _split(path: Path, module) -> tuple[dict[str, PaperRecord], list[BadRecord]]:
    out = list(module.read(path))
    recs = {r.source_id: r for r in out if isinstance(r, PaperRecord)}
    return recs, [r for r in out if isinstance(r, BadRecord)]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_sniff() -> None:
    assert bibtex.sniff(BIB, read_head(BIB)) and not csl_json.sniff(BIB, read_head(BIB))
    assert csl_json.sniff(CSL, read_head(CSL)) and not bibtex.sniff(CSL, read_head(CSL))
    assert not csl_json.sniff(CSL, '[{"id": 1, "name": "x"}]')
    assert bibtex.FORMAT == "bibtex" and csl_json.FORMAT == "csl-json"


def test_bibtex_zotero_export() -> None:
    recs, bad = _split(BIB, bibtex)
    assert list(recs) == ["vaswani_attention_2023", "devlin_bert_2019", "he_deep_2015",
                          "scholkopf_toward_2021", "nickel_poincare_2017", "openai_gpt-4_2024"]
    assert bad == [BadRecord(location=f"{BIB}:75 (entry noauthor_nodate)", reason="missing title")]
    assert all(r.source == "bibtex" and not r.authoritative for r in recs.values())

    r = recs["vaswani_attention_2023"]  # arXiv via url; arXiv's DataCite DOI dropped
    assert (r.title, r.authors, r.arxiv_id, r.arxiv_version, r.doi) == (
        "Attention Is All You Need", VASWANI, "1706.03762", None, None)
    assert r.submitted == "2023-08"  # month = aug macro (no day: month precision)
    assert r.links == {"abs": "https://arxiv.org/abs/1706.03762", "pdf": "https://arxiv.org/pdf/1706.03762"}
    assert r.journal_ref is None and r.abstract.startswith("The dominant sequence transduction models")
    assert r.extra == {"entry_type": "misc", "keywords": [
        "Computer Science - Computation and Language", "Computer Science - Machine Learning"]}

    r = recs["devlin_bert_2019"]  # eprint + archivePrefix + primaryClass, biblatex date
    assert (r.title, r.arxiv_id, r.arxiv_version, r.submitted) == (BERT, "1810.04805", 2, "2019-05-24")
    assert r.authors == ["Jacob Devlin", "Ming-Wei Chang", "Kenton Lee", "Kristina Toutanova"]
    assert (r.primary_category, r.categories) == ("cs.CL", ["cs.CL"])

    r = recs["he_deep_2015"]  # Google Scholar style: journal = {arXiv preprint arXiv:...}
    assert (r.title, r.arxiv_id, r.journal_ref, r.submitted) == (
        "Deep residual learning for image recognition", "1512.03385", None, "2015")
    assert r.authors == ["Kaiming He", "Xiangyu Zhang", "Shaoqing Ren", "Jian Sun"]
    assert r.abstract.endswith("achieves 3.57% error on the ImageNet test set.")

    r = recs["scholkopf_toward_2021"]  # journal article, DOI, {\"o}
    assert (r.title, r.authors, r.arxiv_id) == ("Toward Causal Representation Learning", SCHOLKOPF, None)
    assert (r.doi, r.journal_ref, r.submitted) == (
        "10.1109/jproc.2021.3058954", "Proceedings of the IEEE", "2021-05")
    assert r.links == {"url": "https://ieeexplore.ieee.org/document/9363924"}

    r = recs["nickel_poincare_2017"]  # {\'e} in the title, booktitle as venue
    assert r.title == "Poincaré Embeddings for Learning Hierarchical Representations"
    assert r.authors == ["Maximilian Nickel", "Douwe Kiela"]
    assert r.journal_ref == "Advances in Neural Information Processing Systems"
    assert r.extra == {"entry_type": "inproceedings"}

    r = recs["openai_gpt-4_2024"]  # corporate author, arXiv id from number = {arXiv:...}
    assert (r.title, r.authors, r.arxiv_id, r.doi, r.submitted) == (
        "GPT-4 Technical Report", ["OpenAI"], "2303.08774", None, "2024-03")


def test_bibtex_names_dates_and_broken_entries(tmp_path: Path) -> None:
    path = _write(tmp_path, "lib.bib", r"""
@misc{first, title = {{A} broken {neighbour}},
  author = {{Google Research, Brain Team} and de la Cruz, Jr, Juan and others},
  month = {11}, day = {7}, year = {2020}, url = {https://example.org/a}}
@misc{broken, title = {Unbalanced {brace}, year = {2020}}
@online{after, title = {Still read}, author = {Ada Lovelace and M{\"u}ller, J{\'e}r{\^o}me}, date = {2021-03}}
""")
    recs, bad = _split(path, bibtex)
    assert bad == [BadRecord(f"{path}:5 (entry broken)", "could not parse entry (unbalanced braces?)")]
    first, after = recs["first"], recs["after"]
    assert first.authors == ["Google Research, Brain Team", "Juan de la Cruz Jr"]
    assert (first.title, first.submitted) == ("A broken neighbour", "2020-11-07")
    assert first.links == {"url": "https://example.org/a"}
    assert (after.authors, after.submitted) == (["Ada Lovelace", "Jérôme Müller"], "2021-03")
    assert after.extra == {"entry_type": "online"}


def test_bibtex_gzip(tmp_path: Path) -> None:
    path = tmp_path / "zotero.bib.gz"
    path.write_bytes(gzip.compress(BIB.read_bytes()))
    recs = [r for r in bibtex.read(path) if isinstance(r, PaperRecord)]
    assert recs[0].source_id == "vaswani_attention_2023" and len(recs) == 6


def test_bibtex_rejects_other_formats(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.bib"
    garbage.write_bytes(bytes(range(256)) * 8)
    for path in (CSL, garbage, _write(tmp_path, "empty.bib", "")):
        with pytest.raises(FormatError):
            list(bibtex.read(path))


def test_csl_zotero_export() -> None:
    recs, bad = _split(CSL, csl_json)
    assert bad == [BadRecord(location=f"{CSL}:record 8", reason="missing title")]
    assert len(recs) == 7 and all(r.source == "csl-json" and not r.authoritative for r in recs.values())
    zot = "http://zotero.org/users/local/8NzSPQvR/items/"

    r = recs[zot + "9KQ2ZB7S"]  # URL + number + arXiv DOI; years as strings
    assert (r.title, r.authors, r.arxiv_id, r.doi, r.submitted) == (
        "Attention Is All You Need", VASWANI, "1706.03762", None, "2023-08-02")
    assert r.links == {"abs": "https://arxiv.org/abs/1706.03762", "pdf": "https://arxiv.org/pdf/1706.03762"}

    r = recs[zot + "4RT7XQ2M"]  # versioned URL; container-title "arXiv:... [cs]" is no venue
    assert (r.title, r.arxiv_id, r.arxiv_version) == (BERT, "1810.04805", 2)
    assert (r.journal_ref, r.submitted) == (None, "2019-05-24")

    r = recs["he_deep_2015"]  # only the arXiv DOI; issued.raw
    assert (r.title, r.arxiv_id, r.doi, r.submitted) == (
        "Deep Residual Learning for Image Recognition", "1512.03385", None, "2015-12-10")

    r = recs[zot + "QW3E8N2A"]
    assert (r.authors, r.doi, r.journal_ref, r.submitted, r.arxiv_id) == (
        SCHOLKOPF, "10.1109/jproc.2021.3058954", "Proceedings of the IEEE", "2021-05", None)

    r = recs["7213"]  # numeric id, year-only date
    assert (r.title, r.submitted) == ("Poincaré Embeddings for Learning Hierarchical Representations", "2017")
    assert r.extra == {"entry_type": "paper-conference"}

    r = recs[zot + "Z8B2K4PL"]  # name particle; arXiv id from note "arXiv: ..."
    assert r.authors == ["Aaron van den Oord", "Oriol Vinyals", "Koray Kavukcuoglu"]
    assert r.arxiv_id == "1711.00937"

    r = recs[zot + "M5N6P7Q8"]  # literal (corporate) author
    assert (r.authors, r.arxiv_id, r.submitted) == (["OpenAI"], "2303.08774", "2024-03-04")


def test_csl_odd_items(tmp_path: Path) -> None:
    items = [{"id": "a", "type": "article", "title": "On <i>Rich</i> <span class=\"nocase\">Text</span>",
              "keyword": "graphs; causality", "categories": ["cs.LG", "stat.ML"]}, 42, {"type": "book"}]
    path = _write(tmp_path, "lib.json", json.dumps(items))
    out = list(csl_json.read(path))
    assert out[1:] == [BadRecord(f"{path}:record 2", "expected a JSON object, got number"),
                       BadRecord(f"{path}:record 3", "missing title")]
    rec = out[0]
    assert (rec.title, rec.primary_category, rec.categories) == ("On Rich Text", "cs.LG", ["cs.LG", "stat.ML"])
    assert rec.extra == {"entry_type": "article", "keywords": ["graphs", "causality"]}


@pytest.mark.parametrize("text", ['{"items": []}', "[1, 2, 3]", '[{"title": "no type"}]', "not json"])
def test_csl_rejects_other_formats(tmp_path: Path, text: str) -> None:
    with pytest.raises(FormatError):
        list(csl_json.read(_write(tmp_path, "lib.json", text)))
    with pytest.raises(FormatError):
        list(csl_json.read(BIB))
