"""Daily lists (day, week, month) and trending, shared by the web pages, the API and feeds.

Trending score of a paper at time ``now``, over the window of the last ``window_days``::

    score = sum over its member votes and saves v in the window of 2 ** (-age(v) / half_life)
          + source upvotes (e.g. Hugging Face's) * 2 ** (-age(listing day) / half_life)   (if in window)

A vote counts fully when new and half as much ``half_life_hours`` later (exponential decay, as
Hacker News-style rankings do with a power law; the exponential has one readable parameter).
Source upvotes carry no timestamps, so they count as cast on the paper's listing day, and their
clock is the end of the latest listed day when the corpus stops before today (an archive). When
nothing at all is in that window (no member vote or save, no source upvotes: the bundled sample,
whose newest papers came from arXiv searches after its Hugging Face days, or a site whose
upvote source stopped), the clock moves back to the end of the newest listed day with source
upvotes (searched at most ``SIGNAL_LOOKBACK`` listed days back), and the page says as of when: a
quiet site still shows what was trending last. Member votes always age on the real clock, so an
instance with any recent activity ranks exactly as before.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

from ..models import Paper
from ..query import HAS, QueryError
from . import paper_meta

SIGNAL_LOOKBACK = 31  # listed days searched back for source upvotes: bounds a quiet site's cost
FALLBACK_TTL = 60.0  # seconds a quiet site's fallback day is kept (source upvotes carry no revision)
KINDS_CHANGED = 5000  # changed papers read to mend the link-kind cache; more: it starts again
KINDS_MAX = 500_000  # papers the link-kind cache holds at most


@dataclass
class Entry:
    """A paper on a list, with what the list shows about it."""

    paper: Paper
    votes: int = 0
    comments: int = 0
    score: float = 0.0
    submitted_by: str | None = None
    voted: bool = False
    day: str | None = None  # the day it is listed on

    def link_row(self, full: bool = False) -> list[Link]:
        """Its code, project page and Hugging Face links (``paper_links``)."""
        return paper_links(self.paper, full)


@dataclass
class Period:
    """A day, ISO week or month, with its neighbours for navigation."""

    kind: str  # day, week, month
    label: str  # 2024-05-01, 2024-W18, 2024-05
    first: str
    last: str
    prev: str | None = None
    next: str | None = None


def parse_period(day: str | None = None, week: str | None = None, month: str | None = None) -> Period | None:
    """The period a request names (None: the latest day); a malformed one is a QueryError. At the
    ends of the calendar (years 1 and 9999) there is no previous or next period to link to."""
    try:
        if week:
            y, w = week.upper().split("-W")
            first = date.fromisocalendar(int(y), int(w), 1)
            last = _shift(first, 6)
            if last is None:
                raise ValueError("week out of range")
            prev, nxt = _shift(first, -7), _shift(first, 7)
            return Period("week", f"{int(y):04d}-W{int(w):02d}", first.isoformat(), last.isoformat(),
                          prev and _week(prev), nxt and _week(nxt))
        if month:
            y, m = (int(x) for x in month.split("-"))
            first = date(y, m, 1)
            nxt = date(y + m // 12, m % 12 + 1, 1) if (y, m) != (9999, 12) else None
            prev = _shift(first, -1)
            last = _shift(nxt, -1) if nxt else date(9999, 12, 31)
            return Period("month", f"{y:04d}-{m:02d}", first.isoformat(), last.isoformat(),
                          prev and f"{prev.year:04d}-{prev.month:02d}", nxt and f"{nxt.year:04d}-{nxt.month:02d}")
        if day:
            d = date.fromisoformat(day)
            return Period("day", d.isoformat(), d.isoformat(), d.isoformat())
    except (ValueError, OverflowError) as e:
        raise QueryError(f"bad date: use date=YYYY-MM-DD, week=YYYY-Www or month=YYYY-MM ({e})") from e
    return None


def _shift(d: date | None, days: int) -> date | None:
    """``d`` moved by ``days``, or None past the calendar's ends."""
    try:
        return d + timedelta(days=days) if d else None
    except OverflowError:
        return None


def _week(d: date) -> str:
    y, w, _ = d.isocalendar()
    return f"{y:04d}-W{w:02d}"


