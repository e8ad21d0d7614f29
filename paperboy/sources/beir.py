"""BEIR ``corpus.jsonl`` ({_id, title, text}), for evaluation. Papers are keyed by BEIR doc id only:
two BEIR documents are never merged by title, so qrels map exactly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..models import BadRecord, PaperRecord
from .base import iter_json_lines

FORMAT = "beir"
DESCRIPTION = "BEIR corpus.jsonl ({_id, title, text}); the folder name becomes the dataset name"


def sniff(path: Path, head: str) -> bool:
    first = head.lstrip().split("\n", 1)[0]
    return first.startswith("{") and '"_id"' in first and '"text"' in first


def read(path: Path) -> Iterator[PaperRecord | BadRecord]:
    dataset = path.parent.name or "beir"
    for loc, obj, err in iter_json_lines(path, "a BEIR corpus.jsonl"):
        if err or obj is None or not obj.get("_id"):
            yield BadRecord(loc, err or "missing _id")
            continue
        yield PaperRecord(source=f"beir:{dataset}", source_id=str(obj["_id"]),
                          title=str(obj.get("title") or obj.get("text") or "")[:300], abstract=str(obj.get("text") or ""),
                          match_title=False)
