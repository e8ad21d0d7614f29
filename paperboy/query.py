"""The search query language, parsed into a small AST.

Syntax (prefixes are case-insensitive):
- words: ``quantum error correction`` (in title, abstract or authors)
- phrases: ``"error correction"``; a lone unbalanced quote makes the rest of the query one phrase
- exclusions: ``-word``, ``-"a phrase"``, ``-ti:word``, ``-cat:cs.AI``
- fields: ``ti:`` title, ``au:`` authors, ``abs:`` abstract; values may be quoted: ``au:"Yann LeCun"``
- filters: ``cat:cs.LG`` (``cat:cs`` is any cs.*), ``id:2401.01234`` or ``id:10.1000/xyz``,
  ``after:2020-01-01``, ``before:2021-12`` (both inclusive), ``year:2020``,
  ``date:2020-01..2021-06`` (YYYY, YYYY-MM or YYYY-MM-DD; open ends ``2020..`` and ``..2021``)
- links: ``has:code`` (a code repository: GitHub, GitLab...), ``has:project`` (a project page),
  ``has:hf`` (a Hugging Face model, dataset or Space), found in the abstract or arXiv comments;
  ``-has:code`` excludes
- topics: ``topic:NAME`` (a topic of the topic map by slug or label, ``/topics``; several: any of them)
- order: ``sort:relevance``, ``sort:date`` or ``sort:votes``
A query of only exclusions and filters lists the newest matching papers, and so does an empty one.
Unknown prefixes (``foo:bar``) and URLs are plain words. Operator characters of other syntaxes
(``* ? ~ ^ ( ) AND OR ; --``...) are plain text, never syntax; a word or phrase with no letter or
digit at all (``*``, ``&&``) is dropped. Control characters are removed.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

from .errors import PaperboyError
from .normalize import clean_text, normalize_doi, parse_arxiv_id

FIELDS = ("title", "abstract", "authors")
SORTS = ("relevance", "date", "votes")
# Known prefixes -> canonical name: a text field of FIELDS, or a filter.
PREFIXES = {"ti": "title", "title": "title", "abs": "abstract", "abstract": "abstract",
            "au": "authors", "author": "authors", "cat": "cat", "id": "id", "after": "after",
            "before": "before", "year": "year", "date": "date", "sort": "sort", "has": "has",
            "topic": "topic"}
HAS = ("code", "project", "hf")  # has:X values (services/listing.py ``has_kinds`` says what each means)
_WORD = re.compile(r"[^\W_]+")  # a run of letters or digits, any script
_DATE = re.compile(r"([0-9]{4})(?:-([0-9]{1,2})(?:-([0-9]{1,2}))?)?")


class QueryError(PaperboyError):
    """A query that cannot be run, with a message that says how to fix it."""


@dataclass(frozen=True)
class Clause:
    text: str  # the word(s) or phrase, as typed (quotes removed)
    field: str | None  # None (every text field) or one of FIELDS
    phrase: bool  # quoted input of more than one word
    negate: bool


@dataclass
class Query:
    clauses: list[Clause] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)  # lower case, from cat:
    exclude_categories: list[str] = field(default_factory=list)  # from -cat:
    ids: list[str] = field(default_factory=list)  # normalized arXiv ids and DOIs, from id:
    date_from: str | None = None  # ISO date, inclusive
    date_to: str | None = None  # ISO date, inclusive
    sort: str | None = None  # one of SORTS, when the query says
    has: list[str] = field(default_factory=list)  # from has: (values of HAS)
    exclude_has: list[str] = field(default_factory=list)  # from -has:
    topics: list[str] = field(default_factory=list)  # from topic: (names, as typed)
    only_ids: set[int] | None = None  # set by the searcher: the papers of ``topics`` (index/topics.py)
    raw: str = ""  # the input, control characters removed

    @property
    def has_text(self) -> bool:
        """Whether any word or phrase must or should match (exclusions do not count)."""
        return any(not c.negate for c in self.clauses)

    def free_text(self) -> str:
        """Positive words and phrases for the embedding encoder, fields ignored."""
        return " ".join(c.text for c in self.clauses if not c.negate)


def _day(text: str, end: bool) -> str:
    """First day (last day with ``end``) of YYYY, YYYY-MM or YYYY-MM-DD, as an ISO date."""
    if m := _DATE.fullmatch(text):
        y, mo, d = int(m.group(1)), int(m.group(2) or (12 if end else 1)), m.group(3)
        try:
            day = int(d) if d else calendar.monthrange(y, mo)[1] if end else 1
            return date(y, mo, day).isoformat()
        except ValueError:  # month 13, day 30 of February, year 0
            pass
    raise QueryError(f"bad date '{text}': use YYYY, YYYY-MM or YYYY-MM-DD")


def _scan(text: str) -> Iterator[tuple[bool, str | None, str, bool]]:
    """Split into (negate, prefix, value, quoted) tokens, left to right.

    A token is an optional ``-``, an optional known ``prefix:`` and then either a quoted
    value (a lone quote runs to the end of the text) or everything up to the next space.
    """
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        negate = text[i] == "-" and i + 1 < n and not text[i + 1].isspace()
        i += negate
        j = i
        while j < n and text[j].isascii() and text[j].isalpha():
            j += 1
        prefix = PREFIXES.get(text[i:j].lower())
        if prefix and j + 1 < n and text[j] == ":" and not text[j + 1].isspace():
            i = j + 1
        else:
            prefix = None  # "foo:bar", "https://..." and a bare "ti:" are words
        if i < n and text[i] == '"':
            close = text.find('"', i + 1)
            close = n if close < 0 else close
            yield negate, prefix, text[i + 1:close], True
            i = close + 1
        else:
            j = i
            while j < n and not text[j].isspace():
                j += 1
            yield negate, prefix, text[i:j], False
            i = j


def _add_unique(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)


def _has(value: str) -> str:
    kind = value.lower()
    if kind not in HAS:
        raise QueryError(f"unknown 'has:{value[:40]}': use {', '.join('has:' + h for h in HAS)}")
    return kind


def parse_query(text: str, max_length: int = 1000) -> Query:
    """Parse user input into a Query; raises QueryError for input that cannot be run
    (too long, a bad date, id or sort, an excluded filter other than cat:)."""
    text = text or ""
    if len(text) > max_length:
        raise QueryError(f"query too long ({len(text)} characters; the limit is {max_length})")
    text = clean_text(text)  # NFC, control and invisible characters dropped, spaces collapsed
    q = Query(raw=text)
    for negate, prefix, value, quoted in _scan(text):
        value = value.strip()
        if not value:
            continue
        if negate and prefix not in (None, "cat", "has", *FIELDS):
            raise QueryError(f"'-{prefix}:' is not supported: only words, phrases, "
                             "ti:, au:, abs:, cat: and has: can be excluded")
        if prefix == "cat":
            if _WORD.search(value):
                _add_unique(q.exclude_categories if negate else q.categories, value.lower())
        elif prefix == "id":
            arxiv = parse_arxiv_id(value)
            ident = arxiv[0] if arxiv else normalize_doi(value)
            if not ident:
                raise QueryError(f"bad id '{value}': use an arXiv id (2401.01234) or a DOI (10.1000/xyz)")
            _add_unique(q.ids, ident)
        elif prefix == "has":
            _add_unique(q.exclude_has if negate else q.has, _has(value))
        elif prefix == "topic":
            _add_unique(q.topics, value[:200])
        elif prefix == "after":
            q.date_from = _day(value, end=False)
        elif prefix == "before":
            q.date_to = _day(value, end=True)
        elif prefix in ("year", "date"):
            lo, sep, hi = value.partition("..")
            if not lo and not hi:
                raise QueryError(f"bad date '{value}': use YYYY, YYYY-MM or YYYY-MM-DD")
            if lo:
                q.date_from = _day(lo, end=False)
            if hi or not sep:
                q.date_to = _day(hi if sep else lo, end=True)
        elif prefix == "sort":
            if value.lower() not in SORTS:
                raise QueryError(f"unknown sort '{value}': use one of {', '.join(SORTS)}")
            q.sort = value.lower()
        elif _WORD.search(value):  # words and phrases; "*" or "&&" alone mean nothing
            phrase = quoted and len(_WORD.findall(value)) > 1
            q.clauses.append(Clause(value, prefix, phrase, negate))
    return q