class Listings:
    """Daily lists and trending over a store."""

    def __init__(self, store: Any, window_days: float = 7.0, half_life_hours: float = 24.0) -> None:
        self.store, self.window_days, self.half_life_hours = store, window_days, half_life_hours
        self._lock = threading.Lock()
        self._kinds: dict[int, tuple[str, ...]] = {}  # paper -> has_kinds, as of store revision _kinds_rev
        self._kinds_rev = 0
        self._fallback: tuple[tuple[str, int], float, tuple[datetime, dict[int, float]] | None] | None = None

    def entries(self, ids: list[int], user_id: int | None = None,
                papers: dict[int, Paper] | None = None) -> list[Entry]:
        """Papers as list entries (votes, comments, submitter, listing day); ``papers``: already loaded."""
        papers = papers if papers is not None else self.store.get_papers(ids)
        votes, comments = self.store.votes(ids), self.store.comment_counts(ids)
        subs = self.store.submissions(ids)
        mine = self.store.voted(user_id, ids) if user_id else set()
        days = self.store.listing_days(ids)
        return [Entry(papers[i], votes.get(i, 0), comments.get(i, 0), 0.0,
                      (subs.get(i) or {}).get("user"), i in mine, days.get(i)) for i in ids if i in papers]

    def period(self, period: Period | None) -> Period | None:
        """Resolve None to the latest day with papers, and fill a day's neighbours."""
        if period is None:
            latest = self.store.latest_day(date.today().isoformat())
            if latest is None:
                return None
            period = Period("day", latest, latest, latest)
        if period.kind == "day":
            period.prev = self.store.adjacent_day(period.first, forward=False)
            period.next = self.store.adjacent_day(period.first, forward=True)
        return period

    def daily(self, period: Period, sort: str = "votes", submitter: str | None = None,
              page: int = 0, limit: int = 50, user_id: int | None = None, has: str | None = None) -> list[Entry]:
        """One page of a period's list, most upvoted first (or newest first with sort="date");
        ``has``: only papers with that link (``with_link``)."""
        if sort not in ("votes", "date", "trending"):
            raise QueryError("sort must be votes, date or trending")
        days = self.store.day_listing(period.first, period.last, submitter)
        ids = self.with_link(list(days), has) if has else list(days)
        # Order the ids by counts alone and load full papers for one page only: a month can hold
        # tens of thousands of papers.
        votes = self.store.votes(ids)
        if sort == "trending":
            scores = self.scores()
            ids.sort(key=lambda i: (-scores.get(i, 0.0), -votes.get(i, 0), i))
        elif sort == "date":
            ids.sort(key=lambda i: (days.get(i) or "", votes.get(i, 0), i), reverse=True)
        else:
            comments = self.store.comment_counts(ids)
            ids.sort(key=lambda i: (votes.get(i, 0), comments.get(i, 0), days.get(i) or "", i), reverse=True)
        return self.entries(ids[page * limit:(page + 1) * limit], user_id)

    def listing_clock(self, now: datetime) -> datetime:
        """``now``, or the end of the latest listed day when the corpus stops earlier."""
        latest = self.store.latest_day(now.date().isoformat())
        if latest and latest < now.date().isoformat():
            return datetime.fromisoformat(latest).replace(tzinfo=timezone.utc) + timedelta(days=1)
        return now

    def scores(self) -> dict[int, float]:
        """Trending score of every paper with activity in the window (see the module docstring)."""
        return self.ranking()[0]

    def ranking(self, now: datetime | None = None) -> tuple[dict[int, float], datetime]:
        """Trending scores, and the clock source upvotes aged on (``now`` unless the site is quiet)."""
        now = now or datetime.now(timezone.utc)
        window = timedelta(days=self.window_days)
        out: dict[int, float] = {}
        span = ((now - window).isoformat(timespec="seconds"), now.isoformat(timespec="seconds"))
        for pid, at in self.store.vote_events(*span) + self.store.save_events(*span):
            age = (now - datetime.fromisoformat(at)).total_seconds()
            out[pid] = out.get(pid, 0.0) + self._decayed(1, age)
        t = self.listing_clock(now)
        upvoted = self._upvote_scores(t)
        if not out and not upvoted and (quiet := self._quiet_clock((t - window).date().isoformat())):
            t, upvoted = quiet
        for pid, score in upvoted.items():
            out[pid] = out.get(pid, 0.0) + score
        return out, t

    def _decayed(self, n: float, age_seconds: float) -> float:
        return n * 2.0 ** (-max(age_seconds, 0.0) / (self.half_life_hours * 3600))

    def _upvote_scores(self, t: datetime) -> dict[int, float]:
        """Decayed source upvotes of the papers listed in the window ending at ``t``."""
        ids = self.store.day_ids((t - timedelta(days=self.window_days)).date().isoformat(), t.date().isoformat())
        upvotes = self.store.source_upvotes(ids) if ids else {}
        days = self.store.listing_days([i for i, n in upvotes.items() if n])
        out: dict[int, float] = {}
        for pid, n in upvotes.items():
            if n and (day := days.get(pid)):
                age = (t - datetime.fromisoformat(day).replace(tzinfo=timezone.utc)).total_seconds()
                out[pid] = self._decayed(n, age)
        return out

    def _quiet_clock(self, before: str) -> tuple[datetime, dict[int, float]] | None:
        """A quiet site's clock (the end of the newest upvoted day before ``before``) and its upvote
        scores, kept ``FALLBACK_TTL`` seconds while the store's revision stays: the search reads up
        to 3 x ``SIGNAL_LOOKBACK`` queries, and every list, feed and API call of a quiet site asks."""
        key, now = (before, self.store.max_rev()), time.monotonic()
        with self._lock:
            if self._fallback and self._fallback[0] == key and now - self._fallback[1] < FALLBACK_TTL:
                return self._fallback[2]
        got = None
        if day := self._newest_upvoted_day(before):
            t = datetime.fromisoformat(day).replace(tzinfo=timezone.utc) + timedelta(days=1)
            got = (t, self._upvote_scores(t))
        with self._lock:
            self._fallback = (key, now, got)
        return got

    def _newest_upvoted_day(self, before: str) -> str | None:
        """The newest listed day before ``before`` with a paper a source upvoted (None: none near)."""
        day = self.store.adjacent_day(before, forward=False)
        for _ in range(SIGNAL_LOOKBACK):
            if day is None:
                return None
            ids = self.store.day_ids(day, day)
            if any(self.store.source_upvotes(ids).values()):
                return day
            day = self.store.adjacent_day(day, forward=False)
        return None

    def trending(self, limit: int = 50, page: int = 0, user_id: int | None = None,
                 has: str | None = None) -> list[Entry]:
        return self.trending_as_of(limit, page, user_id, has)[0]

    def trending_as_of(self, limit: int = 50, page: int = 0, user_id: int | None = None,
                       has: str | None = None) -> tuple[list[Entry], str | None]:
        """One page of Trending, and the day it is counted as of when that is not today (a quiet
        site or an archive: the newest listed day with upvotes), else None (also when it is empty);
        ``has``: only papers with that link (``with_link``)."""
        now = datetime.now(timezone.utc)
        scores, clock = self.ranking(now)
        ranked = sorted(scores, key=lambda i: -scores[i])
        ranked = (self.with_link(ranked, has) if has else ranked)[page * limit:(page + 1) * limit]
        entries = self.entries(ranked, user_id)
        for e in entries:
            e.score = round(scores[e.paper.id], 4)
        as_of = (clock - timedelta(microseconds=1)).date().isoformat() if scores and clock < now else None
        return entries, as_of

    def with_link(self, ids: list[int], kind: str, chunk: int = 1000) -> list[int]:
        """The ``ids`` whose paper has ``kind`` (one of query.HAS, see ``has_kinds``), in their
        order. A paper's text is read once (a month of quant-ph, ~500 papers: ~6 ms), then its kinds
        are remembered until it changes (``link_kinds``)."""
        if kind not in HAS:
            raise QueryError(f"unknown link kind {kind!r}: use one of {', '.join(HAS)}")
        kinds = self.link_kinds(ids, chunk)
        return [i for i in ids if kind in kinds.get(i, ())]

    def link_kinds(self, ids: list[int], chunk: int = 1000) -> dict[int, tuple[str, ...]]:
        """``has_kinds`` of the papers ``ids`` (those that exist), cached per paper: a store revision
        past the last one seen reads the papers changed since (``papers_since``) and mends their
        entries (a large change empties the cache instead)."""
        with self._lock:
            rev = self.store.max_rev()
            if rev != self._kinds_rev:
                rows = self.store.papers_since(self._kinds_rev, KINDS_CHANGED) if self._kinds else []
                if len(rows) >= KINDS_CHANGED or len(self._kinds) > KINDS_MAX:
                    self._kinds.clear()
                for r in rows if self._kinds else ():
                    if r["id"] in self._kinds:
                        self._kinds[r["id"]] = index_tags(r)
                self._kinds_rev = rev
            missing = [i for i in dict.fromkeys(ids) if i not in self._kinds]
            for i in range(0, len(missing), chunk):
                got = self.store.get_papers(missing[i:i + chunk])
                self._kinds.update({pid: has_kinds(p) for pid, p in got.items()})
            return {i: self._kinds[i] for i in ids if i in self._kinds}


