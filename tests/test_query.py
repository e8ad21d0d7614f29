"""The query language: every construct, combinations and hostile input, each checked against the
exact AST the engine receives."""

import random
import re

import pytest

from paperboy.query import FIELDS, SORTS, Clause, Query, QueryError, parse_query


def W(text, field=None, phrase=False, negate=False):
    return Clause(text, field, phrase, negate)


def Q(raw, *clauses, **kw):
    return Query(clauses=list(clauses), raw=raw, **kw)


def same(text, *clauses, **kw):
    """parse_query(text) is exactly this Query (raw is the text itself)."""
    got = parse_query(text)
    assert got == Q(text, *clauses, **kw), got
    return got


def test_public_constants():
    assert FIELDS == ("title", "abstract", "authors")
    assert SORTS == ("relevance", "date", "votes")


def test_words():
    q = same("quantum error correction", W("quantum"), W("error"), W("correction"))
    assert q.has_text and q.free_text() == "quantum error correction"


@pytest.mark.parametrize("text, clause", [
    ('"error correction"', W("error correction", phrase=True)),
    ('"state-of-the-art"', W("state-of-the-art", phrase=True)),  # several words to the tokenizer
    ('"single"', W("single")),  # one quoted word is a word
])
def test_phrases(text, clause):
    same(text, clause)
    assert parse_query('"  padded   phrase "').clauses == [W("padded phrase", phrase=True)]  # spaces collapsed


def test_unbalanced_quote_makes_the_rest_a_phrase():
    same('graph "neural nets', W("graph"), W("neural nets", phrase=True))
    same('graph "neural nets" "dangling', W("graph"), W("neural nets", phrase=True), W("dangling"))
    same('ti:"graph neural', W("graph neural", "title", True))
    same('a "', W("a"))  # a lone quote at the end is nothing
    same('""')


def test_exclusions():
    same('-survey -"a phrase" -ti:word -abs:"two words" -au:smith', W("survey", negate=True),
         W("a phrase", phrase=True, negate=True), W("word", "title", negate=True),
         W("two words", "abstract", True, True), W("smith", "authors", negate=True))
    same("state-of-the-art e-print", W("state-of-the-art"), W("e-print"))  # inner hyphens are text
    same("- lone dash", W("lone"), W("dash"))
    same('"-quoted"', W("-quoted"))  # quotes make a dash literal


def test_only_exclusions_and_filters_have_no_text():
    q = same("-survey -cat:cs.AI", W("survey", negate=True), exclude_categories=["cs.ai"])
    assert not q.has_text and q.free_text() == ""
    q = same("cat:cs.LG year:2020", categories=["cs.lg"], date_from="2020-01-01", date_to="2020-12-31")
    assert not q.has_text


@pytest.mark.parametrize("prefix, field", [("ti", "title"), ("TI", "title"), ("title", "title"),
                                           ("au", "authors"), ("Au", "authors"), ("author", "authors"),
                                           ("abs", "abstract"), ("ABS", "abstract"), ("abstract", "abstract")])
def test_field_prefixes(prefix, field):
    same(f"{prefix}:graph", W("graph", field))
    same(f'{prefix}:"graph neural"', W("graph neural", field, True))


def test_quoted_author():
    q = same('au:"Yann LeCun" ti:"graph neural"', W("Yann LeCun", "authors", True),
             W("graph neural", "title", True))
    assert q.free_text() == "Yann LeCun graph neural"


def test_categories():
    same("cat:cs.LG cat:quant-ph CAT:cs", categories=["cs.lg", "quant-ph", "cs"])
    same("cat:cs.LG -cat:cs.AI cat:cs.lg -cat:cs.AI", categories=["cs.lg"], exclude_categories=["cs.ai"])
    same('cat:"math.GT" cat:*', categories=["math.gt"])  # a category with no letter is nothing


@pytest.mark.parametrize("text, ids", [
    ("id:2401.01234", ["2401.01234"]),
    ("id:arXiv:2401.01234v2", ["2401.01234"]),
    ("ID:https://arxiv.org/abs/2401.01234v3", ["2401.01234"]),
    ("id:hep-th/9901001", ["hep-th/9901001"]),
    ("id:10.1000/XYZ", ["10.1000/xyz"]),
    ("id:https://doi.org/10.1000/XYZ", ["10.1000/xyz"]),
    ("id:2401.01234 id:10.1000/a id:2401.01234v1", ["2401.01234", "10.1000/a"]),
])
def test_ids(text, ids):
    q = same(text, ids=ids)
    assert not q.has_text


