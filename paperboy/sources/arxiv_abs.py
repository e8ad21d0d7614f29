"""arXiv's own ``.abs`` metadata files: one file, a folder of them, or a tar archive (.tar.gz).

An ``.abs`` record is a header between ``\\\\`` lines, then the abstract up to the next ``\\\\``::

    \\\\
    Paper: hep-th/9901001          (or "arXiv:0704.0001", "Paper: arXiv:0704.0001")
    From: A. Author <mail>
    Date: Fri, 1 Jan 1999 12:00:00 GMT   (10kb)
    Date (revised v2): Mon, 4 Jan 1999 09:00:00 GMT   (11kb)

    Title: A title that may go on
      over several lines
    Authors: A. One, B. Two
    Categories: hep-th gr-qc
    Comments: / Report-no: / Journal-ref: / DOI: / License: / MSC-class: / ACM-class:
    \\\\
      The abstract ...
    \\\\

Every version's date is kept (v1 is the submission date, the last one the update); the
submitter's mail address is not. An archive is read as a stream, never unpacked to disk: only
regular members named ``*.abs`` are read (a link or device member is reported and skipped), each
up to ``MAX_FILE_BYTES``, the whole up to ``MAX_ARCHIVE_BYTES``; a truncated archive keeps what
came before the break. Folders are read recursively, in name order, symbolic links skipped.
"""

from __future__ import annotations

import re
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from ..errors import FormatError
from ..models import BadRecord, PaperRecord
from ..normalize import parse_arxiv_id, parse_date, split_authors, strip_invalid
from .base import STREAM_ERRORS, open_binary

FORMAT = "abs"
DESCRIPTION = "arXiv .abs metadata files: one file, a folder of them, or a .tar(.gz) of them"
FOLDER_FILES = ".abs files"  # what a folder of this format holds, for messages
MAX_FILE_BYTES = 4 << 20  # one .abs is a few KB; a file past this is not one
MAX_ARCHIVE_BYTES = 64 << 30  # all of arXiv's metadata is a few GB
_SPLIT = re.compile(r"^\\\\[ \t]*\r?$", re.MULTILINE)
_FIELD = re.compile(r"^([A-Za-z][A-Za-z-]*(?: \(([^)]*)\))?):\s*(.*)$")
_REVISED = re.compile(r"(?:revised\s+)?v([0-9]{1,4})", re.IGNORECASE)
_SIZE = re.compile(r"\s*\(\d+\s*kb\)\s*$", re.IGNORECASE)
_EXTRA = {"report-no": "report_no", "license": "license", "msc-class": "msc_class", "acm-class": "acm_class"}


def _looks_like_abs(head: str) -> bool:
    return bool(_SPLIT.search(head)) and bool(re.search(r"^(?:Paper|arXiv):", head, re.MULTILINE)) \
        and bool(re.search(r"^Title:", head, re.MULTILINE))


def _is_tar(head: str) -> bool:
    return len(head) > 262 and head[257:262] == "ustar" and ".abs" in head


def sniff(path: Path, head: str) -> bool:
    return _looks_like_abs(head) or _is_tar(head)


def sniff_folder(path: Path) -> bool:
    """A folder is this format when it holds an ``.abs`` file (at any depth)."""
    return next(folder_files(path), None) is not None


def _header(text: str) -> tuple[dict[str, str], dict[int, str | None]]:
    """Header fields (lower-case names; continuation lines joined) and version dates."""
    out: dict[str, str] = {}
    versions: dict[int, str | None] = {}
    last = None
    for line in text.splitlines():
        if not line.strip() or line.startswith("---"):
            last = None
            continue
        if line[:1].isspace() and last:
            out[last] += " " + line.strip()
            continue
        m = _FIELD.match(line)
        if not m:
            last = None
            continue
        name = m.group(1).split(" (")[0].lower()
        value = m.group(3).strip()
        if name == "date":
            rev = _REVISED.fullmatch(m.group(2) or "v1")
            if rev:
                versions[int(rev.group(1))] = parse_date(_SIZE.sub("", value))
            continue
        out.setdefault(name, value)
        last = name
    return out, versions


def _record(head: dict[str, str], versions: dict[int, str | None], abstract: str, loc: str) -> PaperRecord | BadRecord:
    raw_id = head.get("paper") or head.get("arxiv") or ""
    parsed = parse_arxiv_id(raw_id)
    if not parsed:
        return BadRecord(loc, f"no arXiv id (a 'Paper:' or 'arXiv:' line); found {raw_id[:200]!r}" if raw_id
                         else "no arXiv id (a 'Paper:' or 'arXiv:' line)")
    if not head.get("title"):
        return BadRecord(loc, f"{parsed[0]}: no 'Title:' line")
    cats = head.get("categories", "").split()
    extra = {key: head[name] for name, key in _EXTRA.items() if head.get(name)}
    submitter = re.sub(r"\s*<[^>]*>\s*", " ", head.get("from", "")).strip()  # the name, not the address
    if submitter:
        extra["submitter"] = submitter
    dated = sorted(versions)
    return PaperRecord(
        source=FORMAT, source_id=parsed[0], title=head["title"], abstract=abstract.strip(),
        authors=split_authors(head.get("authors")), arxiv_id=parsed[0],
        arxiv_version=max(dated) if dated else parsed[1], versions=versions, doi=head.get("doi") or None,
        categories=cats, primary_category=cats[0] if cats else None,
        submitted=versions.get(dated[0]) if dated else None, updated=versions.get(dated[-1]) if dated else None,
        comments=head.get("comments") or None, journal_ref=head.get("journal-ref") or None, extra=extra,
        authoritative=True)


