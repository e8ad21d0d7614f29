"""BibTeX libraries (Zotero, Better BibTeX, Google Scholar exports), parsed with bibtexparser 1.4."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from bibtexparser.bibdatabase import UndefinedString
from bibtexparser.bparser import BibTexParser

from ..errors import FormatError
from ..models import BadRecord, PaperRecord
from ..normalize import (
    arxiv_links,
    clean_latex,
    clean_text,
    date_from_parts,
    normalize_doi,
    parse_arxiv_id,
    parse_date,
    split_dois,
    whole_number,
)
from .base import read_document

FORMAT = "bibtex"
DESCRIPTION = "BibTeX library (.bib), e.g. a Zotero or Better BibTeX export"

_ENTRY_RE = re.compile(r"(?m)^[ \t]*@[ \t]*([A-Za-z]+)[ \t]*[{(][ \t\r\n]*([^,\s{}()]*)")
_UTF8_SEQ = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_UNDECODED = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of a byte that is not UTF-8
_NON_ENTRIES = {"comment", "string", "preamble"}
_YEAR = re.compile(r"(?<![0-9])[0-9]{4}(?![0-9])")
_SMALL = re.compile(r"[0-9]{1,2}")
_WORD = re.compile(r"[A-Za-z_][\w:.+/-]*")
_STRING_NAME = re.compile(r"@\s*string\s*[{(]\s*([^\s=#{}()]+)\s*=", re.I)
MAX_EXPANDED = 1_000_000  # characters an entry or @string macro may expand to (a real one: a few hundred)
MAX_FILE_EXPANDED = 64_000_000  # and all entries of a file together
# bibtexparser 1.x is pure Python (~1 ms an entry), and the entry-by-entry fallback re-reads every
# @string before each entry: bounds keep one file's cost to minutes, not hours (a red-team file of
# 100,000 @strings ran 6 minutes, one of 700,000 entries grew the server past 2 GB).
MAX_ENTRIES, MAX_STRINGS, MAX_ONE_BY_ONE = 50_000, 500, 5_000
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}


def sniff(path: Path, head: str) -> bool:
    """A BibTeX file has an ``@type{`` entry start at the beginning of a line."""
    return bool(_ENTRY_RE.search(head))


def _split_top(text: str, sep: str) -> list[str]:
    """Split on the regex ``sep`` outside braces (BibTeX protects "and" and commas with braces)."""
    parts, buf, depth = [], [], 0
    for tok in re.split(f"({sep}|[{{}}])", text):
        if tok == "{" or tok == "}":
            depth += 1 if tok == "{" else -1
        elif depth <= 0 and re.fullmatch(sep, tok):
            parts.append("".join(buf))
            buf = []
            continue
        buf.append(tok)
    return [p.strip() for p in parts + ["".join(buf)]]


def _fully_braced(text: str) -> bool:
    """True if the opening brace of ``text`` closes at its very end."""
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch == "{") - (ch == "}")
        if depth == 0:
            return i == len(text) - 1 and i > 0
    return False


def _name(raw: str) -> str:
    """One BibTeX name ("von Last, Jr, First" / "Last, First" / "First Last" / "{Corp}") as "First Last"."""
    if _fully_braced(raw):
        return clean_latex(raw, bibtex=True)  # "{Google Research, Brain Team}": a corporate author, taken as is
    parts = _split_top(raw, ",")
    if len(parts) == 3:  # von Last, Jr, First
        raw = f"{parts[2]} {parts[0]} {parts[1]}"
    elif len(parts) == 2 and parts[1]:
        raw = f"{parts[1]} {parts[0]}"
    return clean_latex(raw, bibtex=True).strip(" ,")


def _authors(text: str | None) -> list[str]:
    names = (_name(n) for n in _split_top(clean_text(text), r"\s+and\s+") if n)
    return [n for n in names if n and n.lower() not in {"others", "et al."}]


def _date(e: dict[str, str]) -> str | None:
    """ISO date from biblatex ``date`` or from ``year`` (+ ``month``, ``day``)."""
    if e.get("date"):
        return parse_date(e["date"].split("/")[0])
    year = _YEAR.search(e.get("year", ""))  # four ASCII digits, not four of "99999999"
    if not year:
        return None
    month = e.get("month", "").strip().lower()
    num = whole_number(month) if _SMALL.fullmatch(month) else _MONTHS.get(month[:3])
    num = num if num and 1 <= num <= 12 else None  # a month of "99999999999999999999" or "²" is dropped
    day = whole_number(e.get("day", "")) if _SMALL.fullmatch(e.get("day", "").strip()) else None
    # As precise as the entry: a year alone stays a year ("2015"), not 1 January.
    parts = [int(year.group()), *([num] if num else []), *([day] if day and num else [])]
    return date_from_parts(parts) or date_from_parts(parts[:2])


def _arxiv(e: dict[str, str]) -> tuple[str, int | None] | None:
    """arXiv id from eprint, an arxiv.org URL, or an "arXiv:..." journal, note or number field."""
    prefix = (e.get("archiveprefix") or e.get("eprinttype") or "arxiv").lower()
    if e.get("eprint") and prefix == "arxiv" and (found := parse_arxiv_id(e["eprint"])):
        return found
    if "arxiv.org/" in e.get("url", "").lower() and (found := parse_arxiv_id(e["url"])):
        return found
    for key in ("journal", "note", "number", "howpublished"):
        if "arxiv" in e.get(key, "").lower() and (found := parse_arxiv_id(e[key])):
            return found
    doi = normalize_doi(e.get("doi"))
    return parse_arxiv_id(doi.split("arxiv.")[-1]) if doi and doi.startswith("10.48550/arxiv.") else None


def _record(e: dict[str, str]) -> PaperRecord:
    found = _arxiv(e)
    # Every DOI listed (the first is the DOI, the others links); arXiv's own DataCite DOI is dropped
    # when the arXiv id already says it.
    doi = " ".join(d for d in split_dois(e.get("doi")) if not (found and d.startswith("10.48550/"))) or None
    venue = clean_latex(e.get("journal") or e.get("booktitle"), bibtex=True)
    url = e.get("url", "").strip()
    primary = e.get("primaryclass", "").strip() or None
    extra: dict[str, object] = {"entry_type": e.get("ENTRYTYPE", "").lower()}
    keywords = [clean_latex(k, bibtex=True) for k in re.split(r"[,;]", e.get("keywords", e.get("keyword", "")))]
    if any(keywords):
        extra["keywords"] = [k for k in keywords if k]
    return PaperRecord(
        source=FORMAT, source_id=e["ID"], title=clean_latex(e["title"], bibtex=True),
        abstract=clean_latex(e.get("abstract"), bibtex=True), authors=_authors(e.get("author")),
        arxiv_id=found[0] if found else None, arxiv_version=found[1] if found else None, doi=doi,
        categories=[primary] if primary else [], primary_category=primary, submitted=_date(e),
        links={**({"url": url} if url and "arxiv.org/" not in url else {}),
               **(arxiv_links(found[0]) if found else {})},
        journal_ref=venue if venue and "arxiv" not in venue.lower() else None, extra=extra)


def _parse(text: str) -> list[dict[str, str]]:
    parser = BibTexParser(common_strings=True, ignore_nonstandard_types=False)
    parser.homogenize_fields = False
    return parser.parse(text).entries


def _why(e: Exception) -> str:
    """A true reason for an entry bibtexparser refused."""
    if isinstance(e, UndefinedString):
        return f"uses an undefined @string macro {str(e).strip(chr(39))!r}"
    if isinstance(e, RecursionError):
        return "could not parse entry (nested too deeply)"
    return f"could not parse entry ({type(e).__name__}; unbalanced braces?)"


def _parse_each(text: str, starts: list[tuple[int, int, str, str]]) -> tuple[list[dict[str, str]], dict[int, str]]:
    """Entries parsed one by one, each after every good @string definition before it (a macro that
    is itself undefined or circular is left out); returns the entries and, by start offset, why
    an entry or a @string could not be parsed."""
    bounds = [start for start, *_ in starts] + [len(text)]
    strings, entries, failed = "", [], {}
    for (start, _, kind, _), end in zip(starts, bounds[1:]):
        chunk = text[start:end]
        try:
            parsed = _parse(strings + chunk)
        except Exception as e:  # noqa: BLE001 - see read()
            failed[start] = _why(e)
            continue
        if kind == "string":
            strings += chunk
        for entry in parsed:
            entry["_start"] = start  # type: ignore[assignment] - where it is, for its location
        entries += parsed
    return entries, failed


def _macro_bombs(text: str, starts: list[tuple[int, int, str, str]]) -> dict[int, str]:
    """@string macros and entries that would expand past ``MAX_EXPANDED`` characters (``m1 = m0 #
    m0``, thirty times over, is gigabytes from one line). The estimate is an upper bound: a chunk's
    length plus the size of every known macro name it mentions."""
    bounds = [start for start, *_ in starts] + [len(text)]
    sizes: dict[str, int] = {}
    bombs, total = {}, 0
    for (start, _, kind, _), end in zip(starts, bounds[1:]):
        if kind in ("comment", "preamble"):
            continue
        chunk = text[start:end]
        name = _STRING_NAME.match(chunk) if kind == "string" else None
        body = chunk[name.end():] if name else chunk
        size = len(chunk) + sum(sizes.get(w.group(0).lower(), 0) for w in _WORD.finditer(body))
        if size > MAX_EXPANDED or total + size > MAX_FILE_EXPANDED:
            bombs[start] = f"expands to more than {MAX_EXPANDED:,} characters through @string macros"
        elif name:
            sizes[name.group(1).lower()] = size
        else:
            total += size
    return bombs


def _blank(text: str, starts: list[tuple[int, int, str, str]], which: dict[int, str]) -> str:
    """``text`` with the chunks starting at ``which`` blanked (newlines kept, so lines still count)."""
    bounds = dict(zip([s for s, *_ in starts], [s for s, *_ in starts[1:]] + [len(text)]))
    for start in sorted(which, reverse=True):
        end = bounds[start]
        text = text[:start] + re.sub(r"[^\n]", " ", text[start:end]) + text[end:]
    return text


def _decode(data: bytes) -> str:
    """UTF-8, with bytes that are not kept as lone surrogates (their entries are then reported);
    a file that is not UTF-8 at all (more invalid bytes than UTF-8 sequences) is an old Latin-1 export."""
    try:
        return data.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", errors="surrogateescape").lstrip("\ufeff")
    if len(_UTF8_SEQ.findall(data)) >= len(_UNDECODED.findall(text)):
        return text
    return data.decode("latin-1")  # binary garbage fails the entry check after this


def read(path: Path) -> Iterator[PaperRecord | BadRecord]:
    """Yield one record per entry; entries bibtexparser could not parse, a bad @string macro and a
    second entry with a key already seen come back as BadRecords (FILE:LINE (entry KEY): why)."""
    data, broken = read_document(path, "BibTeX")
    text = _decode(data)
    starts = []  # (offset, line, type, key) of every @... start
    line, pos = 1, 0
    for m in _ENTRY_RE.finditer(text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        starts.append((m.start(), line, m.group(1).lower(), m.group(2)))
    if not starts:
        raise FormatError(f"{path} does not look like BibTeX: no @type{{key, ...}} entries")
    strings = sum(kind == "string" for _, _, kind, _ in starts)
    if len(starts) - strings > MAX_ENTRIES or strings > MAX_STRINGS:
        raise FormatError(f"{path} has {len(starts) - strings:,} entries and {strings:,} @string macros: at most "
                          f"{MAX_ENTRIES:,} and {MAX_STRINGS:,} a file (split it)")
    bombs = _macro_bombs(text, starts)
    if bombs:
        text = _blank(text, starts, bombs)
    try:
        entries, failed = _parse(text), {}
    except Exception as e:  # noqa: BLE001 - bibtexparser raises assorted errors (RecursionError too) on broken input
        if len(starts) > MAX_ONE_BY_ONE:
            raise FormatError(f"{path} cannot be parsed ({_why(e)}), and with {len(starts):,} entries it is too "
                              f"big to read entry by entry (at most {MAX_ONE_BY_ONE:,}): split it") from e
        entries, failed = _parse_each(text, starts)  # so one entry it chokes on costs that entry, not the file
    failed |= bombs
    lines = {start: ln for start, ln, *_ in starts}
    by_key: dict[str, list[int]] = {}  # key -> lines of the entries with that key, in order
    for start, ln, kind, key in starts:
        if kind not in _NON_ENTRIES:
            by_key.setdefault(key, []).append(ln)
    for start, ln, kind, key in starts:
        if start in failed and kind not in ("comment", "preamble"):
            what = "@string" if kind == "string" else f"entry {key}"
            why = failed[start] + ("; the macro is ignored" if kind == "string" else "")
            yield BadRecord(f"{path}:{ln} ({what})", why)
    parsed = {e.get("ID") for e in entries}
    reported = {key for start, _, _, key in starts if start in failed}
    for key, where in by_key.items():  # an entry neither parsed nor reported above
        if key not in parsed and key not in reported:
            yield BadRecord(f"{path}:{where[0]} (entry {key})", "could not parse entry (unbalanced braces?)")
    seen: dict[str, int] = {}
    for e in entries:
        key = e.get("ID", "")
        start = e.pop("_start", None)
        ln = lines[start] if start is not None else _line_of(by_key, key, seen.get(key, 0))
        loc = f"{path}:{ln} (entry {key})"
        if key in seen:
            seen[key] += 1
            yield BadRecord(loc, f"duplicate key {key!r} (first at line {by_key.get(key, [ln])[0]}); skipped")
            continue
        seen[key] = 1
        if any(_UNDECODED.search(v) for v in e.values() if isinstance(v, str)):
            yield BadRecord(loc, "invalid UTF-8 in the entry")
        elif not clean_latex(e.get("title"), bibtex=True):
            yield BadRecord(loc, "missing title")
        else:
            yield _record(e)
    if broken:
        yield BadRecord(f"{path}:{text.count(chr(10)) + 1}", broken)


def _line_of(by_key: dict[str, list[int]], key: str, n: int) -> int:
    """The line of the n-th entry (from 0) with ``key``; 0 when the key was not found in the text."""
    where = by_key.get(key, [])
    return where[n] if n < len(where) else (where[-1] if where else 0)
