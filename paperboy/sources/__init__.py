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
    "bibtex": "bibtex",
    "csl-json": "csl_json",
    "jsonl": "jsonl",
}
FORMATS = tuple(_MODULES)


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


def detect(path: Path) -> str:
    """The format of a file, from its first few KB; FormatError if none or the file is unreadable."""
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
