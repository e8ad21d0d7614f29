"""A Daily Papers scrape: a JSON object keyed by arXiv id, each {url, title, authors, abstract,
publication_date, upvotes} (the shape of shared/data/hf/paperexplorer_papers.json)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import FormatError
from ..models import BadRecord, PaperRecord
from ..normalize import parse_arxiv_id
from . import fields
from .base import load_json

FORMAT = "hf-scrape"
DESCRIPTION = "Daily Papers scrape: JSON object keyed by arXiv id with title/authors/abstract/upvotes"


def sniff(path: Path, head: str) -> bool:
    return head.lstrip().startswith("{") and '"upvotes"' in head and '"abstract"' in head


def parse(key: str, item: dict, loc: str) -> PaperRecord | BadRecord:
    """One scraped paper (FieldError on a field of the wrong type)."""
    parsed = parse_arxiv_id(key) or parse_arxiv_id(fields.text(item, "url"))
    if not parsed:
        return BadRecord(loc, "no arXiv id in the key or url")
    upvotes = fields.count(item, "upvotes")
    return PaperRecord(
        source=FORMAT, source_id=parsed[0], title=fields.text(item, "title"),
        abstract=fields.text(item, "abstract"), arxiv_id=parsed[0], authors=fields.names(item, "authors"),
        submitted=fields.date(item, "publication_date"), extra={"upvotes": upvotes} if upvotes is not None else {})


def read(path: Path) -> Iterator[PaperRecord | BadRecord]:
    data = load_json(path, "a Daily Papers scrape")
    if not isinstance(data, dict):
        raise FormatError(f"{path}: a Daily Papers scrape is a JSON object keyed by arXiv id, "
                          f"got {fields.json_type(data)}")
    for i, (key, item) in enumerate(data.items(), start=1):
        loc = f"{path}:record {i} ({key[:100]})"
        yield fields.parse_one(lambda obj, where, key=key: parse(key, obj, where), item, loc)
