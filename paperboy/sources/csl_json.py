"""CSL-JSON libraries: a JSON array of CSL items, as Zotero's "CSL JSON" export writes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import FormatError
from ..models import BadRecord, PaperRecord
from ..normalize import (
    arxiv_links,
    clean_text,
    date_from_parts,
    normalize_doi,
    parse_arxiv_id,
    parse_date,
    split_dois,
)
from . import fields
from .base import load_json

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


def _strict(item: dict[str, Any], key: str) -> str:
    """A field that must be text when present (title, abstract, DOI, URL), rich-text tags dropped."""
    return _text(fields.text(item, key))


def _authors(names: list[Any]) -> list[str]:
    """CSL names ({family, given, particles, suffix} or {literal}) as "First Last"."""
    out = []
    for i, n in enumerate(names):
        if not isinstance(n, dict):
            raise fields.FieldError(f"field 'author' item {i} must be a CSL name object, got {fields.json_type(n)}")
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
    url = _strict(item, "URL")
    if "arxiv.org/" in url.lower() and (found := parse_arxiv_id(url)):
        return found
    for key in ("number", "note", "container-title", "archive_location"):
        value = _text(item.get(key))
        if "arxiv" in value.lower() and (found := parse_arxiv_id(value)):
            return found
    doi = normalize_doi(_strict(item, "DOI"))
    return parse_arxiv_id(doi.split("arxiv.")[-1]) if doi and doi.startswith("10.48550/arxiv.") else None


def _record(item: dict[str, Any], loc: str = "") -> PaperRecord | BadRecord:
    """One CSL item (FieldError on a field of the wrong type)."""
    title = _strict(item, "title")
    if not title:
        return BadRecord(loc, "missing title")
    found = _arxiv(item)
    # Every DOI listed (the first is the DOI, the others links); arXiv's own DataCite DOI is dropped
    # when the arXiv id already says it.
    doi = " ".join(d for d in split_dois(_strict(item, "DOI")) if not (found and d.startswith("10.48550/"))) or None
    venue = _text(item.get("container-title"))
    url = _strict(item, "URL")
    cats = fields.terms(item, "categories")
    extra: dict[str, Any] = {"entry_type": _text(item.get("type"))}
    keywords = [k.strip() for k in re.split(r"[,;]", _text(item.get("keyword"))) if k.strip()]
    if keywords:
        extra["keywords"] = keywords
    return PaperRecord(
        source=FORMAT, source_id=fields.ident(item, "id") or None,
        title=title, abstract=_strict(item, "abstract"),
        authors=_authors(fields.array(item, "author")),
        arxiv_id=found[0] if found else None, arxiv_version=found[1] if found else None, doi=doi,
        categories=cats, primary_category=cats[0] if cats else None, submitted=_date(fields.mapping(item, "issued")),
        links={**({"url": url} if url and "arxiv.org/" not in url else {}),
               **(arxiv_links(found[0]) if found else {})},
        journal_ref=venue if venue and "arxiv" not in venue.lower() else None, extra=extra)


def read(path: Path) -> Iterator[PaperRecord | BadRecord]:
    """Yield one record per item; an item without a title is a BadRecord."""
    items = load_json(path, FORMAT)
    if not isinstance(items, list):
        kind = fields.json_type(items)
        raise FormatError(f"{path} is not CSL-JSON: expected a JSON array of items, got {kind}")
    if items and not any(isinstance(i, dict) and "type" in i for i in items):
        raise FormatError(f"{path} is not CSL-JSON: no item is an object with a \"type\"")
    for index, item in enumerate(items, start=1):
        yield fields.parse_one(_record, item, f"{path}:record {index}")