# -- code and project links (issue 13): what lists show, ``has:`` and the "with code" filter ---------

# Where paper_meta's URL pattern can start (a scheme, www., or a bare github/gitlab host): text with
# none of them has no link, which is most of an archive (37 of 38,858 quant-ph abstracts have one).
# Lower-cased substring tests: 0.08 s for those 38,858 abstracts, a case-blind regex 0.97 s.
_URL_STARTS = ("http", "www.", "github", "gitlab")
_SAFE_URL = re.compile(r"https?://[^\s\"'<>\\`\x00-\x1f\x7f]+", re.I)
HF_PATHS = {"models": "", "datasets": "datasets/", "spaces": "spaces/"}


@dataclass(frozen=True, slots=True)
class Link:
    """A link a page shows: ``kind`` is one of query.HAS, ``name`` a short text for it."""

    kind: str
    url: str
    name: str


@lru_cache(maxsize=4096)
def _found(abstract: str, comments: str | None) -> paper_meta.Links:
    return paper_meta.links(abstract, comments)


def _text_links(abstract: str | None, comments: str | None) -> paper_meta.Links | None:
    text = f"{abstract or ''} {comments or ''}".lower()
    if not any(start in text for start in _URL_STARTS):
        return None
    return _found(abstract or "", comments)


