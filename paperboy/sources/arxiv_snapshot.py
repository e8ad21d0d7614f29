"""The Kaggle arXiv metadata snapshot: JSON lines (plain or .gz), streamed in constant memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..models import BadRecord, PaperRecord
from ..normalize import clean_latex, parse_arxiv_id, whole_number
from . import fields
from .base import iter_json_lines

FORMAT = "kaggle"
DESCRIPTION = "Kaggle arXiv metadata snapshot (arxiv-metadata-oai-snapshot.json, JSON lines, .gz ok)"


def sniff(path: Path, head: str) -> bool:
    first = head.lstrip().split("\n", 1)[0]
    return first.startswith("{") and '"authors_parsed"' in first or ('"versions"' in first and '"update_date"' in first)


def _name(parts: object, i: int) -> str:
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        raise fields.FieldError(f"field 'authors_parsed' item {i} must be a list of texts, "
                                f"got {fields.json_type(parts)}")
    last, first, *rest = [*parts, "", ""][:3]
    name = clean_latex(" ".join(p for p in (first, last, *rest) if p and p.strip()))
    return name.replace(". -", ".-")  # authors_parsed splits "C.-P." into "C. -P."


def _versions(obj: dict) -> dict[int, str | None]:
    versions: dict[int, str | None] = {}
    for i, v in enumerate(fields.array(obj, "versions")):
        if not isinstance(v, dict):
            raise fields.FieldError(f"field 'versions' item {i} must be an object, got {fields.json_type(v)}")
        number = whole_number(fields.ident(v, "version").lstrip("v"))  # ASCII digits only, bounded
        if number:
            versions[number] = fields.date(v, "created")
    return versions


def parse(obj: dict, loc: str) -> PaperRecord | BadRecord:
    """One snapshot object to a record (FieldError on a field of the wrong type)."""
    raw_id = fields.ident(obj, "id")
    parsed = parse_arxiv_id(raw_id)
    if not parsed:
        return BadRecord(loc, f"missing or invalid arXiv id {obj.get('id')!r}")
    versions = _versions(obj)
    parsed_authors = fields.array(obj, "authors_parsed")
    if parsed_authors:
        authors = [_name(a, i) for i, a in enumerate(parsed_authors)]
    else:
        authors = fields.names(obj, "authors")
    cats = fields.terms(obj, "categories")
    updated = fields.date(obj, "update_date")
    return PaperRecord(
        source=FORMAT, source_id=parsed[0], title=fields.text(obj, "title"),
        abstract=fields.text(obj, "abstract"), authors=[a for a in authors if a],
        arxiv_id=parsed[0], arxiv_version=max(versions) if versions else None, versions=versions,
        doi=fields.text(obj, "doi") or None, categories=cats, primary_category=cats[0] if cats else None,
        submitted=versions.get(min(versions)) if versions else updated,
        updated=versions.get(max(versions)) if versions else updated,
        comments=fields.text(obj, "comments") or None, journal_ref=fields.text(obj, "journal-ref") or None,
        authoritative=True)


def read(path: Path) -> Iterator[PaperRecord | BadRecord]:
    yield from fields.parse_each(parse, iter_json_lines(path, "a Kaggle arXiv snapshot"))
