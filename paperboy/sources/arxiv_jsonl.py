"""arXiv API records as JSON lines: the shape scrapers and the ``arxiv`` Python package write.

One object per line with ``arxiv_id`` ("2401.01234v2"; or ``entry_id``, an abs URL), ``title``,
``summary``, ``authors`` (names, or {"name": ...}), ``published``, ``updated``, ``comment``,
``journal_ref``, ``doi`` (one, several, or a list), ``primary_category`` (text or {"term": ...}),
``categories`` and ``links`` (a list of {"href", "title", "rel"}, or {name: url}), ``pdf_url``.
Every field is kept: the version, both dates, comment, journal reference, primary category,
categories, DOIs and links. Detected by an ``arxiv_id``/``entry_id`` key together with one of
``summary``, ``published`` or ``primary_category`` on the first line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..models import BadRecord, PaperRecord
from ..normalize import arxiv_links, parse_arxiv_id
from . import fields
from .base import iter_json_lines

FORMAT = "arxiv-jsonl"
DESCRIPTION = "arXiv API records as JSON lines (arxiv_id with version, summary, published, updated, ...)"
_ID_KEY = re.compile(r'"(?:arxiv_id|entry_id)"\s*:')
_ARXIV_KEYS = ('"summary"', '"published"', '"primary_category"')


def sniff(path: Path, head: str) -> bool:
    first = head.lstrip().split("\n", 1)[0]
    return first.startswith("{") and bool(_ID_KEY.search(first)) and any(k in first for k in _ARXIV_KEYS)


def _term(obj: dict[str, Any], key: str) -> str:
    """A category as text or as the API's {"term": ...}."""
    value = obj.get(key)
    if isinstance(value, dict):
        return fields.text(value, "term")
    return fields.text(obj, key)


def _links(obj: dict[str, Any], arxiv_id: str) -> dict[str, str]:
    links = arxiv_links(arxiv_id)
    value = obj.get("links")
    if isinstance(value, dict):
        items = [{"title": k, "href": v} for k, v in value.items()]
    else:
        items = fields.array(obj, "links")
    for i, link in enumerate(items):
        if isinstance(link, str):
            link = {"href": link}
        if not isinstance(link, dict) or not isinstance(link.get("href"), str):
            raise fields.FieldError(f"field 'links' item {i} must be a URL or {{\"href\": URL}}, "
                                    f"got {fields.json_type(link)}")
        name = link.get("title") if isinstance(link.get("title"), str) else None
        name = name or ("abs" if link.get("rel") == "alternate" else f"link{i + 1}")
        links[name] = link["href"]
    if pdf := fields.text(obj, "pdf_url"):
        links["pdf"] = pdf
    return links


def parse(obj: dict[str, Any], loc: str) -> PaperRecord | BadRecord:
    """One arXiv API record (FieldError on a field of the wrong type)."""
    raw_id = fields.ident(obj, "arxiv_id", "entry_id", "id")
    parsed = parse_arxiv_id(raw_id)
    if not parsed:
        return BadRecord(loc, f"missing or invalid arXiv id {raw_id[:200]!r}")
    arxiv_id, version = parsed
    cats, primary = fields.with_primary(fields.terms(obj, "categories", "category"), _term(obj, "primary_category"))
    published, updated = fields.date(obj, "published"), fields.date(obj, "updated")
    versions = {1: published, **({version: updated} if version else {})}  # "published" is v1's date
    return PaperRecord(
        source=FORMAT, source_id=arxiv_id, title=fields.text(obj, "title"),
        abstract=fields.text(obj, "summary", "abstract"), authors=fields.names(obj, "authors"),
        arxiv_id=arxiv_id, arxiv_version=version, versions=versions if published or version else {},
        doi=fields.dois(obj, "doi") or None, categories=cats, primary_category=primary,
        submitted=published, updated=updated, links=_links(obj, arxiv_id),
        comments=fields.text(obj, "comment", "comments") or None,
        journal_ref=fields.text(obj, "journal_ref") or None, authoritative=True)


def read(path: Path) -> Iterator[PaperRecord | BadRecord]:
    yield from fields.parse_each(parse, iter_json_lines(path, "arXiv API JSON lines"))
