"""Helpers every file source uses: transparent gzip, strict UTF-8 lines, record locations.

A file source is a module with ``FORMAT`` (its name), ``DESCRIPTION``, ``sniff(path, head) -> bool``
(does this file look like my format? ``head`` is the first few KB, decoded) and
``read(path) -> Iterator[PaperRecord | BadRecord]`` which streams, yields a ``BadRecord`` for each
record it must skip, and raises ``FormatError`` when the file is not its format at all.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

from ..errors import FormatError

HEAD_BYTES = 8192


def open_binary(path: Path) -> BinaryIO:
    """Open a file for reading bytes, decompressing gzip by its magic number."""
    f = open(path, "rb")
    if f.read(2) == b"\x1f\x8b":
        f.seek(0)
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    f.seek(0)
    return f


def read_head(path: Path, size: int = HEAD_BYTES) -> str:
    """The first ``size`` bytes of a (possibly gzipped) file, decoded leniently, BOM stripped."""
    try:
        with open_binary(path) as f:
            data = f.read(size)
    except (OSError, EOFError) as e:
        raise FormatError(f"{path}: cannot read: {e}") from e
    return data.decode("utf-8", errors="replace").lstrip("\ufeff")


def iter_lines(path: Path) -> Iterator[tuple[int, str | None, str | None]]:
    """Yield (line number, text, error) for each non-blank line; invalid UTF-8 is an error."""
    with open_binary(path) as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                yield lineno, raw.decode("utf-8"), None
            except UnicodeDecodeError as e:
                yield lineno, None, f"invalid UTF-8 at byte {e.start}"


def iter_json_lines(path: Path, fmt: str) -> Iterator[tuple[str, dict | None, str | None]]:
    """Yield (location, object, error) per JSON line; the first line must be a JSON object."""
    first = True
    for lineno, text, err in iter_lines(path):
        loc = f"{path}:{lineno}"
        obj = None
        if err is None:
            try:
                obj = orjson.loads(text)  # type: ignore[arg-type]
                if not isinstance(obj, dict):
                    err = f"expected a JSON object, got {type(obj).__name__}"
            except orjson.JSONDecodeError as e:
                err = f"invalid JSON ({e})"
        if first and err is not None:
            raise FormatError(f"{path} does not look like {fmt} (JSON lines): line {lineno}: {err}")
        first = False
        yield loc, obj, err


def load_json(path: Path, fmt: str) -> object:
    """Parse a whole JSON document (for formats that are one document), with a clear error."""
    try:
        with open_binary(path) as f:
            return orjson.loads(f.read())
    except orjson.JSONDecodeError as e:
        raise FormatError(f"{path} is not valid JSON, so it is not {fmt}: {e}") from e
    except OSError as e:
        raise FormatError(f"{path}: cannot read: {e}") from e
