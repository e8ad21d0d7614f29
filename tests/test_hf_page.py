"""Tests for the Hugging Face Daily Papers page-text source (paperboy.sources.hf_page)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

from paperboy.errors import FormatError
from paperboy.models import BadRecord, PaperRecord
from paperboy.sources import hf_page
from paperboy.sources.base import read_head
from paperboy.normalize import clean_text, title_key

DATA = Path(__file__).resolve().parent / "data" / "hf_page"
SHARED = Path(__file__).resolve().parents[2] / "shared/data/hf_papers_pages"


def papers(path: Path) -> list[PaperRecord]:
    recs = list(hf_page.read(path))
    assert all(isinstance(r, PaperRecord) for r in recs), [r for r in recs if isinstance(r, BadRecord)]
    return recs  # type: ignore[return-value]


def raw_lines(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def write(tmp_path: Path, text: str, name: str = "page.txt") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


ABS_A = ("We propose a method for learning things from data. " * 8).strip()
ABS_B = ("Our analysis shows that the method works on many benchmarks. " * 7).strip()


# --- fixtures copied from real pages --------------------------------------------------------------

def test_blank_separated_page_with_header_lines() -> None:
    path = DATA / "blank_separated.txt"
    lines = raw_lines(path)
    recs = papers(path)
    assert [r.title for r in recs] == [
        "An Efficient Knowledge Transfer Strategy for Spiking Neural Networks from Static to Event Domain",
        "Knowledge Composition using Task Vectors with Learned Anisotropic Scaling",
        "Sparsely Shared LoRA on Whisper for Child Speech Recognition",
        "Convergent Learning: Do different neural networks learn the same representations?",
    ]
    # each abstract is exactly the line after its title; header lines are not papers
    assert [r.abstract for r in recs] == [lines[i] for i in (6, 8, 10, 12)]
    assert recs[0].abstract.startswith("Spiking neural networks (SNNs) are rich in spatio-temporal dynamics")
    assert recs[0].abstract.endswith("https://github.com/Brain-Cog-Lab/Transfer-for-DVS.")
    assert recs[3].abstract.endswith("distributed codes across multiple units.")
    for r in recs:
        assert (r.source, r.source_id, r.match_title, r.arxiv_id) == ("hf-page", None, True, None)
        assert r.extra == {"page_date": "Jun 26"}


def test_runon_header_without_blank_lines() -> None:
    path = DATA / "runon_no_blanks.txt"
    lines = raw_lines(path)
    assert lines[2].startswith("SubscribeLegendreTron")
    recs = papers(path)
    assert [r.title for r in recs] == [
        "LegendreTron: Uprising Proper Multiclass Loss Learning",
        "Realizable Learning is All You Need",
        "Universal Online Learning with Unbounded Losses: Memory Is All You Need",
        "Feasible Learning",
        "Transductive Few-Shot Learning: Clustering is All You Need?",
    ]
    assert [r.abstract for r in recs] == lines[3::2]
    assert recs[0].abstract.startswith("Loss functions serve as the foundation of supervised learning")
    assert recs[0].abstract.endswith("on all datasets with greater than 10 classes.")
    assert recs[0].extra == {}  # this page has no date line


def test_made_up_header_wrapped_and_split_abstracts_and_orphan_title() -> None:
    path = DATA / "variant_header.txt"
    recs = list(hf_page.read(path))
    assert [type(r).__name__ for r in recs] == ["PaperRecord", "PaperRecord", "BadRecord", "PaperRecord"]
    ib, split, bad, llm = recs
    assert isinstance(ib, PaperRecord) and isinstance(split, PaperRecord) and isinstance(llm, PaperRecord)
    assert ib.title == "How Does Information Bottleneck Help Deep Learning?"
    # the hard-wrapped abstract paragraph is joined back into one text
    assert ib.abstract.startswith("Numerous deep learning algorithms have been inspired by and understood via the notion")
    assert ib.abstract.endswith("Our code is publicly available at: https://github.com/xu-ji/information-bottleneck")
    assert "  " not in ib.abstract and len(ib.abstract) > 1300
    assert split.title == "Splitting Abstracts Over Lines Is Fine."  # a title may end with a period
    assert split.abstract.startswith("We study pages whose abstract paragraph is broken over several lines.")
    assert split.abstract.endswith("Our code is publicly available at https://github.com/example/split-abstracts")
    assert bad == BadRecord(f"{path}:32", "title without abstract")
    assert llm.title == "Are Large Language Models Post Hoc Explainers?"
    assert llm.abstract.startswith("Large Language Models (LLMs) are increasingly used as powerful tools")
    assert all(r.extra == {"page_date": "December 12, 2023"} for r in (ib, split, llm))
    assert not any("trending" in r.title or "AK" in r.title for r in (ib, split, llm))


# --- small synthetic pages ------------------------------------------------------------------------

@pytest.mark.parametrize("header, date", [
    ("new\nGet trending papers in your email inbox!\nSubscribe\nbyAK and the research community\nJan 3\n", "Jan 3"),
    ("Get trending papers in your email inbox once a day!\nSubscribe\nSubscribe\n2024-01-03\n", "2024-01-03"),
    ("byAK and the research community\n\n\nDecember 12, 2023\n\n", "December 12, 2023"),
    ("Get trending papers in your email inbox!\nby AK and the research communityMon, Jan 3", "Mon, Jan 3"),
    ("new\nGet trending papers in your email inbox!Subscribe", None),
    ("", None),
])
def test_header_variants(tmp_path: Path, header: str, date: str | None) -> None:
    path = write(tmp_path, f"{header}Scaling Widgets to Billions\n{ABS_A}\nNew Results on Widgets\n\n{ABS_B}\n")
    recs = papers(path)
    assert [(r.title, r.abstract) for r in recs] == [
        ("Scaling Widgets to Billions", ABS_A), ("New Results on Widgets", ABS_B)]
    assert recs[0].extra == ({"page_date": date} if date else {})


def test_text_is_whitespace_collapsed_only(tmp_path: Path) -> None:
    abstract = r"We bound $\mathcal{O}(n^{2})$ terms with \emph{care}   and  tabs\tin text. " * 6
    path = write(tmp_path, f"Subscribe\n  Nai\u0308ve   {{Bayes}} Revisited \n{abstract}\n")
    (rec,) = papers(path)
    assert rec.title == "Na\u00efve {Bayes} Revisited"  # NFC + whitespace, braces kept (no LaTeX clean-up)
    assert rec.abstract == clean_text(abstract)
    assert r"\emph{care}" in rec.abstract and "$\\mathcal{O}(n^{2})$" in rec.abstract


def test_trailing_title_and_leading_text_are_bad_records(tmp_path: Path) -> None:
    path = write(tmp_path, f"Jun 26\n{ABS_B}\nA Real Title\n{ABS_A}\nDangling Title At The End\n")
    recs = list(hf_page.read(path))
    assert recs[0] == BadRecord(f"{path}:2", "text without a title")
    assert isinstance(recs[1], PaperRecord) and recs[1].title == "A Real Title"
    assert recs[2] == BadRecord(f"{path}:5", "title without abstract")
    assert len(recs) == 3


def test_invalid_utf8_line_is_a_bad_record_and_gzip_is_read(tmp_path: Path) -> None:
    body = f"Subscribe\nGood Title\n{ABS_A}\n".encode() + b"Broken \xff\xfe Title\n" + f"Next Title\n{ABS_B}\n".encode()
    path = tmp_path / "page.txt.gz"
    path.write_bytes(gzip.compress(body))
    recs = list(hf_page.read(path))
    assert [r.title for r in recs if isinstance(r, PaperRecord)] == ["Good Title", "Next Title"]
    assert [r for r in recs if isinstance(r, BadRecord)] == [BadRecord(f"{path}:4", "invalid UTF-8 at byte 7")]


@pytest.mark.parametrize("text", [
    "",
    "\n\n   \n",
    '{"title": "A paper", "abstract": "' + ABS_A + '"}\n',
    '[\n  {"title": "A paper"}\n]\n',
    '<?xml version="1.0"?>\n<feed><entry><title>A paper</title></entry></feed>\n',
    "<!DOCTYPE html>\n<html><body>Get trending papers in your email inbox!</body></html>\n",
    "new\nGet trending papers in your email inbox!\nSubscribe\nbyAK and the research community\nJun 26\n",
    "Just a Title\nAnother Title\n",
])
def test_not_a_page_raises_format_error(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(FormatError) as exc:
        list(hf_page.read(path))
    msg = str(exc.value)
    assert str(path) in msg and "\n" not in msg


def test_binary_file_raises_format_error(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00" * 20)
    with pytest.raises(FormatError):
        list(hf_page.read(path))


def test_sniff() -> None:
    for name in ("blank_separated.txt", "runon_no_blanks.txt", "variant_header.txt"):
        path = DATA / name
        assert hf_page.sniff(path, read_head(path))
    assert not hf_page.sniff(Path("x.json"), '{"text": "Get trending papers in your email inbox!"}')
    assert not hf_page.sniff(Path("x.txt"), f"A Title\n{ABS_A}\n")
    assert not hf_page.sniff(Path("x.txt"), "\n".join(["filler line"] * 300) + "\nbyAK and the research community\n")
    assert hf_page.FORMAT == "hf-page" and hf_page.DESCRIPTION


# --- the three real pages (skipped without ../shared) ---------------------------------------------

REAL = {  # file -> (count, [(index, title, abstract start, abstract end)])
    "000_735d9de55ba45774.txt": (58, [
        (0, "An Efficient Knowledge Transfer Strategy for Spiking Neural Networks from Static to Event Domain",
         "Spiking neural networks (SNNs) are rich in spatio-", "https://github.com/Brain-Cog-Lab/Transfer-for-DVS."),
        (29, "Unbiased Recommender Learning from Missing-Not-At-Random Implicit Feedback",
         "Recommender systems widely use implicit feedback s", " of recommending items with the highest relevance."),
        (57, "Oracle Efficient Algorithms for Groupwise Regret",
         "We study the problem of online prediction, in whic", "ion algorithm with no groupwise regret guarantees."),
    ]),
    "001_53a3aabb3d732cd0.txt": (214, [
        (0, "LegendreTron: Uprising Proper Multiclass Loss Learning",
         "Loss functions serve as the foundation of supervis", "ance on all datasets with greater than 10 classes."),
        (107, "Levin Tree Search with Context Models",
         "Levin Tree Search (LTS) is a search algorithm that", "mproves upon previous machine learning techniques."),
        (213, "An Investigation of the Combination of Rehearsal and Knowledge Distillation in Continual "
              "Learning for Spoken Language Understanding",
         "Continual learning refers to a dynamical framework", "efficacy of our approach for low-resource devices."),
    ]),
    "002_eda63628a1507e54.txt": (52, [
        (0, "Wasserstein Dependency Measure for Representation Learning",
         "Mutual information maximization has emerged as a p", " incomplete representations are a major challenge."),
        (26, "Inductive Entity Representations from Text via Link Prediction",
         "Knowledge Graphs (KG) are of vital importance for ", "zation properties than evaluated in previous work."),
        (51, "A Unified and General Framework for Continual Learning",
         "Continual Learning (CL) focuses on learning from d", "tps://github.com/joey-wang123/CL-refresh-learning."),
    ]),
}


def test_real_pages() -> None:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present")
    keys: set[str] = set()
    for name, (count, spots) in REAL.items():
        path = SHARED / name
        assert hf_page.sniff(path, read_head(path))
        recs = papers(path)
        assert len(recs) == count, name
        lines = raw_lines(path)
        pos = 0
        for r in recs:
            # exact text, in page order: the title is a whole line (the first may carry the run-on
            # header before it) and its abstract is the very next line; nothing in between
            while not lines[pos].endswith(r.title):
                pos += 1
            assert lines[pos] == r.title or pos == 2 and lines[pos] == "Subscribe" + r.title, (name, pos)
            assert lines[pos + 1] == r.abstract and len(r.abstract) > 400, (name, r.title)
            assert len(r.title) < 150 and not any(h in r.title for h in ("Subscribe", "trending", "AK and"))
            pos += 2
        # every line after the header is in some record
        assert pos == len(lines)
        assert sum(len(ln) for ln in lines[pos - 2 * count:]) == sum(len(r.title) + len(r.abstract) for r in recs) + (
            len("Subscribe") if name.startswith("001") else 0)
        for i, title, start, end in spots:
            assert recs[i].title == title
            assert recs[i].abstract.startswith(start) and recs[i].abstract.endswith(end)
        keys |= {title_key(r.title) for r in recs}
    assert len(keys) == 296
    naive = papers(SHARED / "002_eda63628a1507e54.txt")
    assert "Memorize, Factorize, or be Na\u00efve: Learning Optimal Feature Interaction Methods for CTR Prediction" in {
        r.title for r in naive}
    assert papers(SHARED / "000_735d9de55ba45774.txt")[0].extra == {"page_date": "Jun 26"}
    assert papers(SHARED / "002_eda63628a1507e54.txt")[0].extra == {"page_date": "Mar 18"}
