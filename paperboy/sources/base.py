"""Helpers every file source uses: transparent gzip, strict UTF-8 lines, bounded reads, record locations.

A file source is a module with ``FORMAT`` (its name), ``DESCRIPTION``, ``sniff(path, head) -> bool``
(does this file look like my format? ``head`` is the first few KB, decoded) and
``read(path) -> Iterator[PaperRecord | BadRecord]`` which streams, yields a ``BadRecord`` for each
record it must skip, and raises ``FormatError`` when the file is not its format at all.

A file that breaks off (a truncated ``.gz``, a corrupt block) keeps everything read before the
break; the break itself is reported as one ``BadRecord`` at the place it happened.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

from ..errors import FormatError


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type, for messages: object, array, string, number, boolean, null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    for kind, name in ((str, "string"), (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    return type(value).__name__

HEAD_BYTES = 8192
# One JSON line (one record) past this is skipped unread: a Kaggle record is < 1 MB; this bounds
# memory against a file with no newlines (or a gzip bomb of one).
MAX_LINE_BYTES = 16 << 20
# Formats that are one document (JSON arrays/objects, XML, BibTeX) are read whole, up to this.
MAX_DOCUMENT_BYTES = 1 << 30
_CHUNK = 1 << 16
# What a broken or truncated compressed stream raises while reading.
STREAM_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)


class StreamError(str):
    """The reason a file could not be read past some point (truncated or corrupt)."""


def open_binary(path: Path) -> BinaryIO:
    """Open a file for reading bytes, decompressing gzip by its magic number.

    FormatError (one clear message) for a directory, a missing or an unreadable file.
    """
    path = Path(path)
    if path.is_dir():
        raise FormatError(f"{path} is a directory, not a file")
    try:
        f = open(path, "rb")
    except OSError as e:
        raise FormatError(f"{path}: cannot read: {e.strerror or e}") from e
    if f.read(2) == b"\x1f\x8b":
        f.seek(0)
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    f.seek(0)
    return f


def _broken(e: BaseException, where: str) -> StreamError:
    kind = "truncated" if isinstance(e, EOFError) else "corrupt"
    return StreamError(f"file is {kind} ({e or type(e).__name__}); {where}")


def read_head(path: Path, size: int = HEAD_BYTES) -> str:
    """The first ``size`` bytes of a (possibly gzipped) file, decoded leniently, BOM stripped."""
    data = b""
    with open_binary(path) as f:
        try:
            data = f.read(size)
        except STREAM_ERRORS:
            pass  # a truncated file still has a head to sniff; read() reports the break
        except OSError as e:
            raise FormatError(f"{path}: cannot read: {e}") from e
    return data.decode("utf-8", errors="replace").lstrip("\ufeff")


def read_document(path: Path, what: str) -> tuple[bytes, StreamError | None]:
    """The whole file (decompressed), and why it broke off if it did (bytes before the break kept).

    FormatError when it is larger than ``MAX_DOCUMENT_BYTES`` (a gzip bomb, or a format to split).
    """
    chunks: list[bytes] = []
    size, err = 0, None
    with open_binary(path) as f:
        while True:
            try:
                chunk = f.read1(_CHUNK)  # read1: a break loses only what follows it
            except STREAM_ERRORS as e:
                err = _broken(e, f"read the first {size} bytes")
                break
            except OSError as e:
                raise FormatError(f"{path}: cannot read: {e}") from e
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_DOCUMENT_BYTES:
                raise FormatError(f"{path}: more than {MAX_DOCUMENT_BYTES >> 20} MiB; too large to read as "
                                  f"one {what} document")
            chunks.append(chunk)
    data = b"".join(chunks)
    return (data[3:] if data.startswith(b"\xef\xbb\xbf") else data), err


def _raw_lines(f: BinaryIO) -> Iterator[tuple[bytes | None, StreamError | str | None]]:
    """(line, None) per line; (None, reason) for an overlong line (skipped) or a break (last)."""
    lineno = 0
    while True:
        try:
            raw = f.readline(MAX_LINE_BYTES + 1)
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while (rest := f.readline(_CHUNK)) and not rest.endswith(b"\n"):
                    pass  # skip the rest of the line without holding it
                lineno += 1
                yield None, f"line longer than {MAX_LINE_BYTES >> 20} MiB; skipped"
                continue
        except STREAM_ERRORS as e:
            yield None, _broken(e, f"records after line {lineno} were not read")
            return
        if not raw:
            return
        lineno += 1
        yield raw, None


def iter_lines(path: Path) -> Iterator[tuple[int, str | None, str | None]]:
    """Yield (line number, text, error) for each non-blank line; invalid UTF-8 is an error.

    A leading BOM is dropped; a read that breaks off is a last ``StreamError`` error.
    """
    with open_binary(path) as f:
        for lineno, (raw, err) in enumerate(_raw_lines(f), start=1):
            if raw is None:
                yield lineno, None, err
                continue
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            try:
                yield lineno, raw.decode("utf-8"), None
            except UnicodeDecodeError as e:
                yield lineno, None, f"invalid UTF-8 at byte {e.start}"


def iter_json_lines(path: Path, fmt: str) -> Iterator[tuple[str, object, str | None]]:
    """Yield (location, object, error) per JSON line; the first line must be a JSON object.

    Objects of the wrong shape are the caller's to judge (see ``fields.parse_each``).
    """
    first = True
    for lineno, text, err in iter_lines(path):
        loc = f"{path}:{lineno}"
        obj = None
        if err is None:
            try:
                obj = orjson.loads(text)  # type: ignore[arg-type]
                if first and not isinstance(obj, dict):
                    err = f"expected a JSON object, got {json_type(obj)}"
            except orjson.JSONDecodeError as e:
                err = f"invalid JSON ({e})"
        if first and err is not None and not isinstance(err, StreamError):
            raise FormatError(f"{path} does not look like {fmt} (JSON lines): line {lineno}: {err}")
        first = False
        yield loc, obj, err


def load_json(path: Path, fmt: str) -> object:
    """Parse a whole JSON document (for formats that are one document), with a clear error."""
    data, err = read_document(path, fmt)
    if err is not None:
        raise FormatError(f"{path}: {err.split(';')[0]}, so it cannot be read as {fmt} (a JSON document "
                          "is all or nothing)")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise FormatError(f"{path} is not valid JSON, so it is not {fmt}: {e}") from e
