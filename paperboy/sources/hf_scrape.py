"""A Daily Papers scrape: a JSON object keyed by arXiv id, each {url, title, authors, abstract,
publication_date, upvotes} (the shape of shared/data/hf/paperexplorer_papers.json)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import FormatError
from ..models import BadRecord, PaperRecord
from .base import load_json
from .normalize import clean_latex, parse_arxiv_id, parse_date

FORMAT = "hf-scrape"
DESCRIPTION = "Daily Papers scrape: JSON object keyed by arXiv id with title/authors/abstract/upvotes"


def sniff(path: Path, head: str) -> bool:
    return head.lstrip().startswith("{") and '"upvotes"' in head and '"abstract"' in head


def read(path: Path) -> Iterator[PaperRecord | BadRecord]:
    data = load_json(path, "a Daily Papers scrape")
    if not isinstance(data, dict):
        raise FormatError(f"{path}: a Daily Papers scrape is a JSON object keyed by arXiv id")
    for i, (key, item) in enumerate(data.items(), start=1):
        loc = f"{path}:item {i} ({key})"
        parsed = parse_arxiv_id(key) or parse_arxiv_id(str((item or {}).get("url") or ""))
        if not isinstance(item, dict) or not parsed:
            yield BadRecord(loc, "not an object with an arXiv id")
            continue
        authors = item.get("authors") or []
        yield PaperRecord(
            source=FORMAT, source_id=parsed[0], title=str(item.get("title") or ""),
            abstract=str(item.get("abstract") or ""), arxiv_id=parsed[0],
            authors=[clean_latex(str(a)) for a in authors if str(a).strip()],
            submitted=parse_date(item.get("publication_date")),
            extra={"upvotes": item["upvotes"]} if isinstance(item.get("upvotes"), int) else {})
