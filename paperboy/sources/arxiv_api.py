"""The arXiv query API (Atom 1.0 with ``arxiv:`` and ``opensearch:`` elements), parsed by feedparser.

Used to fetch one paper on demand (a submission) and for small ad-hoc imports by id list or query.
Calls are spaced by ``api_delay`` seconds (arXiv asks for 3) across the whole process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import requests

from ..errors import FormatError, SourceError
from ..models import BadRecord, PaperRecord
from .base import open_binary
from .normalize import arxiv_links, clean_text, normalize_doi, parse_arxiv_id, parse_date

FORMAT = "arxiv-atom"
DESCRIPTION = "arXiv query API response (Atom 1.0)"
MAX_IDS_PER_CALL = 100
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


def parse_feed(data: bytes, label: str) -> tuple[list[PaperRecord | BadRecord], int]:
    """Records of one API response and its opensearch:totalResults."""
    feed = feedparser.parse(data)
    if feed.bozo and not feed.entries and not feed.feed.get("title"):
        raise FormatError(f"{label} is not an Atom feed: {feed.get('bozo_exception')}")
    items = [parse_entry(e, f"{label}:entry {i}") for i, e in enumerate(feed.entries, start=1)]
    return items, int(feed.feed.get("opensearch_totalresults") or len(items))


def read(path: Path) -> Iterator[PaperRecord | BadRecord]:
    with open_binary(path) as f:
        data = f.read()
    if b"<feed" not in data[:4096]:
        raise FormatError(f"{path} is not an arXiv API response (no Atom <feed> element)")
    yield from parse_feed(data, str(path))[0]


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
