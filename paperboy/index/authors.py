"""Author key -> papers, kept in a SQLite file of the home (``index/authors/``) that follows the
store like the other derived indexes: ``sync`` reads the papers changed since the last revision it
saw (``papers_since``), so a new or changed paper costs only itself, a restart rebuilds nothing,
and memory stays flat whatever the corpus (a dict-based index grew 2 KB a paper). The initials
rule (``paperboy/authors.py``) is applied per surname and first initial (a *block*, a handful of
names), on demand, and cached until a paper of that block changes: a new "Jane Smith" makes "J.
Smith" ambiguous again at once. Several processes may follow one file: each block one of them
changes is logged, and the others drop their cached copy of it when they next sync.

Lookups are a few indexed reads plus a sort of one author's papers (well under a millisecond to
a few milliseconds); the first ``sync`` of a store reads every paper once.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..authors import Name, compatible, parse

if TYPE_CHECKING:
    from ..store import Store

MAX_AUTHORS = 200  # per paper: the rest of a 3,000-author collaboration list is not indexed
LAYOUT = "2"
CACHED_BLOCKS = 2048  # blocks whose merges and paper lists are kept in memory (LRU)
KEEP_TOUCHED = 200_000  # logged block changes kept for other processes following the file
log = logging.getLogger("paperboy.authors")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS forms (key TEXT PRIMARY KEY, block TEXT NOT NULL, abbreviated INTEGER NOT NULL,
                                  form BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS forms_block ON forms (block);
CREATE TABLE IF NOT EXISTS occ (paper_id INTEGER NOT NULL, pos INTEGER NOT NULL, key TEXT NOT NULL,
                                shown TEXT NOT NULL, form BLOB NOT NULL, PRIMARY KEY (paper_id, pos)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS occ_key ON occ (key, paper_id);
CREATE TABLE IF NOT EXISTS dates (paper_id INTEGER PRIMARY KEY, day TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS touched (seq INTEGER PRIMARY KEY, block TEXT NOT NULL);
"""
IDS = "(SELECT value FROM json_each(?))"  # a list of any length as one parameter


def _full_date(day: str) -> bool:
    """A YYYY-MM-DD date ("2025" or "2025-08" would sort above every full date of 2025)."""
    try:
        return len(day) == 10 and date.fromisoformat(day).isoformat() == day
    except ValueError:
        return False


def _dump(n: Name) -> bytes:
    return orjson.dumps([n.given, n.initials, n.surname, n.org, n.sig])


def _load(key: str, blob: bytes) -> Name:
    given, initials, surname, org, sig = orjson.loads(blob)
    return Name(key, tuple(given), tuple(initials), surname, org, sig)


def _ids(ids: Iterable[Any]) -> str:
    return orjson.dumps(list(ids)).decode()  # text: SQLite 3.45+ reads a BLOB as JSONB


def _damaged(e: sqlite3.DatabaseError) -> bool:
    """The file is corrupt or not a database; not busy, full, closed or misused (those pass through)."""
    return (getattr(e, "sqlite_errorcode", 0) & 0xFF) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


