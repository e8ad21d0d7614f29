"""BM25 over title (boosted), abstract and authors, in a tantivy index saved beside the store.

Fields: ``text`` = title + abstract, ``title`` again (so a title match counts extra, weighted by
``title_boost``), ``authors``, and ``tkey``, the title's dedup key (``normalize.title_key``) as one raw
token, so a query that is a paper's exact title finds it with one term lookup (``title_matches``), and
``has``, raw tokens for ``has:code``/``has:project``/``has:hf`` from the ``tags`` the engine passes
(services/listing.py ``index_tags``, over services/paper_meta.py's links). On
BEIR SciFact this layout scored nDCG@10 0.693 against 0.666 for separate title/abstract fields at
equal weight and 0.621 with the title boosted x2 (benchmarks in the README); English stemming; stop
words are indexed but dropped from plain-word queries.

Chosen by measurement (benchmarks/search.py): tantivy's block-max WAND keeps top-k queries with
common words fast at 1M papers, where SQLite FTS5 scores every matching row. The index is derived
data: ``sync`` (re)indexes the papers whose change counter (``rev``) is past the one saved in the
sidecar, so new papers become searchable with a cheap delta and a deleted folder is rebuilt.
Several processes share the folder: one holds tantivy's writer lock and indexes, the others see its
commits through the sidecar and reload (``follow``). Damage is found at open (an unreadable sidecar or
``meta.json``, a ``meta.json`` gone under a sidecar that says papers were indexed, segment files that
fail tantivy's own footer and CRC32) or when a search fails and ``verify`` then finds it; the caller
rebuilds the folder from the store (``LexicalIndexDamaged``).

User text never reaches tantivy's query syntax: each clause is reduced to words (letters and
digits) and the parsed pieces are combined as Query objects, so operator characters are inert.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import tantivy

from ..errors import PaperboyError
from ..normalize import day_number, title_key
from ..query import Clause, Query
from ..store import Store

log = logging.getLogger(__name__)

TEXT_FIELDS = ("text", "title", "authors")
FIELD_OF = {"title": "title", "abstract": "text", "authors": "authors"}  # abs: searches title + abstract
_NOT_WORD = re.compile(r"[\W_]+")
# Lucene's English stop words. They are indexed (phrases need them) but left out of plain-word
# queries that have other words: their posting lists cover most papers, and skipping them took
# BM25 p50 at 1M papers from 9.9 to 2.4 ms at no cost in SciFact nDCG@10 (benchmarks/search.py).
STOP_WORDS = frozenset("a an and are as at be but by for if in into is it no not of on or such that the "
                       "their then there these they this to was will with".split())
SIDE = "paperboy.json"
# Bump when the schema or analysis changes: an index of another layout is rebuilt from the store
# when it is opened (4: the ``has`` field, issue 13).
LAYOUT = 4
_FOOTER_MAGIC = 1337  # tantivy's file footer: [data][JSON {"version", "crc"}][u32 JSON length][u32 magic]
_SEGMENT_FILE = re.compile(r"^[0-9a-f]{32}\.")
_CRC_BLOCK = 1 << 24


class LexicalIndexDamaged(PaperboyError):
    """The saved index cannot be read or fails a check: rebuild it from the store."""


def _tantivy_failed(e: BaseException) -> bool:
    """Errors tantivy raises for unreadable data: ValueError, or a Rust panic (pyo3's PanicException
    derives from BaseException and cannot be imported by name)."""
    return isinstance(e, ValueError) or type(e).__name__ == "PanicException"


def _check_file(path: Path) -> str | None:
    """Why a tantivy segment file is damaged (its footer or CRC32), or None if it checks out."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size < 8:
                return f"{path.name}: truncated"
            f.seek(size - 8)
            length, magic = struct.unpack("<II", f.read(8))
            if magic != _FOOTER_MAGIC or length > size - 8:
                return f"{path.name}: no tantivy footer (truncated or overwritten)"
            f.seek(size - 8 - length)
            crc = json.loads(f.read(length))["crc"]
            f.seek(0)
            left, got = size - 8 - length, 0
            while left:
                block = f.read(min(left, _CRC_BLOCK))
                if not block:
                    return f"{path.name}: truncated"
                got, left = zlib.crc32(block, got), left - len(block)
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"{path.name}: unreadable ({e})"
    return None if got == crc else f"{path.name}: checksum mismatch"


