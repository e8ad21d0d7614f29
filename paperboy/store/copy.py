"""``paperboy store copy FROM TO``: every table of one store into another (SQLite -> PostgreSQL to
move a laptop instance to a server, or back), keys and ids kept, in keyset pages that commit with
their progress: an interrupted copy run again goes on where it stopped. The counts of every table
are compared at the end. Derived indexes are not copied: each host rebuilds its own from the store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import StoreError
from .base import TABLES, Store

PAGE = 2000


def copy_store(src: Store, dst: Store, *, page: int = PAGE,
               progress: Callable[[str, int], None] | None = None) -> dict[str, dict[str, int]]:
    """Copy ``src`` into ``dst`` (empty, or holding an interrupted copy); per table: rows copied in
    this run and rows in each store at the end. Raises ``StoreError`` when the counts differ."""
    done = dst.copy_progress()
    if not done and any(dst.count_rows(t) for t, _ in TABLES):
        raise StoreError("the target store is not empty (and holds no interrupted copy): copy into a new database")
    out: dict[str, dict[str, int]] = {}
    for table, key in TABLES:
        columns = src.table_columns(table)
        index = [columns.index(k) for k in key]
        after: list[Any] | None = done.get(table)
        copied = 0
        while rows := src.table_rows(table, after, page):
            after = [rows[-1][i] for i in index]
            copied += dst.load_rows(table, columns, rows, after=after)
            if progress:
                progress(table, len(rows))
        out[table] = {"copied": copied, "source": src.count_rows(table), "target": dst.count_rows(table)}
    wrong = {t: c for t, c in out.items() if c["source"] != c["target"]}
    if wrong:
        raise StoreError("counts differ after the copy (was the source written meanwhile?): "
                         + "; ".join(f"{t}: {c['source']} vs {c['target']}" for t, c in wrong.items()))
    return out
