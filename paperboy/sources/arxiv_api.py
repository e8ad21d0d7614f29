"""The arXiv query API (Atom 1.0 with ``arxiv:`` and ``opensearch:`` elements), parsed by feedparser.

Used to fetch one paper on demand (a submission) and for small ad-hoc imports by id list or query.
Calls are spaced by ``api_delay`` seconds (arXiv asks for 3) across the whole process.
"""

from __future__ import annotations

import re
import threading
import time
import xml.sax
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import requests

from ..errors import FormatError, SourceError
from ..models import BadRecord, PaperRecord
from ..normalize import (
    arxiv_links,
    clean_text,
    normalize_doi,
    parse_arxiv_id,
    parse_date,
)
from . import fields
from .base import read_document

FORMAT = "arxiv-atom"
DESCRIPTION = "arXiv query API response (Atom 1.0)"
MAX_IDS_PER_CALL = 100
_ENTRY = re.compile(rb"<entry\b.*?</entry>", re.DOTALL)
_ENCODING = re.compile(rb"""\s*<\?xml[^>]*encoding=["']([\w.:-]+)["']""")
_lock = threading.Lock()
_last_call = [0.0]


def sniff(path: Path, head: str) -> bool:
    return "<feed" in head and "arxiv.org" in head


def parse_entry(e: Any, loc: str) -> PaperRecord | BadRecord:
    if e.get("title") == "Error":  # its id is http://arxiv.org/api/errors#..., not a paper's
        return BadRecord(loc, f"arXiv API error: {clean_text(e.get('summary'))}")
    parsed = parse_arxiv_id(e.get("id", ""))
    if not parsed:
        return BadRecord(loc, f"entry without an arXiv id: {e.get('id')!r}")
    cats = [t["term"] for t in e.get("tags", []) if t.get("term")]
    primary = (e.get("arxiv_primary_category") or {}).get("term") or (cats[0] if cats else None)
    links = arxiv_links(parsed[0])
    for link in e.get("links", []):
        if link.get("title") == "doi":
            links["doi"] = link["href"]
    version = parsed[1]
    return PaperRecord(
        source="arxiv-api", source_id=parsed[0], title=e.get("title", ""), abstract=e.get("summary", ""),
        authors=[clean_text(a.get("name")) for a in e.get("authors", []) if a.get("name")],
        arxiv_id=parsed[0], arxiv_version=version,
        versions={version: parse_date(e.get("updated"))} if version else {},
        doi=normalize_doi(e.get("arxiv_doi")), categories=cats, primary_category=primary,
        submitted=parse_date(e.get("published")), updated=parse_date(e.get("updated")), links=links,
        comments=e.get("arxiv_comment") or None, journal_ref=e.get("arxiv_journal_ref") or None,
        authoritative=True)


def _utf8_damage(data: bytes) -> tuple[bytes, set[int]]:
    """A UTF-8 feed with some bytes that are not UTF-8: those bytes replaced (so feedparser does not
    re-read the whole feed as windows-1252), and the numbers of the entries that held them."""
    try:
        data.decode("utf-8")
        return data, set()
    except UnicodeDecodeError:
        pass
    declared = _ENCODING.match(data)
    if declared and declared.group(1).lower().replace(b"-", b"") != b"utf8":
        return data, set()  # another declared encoding: feedparser reads it
    bad = set()
    for i, m in enumerate(_ENTRY.finditer(data), start=1):
        try:
            m.group(0).decode("utf-8")
        except UnicodeDecodeError:
            bad.add(i)
    return data.decode("utf-8", errors="replace").encode("utf-8"), bad


