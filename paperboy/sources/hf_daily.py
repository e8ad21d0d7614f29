"""Hugging Face ``/api/daily_papers`` JSON: a list of {paper: {...}, publishedAt, submittedBy, numComments}."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import FormatError
from ..models import BadRecord, PaperRecord
from .base import load_json
from .normalize import clean_latex, parse_arxiv_id, parse_date

FORMAT = "hf-daily"
DESCRIPTION = "Hugging Face /api/daily_papers JSON (list of {paper, publishedAt, submittedBy, ...})"


def sniff(path: Path, head: str) -> bool:
    return head.lstrip().startswith("[") and '"paper"' in head and '"summary"' in head


def parse(item: object, loc: str) -> PaperRecord | BadRecord:
    """One daily-papers item (or a bare paper object) to a record."""
    if not isinstance(item, dict):
        return BadRecord(loc, f"expected an object, got {type(item).__name__}")
    paper = item.get("paper") if isinstance(item.get("paper"), dict) else item
    parsed = parse_arxiv_id(str(paper.get("id") or ""))
    if not parsed:
        return BadRecord(loc, f"missing or invalid arXiv id {paper.get('id')!r}")
    authors = [clean_latex(a.get("name", "")) for a in paper.get("authors") or [] if isinstance(a, dict)]
    submitter = item.get("submittedBy") or paper.get("submittedOnDailyBy") or {}
    extra = {
        "upvotes": paper.get("upvotes", item.get("upvotes")),
        "num_comments": item.get("numComments", paper.get("numComments")),
        "submitted_by": submitter.get("name") or submitter.get("fullname") if isinstance(submitter, dict) else None,
        "daily_date": parse_date(paper.get("submittedOnDailyAt") or item.get("publishedAt")),
    }
    return PaperRecord(
        source=FORMAT, source_id=parsed[0], title=str(paper.get("title") or item.get("title") or ""),
        abstract=str(paper.get("summary") or item.get("summary") or ""), authors=[a for a in authors if a],
        arxiv_id=parsed[0], submitted=parse_date(paper.get("publishedAt")),
        extra={k: v for k, v in extra.items() if v is not None})


def read(path: Path) -> Iterator[PaperRecord | BadRecord]:
    data = load_json(path, "Hugging Face daily papers JSON")
    if not isinstance(data, list):
        raise FormatError(f"{path}: Hugging Face daily papers JSON is a list, got {type(data).__name__}")
    for i, item in enumerate(data, start=1):
        yield parse(item, f"{path}:item {i}")
