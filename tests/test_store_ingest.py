import json
import sqlite3

import pytest

from conftest import DATA
from paperboy import ingest
from paperboy.models import PaperRecord
from paperboy.store.migrations import LATEST


def dump(store):
    return store.conn.execute("SELECT * FROM papers ORDER BY id").fetchall()


def rec(**kw):
    base = dict(source="t", source_id=None, title="A Paper", abstract="Text.")
    return PaperRecord(**(base | kw))


def test_schema_pragmas_and_migrations(store):
    assert store.schema_version() == LATEST
    assert store.migrate() == []  # idempotent
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    rows = store.conn.execute("SELECT version, name FROM schema_migrations").fetchall()
    assert [r[0] for r in rows] == list(range(1, LATEST + 1))


def test_reingest_changes_nothing(store):
    first = ingest.ingest_file(store, DATA / "kaggle_excerpt.jsonl", batch_size=5)
    assert (first.read, first.inserted, first.skipped) == (12, 12, 0)
    before = dump(store)
    again = ingest.ingest_file(store, DATA / "kaggle_excerpt.jsonl", batch_size=5)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 12)
    assert dump(store) == before
    assert store.conn.execute("SELECT COUNT(*) FROM paper_sources").fetchone()[0] == 12


def test_same_paper_from_two_sources_is_one_paper(store):
    ingest.ingest_file(store, DATA / "hf_scrape_excerpt.json")
    ingest.ingest_file(store, DATA / "hf_daily.json")
    assert store.stats()["papers"] == 6
    paper = store.get_paper("arXiv:2312.17653")
    assert {s["source"] for s in paper.sources} == {"hf-scrape", "hf-daily"}
    by_source = {s["source"]: s["extra"] for s in paper.sources}
    assert by_source["hf-daily"]["submitted_by"] == "akhaliq" and "upvotes" in by_source["hf-scrape"]


def test_title_only_record_merges_with_arxiv_paper_either_order(store):
    store.upsert_papers([rec(source="hf-page", title="Deep  {Learning} for Cats")])
    store.upsert_papers([rec(source="kaggle", source_id="2401.00001", arxiv_id="2401.00001",
                             title="Deep Learning for cats", authoritative=True, arxiv_version=1)])
    (paper_row,) = dump(store)
    assert paper_row["arxiv_id"] == "2401.00001" and paper_row["canonical_id"] == "arxiv:2401.00001"
    assert paper_row["title"] == "Deep Learning for cats"  # arXiv's metadata wins
    store.upsert_papers([rec(source="hf-page2", title="DEEP LEARNING FOR CATS")])
    assert len(dump(store)) == 1
    assert len(store.get_paper("2401.00001").sources) == 3


def test_different_arxiv_ids_with_same_title_stay_apart(store):
    store.upsert_papers([rec(source="a", source_id="1", arxiv_id="2401.00001", title="Introduction"),
                         rec(source="a", source_id="2", arxiv_id="2401.00002", title="Introduction")])
    assert len(dump(store)) == 2


def test_versions_keep_latest_and_remember_others(store):
    v2 = rec(source="kaggle", source_id="2401.00001", arxiv_id="2401.00001", title="New title",
             arxiv_version=2, versions={1: "2024-01-01", 2: "2024-02-01"}, authoritative=True)
    v1 = rec(source="arxiv-api", source_id="2401.00001", arxiv_id="2401.00001", title="Old title",
             arxiv_version=1, versions={1: "2024-01-01"}, authoritative=True)
    store.upsert_papers([v1])
    counts = store.upsert_papers([v2])
    assert counts.updated == 1
    counts = store.upsert_papers([rec(source="arxiv-api", source_id="2401.00001", arxiv_id="2401.00001",
                                      title="Old title", arxiv_version=1, authoritative=True)])
    p = store.get_paper("2401.00001v1")
    assert (p.title, p.arxiv_version, p.versions) == ("New title", 2, {1: "2024-01-01", 2: "2024-02-01"})
    other = rec(source="bibtex", source_id="k", arxiv_id="2401.00001", title="Zotero's title", doi="10.1000/x")
    store.upsert_papers([other])
    p = store.get_paper("doi:10.1000/x")
    assert p.title == "New title" and p.doi == "10.1000/x"  # others only fill blanks


def test_malformed_records_are_reported_and_skipped(store, tmp_path):
    good = (DATA / "kaggle_excerpt.jsonl").read_bytes().splitlines()
    bad_title = json.loads(good[2]) | {"title": "  "}
    long_abs = json.loads(good[3]) | {"abstract": "x" * 200_000}
    lines = [good[0], good[1], b'{"id": "0704.9999", "title": broken', json.dumps(bad_title).encode(),
             json.dumps(long_abs).encode(), b'{"id": "0704.0005", "title": "caf\xe9"}', good[6]]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    s = ingest.ingest_file(store, path, "kaggle")
    assert (s.read, s.inserted, s.skipped) == (7, 3, 4)
    assert f"{path}:3: invalid JSON" in s.errors[0]
    assert "missing title" in s.errors[1] and "0704.0003" in s.errors[1]
    assert "too long" in s.errors[2]
    assert s.errors[3].startswith(f"{path}:6: invalid UTF-8")
    run = store.stats()["recent_runs"][0]
    assert run["status"] == "partial" and run["counts"]["skipped"] == 4


