"""The search query language, parsed into a small AST.

Syntax (case-insensitive prefixes):
- words: ``quantum error correction`` (any of title, abstract, authors; ranked by BM25 + meaning)
- phrases: ``"error correction"``; an unbalanced quote makes the rest of the query one phrase
- exclusions: ``-word``, ``-"a phrase"``, ``-ti:word``, ``-cat:cs.AI``
- fields: ``ti:`` title, ``au:`` authors, ``abs:`` abstract (values may be quoted: ``au:"Yann LeCun"``)
- filters: ``cat:cs.LG`` (``cat:cs`` = any cs.*), ``id:2401.01234`` or ``id:10.1000/xyz``,
  ``after:2020-01-01``, ``before:2021-12``, ``year:2020``, ``date:2020-01..2021-06`` (open ends allowed)
- ``sort:relevance|date|votes``
Unknown prefixes (``foo:bar``, URLs) are plain words. Operator characters of other syntaxes
(``* ? ~ ^ ( ) AND OR``...) are plain text; clauses without a letter or digit are dropped.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field

from ..errors import PaperboyError
from ..sources.normalize import normalize_doi, parse_arxiv_id

FIELDS = ("title", "abstract", "authors")
PREFIXES = {"ti": "title", "title": "title", "abs": "abstract", "abstract": "abstract", "au": "authors",
            "author": "authors", "cat": "cat", "id": "id", "after": "after", "before": "before",
            "year": "year", "date": "date", "sort": "sort"}
SORTS = ("relevance", "date", "votes")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HAS_WORD = re.compile(r"[^\W_]")
_DATE = re.compile(r"^(\d{4})(?:-(\d{1,2}))?(?:-(\d{1,2}))?$")


class QueryError(PaperboyError):
    """A query that cannot be run, with a message that says how to fix it."""


@dataclass(frozen=True)
class Clause:
    text: str
    field: str | None
    phrase: bool
    negate: bool


@dataclass
class Query:
    clauses: list[Clause] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    exclude_categories: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    date_from: str | None = None
    date_to: str | None = None
    sort: str | None = None
    raw: str = ""

    @property
    def has_text(self) -> bool:
        return any(not c.negate for c in self.clauses)

    def free_text(self) -> str:
        """Positive text for the embedding encoder, fields ignored."""
        return " ".join(c.text for c in self.clauses if not c.negate)


def _day(text: str, end: bool) -> str:
    """First (or last, with ``end``) day of YYYY, YYYY-MM or YYYY-MM-DD."""
    m = _DATE.match(text.strip())
    try:
        if not m:
            raise ValueError
        y, mo, d = int(m.group(1)), int(m.group(2) or (12 if end else 1)), m.group(3)
        day = int(d) if d else (calendar.monthrange(y, mo)[1] if end else 1)
        calendar.weekday(y, mo, day)  # validates month and day
    except (ValueError, calendar.IllegalMonthError):
        raise QueryError(f"bad date {text!r}: use YYYY, YYYY-MM or YYYY-MM-DD") from None
    return f"{y:04d}-{mo:02d}-{day:02d}"


def _tokens(text: str) -> list[tuple[bool, str | None, str, bool]]:
    """Scan into (negate, prefix, value, quoted); a lone quote runs to the end."""
    out, i, n = [], 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        negate = text[i] == "-" and i + 1 < n and not text[i + 1].isspace()
        i += negate
        prefix = None
        m = re.match(r"([A-Za-z]+):(?=\S)", text[i:])
        if m and m.group(1).lower() in PREFIXES:
            prefix, i = PREFIXES[m.group(1).lower()], i + m.end()
        if i < n and text[i] == '"':
            close = text.find('"', i + 1)
            close = n if close < 0 else close
            out.append((negate, prefix, text[i + 1:close], True))
            i = close + 1
        else:
            j = i
            while j < n and not text[j].isspace():
                j += 1
            out.append((negate, prefix, text[i:j], False))
            i = j
    return out


def parse_query(text: str, max_length: int = 1000) -> Query:
    """Parse user input; raises QueryError for input it cannot run (too long, bad date, bad id...)."""
    if len(text) > max_length:
        raise QueryError(f"query too long ({len(text)} characters; the limit is {max_length})")
    text = _CONTROL.sub(" ", text)
    q = Query(raw=text)
    for negate, prefix, value, quoted in _tokens(text):
        value = value.strip()
        if not value:
            continue
        if prefix == "cat":
            (q.exclude_categories if negate else q.categories).append(value.lower())
        elif prefix == "id":
            parsed = parse_arxiv_id(value)
            ident = parsed[0] if parsed else normalize_doi(value)
            if not ident:
                raise QueryError(f"id:{value} is neither an arXiv id nor a DOI")
            q.ids.append(ident)
        elif prefix in ("after", "before", "year", "date"):
            lo, sep, hi = value.partition("..") if prefix == "date" else (value, "", value)
            if prefix in ("after", "year", "date") and lo:
                q.date_from = _day(lo, end=False)
            if prefix in ("before", "year") or (sep and hi):
                q.date_to = _day(hi if sep else value, end=True)
            if prefix == "date" and not sep:
                q.date_to = _day(value, end=True)
        elif prefix == "sort":
            if value.lower() not in SORTS:
                raise QueryError(f"unknown sort {value!r}: use one of {', '.join(SORTS)}")
            q.sort = value.lower()
        elif _HAS_WORD.search(value):
            phrase = quoted and len(value.split()) > 1
            q.clauses.append(Clause(value, prefix, phrase, negate))
    return q
