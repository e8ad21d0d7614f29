from pathlib import Path

import pytest

from paperboy.store.sqlite import SQLiteStore

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "store.sqlite3")
    s.migrate()
    yield s
    s.close()


def shared(rel: str) -> Path:
    """A file of the real data in ../shared/data; skips where a checkout has no shared/ beside it."""
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"needs ../shared/data/{rel}")
    return path