def test_interrupted_ingest_resumes_after_last_committed_batch(store):
    seen = []

    def crash(n):
        seen.append(n)
        if len(seen) == 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest.ingest_file(store, DATA / "quant_ph_excerpt.jsonl", batch_size=10, progress=crash)
    assert store.stats()["papers"] == 20  # two whole batches committed, the third rolled back
    assert store.stats()["recent_runs"][0]["status"] == "failed"
    s = ingest.ingest_file(store, DATA / "quant_ph_excerpt.jsonl", batch_size=10)
    assert (s.resumed_from, s.read, s.inserted) == (20, 20, 20)
    assert store.stats()["papers"] == 40
    # a complete file is read whole again next time, and changes nothing
    s = ingest.ingest_file(store, DATA / "quant_ph_excerpt.jsonl", batch_size=10)
    assert (s.resumed_from, s.unchanged) == (0, 40)


def test_second_writer_waits_instead_of_failing(store, tmp_path):
    from paperboy.store.sqlite import SQLiteStore

    other = SQLiteStore(store.path, busy_timeout=5)
    store.conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError):
        SQLiteStore(store.path, busy_timeout=0.1).upsert_papers([rec(source="x", source_id="1")])
    store.conn.execute("COMMIT")
    assert other.upsert_papers([rec(source="x", source_id="1")]).inserted == 1
    other.close()


def test_a_read_open_in_one_thread_neither_blocks_nor_sees_another_threads_write(tmp_path):
    """Each thread has its own connection: a read left open in one thread, while another process
    commits, used to make the next write of any thread answer 'database is locked' until the read
    ended; and a thread's uncommitted rows were visible to the others."""
    import threading

    from paperboy.store.sqlite import SQLiteStore

    store, other = SQLiteStore(tmp_path / "s.sqlite3", busy_timeout=2), SQLiteStore(tmp_path / "s.sqlite3")
    store.migrate()
    store.upsert_papers([rec(source="x", source_id=str(i), title=f"Paper {i}") for i in range(3)])
    opened, done = threading.Event(), threading.Event()

    def reader() -> None:
        cursor = store.conn.execute("SELECT id FROM papers")
        cursor.fetchone()  # the read stays open until the cursor goes
        opened.set()
        done.wait(30)
        cursor.close()

    t = threading.Thread(target=reader)
    t.start()
    assert opened.wait(30)
    try:
        other.upsert_papers([rec(source="x", source_id="other", title="Theirs")])  # another process commits
        assert store.upsert_papers([rec(source="x", source_id="mine", title="Mine")]).inserted == 1  # not 'locked'
        seen: list[int] = []
        with pytest.raises(RuntimeError, match="undo"), store._write() as c:
            c.execute("DELETE FROM paper_sources")
            peek = threading.Thread(target=lambda: seen.append(store.conn.execute(
                "SELECT COUNT(*) FROM paper_sources").fetchone()[0]))
            peek.start()
            peek.join(30)
            raise RuntimeError("undo")  # rolled back
        assert seen == [5] and store.conn.execute("SELECT COUNT(*) FROM paper_sources").fetchone()[0] == 5  # the other thread saw the committed rows, not this open deletion
    finally:
        done.set()
        t.join(30)
    store.close()
    other.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        store.max_rev()


def test_hostile_html_is_stored_verbatim_as_text(store):
    title = '<script>alert(1)</script> & "quotes" <b>bold</b>'
    store.upsert_papers([rec(source="x", source_id="h", title=title, abstract="<img src=x onerror=alert(1)>")])
    (row,) = dump(store)
    assert row["title"] == title and row["abstract"] == "<img src=x onerror=alert(1)>"


def test_upgrade_from_schema_1_keeps_papers_and_gives_them_a_rev(tmp_path):
    from paperboy.store.migrations import MIGRATIONS
    from paperboy.store.sqlite import CREATE_MIGRATIONS, SQLiteStore

    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.execute(CREATE_MIGRATIONS)
    old.executescript(MIGRATIONS[0][2].format(pk="INTEGER PRIMARY KEY"))
    old.execute("INSERT INTO schema_migrations VALUES (1, 'v1', '2026-01-01')")
    old.execute("INSERT INTO papers (canonical_id, title, title_key, created_at, modified_at) "
                "VALUES ('arxiv:2401.00001', 'Old paper', 'oldpaper', 'x', 'x')")
    old.commit()
    old.close()
    store = SQLiteStore(path)
    assert store.migrate() == list(range(2, LATEST + 1))
    assert [(p["title"], p["rev"]) for p in store.papers_since(0)] == [("Old paper", 1)]
    store.upsert_papers([rec(source="x", source_id="n", title="New paper")])
    assert store.max_rev() == 2
    store.close()