def _damage(data: bytes, feed: Any) -> tuple[int, str] | None:
    """(entries to keep, reason) when the XML breaks off or is malformed: only entries closed
    before the break are trusted (feedparser's lenient fallback would half-read the rest)."""
    exc = feed.get("bozo_exception")
    if not feed.bozo or not isinstance(exc, xml.sax.SAXParseException):
        return None  # an encoding override is not damage
    line, col = exc.getLineNumber() or 1, exc.getColumnNumber() or 0
    offset = 0
    for _ in range(line - 1):
        offset = data.find(b"\n", offset) + 1 or len(data)
    keep = data.count(b"</entry>", 0, offset + col)
    return keep, f"malformed or truncated XML at line {line} ({exc.getMessage()}); entries after it were not read"


def parse_feed(data: bytes, label: str) -> tuple[list[PaperRecord | BadRecord], int]:
    """Records of one API response and its opensearch:totalResults.

    A response that breaks off keeps the entries complete before the break and reports the break.
    """
    data, undecodable = _utf8_damage(data)
    feed = feedparser.parse(data)
    if feed.bozo and not feed.entries and not feed.feed.get("title"):
        raise FormatError(f"{label} is not an Atom feed: {feed.get('bozo_exception')}")
    entries, damage = feed.entries, _damage(data, feed)
    if damage:
        entries = entries[:damage[0]]
    items = [BadRecord(f"{label}:record {i}", "invalid UTF-8 in the entry") if i in undecodable
             else fields.parse_one(parse_entry, e, f"{label}:record {i}") for i, e in enumerate(entries, start=1)]
    if damage:
        items.append(BadRecord(f"{label}:record {len(entries) + 1}", damage[1]))
    try:
        total = int(feed.feed.get("opensearch_totalresults") or len(items))
    except (TypeError, ValueError):
        total = len(items)
    return items, total


def read(path: Path) -> Iterator[PaperRecord | BadRecord]:
    data, broken = read_document(path, "Atom")
    if b"<feed" not in data[:4096]:
        raise FormatError(f"{path} is not an arXiv API response (no Atom <feed> element)")
    items = parse_feed(data, str(path))[0]
    if broken and items and isinstance(items[-1], BadRecord):
        items[-1] = BadRecord(items[-1].location, broken)  # one report of the break, the real cause
    elif broken:
        items.append(BadRecord(f"{path}:end", broken))
    yield from items


def _call(settings: dict[str, Any], params: dict[str, Any]) -> bytes:
    with _lock:  # one caller at a time, spaced by api_delay
        wait = _last_call[0] + settings["api_delay"] - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        try:
            resp = requests.get(settings["api_url"], params=params, timeout=settings["http_timeout"],
                                headers={"User-Agent": settings["user_agent"]})
            resp.raise_for_status()
        except requests.RequestException as e:
            raise SourceError(f"arXiv API request failed: {e}") from e
        finally:
            _last_call[0] = time.monotonic()
    return resp.content


def fetch_ids(settings: dict[str, Any], ids: list[str]) -> Iterator[PaperRecord | BadRecord]:
    """Fetch papers by arXiv id (any form: ids, URLs, ``arXiv:`` prefixes)."""
    clean = []
    for raw in ids:
        parsed = parse_arxiv_id(raw)
        if not parsed:
            raise SourceError(f"not an arXiv id or URL: {raw!r}")
        clean.append(parsed[0] + (f"v{parsed[1]}" if parsed[1] else ""))
    for i in range(0, len(clean), MAX_IDS_PER_CALL):
        chunk = clean[i:i + MAX_IDS_PER_CALL]
        data = _call(settings, {"id_list": ",".join(chunk), "max_results": len(chunk)})
        yield from parse_feed(data, settings["api_url"])[0]


def search(settings: dict[str, Any], query: str, limit: int = 100) -> Iterator[PaperRecord | BadRecord]:
    """Run an arXiv API search query (``ti:"random forest" AND cat:cs.LG``), paging up to ``limit``."""
    start = 0
    while start < limit:
        size = min(settings["api_page_size"], limit - start)
        data = _call(settings, {"search_query": query, "start": start, "max_results": size})
        items, total = parse_feed(data, settings["api_url"])
        yield from items
        start += size
        if not items or start >= total:
            return