def has_kinds(paper: Paper) -> tuple[str, ...]:
    """Which of query.HAS the paper has: ``code``, a code repository (GitHub, GitLab, Bitbucket,
    Codeberg, Gitee, anonymous.4open.science); ``project``, a project page; ``hf``, a Hugging Face
    model, dataset or Space; found in its abstract or arXiv comments (services/paper_meta.py)."""
    return text_kinds(paper.abstract, paper.comments)


def index_tags(p: Mapping[str, Any]) -> tuple[str, ...]:
    """The lexical index's ``has`` values of a changed paper (``papers_since`` row): ``has_kinds``."""
    return text_kinds(p["abstract"], p.get("comments"))


def text_kinds(abstract: str | None, comments: str | None) -> tuple[str, ...]:
    """``has_kinds`` of an abstract and arXiv comments."""
    found = _text_links(abstract, comments)
    if found is None:
        return ()
    return tuple(kind for kind, on in (("code", found.github_repo), ("project", found.project_page),
                                       ("hf", found.models or found.datasets or found.spaces)) if on)


def safe_url(url: str | None) -> str | None:
    """``url`` if it is a plain http(s) URL with a host (nothing a browser would run or that ends an
    attribute), else None."""
    if not url or not _SAFE_URL.fullmatch(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.hostname else None


def _short(url: str) -> str:
    parts = urlsplit(url)
    return ((parts.hostname or "").removeprefix("www.") + parts.path.rstrip("/"))[:80]


def paper_links(paper: Paper, full: bool = False) -> list[Link]:
    """The code repository, project page and first Hugging Face repository of a paper (``full``:
    every code URL and Hub repository), each an http(s) URL that ``safe_url`` passed."""
    found = _text_links(paper.abstract, paper.comments)
    if found is None:
        return []
    out: list[Link] = []
    for url in (found.code if full else (found.github_repo,) if found.github_repo else ()):
        if url := safe_url(url):
            out.append(Link("code", url, _short(url)))
    if url := safe_url(found.project_page):
        out.append(Link("project", url, _short(url)))
    hub = [(kind, name) for kind, names in (("models", found.models), ("datasets", found.datasets),
                                            ("spaces", found.spaces)) for name in names]
    for kind, name in hub if full else hub[:1]:
        if url := safe_url(f"https://huggingface.co/{HF_PATHS[kind]}{quote(name, safe='/')}"):
            out.append(Link("hf", url, f"{kind[:-1].capitalize()}: {name}"))  # Dataset: org/name
    return out
