"""The Kaggle arXiv metadata snapshot: JSON lines (plain or .gz), streamed in constant memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..models import BadRecord, PaperRecord
from .base import iter_json_lines
from .normalize import clean_latex, parse_arxiv_id, parse_date, split_authors

FORMAT = "kaggle"
DESCRIPTION = "Kaggle arXiv metadata snapshot (arxiv-metadata-oai-snapshot.json, JSON lines, .gz ok)"


def sniff(path: Path, head: str) -> bool:
    first = head.lstrip().split("\n", 1)[0]
    return first.startswith("{") and '"authors_parsed"' in first or ('"versions"' in first and '"update_date"' in first)


def _name(parts: list[str]) -> str:
    last, first, *rest = [*parts, "", ""][:3]
    name = clean_latex(" ".join(p for p in (first, last, *rest) if p and p.strip()))
    return name.replace(". -", ".-")  # authors_parsed splits "C.-P." into "C. -P."


def parse(obj: dict, loc: str) -> PaperRecord | BadRecord:
    """One snapshot object to a record."""
    parsed = parse_arxiv_id(str(obj.get("id") or ""))
    if not parsed:
        return BadRecord(loc, f"missing or invalid arXiv id {obj.get('id')!r}")
    versions: dict[int, str | None] = {}
    for v in obj.get("versions") or []:
        if isinstance(v, dict) and str(v.get("version", "")).lstrip("v").isdigit():
            versions[int(str(v["version"]).lstrip("v"))] = parse_date(v.get("created"))
    parsed_authors = obj.get("authors_parsed")
    if isinstance(parsed_authors, list) and parsed_authors:
        authors = [_name(a) for a in parsed_authors if isinstance(a, list)]
    else:
        authors = split_authors(obj.get("authors"))
    cats = str(obj.get("categories") or "").split()
    return PaperRecord(
        source=FORMAT, source_id=parsed[0], title=str(obj.get("title") or ""),
        abstract=str(obj.get("abstract") or ""), authors=[a for a in authors if a],
        arxiv_id=parsed[0], arxiv_version=max(versions) if versions else None, versions=versions,
        doi=obj.get("doi") or None, categories=cats, primary_category=cats[0] if cats else None,
        submitted=versions.get(min(versions)) if versions else parse_date(obj.get("update_date")),
        updated=versions.get(max(versions)) if versions else parse_date(obj.get("update_date")),
        comments=obj.get("comments") or None, journal_ref=obj.get("journal-ref") or None,
        authoritative=True)


def read(path: Path) -> Iterator[PaperRecord | BadRecord]:
    for loc, obj, err in iter_json_lines(path, "a Kaggle arXiv snapshot"):
        yield BadRecord(loc, err) if err or obj is None else parse(obj, loc)
