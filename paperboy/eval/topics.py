"""Topic folders as ground truth: JSON lines of papers, each with a ``topic_folder``.

A row is one paper in one folder (``title``, ``abstract``, ``url`` or ``id``, ``topic_folder``; a
paper filed in several folders has several rows). Two papers are related when they share a folder.
``eval similar`` and ``eval recs --topics`` ingest the file through the ordinary ``jsonl`` reader
into their own store (``<home>/eval/<file name>``, so embeddings are computed once), then resolve
every row to its stored paper by id, URL, DOI or title.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ..errors import FormatError
from ..normalize import title_key
from ..sources.jsonl import parse_mapping

FOLDER = "topic_folder"


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The file's rows; FormatError (with the line) on bad JSON, a non-object or a missing folder."""
    rows = []
    try:
        f = open(path, "rb")
    except OSError as e:
        raise FormatError(f"cannot read {path}: {e.strerror or e}") from e
    with f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise FormatError(f"{path}:{n}: not JSON ({e})") from e
            if not isinstance(obj, dict):
                raise FormatError(f"{path}:{n}: a row must be a JSON object")
            folder = obj.get(FOLDER)
            if not isinstance(folder, str) or not folder.strip():
                raise FormatError(f"{path}:{n}: no {FOLDER!r} (a non-empty string)")
            rows.append(obj)
    if not rows:
        raise FormatError(f"{path}: no rows")
    return rows


def default_mapping(rows: list[dict[str, Any]]) -> str:
    """``id=url`` when rows have a url but no id, ``date=year`` when they have a year but no date
    (the ``--map`` of ``paperboy ingest jsonl``)."""
    parts = []
    if not any("id" in r for r in rows) and any("url" in r for r in rows):
        parts.append("id=url")
    if not any("date" in r for r in rows) and any("year" in r for r in rows):
        parts.append("date=year")
    return ",".join(parts)


def resolve(store: Any, rows: list[dict[str, Any]]) -> tuple[dict[str, list[int]], int]:
    """folder -> stored paper ids (each once, in file order), and the number of rows matched to no paper."""
    folders: dict[str, list[int]] = {}
    missed = 0
    for row in rows:
        refs = [str(row[k]) for k in ("id", "url", "doi") if isinstance(row.get(k), (str, int)) and str(row[k]).strip()]
        if isinstance(row.get("title"), str) and (key := title_key(row["title"])):
            refs.append(f"title:{key}")
        paper = next((p for p in map(store.get_paper, refs) if p is not None), None)
        if paper is None:
            missed += 1
            continue
        members = folders.setdefault(row[FOLDER].strip(), [])
        if paper.id not in members:
            members.append(paper.id)
    return folders, missed


def prepare(engine: Any, path: Path, mapping: str | None = None,
            progress: Callable[[int], None] | None = None) -> tuple[dict[str, list[int]], int]:
    """Ingest (``mapping``: a ``--map`` spec, default :func:`default_mapping`) and embed the file into
    ``engine`` (idempotent: unchanged rows cost a lookup), then :func:`resolve` its rows. ConfigError/FormatError on a file that cannot be used."""
    rows = read_rows(Path(path))
    spec = mapping if mapping is not None else default_mapping(rows)
    engine.ingest(Path(path), "jsonl", mapping=parse_mapping(spec))
    engine.embed(progress=progress or (lambda n: None))
    folders, missed = resolve(engine.store, rows)
    if len(folders) < 2:
        raise FormatError(f"{path}: {len(folders)} topic folder(s) with stored papers; at least 2 are needed")
    return folders, missed
