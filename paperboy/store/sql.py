"""The SQL shared by the SQLite and PostgreSQL backends: papers, sources, embeddings, cursors, runs.

SQL is written once, in SQLite's dialect with ``?`` placeholders; the PostgreSQL backend translates
the few differences (see ``postgres.translate``). A backend supplies the connection (``self.conn``,
with ``execute`` / ``executemany`` returning cursors with ``fetchone``, ``fetchall``, ``rowcount``,
``lastrowid``), ``_write(lock)`` (one write transaction; PostgreSQL takes the named advisory lock first,
SQLite has one writer anyway), ``migrate``, ``backup`` and ``close``.

``rev`` and ``seq`` are assigned as ``MAX() + 1`` inside a write transaction that holds the
``papers`` (``embeddings``) lock: such transactions commit one after the other, in revision order, so
a follower that reads ``rev > watermark`` never misses a row that commits later with a smaller
revision (see ``tests/test_store_contract.py::test_followers_never_skip_concurrent_commits``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any

import orjson

from ..models import Paper, PaperRecord
from ..normalize import normalize_doi, parse_arxiv_id
from ..records import PaperText
from . import merge as m
from .base import Store, UpsertCounts
from .community import CommunityMixin
from .jobs import JobsMixin
from .library import LibraryMixin
from .migrations import MIGRATIONS
from .tables import TablesMixin

SELECT_BY_SOURCE = "SELECT source_id, paper_id FROM paper_sources WHERE source = ? AND source_id IN ({})"
SELECT_PAPERS = "SELECT id, {} FROM papers WHERE id IN ({{}})".format(", ".join(m.COLUMNS))
SELECT_IDS_BY = "SELECT id, {col} FROM papers WHERE {col} IN ({{}})"
INSERT_PAPER = "INSERT INTO papers ({}, created_at, modified_at, rev) VALUES ({}, ?, ?, ?)".format(
    ", ".join(m.COLUMNS), ", ".join("?" * len(m.COLUMNS)))
UPDATE_PAPER = "UPDATE papers SET {}, modified_at = ?, rev = ? WHERE id = ?".format(
    ", ".join(f"{c} = ?" for c in m.COLUMNS))
SELECT_MAX_REV = "SELECT COALESCE(MAX(rev), 0) FROM papers"
SELECT_UPLOADS_ONLY = """SELECT p.id FROM papers p WHERE p.id IN ({}) AND NOT EXISTS
(SELECT 1 FROM paper_sources y WHERE y.paper_id = p.id AND y.source != 'upload')"""
SELECT_SINCE = """SELECT id, rev, canonical_id, title, abstract, authors, categories, primary_category, submitted,
arxiv_id, doi, comments FROM papers WHERE rev > ? ORDER BY rev LIMIT ?"""
SELECT_PAPERS_FULL = "SELECT * FROM papers WHERE id IN ({})"
_PUBLIC = "EXISTS (SELECT 1 FROM paper_sources y WHERE y.paper_id = papers.id AND y.source != 'upload')"
PAGE_DATED = f"""SELECT * FROM papers WHERE submitted IS NOT NULL {{}} AND {_PUBLIC}
ORDER BY submitted DESC, id DESC LIMIT ?"""
PAGE_DATED_AFTER = "AND (submitted < ? OR (submitted = ? AND id < ?))"
PAGE_UNDATED = f"SELECT * FROM papers WHERE submitted IS NULL AND id < ? AND {_PUBLIC} ORDER BY id DESC LIMIT ?"
SELECT_EMB_HASHES = "SELECT paper_id, content_hash FROM embeddings WHERE model = ? AND paper_id IN ({})"
SELECT_EMB_BY_HASH = "SELECT content_hash, vector FROM embeddings WHERE model = ? AND content_hash IN ({})"
SELECT_MAX_SEQ = "SELECT COALESCE(MAX(seq), 0) FROM embeddings WHERE model = ?"
UPSERT_EMB = """INSERT INTO embeddings (model, paper_id, content_hash, vector, seq) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (model, paper_id) DO UPDATE SET content_hash = excluded.content_hash,
vector = excluded.vector, seq = excluded.seq"""
SELECT_EMB_SINCE = "SELECT paper_id, seq, vector FROM embeddings WHERE model = ? AND seq > ? ORDER BY seq LIMIT ?"
SELECT_VOTES = """SELECT paper_id, MAX(CAST(json_extract(extra, '$.upvotes') AS INTEGER))
FROM paper_sources WHERE extra IS NOT NULL AND paper_id IN ({}) GROUP BY paper_id"""
COUNT_EMB = "SELECT COUNT(*) FROM embeddings WHERE model = ?"
UPSERT_SOURCE = """INSERT INTO paper_sources (source, source_id, paper_id, first_seen, extra)
VALUES (?, ?, ?, ?, ?) ON CONFLICT (source, source_id) DO UPDATE SET extra = excluded.extra
WHERE paper_sources.extra IS NOT excluded.extra"""
UPSERT_CURSOR = """INSERT INTO cursors (name, value, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"""
SELECT_CURSOR = "SELECT value FROM cursors WHERE name = ?"
SELECT_PAPER_BY = "SELECT * FROM papers WHERE {} = ?"
SELECT_SOURCES_OF = "SELECT source, source_id, first_seen, extra FROM paper_sources WHERE paper_id = ? ORDER BY first_seen, source"
INSERT_RUN = "INSERT INTO ingest_runs (source, target, started_at, status) VALUES (?, ?, ?, 'running')"
FINISH_RUN = "UPDATE ingest_runs SET finished_at = ?, status = ?, counts = ?, errors = ? WHERE id = ?"
STATS_QUERIES = {
    "papers": "SELECT COUNT(*) FROM papers",
    "with_arxiv_id": "SELECT COUNT(*) FROM papers WHERE arxiv_id IS NOT NULL",
    "with_abstract": "SELECT COUNT(*) FROM papers WHERE abstract != ''",
    "first_date": "SELECT MIN(submitted) FROM papers",
    "last_date": "SELECT MAX(submitted) FROM papers",
}
STATS_BY_SOURCE = "SELECT source, COUNT(*) FROM paper_sources GROUP BY source ORDER BY 2 DESC"
STATS_BY_YEAR = "SELECT substr(submitted, 1, 4) AS y, COUNT(*) FROM papers WHERE submitted IS NOT NULL GROUP BY y ORDER BY y"
STATS_BY_CATEGORY = "SELECT primary_category, COUNT(*) FROM papers WHERE primary_category IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 15"
STATS_RUNS = "SELECT id, source, target, started_at, finished_at, status, counts FROM ingest_runs ORDER BY id DESC LIMIT 5"
CREATE_MIGRATIONS = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"""
SELECT_VERSION = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"
INSERT_MIGRATION = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"
CHUNK = 500  # parameters per IN (...) lookup, well under SQLite's and PostgreSQL's limits


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _paper(row: Any) -> Paper:
    return Paper(
        id=row["id"], canonical_id=row["canonical_id"], title=row["title"],
        abstract=row["abstract"], authors=orjson.loads(row["authors"]),
        arxiv_id=row["arxiv_id"], arxiv_version=row["arxiv_version"],
        versions={int(k): v for k, v in orjson.loads(row["versions"]).items()},
        doi=row["doi"], categories=orjson.loads(row["categories"]),
        primary_category=row["primary_category"], submitted=row["submitted"],
        updated=row["updated"], links=orjson.loads(row["links"]), comments=row["comments"],
        journal_ref=row["journal_ref"])


class SQLStore(CommunityMixin, LibraryMixin, JobsMixin, TablesMixin, Store):
    """What both SQL backends share; a backend adds the connection, transactions and lifecycle."""

    conn: Any
    #: what the driver raises for a broken UNIQUE or foreign key constraint
    _integrity_errors: tuple[type[Exception], ...] = ()
    #: how a job claim locks the row it takes (PostgreSQL: ``FOR UPDATE SKIP LOCKED``)
    _skip_locked = ""

    def _write(self, lock: str | None = "writer") -> AbstractContextManager[Any]:
        """One write transaction, holding ``lock`` for its length: transactions naming the same lock
        run one at a time (``writer``, the default, serializes read-modify-write transactions as
        SQLite's single writer does). ``None``: the transaction is safe without one (single
        statements; claims by row lock)."""
        raise NotImplementedError

    @staticmethod
    def _apply_migrations(c: Any, ddl: Callable[[str], str]) -> list[int]:
        """Inside a write transaction: every migration newer than the recorded version, its SQL
        passed through the backend's ``ddl``; returns the versions applied."""
        c.execute(CREATE_MIGRATIONS)
        current = c.execute(SELECT_VERSION).fetchone()[0]
        applied = []
        for version, name, sql in MIGRATIONS:
            if version > current:
                for stmt in ddl(sql).split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                c.execute(INSERT_MIGRATION, (version, name, now()))
                applied.append(version)
        return applied

    # -- ingest ---------------------------------------------------------------------------------

    def _lookup(self, sql: str, keys: Sequence[Any], *params: Any) -> list[Any]:
        rows: list[Any] = []
        keys = list(dict.fromkeys(k for k in keys if k))
        for i in range(0, len(keys), CHUNK):
            chunk = keys[i:i + CHUNK]
            rows += self.conn.execute(sql.format(",".join("?" * len(chunk))), (*params, *chunk)).fetchall()
        return rows

    def upsert_papers(self, records: Sequence[PaperRecord],
                      cursor: tuple[str, dict[str, Any]] | None = None) -> UpsertCounts:
        counts, ts = UpsertCounts(), now()
        with self._write("papers") as c:
            rev = c.execute(SELECT_MAX_REV).fetchone()[0]
            by_source: dict[tuple[str, str], int] = {}
            for source in {r.source for r in records}:
                sids = [m.source_id_of(r) for r in records if r.source == source]
                for row in self._lookup(SELECT_BY_SOURCE, sids, source):
                    by_source[(source, row[0])] = row[1]
            keys: dict[str, dict[str, list[int]]] = {"arxiv_id": {}, "doi": {}, "title_key": {}}
            # Look up only what can still match: most records of a re-ingest match by source id,
            # most arXiv records by arXiv id; DOI and title lookups are for the rest.
            rest = [r for r in records if (r.source, m.source_id_of(r)) not in by_source]
            for row in self._lookup(SELECT_IDS_BY.format(col="arxiv_id"), [r.arxiv_id for r in rest]):
                keys["arxiv_id"].setdefault(row[1], []).append(row[0])
            rest = [r for r in rest if r.arxiv_id not in keys["arxiv_id"]]
            wanted = {"doi": [r.doi for r in rest],
                      "title_key": [m.title_key(r.title) for r in rest if r.match_title]}
            for col, vals in wanted.items():
                for row in self._lookup(SELECT_IDS_BY.format(col=col), vals):
                    keys[col].setdefault(row[1], []).append(row[0])
            ids = set(by_source.values()) | {i for d in keys.values() for v in d.values() for i in v}
            rows = {r[0]: dict(zip(m.COLUMNS, tuple(r)[1:])) for r in self._lookup(SELECT_PAPERS, list(ids))}

            sources: dict[tuple[str, str], tuple[Any, ...]] = {}  # the last record of a source id wins
            for rec in records:
                sid = m.source_id_of(rec)
                pid = m.match(rec, sid, by_source, keys, rows)
                if pid is None:
                    new = m.record_row(rec)
                    rev += 1
                    pid = c.execute(INSERT_PAPER, (*new.values(), ts, ts, rev)).lastrowid
                    counts.inserted += 1
                else:
                    new = m.merge(rows[pid], rec)
                    if new != rows[pid]:
                        rev += 1
                        c.execute(UPDATE_PAPER, (*new.values(), ts, rev, pid))
                        counts.updated += 1
                    else:
                        counts.unchanged += 1
                rows[pid] = new
                by_source[(rec.source, sid)] = pid
                for col in keys:
                    if new[col] and pid not in keys[col].setdefault(new[col], []):
                        keys[col][new[col]].append(pid)
                sources[(rec.source, sid)] = (rec.source, sid, pid, ts, m.dumps(rec.extra) if rec.extra else None)
            c.executemany(UPSERT_SOURCE, list(sources.values()))  # one batch, not a round trip per record
            if cursor:
                c.execute(UPSERT_CURSOR, (cursor[0], m.dumps(cursor[1]), ts))
        return counts

    # -- reads ----------------------------------------------------------------------------------

    def get_paper(self, ref: str) -> Paper | None:
        ref = ref.strip()
        row = None
        if ref.isascii() and ref.isdigit() and len(ref) <= 18:  # "²" is a digit to str.isdigit
            row = self.conn.execute(SELECT_PAPER_BY.format("id"), (int(ref),)).fetchone()
        if row is None and ":" in ref and ref.split(":", 1)[0] in ("arxiv", "doi", "title"):
            row = self.conn.execute(SELECT_PAPER_BY.format("canonical_id"), (ref,)).fetchone()
        if row is None and (parsed := parse_arxiv_id(ref)):
            row = self.conn.execute(SELECT_PAPER_BY.format("arxiv_id"), (parsed[0],)).fetchone()
        if row is None and (doi := normalize_doi(ref)):
            row = self.conn.execute(SELECT_PAPER_BY.format("doi"), (doi,)).fetchone()
        if row is None:
            return None
        paper = _paper(row)
        paper.sources = [{"source": s[0], "source_id": s[1], "first_seen": s[2],
                          "extra": orjson.loads(s[3]) if s[3] else {}}
                         for s in self.conn.execute(SELECT_SOURCES_OF, (row["id"],))]
        return paper

    def get_papers(self, ids: Sequence[int]) -> dict[int, Paper]:
        return {r["id"]: _paper(r) for r in self._lookup(SELECT_PAPERS_FULL, list(ids))}

    def paper_page(self, after: tuple[str | None, int] | None, limit: int) -> list[Paper]:
        rows: list[Any] = []
        if after is None:
            rows = self.conn.execute(PAGE_DATED.format(""), (limit,)).fetchall()
        elif after[0] is not None:
            rows = self.conn.execute(PAGE_DATED.format(PAGE_DATED_AFTER), (after[0], after[0], after[1], limit)).fetchall()
        if len(rows) < limit:  # the dated papers are done: the undated ones follow
            before = after[1] if after is not None and after[0] is None else 2**63 - 1
            rows += self.conn.execute(PAGE_UNDATED, (before, limit - len(rows))).fetchall()
        return [_paper(r) for r in rows]

    def votes(self, ids: Sequence[int]) -> dict[int, int]:
        """Upvotes per paper: the most any source reported (Hugging Face) plus members' votes."""
        out = self.source_upvotes(ids)
        for pid, n in self.member_votes(ids).items():
            out[pid] = out.get(pid, 0) + n
        return out

    def paper_ids_by_source(self, source: str, source_ids: Sequence[str]) -> dict[str, int]:
        return {r[0]: r[1] for r in self._lookup(SELECT_BY_SOURCE, list(source_ids), source)}

    def source_upvotes(self, ids: Sequence[int]) -> dict[int, int]:
        return {r[0]: r[1] or 0 for r in self._lookup(SELECT_VOTES, list(ids))}

    def uploads_only(self, ids: Sequence[int]) -> set[int]:
        return {r[0] for r in self._lookup(SELECT_UPLOADS_ONLY, list(ids))}

    def max_rev(self) -> int:
        return int(self.conn.execute(SELECT_MAX_REV).fetchone()[0])

    def papers_since(self, rev: int, limit: int = 5000) -> list[PaperText]:
        out = []
        for r in self.conn.execute(SELECT_SINCE, (rev, limit)):
            d = dict(r)
            d["authors"], d["categories"] = orjson.loads(d["authors"]), orjson.loads(d["categories"])
            out.append(d)
        return out

    # -- embeddings -----------------------------------------------------------------------------

    def embedding_hashes(self, model: str, ids: Sequence[int]) -> dict[int, str]:
        return dict(tuple(r) for r in self._lookup(SELECT_EMB_HASHES, list(ids), model))

    def vectors_by_hash(self, model: str, hashes: Sequence[str]) -> dict[str, bytes]:
        return dict(tuple(r) for r in self._lookup(SELECT_EMB_BY_HASH, list(hashes), model))

    def put_embeddings(self, model: str, rows: Sequence[tuple[int, str, bytes]],
                       cursor: tuple[str, dict[str, Any]] | None = None) -> None:
        with self._write("embeddings") as c:
            seq = c.execute(SELECT_MAX_SEQ, (model,)).fetchone()[0]
            c.executemany(UPSERT_EMB, [(model, pid, h, blob, seq + i + 1)
                                       for i, (pid, h, blob) in enumerate(rows)])
            if cursor:
                c.execute(UPSERT_CURSOR, (cursor[0], m.dumps(cursor[1]), now()))

    def embeddings_since(self, model: str, seq: int, limit: int = 10000) -> list[tuple[int, int, bytes]]:
        return [tuple(r) for r in self.conn.execute(SELECT_EMB_SINCE, (model, seq, limit))]

    def count_embeddings(self, model: str) -> int:
        return int(self.conn.execute(COUNT_EMB, (model,)).fetchone()[0])

    def get_cursor(self, name: str) -> dict[str, Any] | None:
        row = self.conn.execute(SELECT_CURSOR, (name,)).fetchone()
        return orjson.loads(row[0]) if row else None

    def set_cursor(self, name: str, value: dict[str, Any]) -> None:
        with self._write(None) as c:
            c.execute(UPSERT_CURSOR, (name, m.dumps(value), now()))

    def start_run(self, source: str, target: str) -> int:
        with self._write(None) as c:
            return int(c.execute(INSERT_RUN, (source, target, now())).lastrowid)

    def finish_run(self, run_id: int, status: str, counts: dict[str, int], errors: list[str]) -> None:
        with self._write(None) as c:
            c.execute(FINISH_RUN, (now(), status, m.dumps(counts), m.dumps(errors[:1000]), run_id))


    def stats(self) -> dict[str, Any]:
        q = self.conn.execute
        out: dict[str, Any] = {k: q(sql).fetchone()[0] for k, sql in STATS_QUERIES.items()}
        out["schema_version"] = self.schema_version()
        out["by_source"] = dict(q(STATS_BY_SOURCE).fetchall())
        out["by_year"] = dict(q(STATS_BY_YEAR).fetchall())
        out["top_categories"] = dict(q(STATS_BY_CATEGORY).fetchall())
        out["recent_runs"] = [dict(r) | {"counts": orjson.loads(r["counts"])} for r in q(STATS_RUNS)]
        return out
