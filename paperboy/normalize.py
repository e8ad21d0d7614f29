"""Normalization shared by every source: arXiv ids, DOIs, dates, names, text, dedup keys."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

import orjson

from .models import PaperRecord

# Field limits: past these a record is rejected as malformed rather than stored.
MAX_TITLE = 1_000
MAX_ABSTRACT = 20_000
MAX_AUTHORS = 5_000
MAX_AUTHOR_NAME = 300
MAX_NOTE = 5_000  # comments, journal reference
MAX_CATEGORIES = 100
MAX_SHORT = 1_000  # one category, an id, a DOI, a link
MAX_EXTRA_BYTES = 64 << 10  # a source's signals (upvotes, keywords), as JSON
MAX_VERSION = 9_999  # an arXiv version number (SQLite integers overflow past 2**63)

# Dates outside this range are dropped (the record is kept): a year 9999 or 0001 is a typo or an
# attack, and would sort first in every date-ordered list. The future bound is today + MAX_FUTURE.
MIN_DATE = date(1800, 1, 1)
MAX_FUTURE = timedelta(days=366)

# New-style ids (0704.0001, 2401.01234) and old-style ids (hep-th/9901001, math.GT/0309136).
# Digits are ASCII [0-9] only: \d would also take "３" or Arabic-Indic digits (a second spelling of
# an id); the surrounding \w stays Unicode so such a digit next to an id stops the match.
_NEW_ID = r"[0-9]{4}\.[0-9]{4,5}"
_OLD_ID = r"[a-z][a-z\-]*(?:\.[A-Z]{2})?/[0-9]{7}"
_VERSION = r"(?:v([0-9]{1,4}))?"
_ARXIV_RE = re.compile(rf"(?:^|[^\w.\-/])({_NEW_ID}|{_OLD_ID}){_VERSION}(?![\w.])", re.IGNORECASE)
_ARXIV_EXACT = re.compile(rf"^({_NEW_ID}|{_OLD_ID}){_VERSION}$", re.IGNORECASE)
_DOI_RE = re.compile(r"(10\.[0-9]{4,9}/\S+)")
# Control and invisible format characters (Cc, soft hyphen, zero-width, bidi overrides, BOM), and
# what XML 1.0 cannot carry at all (lone surrogates, U+FFFE, U+FFFF) or reserves (noncharacters):
# one of these in a title would break every feed listing it.
_NONCHARS = "".join(chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(1, 17))
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff"
                      f"\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff{_NONCHARS}]")
_NON_WORD = re.compile(r"[\W_]+")


def parse_arxiv_id(text: str | None) -> tuple[str, int | None] | None:
    """Return (id, version) found in an id, URL or OAI identifier, or None.

    >>> parse_arxiv_id("https://arxiv.org/abs/2401.01234v2")
    ('2401.01234', 2)
    >>> parse_arxiv_id("oai:arXiv.org:hep-th/9901001")
    ('hep-th/9901001', None)
    """
    if not text:
        return None
    text = text.strip()
    m = _ARXIV_EXACT.match(text)
    if not m:
        text = re.sub(r"(?i)^(arxiv:|oai:arxiv\.org:)", " ", text)
        text = re.sub(r"(?i)(abs|pdf|html)/", " ", text)
        text = re.sub(r"\.pdf$", "", text)
        m = _ARXIV_RE.search(" " + text)
        if not m:
            return None
    ident = m.group(1)
    if "/" in ident:  # old style: archive lower case, subject class upper case
        archive, num = ident.split("/")
        head, _, sub = archive.partition(".")
        ident = f"{head.lower()}.{sub.upper()}/{num}" if sub else f"{head.lower()}/{num}"
    return ident, int(m.group(2)) if m.group(2) else None


def normalize_doi(text: str | None) -> str | None:
    """Lower-case bare DOI ("10.x/y") from a DOI, ``doi:`` prefix or doi.org URL."""
    if not text:
        return None
    m = _DOI_RE.search(text.strip())
    if not m:
        return None
    return m.group(1).rstrip(".,;").lower()


def clean_text(text: str | None) -> str:
    """Unicode NFC, control characters dropped, whitespace collapsed."""
    if not text:
        return ""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    text = " ".join(text.split())  # str.split is the fast path for collapsing whitespace
    return text if text.isprintable() else " ".join(_CONTROL.sub("", text).split())


_ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303",
            "=": "\u0304", ".": "\u0307", "c": "\u0327", "v": "\u030c", "u": "\u0306", "H": "\u030b"}
_ACCENT_RE = re.compile(r"""\{?\\(['`^"~=.]|[cvuH](?=[\s{]))\s*\{?\s*(\\?[A-Za-z])\s*\}?\}?""")
_SPECIAL = {r"\ss": "ß", r"\o": "ø", r"\O": "Ø", r"\ae": "æ", r"\AE": "Æ", r"\aa": "å", r"\AA": "Å",
            r"\l": "ł", r"\L": "Ł", r"\i": "ı", r"\&": "&", r"\%": "%", r"\_": "_", r"\#": "#"}
_SPECIAL_RE = re.compile(r"\{?(\\(?:ss|o|O|ae|AE|aa|AA|l|L|i)(?![A-Za-z])|\\[&%_#])\}?")
_FORMAT_RE = re.compile(r"\\(?:emph|textit|textbf|textsc|texttt|mathrm|textrm|text)\{([^{}]*)\}")


def _accent(m: re.Match[str]) -> str:
    base = m.group(2).lstrip("\\")
    if base == "i":
        base = "i"
    return unicodedata.normalize("NFC", base + _ACCENTS[m.group(1)])


def clean_latex(text: str | None) -> str:
    """Simple LaTeX clean-up for titles and names: accents, formatting macros, case braces.

    Math (``$...$``) is kept verbatim: search and display handle it as text.
    """
    text = clean_text(text)
    if "\\" not in text and "{" not in text:
        return text
    parts = re.split(r"(\$[^$]*\$)", text)
    for i in range(0, len(parts), 2):  # even parts are outside math
        p = _ACCENT_RE.sub(_accent, parts[i])
        p = _SPECIAL_RE.sub(lambda m: _SPECIAL[m.group(1)], p)
        for _ in range(3):  # nested formatting macros
            p = _FORMAT_RE.sub(r"\1", p)
        p = p.replace("{", "").replace("}", "")
        parts[i] = p.replace("~", " ")
    return clean_text("".join(parts))


@lru_cache(maxsize=8192)  # the store asks for the same titles' keys several times per batch
def title_key(title: str) -> str:
    """Dedup key: case-folded letters and digits of the cleaned title, accents removed."""
    text = unicodedata.normalize("NFKD", clean_latex(title).casefold())
    return _NON_WORD.sub("", text)


def normalize_name(name: str) -> str:
    """"Last, First" -> "First Last"; LaTeX accents resolved; whitespace collapsed."""
    name = clean_latex(name)
    if name.count(",") == 1:
        last, first = (p.strip() for p in name.split(","))
        if first and last and not first.lower().startswith(("jr", "sr", "iii", "ii")):
            name = f"{first} {last}"
    return name.strip(" ,")


_AUTHOR_SPLIT = re.compile(r",\s*(?:and\s+)?|\s+and\s+|;\s*")


def split_authors(text: str | None) -> list[str]:
    """Split an arXiv-style author string ("A. One, B. Two and C. Three") into names.

    Parenthesised affiliations are dropped.
    """
    if not text:
        return []
    text = clean_text(text)
    depth, out = 0, []
    for ch in text:  # drop (affiliations), which may contain commas
        depth += ch == "("
        if depth == 0:
            out.append(ch)
        depth -= ch == ")" and depth > 0
    names = (clean_latex(n) for n in _AUTHOR_SPLIT.split("".join(out)))
    return [n for n in names if n]


_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}
_RFC_DATE = re.compile(r"^(?:\w{3}, )?(\d{1,2}) (\w{3}) (\d{4})\b", re.ASCII)
_WHOLE = re.compile(r"[0-9]{1,9}", re.ASCII)
_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m", "%Y", "%d %b %Y", "%b %d, %Y", "%B %d, %Y", "%Y/%m/%d")


def parse_date(text: str | None) -> str | None:
    """ISO date (YYYY-MM-DD) from ISO timestamps, RFC 2822 dates and a few common forms."""
    if not text:
        return None
    text = str(text).strip()
    if not text or not text.isascii():  # every form read is ASCII; strptime's \d takes any digit
        return None
    if (m := _RFC_DATE.match(text)) and (month := _MONTHS.get(m.group(2).lower())):  # arXiv's versions
        try:
            return date(int(m.group(3)), month, int(m.group(1))).isoformat()
        except (ValueError, OverflowError):
            return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
    except (ValueError, OverflowError):
        pass
    try:
        return parsedate_to_datetime(text).date().isoformat()
    except (TypeError, ValueError, IndexError, OverflowError):
        pass
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except (ValueError, OverflowError):
            continue
    return None


def whole_number(value: object) -> int | None:
    """A small non-negative whole number from an int or ASCII digits ("12"), else None.

    Not ``int(x)`` on ``x.isdigit()``: that is true for "²" and "３" (ValueError, or a second
    spelling of a number), and a 20-digit number overflows ``date()``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 10**9 else None
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        return int(value.strip())
    return None


def sane_date(iso: str | None) -> str | None:
    """``iso`` (YYYY-MM-DD) if it is a real date from MIN_DATE to today + MAX_FUTURE, else None."""
    if not iso:
        return None
    try:
        day = date.fromisoformat(iso) if isinstance(iso, str) and iso.isascii() else None
    except ValueError:
        return None
    if day is None or not MIN_DATE <= day <= date.today() + MAX_FUTURE:
        return None
    return day.isoformat()


def date_from_parts(parts: list[int] | None) -> str | None:
    """CSL-JSON ``date-parts`` entry ([2024, 1, 5], [2024]) to an ISO date."""
    if not parts or not isinstance(parts, (list, tuple)):
        return None
    y, m, d = (whole_number(v) for v in (list(parts) + [1, 1])[:3])
    if y is None or m is None or d is None:
        return None
    try:
        return date(y, m, d).isoformat()
    except (ValueError, OverflowError):
        return None


def arxiv_links(arxiv_id: str) -> dict[str, str]:
    """Canonical abstract and PDF links for an arXiv id."""
    return {"abs": f"https://arxiv.org/abs/{arxiv_id}", "pdf": f"https://arxiv.org/pdf/{arxiv_id}"}


def strip_invalid(text: str) -> str:
    """``text`` without control, invisible and XML-invalid characters (whitespace kept as is)."""
    return text if text.isprintable() else _CONTROL.sub("", text)


def _clean_json(value: Any) -> Any:
    """Strings anywhere in a JSON-like value stripped of invalid characters."""
    if isinstance(value, str):
        return strip_invalid(value)
    if isinstance(value, list):
        return [_clean_json(v) for v in value]
    if isinstance(value, dict):
        return {strip_invalid(str(k)): _clean_json(v) for k, v in value.items()}
    return value


_OPTIONAL_TEXT = ("source_id", "arxiv_id", "doi", "primary_category", "submitted", "updated", "comments",
                  "journal_ref")


def _type_error(rec: PaperRecord) -> str | None:
    """Why a field of ``rec`` has the wrong Python type (a source bug or hostile input), or None."""
    if not isinstance(rec.source, str) or not rec.source:
        return "record without a source name"
    for name in ("title", "abstract"):
        if not isinstance(getattr(rec, name), str):
            return f"{name} is not text"
    for name in _OPTIONAL_TEXT:
        if getattr(rec, name) is not None and not isinstance(getattr(rec, name), str):
            return f"{name} is not text"
    for name in ("authors", "categories"):
        value = getattr(rec, name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"{name} is not a list of texts"
    if rec.arxiv_version is not None and (not isinstance(rec.arxiv_version, int)
                                          or not 1 <= rec.arxiv_version <= MAX_VERSION):
        return f"arxiv_version is not a whole number from 1 to {MAX_VERSION}"
    if not isinstance(rec.versions, dict) or not all(
            isinstance(k, int) and 1 <= k <= MAX_VERSION and (v is None or isinstance(v, str))
            for k, v in rec.versions.items()):
        return "versions is not a map of version number to date"
    if not isinstance(rec.links, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in rec.links.items()):
        return "links is not a map of texts"
    if not isinstance(rec.extra, dict):
        return "extra is not a map"
    return None


def _too_long(rec: PaperRecord, factor: int = 1) -> str | None:
    """Which field of ``rec`` is past its limit (``factor`` times it, before clean-up), or None."""
    for name, value, limit in (("title", rec.title, MAX_TITLE), ("abstract", rec.abstract, MAX_ABSTRACT),
                               ("comments", rec.comments, MAX_NOTE), ("journal reference", rec.journal_ref, MAX_NOTE),
                               ("source id", rec.source_id, MAX_SHORT), ("DOI", rec.doi, MAX_SHORT)):
        if value and len(value) > factor * limit:
            return f"{name} too long ({len(value)} chars > {limit})"
    if len(rec.authors) > MAX_AUTHORS:
        return f"too many authors ({len(rec.authors)} > {MAX_AUTHORS})"
    if rec.authors and max(map(len, rec.authors)) > factor * MAX_AUTHOR_NAME:
        return f"author name too long (> {MAX_AUTHOR_NAME} chars)"
    if len(rec.categories) > MAX_CATEGORIES or len(rec.links) > MAX_CATEGORIES:
        return f"too many categories or links (> {MAX_CATEGORIES})"
    if max(map(len, (*rec.categories, *rec.links.values())), default=0) > factor * MAX_SHORT:
        return f"category or link too long (> {MAX_SHORT} chars)"
    return None


def check_record(rec: PaperRecord) -> str | None:
    """Clean a record in place and return why it is malformed, or None if it is fine.

    The one gate every record passes before the store, whatever its source: field types, lengths,
    and every text field stripped of control and XML-invalid characters.
    """
    if (why := _type_error(rec)) or (why := _too_long(rec, factor=4)):
        return why
    rec.title = clean_latex(rec.title)
    rec.abstract = clean_text(rec.abstract)
    rec.authors = [a for a in map(clean_text, rec.authors) if a]
    rec.categories = [c for c in map(clean_text, rec.categories) if c]
    rec.primary_category = clean_text(rec.primary_category) or None
    rec.comments = clean_text(rec.comments) or None
    rec.journal_ref = clean_text(rec.journal_ref) or None
    if rec.source_id is not None:
        rec.source_id = strip_invalid(rec.source_id).strip() or None
    rec.links = {strip_invalid(k): strip_invalid(v).strip() for k, v in rec.links.items() if strip_invalid(v).strip()}
    try:
        rec.extra = _clean_json(rec.extra)
        extra_size = len(orjson.dumps(rec.extra, option=orjson.OPT_NON_STR_KEYS))
    except (TypeError, orjson.JSONEncodeError):
        return "extra is not JSON"
    if not rec.title and (rec.match_title or not rec.abstract):
        # Only a record keyed by its source id alone (a BEIR document) may be untitled, and only with
        # text: its title stays empty rather than repeating the text (issue 11); pages show Paper.title.
        return "missing title"
    if why := _too_long(rec):
        return why
    if extra_size > MAX_EXTRA_BYTES:
        return f"source data too large ({extra_size} bytes > {MAX_EXTRA_BYTES})"
    if rec.arxiv_id and not rec.links:
        rec.links = arxiv_links(rec.arxiv_id)
    if rec.arxiv_version and rec.arxiv_version not in rec.versions:
        rec.versions[rec.arxiv_version] = rec.updated
    if rec.versions and not rec.arxiv_version:
        rec.arxiv_version = max(rec.versions)
    if rec.doi:
        rec.doi = normalize_doi(strip_invalid(rec.doi))
    _sane_dates(rec)
    return None


def _sane_dates(rec: PaperRecord) -> None:
    """Dates out of range (see MIN_DATE) dropped, for every source in this one place; the record stays."""
    rec.submitted, rec.updated = sane_date(rec.submitted), sane_date(rec.updated)
    rec.versions = {k: sane_date(v) for k, v in rec.versions.items()}
