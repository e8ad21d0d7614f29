"""Generic JSON lines with a field mapping (``--map title=name,abstract=summary``).

Without ``--map`` each field is read from the first of its usual keys that a record has (so the
arXiv API's JSON shape, ``arxiv_id``/``summary``/``published``, reads as is):
id (id, arxiv_id, arxivId, paper_id), title, abstract (abstract, summary),
authors (authors, author: a list of names or of {"name": ...}, or "A, B and C"),
date (date, published, publication_date, submitted, created, update_date, updated, year),
categories (categories, category: a list or "cs.LG stat.ML"), doi (doi, DOI).
``--map FIELD=KEY`` reads that field from KEY only. An id that is an arXiv id (or arxiv.org URL)
makes the record an arXiv paper.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import FormatError
from ..models import BadRecord, PaperRecord
from ..normalize import parse_arxiv_id
from . import fields
from .base import iter_json_lines

FORMAT = "jsonl"
DESCRIPTION = "JSON lines with id/title/abstract/authors/date/categories/doi (common aliases; remap with --map)"
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "arxiv_id", "arxivId", "paper_id"),
    "title": ("title",),
    "abstract": ("abstract", "summary"),
    "authors": ("authors", "author"),
    "date": ("date", "published", "publication_date", "submitted", "created", "update_date", "updated", "year"),
    "categories": ("categories", "category"),
    "doi": ("doi", "DOI"),
}
FIELDS = tuple(ALIASES)
Mapping = dict[str, tuple[str, ...]]


def sniff(path: Path, head: str) -> bool:
    first = head.lstrip().split("\n", 1)[0]
    return first.startswith("{") and '"title"' in first


def parse_mapping(spec: str | None) -> Mapping:
    """'title=name,abstract=summary' -> {'title': ('name',), 'abstract': ('summary',), ...aliases}."""
    mapping = dict(ALIASES)
    for part in filter(None, (spec or "").split(",")):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in FIELDS or not value.strip():
            raise FormatError(f"bad field mapping {part!r}: use FIELD=KEY with FIELD one of {', '.join(FIELDS)}")
        mapping[key.strip()] = (value.strip(),)
    return mapping


def _keys(mapping: dict[str, Any], name: str) -> tuple[str, ...]:
    keys = mapping[name]
    return (keys,) if isinstance(keys, str) else tuple(keys)  # a plain {field: key} dict works too


def parse(obj: dict[str, Any], loc: str, path: Path, mapping: dict[str, Any]) -> PaperRecord:
    """One JSON object to a record (FieldError on a field of the wrong type)."""
    raw_id = fields.ident(obj, *_keys(mapping, "id"))
    parsed = parse_arxiv_id(raw_id)
    cats = fields.terms(obj, *_keys(mapping, "categories"))
    return PaperRecord(
        source=FORMAT, source_id=f"{path.name.split('.')[0]}:{raw_id}" if raw_id else None,
        title=fields.text(obj, *_keys(mapping, "title")), abstract=fields.text(obj, *_keys(mapping, "abstract")),
        authors=fields.names(obj, *_keys(mapping, "authors")), arxiv_id=parsed[0] if parsed else None,
        arxiv_version=parsed[1] if parsed else None, doi=fields.text(obj, *_keys(mapping, "doi")) or None,
        categories=cats, primary_category=cats[0] if cats else None,
        submitted=fields.date(obj, *_keys(mapping, "date")))


def read(path: Path, mapping: dict[str, Any] | None = None) -> Iterator[PaperRecord | BadRecord]:
    f = mapping or ALIASES
    yield from fields.parse_each(lambda obj, loc: parse(obj, loc, path, f), iter_json_lines(path, "JSON lines"))
