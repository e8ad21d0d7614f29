"""Generic JSON lines with a field mapping (``--map title=name,abstract=summary``).

Default mapping: id, title, abstract, authors (list or "A, B and C"), date, categories, doi.
An ``id`` that is an arXiv id makes the record an arXiv paper.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import FormatError
from ..models import BadRecord, PaperRecord
from .base import iter_json_lines
from .normalize import clean_latex, parse_arxiv_id, parse_date, split_authors

FORMAT = "jsonl"
DESCRIPTION = "JSON lines with id/title/abstract/authors/date/categories/doi (remap with --map)"
FIELDS = ("id", "title", "abstract", "authors", "date", "categories", "doi")


def sniff(path: Path, head: str) -> bool:
    first = head.lstrip().split("\n", 1)[0]
    return first.startswith("{") and '"title"' in first


def parse_mapping(spec: str | None) -> dict[str, str]:
    """'title=name,abstract=summary' -> {'title': 'name', 'abstract': 'summary', ...defaults}."""
    mapping = {f: f for f in FIELDS}
    for part in filter(None, (spec or "").split(",")):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in FIELDS:
            raise FormatError(f"bad field mapping {part!r}: use FIELD=KEY with FIELD one of {', '.join(FIELDS)}")
        mapping[key.strip()] = value.strip()
    return mapping


def read(path: Path, mapping: dict[str, str] | None = None) -> Iterator[PaperRecord | BadRecord]:
    f = mapping or parse_mapping(None)
    for loc, obj, err in iter_json_lines(path, "JSON lines"):
        if err or obj is None:
            yield BadRecord(loc, err or "empty")
            continue
        raw_id = str(obj.get(f["id"]) or "").strip()
        parsed = parse_arxiv_id(raw_id)
        authors = obj.get(f["authors"])
        authors = [clean_latex(str(a)) for a in authors] if isinstance(authors, list) else split_authors(authors)
        cats = obj.get(f["categories"]) or []
        cats = cats.split() if isinstance(cats, str) else [str(c) for c in cats]
        yield PaperRecord(
            source=FORMAT, source_id=f"{path.name.split('.')[0]}:{raw_id}" if raw_id else None,
            title=str(obj.get(f["title"]) or ""), abstract=str(obj.get(f["abstract"]) or ""),
            authors=authors, arxiv_id=parsed[0] if parsed else None,
            arxiv_version=parsed[1] if parsed else None, doi=obj.get(f["doi"]) or None,
            categories=cats, primary_category=cats[0] if cats else None,
            submitted=parse_date(obj.get(f["date"])))
