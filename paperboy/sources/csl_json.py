"""CSL-JSON libraries: a JSON array of CSL items, as Zotero's "CSL JSON" export writes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import FormatError
from ..models import BadRecord, PaperRecord
from .base import load_json
from .normalize import arxiv_links, clean_text, date_from_parts, normalize_doi, parse_arxiv_id, parse_date

FORMAT = "csl-json"
DESCRIPTION = "CSL-JSON library (a JSON array of items), e.g. Zotero's CSL JSON export"

_MARKERS = ('"date-parts"', '"family"', '"literal"', '"container-title"', '"citation-key"', '"DOI"', '"URL"')
_TAGS = re.compile(r"</?(?:i|b|em|strong|sup|sub|sc|span)(?:\s[^>]*)?>", re.IGNORECASE)


def sniff(path: Path, head: str) -> bool:
    """A JSON array whose items have CSL's "type", a "title" or "author", and a CSL-only key."""
    return (head.lstrip().startswith("[") and '"type"' in head and ('"title"' in head or '"author"' in head)
            and any(m in head for m in _MARKERS))


def _text(value: Any) -> str:
    """A CSL text field, its rich-text tags (<i>, <span class="nocase">) dropped."""
    return clean_text(_TAGS.sub("", value)) if isinstance(value, str) else ""


def _authors(names: Any) -> list[str]:
    """CSL names ({family, given, particles, suffix} or {literal}) as "First Last"."""
    out = []
    for n in names if isinstance(names, list) else []:
        if not isinstance(n, dict):
            continue
        keys = ("given", "dropping-particle", "non-dropping-particle", "family", "suffix")
        name = _text(n.get("literal")) or " ".join(_text(n.get(k)) for k in keys if _text(n.get(k)))
        if name:
            out.append(name)
    return out


def _date(issued: Any) -> str | None:
    """ISO date from a CSL date: ``date-parts`` ([[2024, 1, 5]], years may be strings) or ``raw``."""
    if not isinstance(issued, dict):
        return None
    parts = issued.get("date-parts")
    if isinstance(parts, list) and parts and isinstance(parts[0], list):
        return date_from_parts(parts[0])
    return parse_date(issued.get("raw") or issued.get("literal"))


def _arxiv(item: dict[str, Any]) -> tuple[str, int | None] | None:
    """arXiv id from an arxiv.org URL, an "arXiv:..." number/note/container-title, or an arXiv DOI."""
    url = _text(item.get("URL"))
    if "arxiv.org/" in url.lower() and (found := parse_arxiv_id(url)):
        return found
    for key in ("number", "note", "container-title", "archive_location"):
        value = _text(item.get(key))
        if "arxiv" in value.lower() and (found := parse_arxiv_id(value)):
            return found
    doi = normalize_doi(_text(item.get("DOI")))
    return parse_arxiv_id(doi.split("arxiv.")[-1]) if doi and doi.startswith("10.48550/arxiv.") else None


def _record(item: dict[str, Any]) -> PaperRecord:
    found = _arxiv(item)
    doi = normalize_doi(_text(item.get("DOI")))
    if found and doi and doi.startswith("10.48550/"):
        doi = None  # arXiv's own DataCite DOI: the arXiv id already says it
    venue = _text(item.get("container-title"))
    url = _text(item.get("URL"))
    cats = item.get("categories") if isinstance(item.get("categories"), list) else []
    cats = [c for c in cats if isinstance(c, str)]
    extra: dict[str, Any] = {"entry_type": _text(item.get("type"))}
    keywords = [k.strip() for k in re.split(r"[,;]", _text(item.get("keyword"))) if k.strip()]
    if keywords:
        extra["keywords"] = keywords
    return PaperRecord(
        source=FORMAT, source_id=str(item["id"]) if item.get("id") is not None else None,
        title=_text(item["title"]), abstract=_text(item.get("abstract")),
        authors=_authors(item.get("author")),
        arxiv_id=found[0] if found else None, arxiv_version=found[1] if found else None, doi=doi,
        categories=cats, primary_category=cats[0] if cats else None, submitted=_date(item.get("issued")),
        links={**({"url": url} if url and "arxiv.org/" not in url else {}),
               **(arxiv_links(found[0]) if found else {})},
        journal_ref=venue if venue and "arxiv" not in venue.lower() else None, extra=extra)


def read(path: Path) -> Iterator[PaperRecord | BadRecord]:
    """Yield one record per item; an item without a title is a BadRecord."""
    items = load_json(path, FORMAT)
    if not isinstance(items, list):
        kind = type(items).__name__
        raise FormatError(f"{path} is not CSL-JSON: expected a JSON array of items, got {kind}")
    if items and not any(isinstance(i, dict) and "type" in i for i in items):
        raise FormatError(f"{path} is not CSL-JSON: no item is an object with a \"type\"")
    for index, item in enumerate(items):
        loc = f"{path}:item {index}"
        if not isinstance(item, dict):
            yield BadRecord(location=loc, reason=f"expected a JSON object, got {type(item).__name__}")
        elif not _text(item.get("title")):
            yield BadRecord(location=loc, reason="missing title")
        else:
            yield _record(item)
