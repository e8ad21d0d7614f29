"""BEIR ``corpus.jsonl`` ({_id, title, text}), for evaluation. Papers are keyed by BEIR doc id only:
two BEIR documents are never merged by title, so qrels map exactly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..models import BadRecord, PaperRecord
from . import fields
from .base import iter_json_lines

FORMAT = "beir"
DESCRIPTION = "BEIR corpus.jsonl ({_id, title, text}); the folder name becomes the dataset name"


def sniff(path: Path, head: str) -> bool:
    first = head.lstrip().split("\n", 1)[0]
    return first.startswith("{") and '"_id"' in first and '"text"' in first


def parse(obj: dict, loc: str, dataset: str) -> PaperRecord | BadRecord:
    """One BEIR document (FieldError on a field of the wrong type)."""
    doc_id = fields.ident(obj, "_id")
    if not doc_id:
        return BadRecord(loc, "missing _id")
    # An untitled document keeps an empty title: copying the start of its text there counted those words
    # twice, in BM25's title field and in the embedded title + abstract (issue 11). Pages show the start
    # of the text instead (models.Paper).
    return PaperRecord(source=f"beir:{dataset}", source_id=doc_id, title=fields.text(obj, "title"),
                       abstract=fields.text(obj, "text"), match_title=False)


def read(path: Path) -> Iterator[PaperRecord | BadRecord]:
    dataset = path.parent.name or "beir"
    yield from fields.parse_each(lambda obj, loc: parse(obj, loc, dataset),
                                 iter_json_lines(path, "a BEIR corpus.jsonl"))
