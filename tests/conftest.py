"""Shared fixtures. ``PAPERBOY_TEST_STORE=postgres`` runs the tests on PostgreSQL instead of SQLite:
every test then gets a fresh database on the test server (``pgserver.py``) as ``PAPERBOY_STORE``,
which every engine, CLI command and server the test starts uses; ``engine`` copies the built home's
store into it (``store copy``) and removes the SQLite file. ``.ci/run`` runs the web, digest, job and
crash tests that way as well as on SQLite."""

import os
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from paperboy.engine import Engine
from paperboy.store.sqlite import SQLiteStore
from support import Inbox, chromium, smtp_server

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


ON_POSTGRES = os.environ.get("PAPERBOY_TEST_STORE") == "postgres"


@pytest.fixture(autouse=True)
def store_url(monkeypatch):
    """The store URL of this test: 'sqlite' (the home's file), or a fresh PostgreSQL database."""
    if not ON_POSTGRES:
        yield "sqlite"
        return
    from pgserver import fresh_database

    with fresh_database() as url:
        monkeypatch.setenv("PAPERBOY_STORE", url)
        yield url


@pytest.fixture
def store(tmp_path, store_url):
    if ON_POSTGRES:
        from paperboy.store.postgres import PostgresStore

        s = PostgresStore(store_url, pool_size=4)
    else:
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
    with Engine.from_settings(home=home, store="sqlite") as e:
        for name in ("quant_ph_excerpt.jsonl", "kaggle_excerpt.jsonl", "hf_daily.json"):
            e.ingest(DATA / name)
        counts = e.embed()
    return home, counts


@pytest.fixture
def built_home(built, tmp_path, store_url) -> Path:
    """A private copy of ``built``'s home (on PostgreSQL: its store copied to the test's database,
    as `paperboy store copy` does, and the SQLite file gone)."""
    home = tmp_path / "home"
    shutil.copytree(built[0], home)
    if ON_POSTGRES:
        from paperboy.store import open_store
        from paperboy.store.copy import copy_store

        with open_store("sqlite", home) as src, open_store(store_url, home, 4) as dst:
            copy_store(src, dst)
        for f in home.glob("paperboy.sqlite3*"):
            f.unlink()
    return home


@pytest.fixture
def engine(built_home):
    """An engine over a private copy of ``built`` (with a fixed secret key)."""
    with Engine.from_settings(home=built_home, secret_key="test-key") as e:
        yield e


@pytest.fixture
def client(engine):
    """The web app over ``engine``, in-process."""
    from paperboy.web.app import create_app

    with TestClient(create_app(engine)) as c:
        yield c