@pytest.mark.parametrize("text", ["id:banana", "id:12345", 'id:"not an id"'])
def test_bad_id(text):
    with pytest.raises(QueryError, match=r"^bad id '.*': use an arXiv id \(2401\.01234\) or a DOI"):
        parse_query(text)


@pytest.mark.parametrize("text, start, end", [
    ("after:2020-01-01", "2020-01-01", None),
    ("after:2020", "2020-01-01", None),
    ("after:2020-03", "2020-03-01", None),
    ("after:2024-02-29", "2024-02-29", None),
    ("before:2021-12-31", None, "2021-12-31"),
    ("before:2021", None, "2021-12-31"),
    ("before:2021-02", None, "2021-02-28"),
    ("before:2024-02", None, "2024-02-29"),
    ("BEFORE:2021-4-5", None, "2021-04-05"),
    ("year:2020", "2020-01-01", "2020-12-31"),
    ("year:2019..2020", "2019-01-01", "2020-12-31"),
    ("date:2020", "2020-01-01", "2020-12-31"),
    ("date:2020-06", "2020-06-01", "2020-06-30"),
    ("date:2020-01..2021-06", "2020-01-01", "2021-06-30"),
    ("date:2020-01-15..2020-02-10", "2020-01-15", "2020-02-10"),
    ("date:2020..", "2020-01-01", None),
    ("date:..2019-05", None, "2019-05-31"),
    ("after:2020 before:2021-06", "2020-01-01", "2021-06-30"),
    ('after:"2020-05"', "2020-05-01", None),
])
def test_dates(text, start, end):
    same(text, date_from=start, date_to=end)


@pytest.mark.parametrize("text, bad", [
    ("after:2020-13", "2020-13"), ("before:2021-02-30", "2021-02-30"), ("year:20", "20"),
    ("date:2020-01..2021-1x", "2021-1x"), ("date:..", ".."), ("after:yesterday", "yesterday"),
    ("year:0000", "0000"), ("date:2020..2021..2022", "2021..2022"),
    ("after:2020-01-01T00:00", "2020-01-01T00:00"),
])
def test_bad_dates(text, bad):
    with pytest.raises(QueryError) as e:
        parse_query(text)
    assert str(e.value) == f"bad date '{bad}': use YYYY, YYYY-MM or YYYY-MM-DD"


def test_sort():
    for s in SORTS:
        same(f"sort:{s}", sort=s)
    same("graph SORT:Votes", W("graph"), sort="votes")
    same("sort:date sort:relevance", sort="relevance")  # the last one wins
    with pytest.raises(QueryError) as e:
        parse_query("sort:best")
    assert str(e.value) == "unknown sort 'best': use one of relevance, date, votes"


@pytest.mark.parametrize("text", ["-after:2020", "-before:2020", "-year:2020", "-date:2020..",
                                  "-id:2401.01234", "-sort:date"])
def test_filters_other_than_cat_cannot_be_excluded(text):
    with pytest.raises(QueryError, match=r"is not supported: only words, phrases, ti:, au:, abs:, cat:"):
        parse_query(text)


def test_combination():
    q = same('ti:"graph neural" -survey au:lecun cat:cs.LG after:2020 sort:date',
             W("graph neural", "title", True), W("survey", negate=True), W("lecun", "authors"),
             categories=["cs.lg"], date_from="2020-01-01", sort="date")
    assert q.has_text and q.free_text() == "graph neural lecun"
    same('"surface code" -"toric code" abs:decoder -cat:quant-ph cat:cs id:2401.01234 date:2019..2021-06 '
         "sort:votes", W("surface code", phrase=True), W("toric code", phrase=True, negate=True),
         W("decoder", "abstract"), categories=["cs"], exclude_categories=["quant-ph"], ids=["2401.01234"],
         date_from="2019-01-01", date_to="2021-06-30", sort="votes")


@pytest.mark.parametrize("text", ["", " ", "   \t\n ", "\x00\x07", "\u200b\ufeff", "* && || --", '"'])
def test_empty_is_a_listing_not_an_error(text):
    q = parse_query(text)
    assert q.clauses == [] and not q.has_text and q.free_text() == ""
    assert q == Query(raw=q.raw)


