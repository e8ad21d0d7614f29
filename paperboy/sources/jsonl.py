"""Generic JSON lines with a field mapping (``--map title=name,abstract=summary``).

Without ``--map`` each field is read from the first of its usual keys that a record has:
id (id, arxiv_id, arxivId, paper_id), title, abstract (abstract, summary),
authors (authors, author: a list of names or of {"name": ...}, or "A, B and C"),
date (date, published, publication_date, submitted, created, year, update_date, updated),
updated (updated, update_date), categories (categories, category: a list or "cs.LG stat.ML"),
primary_category (primary_category, primaryCategory), doi (doi, DOI: one, several, or a list),
comments (comments, comment), journal_ref (journal_ref, journal-ref, journalRef).
``--map FIELD=KEY`` reads that field from KEY only. An id that is an arXiv id (or arxiv.org URL)
makes the record an arXiv paper. A date given as a year (``2024``) or a month stays that precise.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..models import BadRecord, PaperRecord
from ..normalize import parse_arxiv_id
from . import fields
from .base import iter_json_lines

FORMAT = "jsonl"
DESCRIPTION = "JSON lines with id/title/abstract/authors/date/categories/doi/... (common aliases; remap with --map)"
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "arxiv_id", "arxivId", "paper_id"),
    "title": ("title",),
    "abstract": ("abstract", "summary"),
    "authors": ("authors", "author"),
    "date": ("date", "published", "publication_date", "submitted", "created", "year", "update_date", "updated"),
    "updated": ("updated", "update_date"),
    "categories": ("categories", "category"),
    "primary_category": ("primary_category", "primaryCategory"),
    "doi": ("doi", "DOI"),
    "comments": ("comments", "comment"),
    "journal_ref": ("journal_ref", "journal-ref", "journalRef"),
}
FIELDS = tuple(ALIASES)
Mapping = dict[str, tuple[str, ...]]
parse_mapping = fields.parse_mapping  # --map text -> {field: (key,)}; unnamed fields keep ALIASES


def sniff(path: Path, head: str) -> bool:
    first = head.lstrip().split("\n", 1)[0]
    return first.startswith("{") and '"title"' in first


def _keys(mapping: dict[str, Any], name: str) -> tuple[str, ...]:
    keys = mapping.get(name) or ALIASES[name]
    return keys if type(keys) is tuple else (keys,) if isinstance(keys, str) else tuple(keys)  # {field: key} too


def parse(obj: dict[str, Any], loc: str, path: Path, mapping: dict[str, Any]) -> PaperRecord:
    """One JSON object to a record (FieldError on a field of the wrong type)."""
    raw_id = fields.ident(obj, *_keys(mapping, "id"))
    parsed = parse_arxiv_id(raw_id)
    cats, primary = fields.with_primary(fields.terms(obj, *_keys(mapping, "categories")),
                                        fields.text(obj, *_keys(mapping, "primary_category")))
    return PaperRecord(
        source=FORMAT, source_id=f"{path.name.split('.')[0]}:{raw_id}" if raw_id else None,
        title=fields.text(obj, *_keys(mapping, "title")), abstract=fields.text(obj, *_keys(mapping, "abstract")),
        authors=fields.names(obj, *_keys(mapping, "authors")), arxiv_id=parsed[0] if parsed else None,
        arxiv_version=parsed[1] if parsed else None, doi=fields.dois(obj, *_keys(mapping, "doi")) or None,
        categories=cats, primary_category=primary,
        submitted=fields.date(obj, *_keys(mapping, "date")), updated=fields.date(obj, *_keys(mapping, "updated")),
        comments=fields.text(obj, *_keys(mapping, "comments")) or None,
        journal_ref=fields.text(obj, *_keys(mapping, "journal_ref")) or None)


def read(path: Path, mapping: dict[str, Any] | None = None) -> Iterator[PaperRecord | BadRecord]:
    f = {name: _keys(mapping or {}, name) for name in ALIASES}  # resolved once, not per record
    yield from fields.parse_each(lambda obj, loc: parse(obj, loc, path, f), iter_json_lines(path, "JSON lines"))
