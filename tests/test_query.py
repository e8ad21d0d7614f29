import pytest

from paperboy.services.query import Clause, QueryError, parse_query


def test_words_phrases_exclusions_fields():
    q = parse_query('ti:"graph neural" -survey au:lecun cat:cs.LG -cat:cs.AI after:2020 sort:date networks')
    assert q.clauses == [Clause("graph neural", "title", True, False), Clause("survey", None, False, True),
                         Clause("lecun", "authors", False, False), Clause("networks", None, False, False)]
    assert (q.categories, q.exclude_categories, q.date_from, q.date_to, q.sort) == (
        ["cs.lg"], ["cs.ai"], "2020-01-01", None, "date")
    assert q.has_text and q.free_text() == "graph neural lecun networks"


@pytest.mark.parametrize("text, start, end", [
    ("year:2020", "2020-01-01", "2020-12-31"), ("before:2021-02", None, "2021-02-28"),
    ("date:2020-01..2021-06", "2020-01-01", "2021-06-30"), ("date:2020..", "2020-01-01", None),
    ("date:..2019-05-04", None, "2019-05-04"), ("after:2024-02-29", "2024-02-29", None),
])
def test_dates(text, start, end):
    q = parse_query(text)
    assert (q.date_from, q.date_to, q.has_text) == (start, end, False)


def test_ids():
    assert parse_query("id:arXiv:2401.01234v2").ids == ["2401.01234"]
    assert parse_query("id:https://doi.org/10.1000/XYZ").ids == ["10.1000/xyz"]
    with pytest.raises(QueryError, match="neither an arXiv id nor a DOI"):
        parse_query("id:banana")


@pytest.mark.parametrize("text", ["", "   ", "\x00\x07"])
def test_empty_is_a_listing_not_an_error(text):
    q = parse_query(text)
    assert q.clauses == [] and not q.has_text


def test_bad_input():
    assert parse_query("x" * 999).clauses == [Clause("x" * 999, None, False, False)]
    with pytest.raises(QueryError, match="query too long \\(10000 characters; the limit is 1000\\)"):
        parse_query("x" * 10_000)
    with pytest.raises(QueryError, match="bad date '2020-13'"):
        parse_query("after:2020-13")
    with pytest.raises(QueryError, match="unknown sort 'best'"):
        parse_query("sort:best")
    # unbalanced quote: the rest is one phrase
    assert parse_query('graph "neural nets').clauses[1] == Clause("neural nets", None, True, False)
    # unknown prefixes and URLs are words
    assert [c.text for c in parse_query("foo:bar https://arxiv.org/abs/1").clauses] == ["foo:bar", "https://arxiv.org/abs/1"]
    # operators of other syntaxes are text; clauses without letters or digits are dropped
    assert [c.text for c in parse_query("a* OR (b) && * -- ||").clauses] == ["a*", "OR", "(b)"]
    assert parse_query("'; DROP TABLE papers; --").free_text() == "DROP TABLE papers;"
    assert parse_query("量子 Ελληνικά русский 🙂").free_text() == "量子 Ελληνικά русский"
    only_neg = parse_query("-survey -cat:cs.AI")
    assert not only_neg.has_text and only_neg.clauses == [Clause("survey", None, False, True)]
