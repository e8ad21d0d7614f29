"""BibTeX libraries (Zotero, Better BibTeX, Google Scholar exports), parsed with bibtexparser 1.4."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from bibtexparser.bparser import BibTexParser

from ..errors import FormatError
from ..models import BadRecord, PaperRecord
from .base import read_document
from .normalize import (arxiv_links, clean_latex, clean_text, date_from_parts, normalize_doi, parse_arxiv_id,
                        parse_date)

FORMAT = "bibtex"
DESCRIPTION = "BibTeX library (.bib), e.g. a Zotero or Better BibTeX export"

_ENTRY_RE = re.compile(r"(?m)^[ \t]*@[ \t]*([A-Za-z]+)[ \t]*[{(][ \t\r\n]*([^,\s{}()]*)")
_UTF8_SEQ = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_UNDECODED = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of a byte that is not UTF-8
_NON_ENTRIES = {"comment", "string", "preamble"}
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
        return clean_latex(raw)  # "{Google Research, Brain Team}": a corporate author, taken as is
    parts = _split_top(raw, ",")
    if len(parts) == 3:  # von Last, Jr, First
        raw = f"{parts[2]} {parts[0]} {parts[1]}"
    elif len(parts) == 2 and parts[1]:
        raw = f"{parts[1]} {parts[0]}"
    return clean_latex(raw).strip(" ,")


def _authors(text: str | None) -> list[str]:
    names = (_name(n) for n in _split_top(clean_text(text), r"\s+and\s+") if n)
    return [n for n in names if n and n.lower() not in {"others", "et al."}]


def _date(e: dict[str, str]) -> str | None:
    """ISO date from biblatex ``date`` or from ``year`` (+ ``month``, ``day``)."""
    if e.get("date"):
        return parse_date(e["date"].split("/")[0])
    year = re.search(r"\d{4}", e.get("year", ""))
    if not year:
        return None
    month = e.get("month", "").strip().lower()
    num = int(month) if month.isdigit() else _MONTHS.get(month[:3])
    day = e.get("day", "").strip()
    parts = [int(year.group()), num or 1, int(day) if day.isdigit() and num else 1]
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
    doi = normalize_doi(e.get("doi"))
    if found and doi and doi.startswith("10.48550/"):
        doi = None  # arXiv's own DataCite DOI: the arXiv id already says it
    venue = clean_latex(e.get("journal") or e.get("booktitle"))
    url = e.get("url", "").strip()
    primary = e.get("primaryclass", "").strip() or None
    extra: dict[str, object] = {"entry_type": e.get("ENTRYTYPE", "").lower()}
    keywords = [clean_latex(k) for k in re.split(r"[,;]", e.get("keywords", e.get("keyword", "")))]
    if any(keywords):
        extra["keywords"] = [k for k in keywords if k]
    return PaperRecord(
        source=FORMAT, source_id=e["ID"], title=clean_latex(e["title"]),
        abstract=clean_latex(e.get("abstract")), authors=_authors(e.get("author")),
        arxiv_id=found[0] if found else None, arxiv_version=found[1] if found else None, doi=doi,
        categories=[primary] if primary else [], primary_category=primary, submitted=_date(e),
        links={**({"url": url} if url and "arxiv.org/" not in url else {}),
               **(arxiv_links(found[0]) if found else {})},
        journal_ref=venue if venue and "arxiv" not in venue.lower() else None, extra=extra)


def _parse(text: str) -> list[dict[str, str]]:
    parser = BibTexParser(common_strings=True, ignore_nonstandard_types=False)
    parser.homogenize_fields = False
    return parser.parse(text).entries


def _parse_each(text: str) -> list[dict[str, str]]:
    """Entries parsed one by one (with every @string definition before each); unparseable ones are
    left out (and reported as such by the caller)."""
    cuts = [m.start() for m in _ENTRY_RE.finditer(text)]
    chunks = [text[a:b] for a, b in zip(cuts, cuts[1:] + [len(text)])]
    strings = "".join(c for c in chunks if c.lstrip()[1:].lstrip().lower().startswith("string"))
    entries: list[dict[str, str]] = []
    for chunk in chunks:
        try:
            entries += _parse(strings + chunk)
        except Exception:  # noqa: BLE001 - see read()
            continue
    return entries


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
    """Yield one record per entry; entries bibtexparser could not parse come back as BadRecords."""
    data, broken = read_document(path, "BibTeX")
    text = _decode(data)
    starts = [k for t, k in _ENTRY_RE.findall(text) if t.lower() not in _NON_ENTRIES]
    if not _ENTRY_RE.search(text):
        raise FormatError(f"{path} does not look like BibTeX: no @type{{key, ...}} entries")
    try:
        entries = _parse(text)
    except Exception:  # noqa: BLE001 - bibtexparser raises assorted errors (RecursionError too) on broken input
        entries = _parse_each(text)  # so one entry it chokes on costs that entry, not the file
    parsed = {e.get("ID") for e in entries}
    for key in starts:
        if key not in parsed:
            yield BadRecord(f"{path}:entry {key}", "could not parse entry (unbalanced braces?)")
    for e in entries:
        if any(_UNDECODED.search(v) for v in e.values() if isinstance(v, str)):
            yield BadRecord(f"{path}:entry {e.get('ID')}", "invalid UTF-8 in the entry")
        elif not clean_latex(e.get("title")):
            yield BadRecord(location=f"{path}:entry {e.get('ID')}", reason="missing title")
        else:
            yield _record(e)
    if broken:
        yield BadRecord(f"{path}:end", broken)