def test_length_limit():
    assert parse_query("x" * 999) == Q("x" * 999, W("x" * 999))
    assert parse_query("x" * 1000).clauses == [W("x" * 1000)]
    with pytest.raises(QueryError) as e:
        parse_query("x" * 10_000)
    assert str(e.value) == "query too long (10000 characters; the limit is 1000)"
    with pytest.raises(QueryError, match=r"^query too long \(1001 characters; the limit is 1000\)$"):
        parse_query("a " * 500 + "b")
    with pytest.raises(QueryError, match="the limit is 10"):
        parse_query("x" * 11, max_length=10)
    assert parse_query("x" * 2000, max_length=5000).clauses == [W("x" * 2000)]


def test_control_characters_are_removed():
    q = parse_query("quantum\terror\r\ncorrection\x00\x1b\u202e\u200b")
    assert q == Q("quantum error correction", W("quantum"), W("error"), W("correction"))
    assert parse_query("e\u0301t\u00e9").clauses == [W("\u00e9t\u00e9")]  # NFC, as the index stores text


def test_unknown_prefixes_and_urls_are_words():
    same("foo:bar https://arxiv.org/abs/1 x.y:z", W("foo:bar"), W("https://arxiv.org/abs/1"), W("x.y:z"))
    same("-foo:bar", W("foo:bar", negate=True))
    same("ti: graph date: soon", W("ti:"), W("graph"), W("date:"), W("soon"))  # a bare prefix is a word
    same("mailto:someone@example.org", W("mailto:someone@example.org"))


def test_operator_characters_are_literal_text():
    same('a* OR (b) AND "c', W("a*"), W("OR"), W("(b)"), W("AND"), W("c"))
    same("a* OR (b) && * -- ||", W("a*"), W("OR"), W("(b)"))
    same("title:(graph OR tree)^2 ~fuzzy~2 [1 TO 5] {x} +must !not a\\b c/d e|f",
         W("(graph", "title"), W("OR"), W("tree)^2"), W("~fuzzy~2"), W("[1"), W("TO"), W("5]"), W("{x}"),
         W("+must"), W("!not"), W("a\\b"), W("c/d"), W("e|f"))
    same('ti:"a AND b"', W("a AND b", "title", True))


def test_sql_injection_is_just_words():
    q = same("'; DROP TABLE papers; --", W("DROP"), W("TABLE"), W("papers;"))
    assert q.free_text() == "DROP TABLE papers;"
    same("1' OR '1'='1", W("1'"), W("OR"), W("'1'='1"))
    same('x"; DELETE FROM papers WHERE "1"="1', W('x";'), W("DELETE"), W("FROM"), W("papers"), W("WHERE"),
         W("1"), W('="1'))  # "1" is a quoted word; the rest up to a space is one word


def test_non_latin_scripts():
    q = same("量子 Ελληνικά русский العربية हिन्दी", W("量子"), W("Ελληνικά"), W("русский"), W("العربية"), W("हिन्दी"))
    assert q.free_text() == "量子 Ελληνικά русский العربية हिन्दी"
    same('ti:"量子 计算" -au:Иванов', W("量子 计算", "title", True), W("Иванов", "authors", negate=True))
    # emoji stay as text inside a word; an emoji alone has no letter or digit and is dropped
    same("🙂 qubit🙂 🙂🙂", W("qubit🙂"))
    same("ΤΙ:λέξη", W("ΤΙ:λέξη"))  # Greek capitals that look like TI: are not a prefix


def test_hostile_input_never_raises_anything_but_query_error():
    rng = random.Random(1)
    alphabet = list('abc XYZ 09 -"\':*?~^()[]{}!&|+\\/;.,=<>%_#@$\x00\t\n\u200b量🙂é') + list(PREFIX_WORDS)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        try:
            q = parse_query(text)
        except QueryError:
            continue
        for c in q.clauses:
            assert c.text == c.text.strip() and any(ch.isalnum() for ch in c.text)
            assert c.field in (None, *FIELDS) and (not c.phrase or len(re.findall(r"[^\W_]+", c.text)) > 1)
        assert q.sort in (None, *SORTS)
        assert "\x00" not in q.raw and "\t" not in q.free_text()


PREFIX_WORDS = ["ti:", "-ti:", "au:", "abs:", "cat:", "-cat:", "id:", "after:", "before:", "year:", "date:",
                "sort:", "2020", "2020-01", "..", "cs.LG", "date", "votes", "2401.01234"]