class AuthorIndex:
    """Which papers each author key has, who wrote with whom, and the initials rule; ``directory``
    None keeps it in memory (tests, one-off tools)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._lock = threading.RLock()  # one connection: reads are short, a sync writes in chunks
        self._syncing = threading.Lock()
        self._cache: OrderedDict[str, dict[str, Any]] = OrderedDict()  # block -> merges, paper lists
        self._db = self._open()

    # -- the file -------------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if self.directory is None:
            return self._prepare(sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None))
        path = self.directory / "authors.sqlite3"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            db = self._prepare(sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None))
            if self._meta(db, "layout") == LAYOUT:
                return db
            db.close()
            why = "it was written by another version"
        except sqlite3.DatabaseError as e:
            if not _damaged(e):
                raise
            why = str(e)
        log.warning("rebuilding the author index from the store: %s", why)
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        return self._prepare(sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None))

    def _prepare(self, db: sqlite3.Connection) -> sqlite3.Connection:
        for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA cache_size=-8000"):
            db.execute(pragma)
        db.executescript(SCHEMA)
        if self._meta(db, "layout") is None:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('layout', ?)", (LAYOUT,))
        self.synced = int(self._meta(db, "synced") or 0)
        self.newest = self._meta(db, "newest") or ""  # the newest full date of a public paper
        self._seen = int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM touched").fetchone()[0])
        return db

    @staticmethod
    def _meta(db: sqlite3.Connection, name: str) -> str | None:
        row = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __len__(self) -> int:
        return int(self._q("SELECT COUNT(*) FROM forms")[0][0])

    def _q(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as e:
                if not _damaged(e) or self.directory is None:
                    raise
                self._db.close()  # damaged: emptied now, filled again by the next sync
                shutil.rmtree(self.directory, ignore_errors=True)
                log.warning("rebuilding the author index from the store: %s", e)
                self.synced, self.newest = 0, ""
                self._cache.clear()
                self._db = self._open()
                return self._db.execute(sql, params).fetchall()

    # -- following the store --------------------------------------------------------------------

    def sync(self, store: Store, chunk: int = 2000) -> int:
        """Index the papers changed since the file's revision; returns how many this call indexed.
        One thread syncs at a time (the others wait for it, then find little or nothing left);
        lookups meanwhile see the chunks committed so far."""
        done = 0
        with self._syncing:
            with self._lock:
                self._catch_up()
            while rows := store.papers_since(since := self.synced, chunk):
                hidden = store.uploads_only([r["id"] for r in rows])  # an upload's date is anyone's
                with self._lock:
                    self._put([(r["id"], r.get("authors") or [], r.get("submitted") or "", r["id"] not in hidden,
                                r["rev"]) for r in rows], rows[-1]["rev"], since=since)
                done += len(rows)
        return done

    def add(self, paper_id: int, authors: list[str], day: str = "", public: bool = True) -> None:
        """Index (or re-index) one paper's author list; ``public``: its date may move ``newest``."""
        with self._lock:
            self._put([(paper_id, authors, day, public, None)], 0)

    def _catch_up(self) -> None:
        """Take in what another process following the same file indexed: its revision, and the
        blocks it changed (dropped from this process's cache)."""
        db = self._db
        first, last = db.execute("SELECT MIN(seq), MAX(seq) FROM touched").fetchone()
        if last is not None and last > self._seen:
            if first > self._seen + 1:  # the log was trimmed past what this process saw
                self._cache.clear()
            else:
                for (block,) in db.execute("SELECT block FROM touched WHERE seq > ?", (self._seen,)):
                    self._cache.pop(block, None)
            self._seen = last
        self.synced = max(self.synced, int(self._meta(db, "synced") or 0))
        self.newest = max(self.newest, self._meta(db, "newest") or "")

    def _put(self, papers: list[tuple[int, list[str], str, bool, int | None]], rev: int,
             since: int | None = None) -> None:
        """Index these papers (id, authors, date, public, the store revision read) in one
        transaction; a sync's chunk (``since``: the revision it was read after) is left out when the
        file moved meanwhile: rebuilt (it no longer connects), or another process indexed some of
        its papers from a newer read."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            self._catch_up()  # inside the write lock: no other process's change slips between
            if since is not None:
                if self.synced < since:  # the file was rebuilt: the caller reads from its revision again
                    db.execute("ROLLBACK")
                    return
                papers = [p for p in papers if p[4] is None or p[4] > self.synced]
            pids = _ids(p[0] for p in papers)
            old = db.execute(f"SELECT DISTINCT o.key, f.block FROM occ o JOIN forms f ON f.key = o.key "
                             f"WHERE o.paper_id IN {IDS}", (pids,)).fetchall()
            db.execute(f"DELETE FROM occ WHERE paper_id IN {IDS}", (pids,))
            db.execute(f"DELETE FROM dates WHERE paper_id IN {IDS}", (pids,))
            if old:  # a key no paper has any more goes with its form (a later spelling brings its own)
                db.execute(f"DELETE FROM forms WHERE key IN {IDS} AND NOT EXISTS "
                           f"(SELECT 1 FROM occ WHERE occ.key = forms.key)", (_ids(k for k, _ in old),))
            occ, forms, dates, newest = [], {}, [], self.newest
            for pid, authors, day, public, _ in papers:
                seen: set[str] = set()
                for written in authors[:MAX_AUTHORS]:
                    n = parse(written)
                    if n is None or n.key in seen:
                        continue
                    seen.add(n.key)
                    occ.append((pid, len(seen), n.key, " ".join(written.split())[:200], _dump(n)))
                    forms.setdefault(n.key, n)
                if seen:
                    dates.append((pid, day))
                    if public and _full_date(day[:10]):
                        newest = max(newest, day[:10])
            db.executemany("INSERT INTO occ VALUES (?, ?, ?, ?, ?)", occ)
            db.executemany("INSERT OR IGNORE INTO forms VALUES (?, ?, ?, ?)",
                           [(k, n.block, int(n.abbreviated), _dump(n)) for k, n in forms.items()])
            db.executemany("INSERT INTO dates VALUES (?, ?)", dates)
            blocks = {b for _, b in old} | {n.block for n in forms.values()}
            db.executemany("INSERT INTO touched (block) VALUES (?)", [(b,) for b in sorted(blocks)])
            db.execute("DELETE FROM touched WHERE seq <= (SELECT MAX(seq) FROM touched) - ?", (KEEP_TOUCHED,))
            synced = max(rev, self.synced)
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [("synced", str(synced)), ("newest", newest)])
            seen = int(db.execute("SELECT MAX(seq) FROM touched").fetchone()[0] or self._seen)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        for block in blocks:
            self._cache.pop(block, None)
        self._seen, self.synced, self.newest = seen, synced, newest

    # -- what the file holds --------------------------------------------------------------------

    def form(self, key: str) -> Name | None:
        """The parsed name of a key (as first written)."""
        rows = self._q("SELECT form FROM forms WHERE key = ?", (key,))
        return _load(key, rows[0][0]) if rows else None

    def _block_forms(self, block: str) -> dict[str, Name]:
        return {k: _load(k, blob) for k, blob in self._q("SELECT key, form FROM forms WHERE block = ?", (block,))}

    def written_on(self, key: str) -> list[int]:
        """The papers the key is written on, before the initials rule."""
        return [r[0] for r in self._q("SELECT paper_id FROM occ WHERE key = ? ORDER BY paper_id", (key,))]

    def abbreviated(self) -> list[str]:
        """Every abbreviated key."""
        return [r[0] for r in self._q("SELECT key FROM forms WHERE abbreviated = 1 ORDER BY key")]

    def _names(self, pids: Iterable[int]) -> dict[int, list[tuple[Name, str]]]:
        """(parsed name, as written) of each indexed author of the papers, in order."""
        rows = self._q(f"SELECT paper_id, key, shown, form FROM occ WHERE paper_id IN {IDS} "
                       f"ORDER BY paper_id, pos", (_ids(pids),))
        out: dict[int, list[tuple[Name, str]]] = {}
        for pid, key, shown, blob in rows:
            out.setdefault(pid, []).append((_load(key, blob), shown))
        return out

    # -- the initials rule ----------------------------------------------------------------------

    @staticmethod
    def _co_names(names: list[tuple[Name, str]], *skip: str) -> dict[str, list[Name]]:
        """A paper's other authors by surname."""
        out: dict[str, list[Name]] = {}
        for n, _ in names:
            if n.key not in skip:
                out.setdefault(n.surname, []).append(n)
        return out

    def _share(self, a: dict[str, list[Name]], b: dict[str, list[Name]], forms: dict[str, dict[str, Name]]) -> bool:
        """Whether two sets of co-authors hold one person: the same spelling, or an abbreviation
        and the only full name of the corpus it may stand for ("L. Bottou" and "Léon Bottou"; "J.
        Lee" is no evidence where the corpus knows twenty J-something Lees)."""
        for surname in a.keys() & b.keys():
            for x in a[surname]:
                for y in b[surname]:
                    if x.key == y.key:
                        return True
                    short, full = (x, y) if x.abbreviated else (y, x)
                    if short.abbreviated and compatible(short, full) and self._only_full(short, forms):
                        return True
        return False

    def _only_full(self, short: Name, forms: dict[str, dict[str, Name]]) -> bool:
        if short.block not in forms:
            forms[short.block] = self._block_forms(short.block)
        return sum(compatible(short, f) for f in forms[short.block].values()) == 1

    def _resolve_block(self, block: str) -> dict[tuple[int, str], str]:
        """Every abbreviated occurrence of the block read as a full name, where the rule allows."""
        out: dict[tuple[int, str], str] = {}
        mine = self._block_forms(block)
        fulls = [mine[k] for k in sorted(mine) if not mine[k].abbreviated]
        shorts = [mine[k] for k in sorted(mine) if mine[k].abbreviated]
        if not fulls or not shorts:
            return out
        papers: dict[str, list[int]] = {}
        for key, pid in self._q(f"SELECT key, paper_id FROM occ WHERE key IN {IDS}", (_ids(mine),)):
            papers.setdefault(key, []).append(pid)
        names = self._names({p for ps in papers.values() for p in ps})
        forms: dict[str, dict[str, Name]] = {block: mine}
        co: dict[str, dict[str, list[Name]]] = {}
        for short in shorts:
            cands = [f for f in fulls if compatible(short, f)]
            if not cands:
                continue
            for pid in papers.get(short.key, ()):
                here = {n.key for n, _ in names.get(pid, ())}
                able = [f for f in cands if f.key not in here]  # two names on one paper: two people
                if not able:
                    continue
                theirs = self._co_names(names.get(pid, []), short.key)
                shared = []
                for f in able:
                    if f.key not in co:
                        merged: dict[str, list[Name]] = {}
                        for p in papers.get(f.key, ()):
                            for surname, ns in self._co_names(names.get(p, []), f.key).items():
                                merged.setdefault(surname, []).extend(ns)
                        co[f.key] = merged
                    if self._share(theirs, co[f.key], forms):
                        shared.append(f.key)
                if len(shared) == 1:
                    out[(pid, short.key)] = shared[0]
                elif not shared and len(cands) == 1 and len(able) == 1:
                    out[(pid, short.key)] = able[0].key
        return out

    def _cached(self, block: str) -> dict[str, Any]:
        with self._lock:
            entry = self._cache.get(block)
            if entry is None:
                entry = self._cache[block] = {"resolved": self._resolve_block(block), "lists": {}}
                if len(self._cache) > CACHED_BLOCKS:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(block)
            return entry

    def _resolutions(self, block: str) -> dict[tuple[int, str], str]:
        return self._cached(block)["resolved"]

    def resolve(self, paper_id: int, key: str) -> str:
        """The key an author written as ``key`` on this paper stands for (itself unless the initials
        rule reads it as a full name)."""
        form = self.form(key)
        if form is None or not form.abbreviated:
            return key
        return self._resolutions(form.block).get((paper_id, key), key)

    # -- lookups --------------------------------------------------------------------------------

    def known(self, key: str) -> bool:
        return bool(self._q("SELECT 1 FROM forms WHERE key = ?", (key,)))

    def key_for(self, name: str, paper_id: int | None = None) -> str | None:
        """The page key of a name as written (on ``paper_id``, where the initials rule may apply)."""
        n = parse(name)
        if n is None or not self.known(n.key):
            return None
        return self.resolve(paper_id, n.key) if paper_id is not None else n.key

    def _shown(self, key: str) -> list[tuple[str, int]]:
        """The ways the key is written and how often, most common first (ties: first indexed)."""
        return [(s, n) for s, n, _ in self._q("SELECT shown, COUNT(*) AS n, MIN(paper_id) AS first FROM occ "
                                              "WHERE key = ? GROUP BY shown ORDER BY n DESC, first", (key,))]

    def name(self, key: str) -> str:
        """The most common way the key is written (ties: the longest, then alphabetical)."""
        shown = self._shown(key)
        if not shown:
            return key
        return max(shown, key=lambda kv: (kv[1], len(kv[0]), kv[0]))[0]

    def spellings(self, key: str, papers: list[int] | None = None) -> list[str]:
        """The ways the key is written (on ``papers`` only, when given), most common first."""
        if papers is None:
            return [w for w, _ in self._shown(key)]
        names = self._names(papers)
        on = Counter(shown for pid in papers for n, shown in names.get(pid, ()) if n.key == key)
        return [w for w, _ in on.most_common()]

    def papers(self, key: str) -> list[int]:
        """The author's papers, newest first: their own spelling's papers (less those where an
        abbreviation was read as someone else) and the abbreviations read as them."""
        with self._lock:
            form = self.form(key)
            if form is None:
                return []
            entry = self._cached(form.block)
            if key not in entry["lists"]:
                res = entry["resolved"]
                own = {p for p in self.written_on(key) if (p, key) not in res}
                own |= {p for (p, _), full in res.items() if full == key}
                days = dict(self._q(f"SELECT paper_id, day FROM dates WHERE paper_id IN {IDS}", (_ids(own),)))
                entry["lists"][key] = sorted(own, key=lambda p: (days.get(p, ""), p), reverse=True)
            return list(entry["lists"][key])

    def names_on(self, paper_id: int) -> list[tuple[str, str]]:
        """(page key, name as written) of each indexed author of a paper."""
        return self._names_on(self._names([paper_id]).get(paper_id, []), paper_id)

    def _names_on(self, names: list[tuple[Name, str]], paper_id: int) -> list[tuple[str, str]]:
        return [(self._resolutions(n.block).get((paper_id, n.key), n.key) if n.abbreviated else n.key, shown)
                for n, shown in names]

    def coauthors(self, key: str, papers: list[int] | None = None) -> list[tuple[str, int]]:
        """(page key, papers together) of everyone who wrote with the author, most papers first."""
        pids = self.papers(key) if papers is None else papers
        names = self._names(pids)
        counts: Counter[str] = Counter()
        for pid in pids:
            counts.update({k for k, _ in self._names_on(names.get(pid, []), pid) if k != key})
        return sorted(counts.items(), key=lambda kv: (-kv[1], self.name(kv[0]).casefold(), kv[0]))

    def maybe(self, key: str) -> list[str]:
        """For an abbreviated key: the full names of the corpus it may stand for."""
        form = self.form(key)
        if form is None or not form.abbreviated:
            return []
        return sorted(k for k, f in self._block_forms(form.block).items() if compatible(form, f))

    def date(self, paper_id: int) -> str:
        rows = self._q("SELECT day FROM dates WHERE paper_id = ?", (paper_id,))
        return rows[0][0] if rows else ""

    def stats(self) -> dict[str, int]:
        """Keys, abbreviated keys, and abbreviated occurrences read as a full name."""
        with self._lock:
            blocks = [r[0] for r in self._q("SELECT DISTINCT block FROM forms WHERE abbreviated = 1")]
            merged = sum(len(self._resolve_block(b)) for b in blocks)  # not cached: a whole-corpus pass
            return {"papers": self._q("SELECT COUNT(DISTINCT paper_id) FROM occ")[0][0], "keys": len(self),
                    "abbreviated_keys": self._q("SELECT COUNT(*) FROM forms WHERE abbreviated = 1")[0][0],
                    "occurrences": self._q("SELECT COUNT(*) FROM occ")[0][0], "merged_occurrences": merged}
