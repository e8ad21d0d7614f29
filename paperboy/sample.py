"""The bundled sample corpus (built by scripts/build_sample.py) and how ``paperboy run`` ingests it.

Real CC0 arXiv metadata in two files, each read by an existing source: Kaggle-snapshot JSON lines
(papers of many arXiv fields, with categories where arXiv gave them) and a Daily Papers scrape (753
Hugging Face papers with their upvotes, the community signal of the daily lists and Trending).
Ingesting is idempotent: a second run finds every record unchanged and adds no upvotes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from importlib.resources import files
from pathlib import Path
from typing import Any

from .models import IngestSummary

# (file in paperboy/data, source format), in ingest order
FILES = (("sample.jsonl.gz", "kaggle"), ("sample_hf.json.gz", "hf-scrape"))

Progress = Callable[[int], None]


def paths() -> Iterator[tuple[Path, str]]:
    """Each sample file's path and format."""
    for name, fmt in FILES:
        yield Path(str(files("paperboy") / "data" / name)), fmt


def ingest_sample(engine: Any, progress: Callable[[str], AbstractContextManager[Progress]] | None = None
                  ) -> IngestSummary:
    """Ingest every sample file into ``engine``'s store; the summed summary. ``progress(name)``
    gives a context manager yielding a per-record callback (the CLI's progress bar)."""
    total = IngestSummary()
    for path, fmt in paths():
        if progress is None:
            s = engine.ingest(path, fmt)
        else:
            with progress(path.name) as bar:
                s = engine.ingest(path, fmt, progress=bar)
        total.add(s)
    return total
