"""Author key -> papers, in memory, following the store like the other derived indexes: ``sync``
reads the papers changed since the last revision it saw (``papers_since``), so a new or changed
paper costs only itself. The initials rule (``paperboy/authors.py``) is applied per surname and
first initial (a *block*, a handful of names), on demand, and cached until a paper of that block
changes: a new "Jane Smith" makes "J. Smith" ambiguous again at once.

Lookups are dictionary reads plus a sort of one author's papers (a few microseconds to a
millisecond); the first ``sync`` of a 38,858-paper store reads every paper once.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import date
from typing import TYPE_CHECKING

from ..authors import Name, compatible, parse

if TYPE_CHECKING:
    from ..store import Store

MAX_AUTHORS = 200  # per paper: the rest of a 3,000-author collaboration list is not indexed


def _full_date(day: str) -> bool:
    """A YYYY-MM-DD date ("2025" or "2025-08" would sort above every full date of 2025)."""
    try:
        return len(day) == 10 and date.fromisoformat(day).isoformat() == day
    except ValueError:
        return False


class AuthorIndex:
    """Which papers each author key has, who wrote with whom, and the initials rule."""

    def __init__(self) -> None:
        self.synced = 0
        self.newest = ""  # the newest full date (YYYY-MM-DD) of a public paper: what "new" is measured from
        self._names: dict[int, list[tuple[Name, str]]] = {}  # paper -> (parsed name, as written)
        self._date: dict[int, str] = {}
        self._papers: dict[str, set[int]] = {}  # key as written -> papers
        self._form: dict[str, Name] = {}
        self._shown: dict[str, Counter[str]] = {}  # key -> the ways it is written, counted
        self._block: dict[str, set[str]] = {}  # block -> keys
        self._resolved: dict[str, dict[tuple[int, str], str]] = {}  # block -> (paper, key) -> key
        self._lists: dict[str, dict[str, list[int]]] = {}  # block -> key -> its papers, newest first
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._papers)

    # -- following the store --------------------------------------------------------------------

    def sync(self, store: Store, chunk: int = 5000) -> int:
        """Index the papers changed since ``synced``; returns how many."""
        done = 0
        with self._lock:
            while rows := store.papers_since(self.synced, chunk):
                hidden = store.uploads_only([r["id"] for r in rows])  # an upload's date is anyone's
                for r in rows:
                    self._put(r["id"], r.get("authors") or [], r.get("submitted") or "", r["id"] not in hidden)
                self.synced = rows[-1]["rev"]
                done += len(rows)
        return done

    def add(self, paper_id: int, authors: list[str], day: str = "", public: bool = True) -> None:
        """Index (or re-index) one paper's author list; ``public``: its date may move ``newest``."""
        with self._lock:
            self._put(paper_id, authors, day, public)

    def _put(self, pid: int, authors: list[str], day: str, public: bool = True) -> None:
        for name, written in self._names.pop(pid, []):
            block = name.block
            self._touch(block)
            papers = self._papers.get(name.key)
            if papers is not None:
                papers.discard(pid)
                self._shown[name.key][written] -= 1
                if not papers:
                    del self._papers[name.key], self._shown[name.key], self._form[name.key]
                    self._block[block].discard(name.key)
        names: list[tuple[Name, str]] = []
        seen: set[str] = set()
        for written in authors[:MAX_AUTHORS]:
            n = parse(written)
            if n is None or n.key in seen:
                continue
            key = n.key
            seen.add(key)
            shown = " ".join(written.split())[:200]
            names.append((n, shown))
            papers = self._papers.get(key)
            if papers is None:  # a new key
                papers = self._papers[key] = set()
                self._shown[key] = Counter()
                self._form[key] = n
                self._block.setdefault(n.block, set()).add(key)
            papers.add(pid)
            self._shown[key][shown] += 1
            if self._resolved or self._lists:
                self._touch(n.block)
        if names:
            self._names[pid] = names
            self._date[pid] = day
            if public and _full_date(day[:10]):
                self.newest = max(self.newest, day[:10])
        else:
            self._date.pop(pid, None)

    def _touch(self, block: str) -> None:
        """A paper of the block changed: its merges and paper lists are worked out again on use."""
        self._resolved.pop(block, None)
        self._lists.pop(block, None)

    # -- the initials rule ----------------------------------------------------------------------

    def _co_names(self, pid: int, *skip: str) -> dict[str, list[Name]]:
        """A paper's other authors by surname."""
        out: dict[str, list[Name]] = {}
        for n, _ in self._names.get(pid, ()):
            if n.key not in skip:
                out.setdefault(n.surname, []).append(n)
        return out

    def _share(self, a: dict[str, list[Name]], b: dict[str, list[Name]]) -> bool:
        """Whether two sets of co-authors hold one person: the same spelling, or an abbreviation
        and the only full name of the corpus it may stand for ("L. Bottou" and "Léon Bottou"; "J.
        Lee" is no evidence where the corpus knows twenty J-something Lees)."""
        for surname in a.keys() & b.keys():
            for x in a[surname]:
                for y in b[surname]:
                    if x.key == y.key:
                        return True
                    short, full = (x, y) if x.abbreviated else (y, x)
                    if short.abbreviated and compatible(short, full) and self._only_full(short):
                        return True
        return False

    def _only_full(self, short: Name) -> bool:
        return sum(compatible(short, self._form[k]) for k in self._block.get(short.block, ())) == 1

    def _resolve_block(self, block: str) -> dict[tuple[int, str], str]:
        """Every abbreviated occurrence of the block read as a full name, where the rule allows."""
        out: dict[tuple[int, str], str] = {}
        keys = self._block.get(block, set())
        fulls = [self._form[k] for k in sorted(keys) if not self._form[k].abbreviated]
        if not fulls:
            return out
        co: dict[str, dict[str, list[Name]]] = {}
        for key in sorted(keys):
            short = self._form[key]
            if not short.abbreviated:
                continue
            cands = [f for f in fulls if compatible(short, f)]
            if not cands:
                continue
            for pid in self._papers[key]:
                here = {n.key for n, _ in self._names.get(pid, ())}
                able = [f for f in cands if f.key not in here]  # two names on one paper: two people
                if not able:
                    continue
                mine = self._co_names(pid, key)
                shared = []
                for f in able:
                    if f.key not in co:
                        merged: dict[str, list[Name]] = {}
                        for p in self._papers[f.key]:
                            for surname, names in self._co_names(p, f.key).items():
                                merged.setdefault(surname, []).extend(names)
                        co[f.key] = merged
                    if self._share(mine, co[f.key]):
                        shared.append(f.key)
                if len(shared) == 1:
                    out[(pid, key)] = shared[0]
                elif not shared and len(cands) == 1 and len(able) == 1:
                    out[(pid, key)] = able[0].key
        return out

    def _resolutions(self, block: str) -> dict[tuple[int, str], str]:
        with self._lock:
            res = self._resolved.get(block)
            if res is None:
                res = self._resolved[block] = self._resolve_block(block)
            return res

    def resolve(self, paper_id: int, key: str) -> str:
        """The key an author written as ``key`` on this paper stands for (itself unless the initials
        rule reads it as a full name)."""
        form = self._form.get(key)
        if form is None or not form.abbreviated:
            return key
        return self._resolutions(form.block).get((paper_id, key), key)

    # -- lookups --------------------------------------------------------------------------------

    def known(self, key: str) -> bool:
        return key in self._papers

    def key_for(self, name: str, paper_id: int | None = None) -> str | None:
        """The page key of a name as written (on ``paper_id``, where the initials rule may apply)."""
        n = parse(name)
        if n is None or n.key not in self._papers:
            return None
        return self.resolve(paper_id, n.key) if paper_id is not None else n.key

    def name(self, key: str) -> str:
        """The most common way the key is written (ties: the longest, then alphabetical)."""
        shown = self._shown.get(key)
        if not shown:
            return key
        return max(shown.items(), key=lambda kv: (kv[1], len(kv[0]), kv[0]))[0]

    def spellings(self, key: str, papers: list[int] | None = None) -> list[str]:
        """The ways the key is written (on ``papers`` only, when given), most common first."""
        if papers is None:
            return [w for w, n in self._shown.get(key, Counter()).most_common() if n > 0]
        with self._lock:
            on = Counter(shown for pid in papers for n, shown in self._names.get(pid, ()) if n.key == key)
        return [w for w, _ in on.most_common()]

    def papers(self, key: str) -> list[int]:
        """The author's papers, newest first: their own spelling's papers (less those where an
        abbreviation was read as someone else) and the abbreviations read as them."""
        with self._lock:
            form = self._form.get(key)
            if form is None:
                return []
            lists = self._lists.setdefault(form.block, {})
            if key not in lists:
                res = self._resolutions(form.block)
                own = {p for p in self._papers[key] if (p, key) not in res}
                own |= {p for (p, _), full in res.items() if full == key}
                lists[key] = sorted(own, key=lambda p: (self._date.get(p, ""), p), reverse=True)
            return list(lists[key])

    def names_on(self, paper_id: int) -> list[tuple[str, str]]:
        """(page key, name as written) of each indexed author of a paper."""
        with self._lock:
            return [(self.resolve(paper_id, n.key), shown) for n, shown in self._names.get(paper_id, ())]

    def coauthors(self, key: str, papers: list[int] | None = None) -> list[tuple[str, int]]:
        """(page key, papers together) of everyone who wrote with the author, most papers first."""
        counts: Counter[str] = Counter()
        for pid in self.papers(key) if papers is None else papers:
            counts.update({k for k, _ in self.names_on(pid) if k != key})
        return sorted(counts.items(), key=lambda kv: (-kv[1], self.name(kv[0]).casefold(), kv[0]))

    def maybe(self, key: str) -> list[str]:
        """For an abbreviated key: the full names of the corpus it may stand for."""
        form = self._form.get(key)
        if form is None or not form.abbreviated:
            return []
        return sorted(k for k in self._block.get(form.block, ()) if compatible(form, self._form[k]))

    def date(self, paper_id: int) -> str:
        return self._date.get(paper_id, "")

    def stats(self) -> dict[str, int]:
        """Keys, abbreviated keys, and abbreviated occurrences read as a full name."""
        with self._lock:
            blocks = {f.block for f in self._form.values() if f.abbreviated}
            merged = sum(len(self._resolutions(b)) for b in blocks)
            return {"papers": len(self._names), "keys": len(self._papers),
                    "abbreviated_keys": sum(f.abbreviated for f in self._form.values()),
                    "occurrences": sum(len(v) for v in self._names.values()), "merged_occurrences": merged}
