import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from paperboy.engine import Engine
from paperboy.store.sqlite import SQLiteStore
from support import Inbox, chromium, smtp_server

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


@pytest.fixture
def smtp():
    """A local SMTP server and what it received: ``(controller, Inbox)``."""
    inbox = Inbox()
    with smtp_server(inbox) as controller:
        yield controller, inbox


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for the browser tests (one per module)."""
    with chromium() as b:
        yield b


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """A home with 56 real papers embedded by the real model, built once per session (copy it
    before changing it)."""
    home = tmp_path_factory.mktemp("search-home")
    with Engine.from_settings(home=home) as e:
        for name in ("quant_ph_excerpt.jsonl", "kaggle_excerpt.jsonl", "hf_daily.json"):
            e.ingest(DATA / name)
        counts = e.embed()
    return home, counts


@pytest.fixture
def engine(built, tmp_path):
    """An engine over a private copy of ``built`` (with a fixed secret key)."""
    home = tmp_path / "home"
    shutil.copytree(built[0], home)
    with Engine.from_settings(home=home, secret_key="test-key") as e:
        yield e


@pytest.fixture
def client(engine):
    """The web app over ``engine``, in-process."""
    from paperboy.web.app import create_app

    with TestClient(create_app(engine)) as c:
        yield c