def parse_text(text: str, where: str) -> Iterator[PaperRecord | BadRecord]:
    """The records of one .abs text (usually one; concatenated files work too)."""
    blocks = _SPLIT.split(text)
    if len(blocks) < 2:
        yield BadRecord(where, "not an arXiv .abs record (no '\\\\' line before the header)")
        return
    line, i, found = 1, 1, False
    starts = [1]
    for b in blocks[:-1]:
        starts.append(starts[-1] + b.count("\n") + 1)
    while i < len(blocks):
        block, line = blocks[i], starts[i]
        head, versions = _header(block)
        if not (head.get("title") or head.get("paper") or head.get("arxiv")):
            i += 1  # the dashes between records, or the end
            continue
        found = True
        abstract = blocks[i + 1] if i + 1 < len(blocks) else ""
        yield _record(head, versions, abstract, f"{where}:{line}")
        i += 2
    if not found:
        yield BadRecord(where, "not an arXiv .abs record (no header with 'Paper:', 'arXiv:' or 'Title:')")


def _decode(data: bytes, where: str) -> Iterator[PaperRecord | BadRecord]:
    try:
        text = data.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as e:
        yield BadRecord(where, f"invalid UTF-8 at byte {e.start}")
        return
    yield from parse_text(text, where)


def _read_file(path: Path, where: str) -> Iterator[PaperRecord | BadRecord]:
    with open_binary(path) as f:
        try:
            data = f.read(MAX_FILE_BYTES + 1)
        except STREAM_ERRORS as e:
            yield BadRecord(where, f"file is truncated or corrupt ({e or type(e).__name__})")
            return
        except OSError as e:
            yield BadRecord(where, f"cannot read: {e.strerror or e}")
            return
    if len(data) > MAX_FILE_BYTES:
        yield BadRecord(where, f"larger than {MAX_FILE_BYTES >> 20} MiB; not an .abs file")
        return
    yield from _decode(data, where)


def folder_files(folder: Path) -> Iterator[Path]:
    """The .abs files of a folder, at any depth, in name order (symbolic links skipped)."""
    for p in sorted(folder.rglob("*.abs")):
        if not p.is_symlink() and p.is_file():
            yield p


def _read_tar(path: Path) -> Iterator[PaperRecord | BadRecord]:
    total, members = 0, 0
    try:
        with tarfile.open(path, mode="r|*") as tar:  # a stream: nothing is extracted, nothing seeks
            while (m := tar.next()) is not None:
                tar.members.clear()  # tarfile keeps every member it reads, even in a stream: memory grew per member
                name = strip_invalid(m.name)[:300]
                where = f"{path}:{name}"
                if m.isdir():
                    continue
                if not m.isreg():
                    yield BadRecord(where, "not a regular file (a link or device); skipped")
                    continue
                if not m.name.endswith(".abs"):
                    continue
                members += 1
                total += m.size
                if total > MAX_ARCHIVE_BYTES:
                    yield BadRecord(where, f"archive holds more than {MAX_ARCHIVE_BYTES >> 30} GiB of .abs files; "
                                           "the rest was not read")
                    return
                if m.size > MAX_FILE_BYTES:
                    yield BadRecord(where, f"larger than {MAX_FILE_BYTES >> 20} MiB; not an .abs file")
                    continue
                f = tar.extractfile(m)
                if f is not None:
                    yield from _decode(f.read(), where)
    except (tarfile.TarError, *STREAM_ERRORS, zlib.error, OSError) as e:
        if not members:
            raise FormatError(f"{path} is not a readable tar archive of .abs files ({e})") from e
        yield BadRecord(str(path), f"archive is truncated or corrupt after {members} .abs files ({e}); "
                                   "the rest was not read")


def read(path: Path) -> Iterator[PaperRecord | BadRecord]:
    path = Path(path)
    if path.is_dir():
        files = list(folder_files(path))
        if not files:
            raise FormatError(f"{path}: no {FOLDER_FILES} in this folder")
        for p in files:
            yield from _read_file(p, str(p))
        return
    if tarfile.is_tarfile(path):
        yield from _read_tar(path)
        return
    yield from _read_file(path, str(path))
