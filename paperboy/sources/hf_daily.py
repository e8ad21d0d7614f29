"""Hugging Face ``/api/daily_papers`` JSON: a list of {paper: {...}, publishedAt, submittedBy, numComments}."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import FormatError
from ..models import BadRecord, PaperRecord
from ..normalize import parse_arxiv_id
from . import fields
from .base import load_json

FORMAT = "hf-daily"
DESCRIPTION = "Hugging Face /api/daily_papers JSON (list of {paper, publishedAt, submittedBy, ...})"


def sniff(path: Path, head: str) -> bool:
    return head.lstrip().startswith("[") and '"paper"' in head and '"summary"' in head


def parse(item: object, loc: str) -> PaperRecord | BadRecord:
    """One daily-papers item (or a bare paper object) to a record; never raises on odd JSON."""
    return fields.parse_one(_parse, item, loc)


def _parse(item: dict, loc: str) -> PaperRecord | BadRecord:
    paper = fields.mapping(item, "paper") or item
    raw_id = fields.ident(paper, "id")
    parsed = parse_arxiv_id(raw_id)
    if not parsed:
        return BadRecord(loc, f"missing or invalid arXiv id {paper.get('id')!r}")
    submitter = fields.mapping(item, "submittedBy") or fields.mapping(paper, "submittedOnDailyBy")
    extra = {  # each signal from whichever of the item and its paper carries it
        "upvotes": fields.count(paper if "upvotes" in paper else item, "upvotes"),
        "num_comments": fields.count(item if "numComments" in item else paper, "numComments"),
        "submitted_by": fields.text(submitter, "name") or fields.text(submitter, "fullname") or None,
        "daily_date": fields.date(paper, "submittedOnDailyAt") or fields.date(item, "publishedAt"),
    }
    return PaperRecord(
        source=FORMAT, source_id=parsed[0], title=fields.text(paper, "title") or fields.text(item, "title"),
        abstract=fields.text(paper, "summary") or fields.text(item, "summary"),
        authors=fields.names(paper, "authors"), arxiv_id=parsed[0], submitted=fields.date(paper, "publishedAt"),
        extra={k: v for k, v in extra.items() if v is not None})


def read(path: Path) -> Iterator[PaperRecord | BadRecord]:
    data = load_json(path, "Hugging Face daily papers JSON")
    if not isinstance(data, list):
        raise FormatError(f"{path}: Hugging Face daily papers JSON is a list, got {fields.json_type(data)}")
    for i, item in enumerate(data, start=1):
        yield parse(item, f"{path}:record {i}")
