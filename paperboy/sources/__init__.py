"""File sources by format name, and format detection."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from ..errors import FormatError
from .base import read_head

# Format name -> module. Order matters for detection: the most specific sniffers first.
_MODULES = {
    "kaggle": "arxiv_snapshot",
    "beir": "beir",
    "hf-daily": "hf_daily",
    "hf-scrape": "hf_scrape",
    "hf-page": "hf_page",
    "oai-pmh": "arxiv_oai",
    "arxiv-atom": "arxiv_api",
    "abs": "arxiv_abs",
    "csv": "csv_table",
    "bibtex": "bibtex",
    "csl-json": "csl_json",
    "arxiv-jsonl": "arxiv_jsonl",  # before jsonl, which would read it with fewer fields
    "jsonl": "jsonl",
}
FORMATS = tuple(_MODULES)
MAPPABLE = ("jsonl", "csv")  # the formats whose fields --map can point elsewhere


def module(fmt: str) -> ModuleType:
    """The source module for a format name."""
    if fmt not in _MODULES:
        raise FormatError(f"unknown format {fmt!r}; known formats: {', '.join(FORMATS)}")
    return importlib.import_module(f"{__name__}.{_MODULES[fmt]}")


def not_a_file(path: Path) -> str:
    """Why ``path`` cannot be read as a file (a directory, a device, nothing there)."""
    if path.is_dir():
        return f"{path} is a directory, not a file"
    return f"{path} is not a regular file" if path.exists() else f"{path}: no such file"


def reads_folders(fmt: str) -> bool:
    """Whether a format reads a folder (of its files) as well as a file."""
    return hasattr(module(fmt), "folder_files")


def check_path(path: Path, fmt: str | None) -> None:
    """FormatError unless ``path`` is a file, or a folder that ``fmt`` (or a format found there) reads."""
    if path.is_file():
        return
    if path.is_dir() and not path.is_symlink() and (reads_folders(fmt) if fmt else _folder_format(path)):
        return
    if path.is_dir():
        raise FormatError(f"{path} is a directory, not a file (only the abs format reads a folder, of .abs files)"
                          if fmt is None or fmt in _MODULES else not_a_file(path))
    raise FormatError(not_a_file(path))


def signature(path: Path, fmt: str) -> tuple[int, int]:
    """(size, mtime_ns) of a file, or of a folder's files that ``fmt`` reads (their total size,
    the newest change): what must stay the same for an interrupted ingest to resume."""
    if not path.is_dir():
        st = path.stat()
        return st.st_size, st.st_mtime_ns
    stats = [p.stat() for p in module(fmt).folder_files(path)]
    if not stats:
        raise FormatError(f"{path}: no {module(fmt).FOLDER_FILES} in this folder")
    return sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)


def _folder_format(path: Path) -> str | None:
    return next((f for f in FORMATS if reads_folders(f) and module(f).sniff_folder(path)), None)


def for_mapping(path: Path) -> str:
    """The format a file with a --map is read as: the detected one if --map applies to it, else jsonl."""
    try:
        fmt = detect(path)
    except FormatError:
        return "jsonl"
    return fmt if fmt in MAPPABLE else "jsonl"


def detect(path: Path) -> str:
    """The format of a file, from its first few KB (or of a folder, from its files); FormatError if
    none or the file is unreadable."""
    if path.is_dir() and not path.is_symlink() and (found := _folder_format(path)):
        return found
    if not path.is_file():
        raise FormatError(not_a_file(path))
    head = read_head(path)
    if not head.strip():
        raise FormatError(f"{path} is empty")
    for fmt in FORMATS:
        if module(fmt).sniff(path, head):
            return fmt
    raise FormatError(f"cannot tell the format of {path}; name it: paperboy ingest FORMAT PATH "
                      f"(formats: {', '.join(FORMATS)})")
