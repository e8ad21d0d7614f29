"""Whole tables row by row (``TableStore``): ``paperboy store copy`` and ``paperboy store check``.

A mixin of the SQL store. Table and column names come from ``TABLES`` and the schema, never from
input, so composing them into SQL is safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from .community import iso, utcnow
from .interfaces_tables import TABLES

KEYS = dict(TABLES)
UPSERT_PROGRESS = """INSERT INTO copy_progress (name, after_key, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET after_key = excluded.after_key, updated_at = excluded.updated_at"""
SELECT_PROGRESS = "SELECT name, after_key FROM copy_progress"
# Invariants every store keeps, whatever the backend: (problem, query counting offending rows).
INVARIANTS = (
    ("papers without any source", "SELECT COUNT(*) FROM papers p WHERE NOT EXISTS "
     "(SELECT 1 FROM paper_sources s WHERE s.paper_id = p.id)"),
    ("papers sharing a revision", "SELECT COUNT(*) FROM (SELECT rev FROM papers GROUP BY rev HAVING COUNT(*) > 1) AS d"),
    ("embeddings sharing a sequence number",
     "SELECT COUNT(*) FROM (SELECT model, seq FROM embeddings GROUP BY model, seq HAVING COUNT(*) > 1) AS d"),
    ("models with vectors of more than one size",
     "SELECT COUNT(*) FROM (SELECT model FROM embeddings GROUP BY model HAVING COUNT(DISTINCT length(vector)) > 1) AS d"),
    ("sent ledger rows of a missing digest", "SELECT COUNT(*) FROM sent s WHERE NOT EXISTS "
     "(SELECT 1 FROM digests d WHERE d.id = s.digest_id)"),
)
JSON_COLUMNS = (("papers", "id", ("authors", "categories", "versions", "links")),
                ("digests", "id", ("paper_ids", "trending_ids")), ("jobs", "id", ("payload",)))


def _table(table: str) -> tuple[str, ...]:
    if table not in KEYS:
        raise ValueError(f"not a copyable table: {table!r}")
    return KEYS[table]


class TablesMixin:
    conn: Any

    def table_columns(self, table: str) -> list[str]:
        _table(table)
        return self._columns(table)  # type: ignore[attr-defined]

    def table_rows(self, table: str, after: Sequence[Any] | None, limit: int) -> list[tuple[Any, ...]]:
        key = _table(table)
        cols = ", ".join(self.table_columns(table))
        where = f"WHERE ({', '.join(key)}) > ({', '.join('?' * len(key))})" if after is not None else ""
        sql = f"SELECT {cols} FROM {table} {where} ORDER BY {', '.join(key)} LIMIT ?"
        return [tuple(r) for r in self.conn.execute(sql, (*(after or ()), limit))]

    def load_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                  after: Sequence[Any] | None = None) -> int:
        _table(table)
        cols = list(columns)
        if unknown := set(cols) - set(self.table_columns(table)):
            raise ValueError(f"{table}: columns {sorted(unknown)} are not in this store's schema")
        sql = (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
               "ON CONFLICT DO NOTHING")
        with self._write() as c:  # type: ignore[attr-defined]
            inserted = c.executemany(sql, [tuple(r) for r in rows]).rowcount if rows else 0
            if after is not None:
                c.execute(UPSERT_PROGRESS, (table, orjson.dumps(list(after)).decode(), iso(utcnow())))
        self._after_load(table)
        return inserted

    def _after_load(self, table: str) -> None:
        """What a backend must do after rows came in with their ids (PostgreSQL: move identities on)."""

    def copy_progress(self) -> dict[str, list[Any]]:
        return {r[0]: orjson.loads(r[1]) for r in self.conn.execute(SELECT_PROGRESS)}

    def count_rows(self, table: str) -> int:
        _table(table)
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def check(self) -> list[str]:
        from .migrations import LATEST

        problems = list(self._engine_check())  # type: ignore[attr-defined]
        if (version := self.schema_version()) != LATEST:  # type: ignore[attr-defined]
            problems.append(f"schema version {version}, this paperboy expects {LATEST}")
        for what, sql in INVARIANTS:
            n = self.conn.execute(sql).fetchone()[0]
            if n:
                problems.append(f"{n} {what}")
        for table, key, cols in JSON_COLUMNS:
            bad = 0
            for row in self.conn.execute(f"SELECT {key}, {', '.join(cols)} FROM {table}"):
                try:
                    for v in tuple(row)[1:]:
                        orjson.loads(v)
                except (orjson.JSONDecodeError, TypeError):
                    bad += 1
            if bad:
                problems.append(f"{bad} {table} rows with JSON that does not parse")
        return problems