def _schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("id", stored=True, indexed=True, fast=True)
    sb.add_text_field("text", stored=False, tokenizer_name="en_stem")
    sb.add_text_field("title", stored=False, tokenizer_name="en_stem")
    sb.add_text_field("authors", stored=False, tokenizer_name="default")
    sb.add_text_field("cats", stored=False, tokenizer_name="raw")
    sb.add_text_field("ident", stored=False, tokenizer_name="raw")
    sb.add_text_field("tkey", stored=False, tokenizer_name="raw")
    sb.add_text_field("has", stored=False, tokenizer_name="raw")
    sb.add_unsigned_field("day", stored=False, indexed=True, fast=True)
    return sb.build()


def words(text: str) -> str:
    """Lower-cased words only: no operator of the query syntax survives (AND/OR are lower-cased)."""
    return _NOT_WORD.sub(" ", text).lower().strip()


class LexicalIndex:
    """A tantivy index in ``directory`` (or in memory when None). ``tags`` gives a changed paper's
    ``has`` values (none without it)."""

    def __init__(self, directory: Path | None, title_boost: float = 0.25,
                 tags: Callable[[Mapping[str, Any]], Iterable[str]] | None = None) -> None:
        self.directory, self.title_boost, self.tags = directory, title_boost, tags
        self.schema = _schema()
        self.synced = 0
        self._checked: dict[str, list[int]] = {}  # segment file -> [size, mtime_ns] known to be sound
        if directory is None:
            self.index = tantivy.Index(self.schema)
            return
        meta, why = self._read_sidecar()
        if meta.get("layout") not in (None, LAYOUT) and directory.exists():  # another layout: rebuild
            log.info("rebuilding the lexical index in %s: layout %s, this version writes %s",
                     directory, meta.get("layout"), LAYOUT)
            shutil.rmtree(directory, ignore_errors=True)  # another process may be removing it too
            meta = {}
        index = None
        if why is None and directory.exists():
            index, why = self._open_checked(meta)
        if why is not None:  # derived data: start over, and say so once
            log.warning("rebuilding the lexical index in %s from the store: %s", directory, why)
            shutil.rmtree(directory, ignore_errors=True)
            meta, index, self._checked = {}, None, {}
        if index is None:
            directory.mkdir(parents=True, exist_ok=True)
            index = tantivy.Index(self.schema, path=str(directory), reuse=True)
        self.index = index
        self.synced = int(meta.get("synced", 0))
        if not meta:  # a new folder names its layout at once: one opened mid-build is followed, not deleted
            self._save_sidecar()

    def _read_sidecar(self) -> tuple[dict[str, Any], str | None]:
        """The sidecar ({} when there is none) and why it is unusable (None when it is fine)."""
        assert self.directory is not None
        try:
            meta = json.loads((self.directory / SIDE).read_text())
        except FileNotFoundError:
            return {}, None
        except (OSError, ValueError) as e:
            return {}, f"{SIDE} unreadable ({e})"
        if not isinstance(meta, dict) or not isinstance(meta.get("synced", 0), int) or meta.get("synced", 0) < 0:
            return {}, f"{SIDE} is not a sidecar: {str(meta)[:80]}"
        return meta, None

    def _open_checked(self, meta: dict[str, Any]) -> tuple[tantivy.Index | None, str | None]:
        """The saved index (None when there is none yet) and why it is damaged (None when sound)."""
        assert self.directory is not None
        d, synced = self.directory, int(meta.get("synced", 0))
        files = [p.name for p in d.iterdir() if _SEGMENT_FILE.match(p.name) or p.name == "meta.json"]
        if not meta:
            return None, (f"{SIDE} missing beside {len(files)} index files" if files else None)
        if synced and not (d / "meta.json").exists():
            return None, f"tantivy's meta.json is missing, but {synced} changes were indexed"
        self._checked = {k: v for k, v in meta.get("checked", {}).items() if isinstance(v, list)}
        if why := self.verify(full=False):
            return None, why
        try:
            index = tantivy.Index(self.schema, path=str(d), reuse=True)
            n = index.searcher().num_docs
        except BaseException as e:  # noqa: BLE001 - only tantivy's failures, see _tantivy_failed
            if not _tantivy_failed(e):
                raise
            return None, f"tantivy cannot open it ({str(e)[:200]})"
        if synced and n == 0:
            return None, f"no documents, but {synced} changes were indexed"
        return index, None

    def verify(self, full: bool = True) -> str | None:
        """Check every segment file's footer and CRC32 (``full=False``: only files changed since the
        last check); why the index is damaged, or None."""
        if self.directory is None:
            return None
        try:
            meta = json.loads((self.directory / "meta.json").read_text())
            segments = {s["segment_id"].replace("-", "") for s in meta["segments"]}
        except FileNotFoundError:
            return None if not full else "tantivy's meta.json is missing"
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            return f"meta.json unreadable ({str(e)[:200]})"
        present = {p.name.split(".")[0] for p in self.directory.iterdir() if _SEGMENT_FILE.match(p.name)}
        if missing := segments - present:
            return f"segment {sorted(missing)[0]} named in meta.json has no files"
        for p in sorted(self.directory.iterdir()):
            if not _SEGMENT_FILE.match(p.name) or p.name.split(".")[0] not in segments:
                continue
            st = p.stat()
            stamp = [st.st_size, st.st_mtime_ns]
            if not full and self._checked.get(p.name) == stamp:
                continue
            if why := _check_file(p):
                return why
            self._checked[p.name] = stamp
        return None

    def _doc(self, p: dict[str, Any]) -> tantivy.Document:
        d = tantivy.Document()
        d.add_integer("id", int(p["id"]))
        d.add_text("text", f"{p['title']}\n{p['abstract']}")
        d.add_text("title", p["title"])
        d.add_text("authors", " ; ".join(p["authors"]))
        cats = {c.lower() for c in p["categories"]} | {c.split(".")[0].lower() for c in p["categories"]}
        for c in sorted(cats):
            d.add_text("cats", c)
        for ident in (p.get("arxiv_id"), p.get("doi")):
            if ident:
                d.add_text("ident", ident.lower())
        if key := title_key(p["title"]):  # an untitled document (BEIR) has none
            d.add_text("tkey", key)
        d.add_unsigned("day", day_number(p.get("submitted")))
        for tag in self.tags(p) if self.tags else ():
            d.add_text("has", tag)
        return d

    def sync(self, store: Store, progress: Callable[[int], None] | None = None, chunk: int = 20_000) -> int:
        """Index papers changed since the last sync; returns how many were (re)indexed. When another
        process holds the writer lock, its commits are picked up instead (``follow``)."""
        done = 0
        try:
            writer = self.index.writer(heap_size=128_000_000, num_threads=1)
        except ValueError:  # another process holds the writer lock and is indexing: read its commits
            self.follow()
            return 0
        try:
            self.follow()  # what another writer committed while we waited need not be redone
            replace = self.synced > 0 or self.index.searcher().num_docs > 0  # a first build has nothing to replace
            while papers := store.papers_since(self.synced, chunk):
                for p in papers:
                    if replace:
                        writer.delete_documents_by_term("id", int(p["id"]))
                    writer.add_document(self._doc(p))
                writer.commit()
                self.synced, replace = papers[-1]["rev"], True
                self._save_sidecar()
                done += len(papers)
                if progress:
                    progress(len(papers))
        finally:
            writer.wait_merging_threads()  # consumes the writer: the lock is free for other processes
        self.index.reload()
        if done:
            self._remember_files()
        return done

    def follow(self) -> bool:
        """Pick up what another process indexed in the same folder (its sidecar is ahead of ours);
        True if there was something."""
        if self.directory is None:
            return False
        meta, why = self._read_sidecar()
        if why is not None or int(meta.get("synced", 0)) <= self.synced:
            return False
        self.index.reload()
        self.synced = int(meta["synced"])
        return True

    def _remember_files(self) -> None:
        """Record our own segment files as sound, so the next open checks only files changed since."""
        if self.directory is None:
            return
        names = {p.name: p for p in self.directory.iterdir() if _SEGMENT_FILE.match(p.name)}
        self._checked = {n: [p.stat().st_size, p.stat().st_mtime_ns] for n, p in names.items()}
        self._save_sidecar()

    def _save_sidecar(self) -> None:
        if self.directory is None:
            return
        tmp = self.directory / (SIDE + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"synced": self.synced, "layout": LAYOUT, "engine": "tantivy",
                                   "checked": self._checked}))
        os.replace(tmp, self.directory / SIDE)

    # -- queries --------------------------------------------------------------------------------

    def _clause(self, c: Clause) -> tantivy.Query | None:
        text = words(c.text)
        if not text:
            return None
        fields = [FIELD_OF[c.field]] if c.field else list(TEXT_FIELDS)
        boosts = {"title": self.title_boost} if not c.field else {}
        if c.phrase and " " in text:
            text = f'"{text}"'
        elif c.field or c.negate:  # ti:graph neural -> every word must be in the title
            text = " ".join(f"+{w}" for w in text.split()) if not c.negate else text
        return self.index.parse_query(text, fields, field_boosts=boosts)

    def _parts(self, q: Query, scoring: bool) -> list[tuple[Any, tantivy.Query]]:
        """Text clauses as (occur, query): plain words should match (they score); phrases and fielded
        clauses must; exclusions must not. Without ``scoring`` plain words are left out."""
        Occur = tantivy.Occur
        parts: list[tuple[Any, tantivy.Query]] = []
        plain = [c for c in q.clauses if not (c.phrase or c.field or c.negate)]
        terms = words(" ".join(c.text for c in plain)).split()
        if any(t not in STOP_WORDS for t in terms):
            terms = [t for t in terms if t not in STOP_WORDS]
        if scoring and terms:
            text = " ".join(terms)
            # One flat disjunction of term queries: tantivy prunes it with block-max WAND, which a
            # disjunction nested per word does not get (2x slower at 1M papers).
            boosts = {"title": self.title_boost}
            parts.append((Occur.Should, self.index.parse_query(text, list(TEXT_FIELDS), field_boosts=boosts)))
        for c in q.clauses:
            if c in plain or (sub := self._clause(c)) is None:
                continue
            parts.append((Occur.MustNot if c.negate else Occur.Must, sub))
        return parts

    def build(self, q: Query) -> tantivy.Query | None:
        """The tantivy query for a parsed query; None when it has no positive text."""
        parts = self._parts(q, scoring=True)
        if all(o == tantivy.Occur.MustNot for o, _ in parts):
            return None
        filters = [(tantivy.Occur.Must, f) for f in self.filters(q)]
        if len(parts) == 1 and not filters and parts[0][0] == tantivy.Occur.Should:
            return parts[0][1]  # plain words only: the flat disjunction itself
        return tantivy.Query.boolean_query(parts + filters)

    def filters(self, q: Query) -> list[tantivy.Query]:
        """Category, id, link (``has:``) and date constraints as filter queries."""
        s, out = self.schema, []
        if q.categories:
            out.append(tantivy.Query.term_set_query(s, "cats", [c.lower() for c in q.categories]))
        for c in q.exclude_categories:  # expressed as "not" inside a must clause
            out.append(tantivy.Query.boolean_query([
                (tantivy.Occur.Must, tantivy.Query.all_query()),
                (tantivy.Occur.MustNot, tantivy.Query.term_query(s, "cats", c.lower()))]))
        if q.ids:
            out.append(tantivy.Query.term_set_query(s, "ident", [i.lower() for i in q.ids]))
        for kind in q.has:
            out.append(tantivy.Query.term_query(s, "has", kind))
        for kind in q.exclude_has:
            out.append(tantivy.Query.boolean_query([
                (tantivy.Occur.Must, tantivy.Query.all_query()),
                (tantivy.Occur.MustNot, tantivy.Query.term_query(s, "has", kind))]))
        if q.only_ids is not None:  # topic:NAME, resolved by the searcher to its papers
            out.append(tantivy.Query.term_set_query(s, "id", sorted(q.only_ids)))
        if q.date_from or q.date_to:
            out.append(tantivy.Query.range_query(
                s, "day", tantivy.FieldType.Unsigned,
                day_number(q.date_from) if q.date_from else None,
                day_number(q.date_to) if q.date_to else None))
        return out

    def search(self, query: tantivy.Query, k: int, count: bool = False) -> tuple[list[tuple[int, float]], int | None]:
        """(paper id, BM25 score) best first, and the number of matches when ``count`` (counting
        visits every match, which top-k pruning otherwise skips: ask only when it is shown)."""
        try:
            searcher = self.index.searcher()
            # tantivy panics on a limit of 0 and reserves memory for the whole limit: ask for 1..num_docs
            res = searcher.search(query, min(max(k, 1), max(searcher.num_docs, 1)), count=count)
            return [(int(searcher.doc(addr)["id"][0]), float(score)) for score, addr in res.hits[:max(k, 0)]], res.count
        except BaseException as e:  # noqa: BLE001 - re-raised unless the files are damaged, see _failed
            self._failed(e)
            raise

    def filtered_ids(self, q: Query, limit: int, order_by_day: bool = True) -> tuple[list[int], int]:
        """Papers matching only the filters (no text), newest first, and how many match."""
        fs = self.filters(q)
        query = tantivy.Query.all_query() if not fs else tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, f) for f in fs])
        try:
            searcher = self.index.searcher()
            res = searcher.search(query, min(max(limit, 1), max(searcher.num_docs, 1)), count=True,
                                  order_by_field="day" if order_by_day else None)
            return [int(searcher.doc(addr)["id"][0]) for _, addr in res.hits[:max(limit, 0)]], int(res.count or 0)
        except BaseException as e:  # noqa: BLE001 - re-raised unless the files are damaged, see _failed
            self._failed(e)
            raise

    def _failed(self, e: BaseException) -> None:
        """Raise LexicalIndexDamaged for an exception out of tantivy when the files then fail
        ``verify``; a query tantivy merely refuses returns, to be re-raised, and never costs a rebuild."""
        if _tantivy_failed(e) and (why := self.verify(full=True)):
            raise LexicalIndexDamaged(f"lexical index in {self.directory} is damaged: {why}") from e

    def title_matches(self, text: str, limit: int = 10) -> list[int]:
        """Papers whose normalized title equals ``text``'s (``normalize.title_key``): one term lookup."""
        key = title_key(text)
        if not key:
            return []
        return [pid for pid, _ in self.search(tantivy.Query.term_query(self.schema, "tkey", key), limit)[0]]

    def constrain(self, q: Query, candidates: list[int]) -> set[int]:
        """Which ``candidates`` (e.g. dense hits) satisfy the query's phrases, fields, exclusions
        and filters; plain words do not constrain."""
        parts = self._parts(q, scoring=False) + [(tantivy.Occur.Must, f) for f in self.filters(q)]
        if not parts or not candidates:
            return set(candidates)
        ids = tantivy.Query.term_set_query(self.schema, "id", [int(i) for i in candidates])
        query = tantivy.Query.boolean_query([(tantivy.Occur.Must, ids), *parts])
        return {pid for pid, _ in self.search(query, len(candidates))[0]}

    def __len__(self) -> int:
        try:
            return int(self.index.searcher().num_docs)
        except BaseException as e:  # noqa: BLE001 - re-raised unless the files are damaged, see _failed
            self._failed(e)
            raise
