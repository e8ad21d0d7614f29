import pytest

from paperboy.models import PaperRecord
from paperboy.normalize import (
    check_record,
    clean_latex,
    normalize_doi,
    normalize_name,
    parse_arxiv_id,
    parse_date,
    split_authors,
    title_key,
)


@pytest.mark.parametrize("text, expected", [
    ("2401.01234", ("2401.01234", None)),
    ("2401.01234v2", ("2401.01234", 2)),
    ("arXiv:2401.01234v3", ("2401.01234", 3)),
    ("https://arxiv.org/abs/2401.01234v2", ("2401.01234", 2)),
    ("https://arxiv.org/pdf/2401.01234v2.pdf", ("2401.01234", 2)),
    ("http://arxiv.org/abs/0704.0001", ("0704.0001", None)),
    ("oai:arXiv.org:1303.2033", ("1303.2033", None)),
    ("hep-th/9901001", ("hep-th/9901001", None)),
    ("hep-th/9901001v1", ("hep-th/9901001", 1)),
    ("oai:arXiv.org:quant-ph/0101001", ("quant-ph/0101001", None)),
    ("math.GT/0309136", ("math.GT/0309136", None)),
    ("https://arxiv.org/abs/math/0309136v2", ("math/0309136", 2)),
    ("not an id", None),
    ("", None),
    ("12345.6789", None),
])
def test_parse_arxiv_id(text, expected):
    assert parse_arxiv_id(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("10.1103/PhysRevD.76.013009", "10.1103/physrevd.76.013009"),
    ("https://doi.org/10.1000/XYZ.", "10.1000/xyz"),
    ("doi:10.48550/arXiv.2401.01234", "10.48550/arxiv.2401.01234"),
    ("no doi", None),
])
def test_normalize_doi(text, expected):
    assert normalize_doi(text) == expected


def test_clean_latex_titles():
    assert clean_latex("Calculation of prompt diphoton\n  production") == "Calculation of prompt diphoton production"
    assert clean_latex(r"Schr\"odinger equations and {\'E}cole") == "Schrödinger equations and École"
    assert clean_latex(r"The {BERT} model: \emph{deep} bidirectional") == "The BERT model: deep bidirectional"
    assert clean_latex(r"Bounds on $\mathcal{O}(n^{2})$ time") == r"Bounds on $\mathcal{O}(n^{2})$ time"
    assert clean_latex(r"P{\aa}l and {\ss}") == "Pål and ß"


def test_names_and_authors():
    assert normalize_name("Liepins, Vilnis") == "Vilnis Liepins"
    assert normalize_name(r"Bal\'azs, C.") == "C. Balázs"
    assert split_authors(r"C. Bal\'azs, E. L. Berger, P. M. Nadolsky, C.-P. Yuan") == [
        "C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C.-P. Yuan"]
    assert split_authors("A. One (MIT, Cambridge), B. Two and C. Three") == ["A. One", "B. Two", "C. Three"]


def test_dates_and_title_key():
    assert parse_date("Mon, 2 Apr 2007 19:18:42 GMT") == "2007-04-02"
    assert parse_date("2024-01-01T02:13:44.466Z") == "2024-01-01"
    assert parse_date("2016-05") == "2016-05-01"
    assert parse_date("garbage") is None
    assert title_key("The  {BERT} Model!") == title_key("the bert model") == "thebertmodel"
    assert title_key("Schr\\\"odinger") == title_key("Schrodinger")


def test_check_record_limits():
    ok = PaperRecord(source="t", source_id="1", title="  A  title ", abstract="x\n y", arxiv_id="2401.00001")
    assert check_record(ok) is None
    assert ok.title == "A title" and ok.abstract == "x y"
    assert ok.links["abs"] == "https://arxiv.org/abs/2401.00001"
    assert check_record(PaperRecord(source="t", source_id="2", title="   ")) == "missing title"
    assert "title too long" in check_record(PaperRecord(source="t", source_id="3", title="x" * 1500))
    assert "too long" in check_record(PaperRecord(source="t", source_id="4", title="t", abstract="y" * 10**6))
