"""The topic map as a service (issue 13): fit, follow the corpus, list, rise, and draw.

``Topics`` holds the fitted model of ``index/topics.py`` for one engine: it loads it from
``<home>/index/topics`` (and again when another process refits: the sidecar's mtime), assigns new
and changed papers as the TF-IDF rows follow the store (no refit), and answers the pages, the API,
feeds and ``topic:NAME`` searches. "Rising": a topic's share of the papers dated in the last
``RECENT_DAYS`` before the newest date in the corpus against its share in the ``BASELINE_DAYS``
before them (add-one smoothed), so an archive with old dates still has a figure. The map is a
static SVG drawn here (no script, no outside asset): at most ``MAP_POINTS`` papers (a fixed sample)
as dots coloured by topic, each topic a labelled, linked region, the latest listed day's papers
highlighted, and the reader's interests as marked points at the mean place of their nearest papers.

A refit is a batch step (``paperboy topics fit``), run in this process, not on Ray: it is one NMF
over at most 20,000 sampled TF-IDF rows (191 s at k=60 on the 38,858 quant-ph papers, on two busy
cores) plus a cheap projection of every paper; scikit-learn's solver is not data-parallel, so Ray
Data would only add a cluster round trip (the fit time is measured in benchmarks/topics.py).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, NotFound
from ..index.generations import GenerationError
from ..query import QueryError
from ..index.topics import SIDE, TopicModel, TopicsMissing
from ..normalize import day_number

log = logging.getLogger(__name__)
RECENT_DAYS, BASELINE_DAYS = 30, 365
MAP_POINTS = 2500
MAP_INTERESTS = 12  # a reader's interests marked on the map
INTEREST_READERS = 256  # readers whose map interests are kept
LIST_LIMIT = 50
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
TODAY_POINTS = 400
W, H = 960, 640
SCALE = 0.40  # the -1..1 layout on the canvas: a margin for the regions and labels at the edge
# Presentation attributes, not CSS: the pages' CSP (default-src 'self') forbids inline styles.
LABEL = ('font-family="sans-serif" font-size="12" font-weight="600" paint-order="stroke" stroke="#fff" '
         'stroke-width="3"')


def topics_dir(home: Path) -> Path:
    return Path(home) / "index" / "topics"


@dataclass
class TopicInfo:
    index: int
    slug: str
    label: str
    terms: list[str]
    size: int
    recent: int  # papers dated in the last RECENT_DAYS (before the newest date)
    share_recent: float
    share_before: float
    rise: float  # share_recent / share_before, add-one smoothed

    def as_json(self) -> dict[str, Any]:
        return {"slug": self.slug, "label": self.label, "terms": self.terms, "papers": self.size,
                "recent_papers": self.recent, "share_recent": round(self.share_recent, 4),
                "share_before": round(self.share_before, 4), "rise": round(self.rise, 3)}


def _day_of(store: Any):  # noqa: ANN202 - a DayOf
    def day_of(ids: np.ndarray) -> np.ndarray:
        papers = store.get_papers([int(i) for i in ids])
        return np.array([day_number(papers[int(i)].submitted) if int(i) in papers else 0 for i in ids], np.int32)
    return day_of


class Topics:
    """The fitted topics of one home (None until ``paperboy topics fit``), following the store."""

    def __init__(self, store: Any, home: Path) -> None:
        self.store, self.directory = store, topics_dir(home)
        self.model: TopicModel | None = None
        self._mtime: int | None = None
        self._lock = threading.RLock()  # the model's swap (reload, fit, follow); held briefly
        self._follow_lock = threading.Lock()  # held while new papers are assigned (seconds after a big ingest)
        self._cache: dict[str, Any] = {}
        self._version = 0
        self.interest_cache: dict[int, tuple[Any, list[tuple[str, list[int]]]]] = {}  # interest_points

    # -- the model ------------------------------------------------------------------------------

    def _sidecar_mtime(self) -> int | None:
        try:
            return (self.directory / SIDE).stat().st_mtime_ns
        except OSError:
            return None

    def saved(self) -> bool:
        """Whether a model is fitted, from one stat (no load): a home without one answers at once."""
        return self.model is not None or self._sidecar_mtime() is not None

    def current(self, tfidf: Any = None) -> TopicModel | None:
        """The model, reloaded when the saved one changed, then following ``tfidf`` (in memory)."""
        mtime = self._sidecar_mtime()
        with self._lock:
            if mtime != self._mtime:
                self._mtime = mtime
                try:
                    self.model = TopicModel.load(self.directory) if mtime is not None else None
                except TopicsMissing:
                    self.model = None
                except GenerationError as e:  # derived data: the next fit rewrites it
                    log.warning("topic model in %s unreadable (run `paperboy topics fit`): %s", self.directory, e)
                    self.model = None
                self._changed()
            model = self.model
        if model is not None and tfidf is not None and self.follow(tfidf):
            model = self.model
        return model

    def follow(self, tfidf: Any) -> int:
        """Assign the papers the TF-IDF index added since the model last looked; no refit. The
        assignment runs on a copy swapped in when done, so readers on other threads (the web's
        heavy-read thread while the follower thread runs this) always see one whole model."""
        model = self.model
        if model is None or tfidf.matrix is None:
            return 0
        if int(model.meta.get("tfidf_rows", 0)) == len(tfidf.ids) and \
                int(model.meta.get("tfidf_fit", -1)) == int(tfidf.fitted_on):
            return 0
        with self._follow_lock:  # one assignment at a time; readers never wait for it
            if self.model is not model:  # a second follower did it, or a reload or refit came
                return 0
            ahead = model.copy()
            n = ahead.sync(tfidf, _day_of(self.store))
            with self._lock:
                if self.model is not model:  # reloaded or refitted meanwhile: the next pass follows that
                    return 0
                self.model = ahead
                self._changed()
            return n

    def require(self, tfidf: Any = None) -> TopicModel:
        model = self.current(tfidf)
        if model is None:
            raise TopicsMissing()
        return model

    def fit(self, tfidf: Any, k: int | None = None) -> TopicModel:
        """Refit (a batch step) and save; this process uses the new model at once."""
        model = TopicModel.fit(self.directory, tfidf, k, day_of=_day_of(self.store))
        model.save()
        with self._lock:
            self.model, self._mtime = model, self._sidecar_mtime()
            self._changed()
        return model

    def save(self) -> None:
        with self._lock:
            if self.model is not None:
                self.model.save()
                self._mtime = self._sidecar_mtime()

    def _changed(self) -> None:
        self._version += 1
        self._cache.clear()

    def _cached(self, key: str, make: Any) -> Any:
        """``make()`` kept until the model changes; a value made while another thread changed the
        model is returned but not kept (it may describe the old one)."""
        if (hit := self._cache.get(key)) is not None:
            return hit
        version = self._version
        value = make()
        if version == self._version:
            self._cache[key] = value
        return value

    def hidden(self, model: TopicModel | None = None) -> set[int]:
        """The model's papers known only from members' uploads (``store.uploads_only``: anyone's
        metadata), kept off every topic list, count and the map as other public lists keep them.
        Cached per model state and store revision (a confirming source rewrites the paper's row)."""
        model = model or self.require()
        rev = self.store.max_rev()
        got = self._cache.get("hidden")
        if got is None or got[0] != rev or got[1] is not model:
            ids = model.ids.tolist()
            got = (rev, model, self.store.uploads_only(ids) if ids else set())
            self._cache["hidden"] = got
        return got[2]

    def _visible(self, model: TopicModel) -> np.ndarray:
        """A mask over the model's rows: True where the paper is public (not ``hidden``)."""
        hidden = self.hidden(model)
        if not hidden:
            return np.ones(len(model.ids), bool)
        return ~np.isin(model.ids, np.fromiter(hidden, np.int64, len(hidden)))

    # -- answers --------------------------------------------------------------------------------

    def topic(self, name: str, tfidf: Any = None) -> int:
        """A topic by slug or label; NotFound otherwise (and TopicsMissing without a model)."""
        model = self.require(tfidf)
        name = (name or "")[:200]
        t = model.find(name) if name.strip() else None
        if t is None:
            raise NotFound(f"no topic {name[:80]!r}: see /topics for the list")
        return t

    def infos(self, tfidf: Any = None) -> list[TopicInfo]:
        """Every topic with its size and rise figures, in topic order (cached until papers change)."""
        model = self.require(tfidf)
        return self._cached("infos", lambda: self._infos(model))

    def _infos(self, model: TopicModel) -> list[TopicInfo]:
        vis = self._visible(model)
        k, topic, day = model.k, model.topic[vis], model.day[vis]
        sizes = np.bincount(topic, minlength=k)
        newest = int(day.max()) if len(day) else 0
        recent = np.zeros(k)
        before = np.zeros(k)
        if newest:
            end = _date(newest)
            r0 = day_number((end - timedelta(days=RECENT_DAYS)).isoformat())
            b0 = day_number((end - timedelta(days=RECENT_DAYS + BASELINE_DAYS)).isoformat())
            recent = np.bincount(topic[day > r0], minlength=k).astype(float)
            before = np.bincount(topic[(day > b0) & (day <= r0)], minlength=k).astype(float)
        sr = (recent + 1) / (recent.sum() + k)
        sb = (before + 1) / (before.sum() + k)
        out = [TopicInfo(t, model.slugs[t], model.labels[t], model.terms[t][:8], int(sizes[t]), int(recent[t]),
                         float(recent[t] / max(recent.sum(), 1)), float(before[t] / max(before.sum(), 1)),
                         float(sr[t] / sb[t])) for t in range(k)]
        return out

    def rising(self, n: int = 5, tfidf: Any = None) -> list[TopicInfo]:
        """Topics whose share of new papers grows most (at least 3 recent papers, rise > 1)."""
        infos = [i for i in self.infos(tfidf) if i.recent >= 3 and i.rise > 1.0]
        return sorted(infos, key=lambda i: -i.rise)[:n]

    def newest(self, t: int, limit: int = 20) -> list[int]:
        """The topic's papers, newest first (undated last)."""
        model = self.require()
        members = self._public_members(model, t)
        rows = model._rows()
        days = model.day[[rows[int(i)] for i in members]] if len(members) else np.zeros(0)
        order = np.lexsort((-members, -days))[:limit]
        return [int(members[j]) for j in order]

    def search_members(self, name: str, tfidf: Any = None) -> set[int]:
        """``topic:NAME``'s papers; QueryError (a 400 with the fix) without a model or for an unknown
        name. All members: the searcher drops upload-only papers itself (no store lookup here, on
        the request's thread)."""
        try:
            t = self.topic(name, tfidf)
            model = self.require()
            return self._cached(f"all{t}", lambda: set(model.members(t).tolist()))
        except (TopicsMissing, NotFound) as e:
            raise QueryError(f"topic:{name[:80]}: {e}") from e

    def _public_members(self, model: TopicModel, t: int) -> np.ndarray:
        """Topic ``t``'s paper ids without the ``hidden`` ones."""
        members, hidden = model.members(t), self.hidden(model)
        return np.array([i for i in members.tolist() if i not in hidden], np.int64) if hidden else members

    def members_set(self, t: int) -> set[int]:
        """Topic ``t``'s public papers (cached until papers change)."""
        model = self.require()
        return self._cached(f"set{t}", lambda: set(self._public_members(model, t).tolist()))

    def public_count(self) -> int:
        """Papers on the map (the public ones)."""
        return int(self._visible(self.require()).sum())

    def paper_topic(self, paper_id: int) -> dict[str, Any] | None:
        """{"slug", "label", "weight"} of a paper, None without a model or a topic (or for a paper
        known only from uploads: it is on no topic list)."""
        model = self.current()
        got = model.topic_of(paper_id) if model is not None and paper_id not in self.hidden(model) else None
        if got is None:
            return None
        return {"slug": model.slugs[got[0]], "label": model.labels[got[0]], "weight": round(got[1], 3)}

    # -- the map --------------------------------------------------------------------------------

    def map_svg(self, today: list[int], interests: list[tuple[str, list[int]]], highlight: int | None = None,
                tfidf: Any = None) -> str:
        """The map as one inline SVG (see the module docstring). ``interests``: (name, nearest paper
        ids) each; ``highlight``: a topic drawn bold. The dots and regions are drawn once per model
        state (cached); a request adds the latest day's papers, the highlight and the interests."""
        model = self.require(tfidf)
        dots, regions = self._layers(model)
        key = "today:" + ",".join(map(str, today[:TODAY_POINTS]))
        if (marked := self._cache.get(key)) is None:
            self._cache.pop(self._cache.get("today_key"), None)  # one latest day at a time
            rows, hidden = model._rows(), self.hidden(model)
            at = [rows[i] for i in today[:TODAY_POINTS] if i in rows and i not in hidden]
            marked = self._cache[key] = ('<path class="today" stroke="#111" stroke-width="7" stroke-linecap="round" '
                                         'fill="none" d="' + "".join(f"M{x} {y}h0" for x, y in _pxs(model.xy[at]))
                                         + '"><title>the latest day\'s papers</title></path>') if at else ""
            self._cache["today_key"] = key
        shapes, labels = [], []
        for t, (ellipse, label) in regions.items():
            bold = t == highlight
            shapes.append(ellipse.replace(' stroke-width="1.5" stroke-dasharray="4 3"', ' stroke-width="4"')
                          .replace('class="region"', 'class="region hl"') if bold else ellipse)
            labels.append(label)
        marks = []
        rows, hidden = model._rows(), self.hidden(model)
        for name, ids in interests[:MAP_INTERESTS]:
            at = [rows[i] for i in ids if i in rows and i not in hidden]
            if not at:
                continue
            x, y = _px(model.xy[at].mean(0))
            marks.append(f'<g class="interest"><title>your interest: {escape(name)}</title>'
                         f'<path d="M{x} {y - 9}l3 6 7 1-5 5 1 7-6-3-6 3 1-7-5-5 7-1z" fill="#d00" stroke="#fff"/>'
                         f'<text x="{x + 10}" y="{y + 4}" {LABEL} fill="#d00">{escape(_short(name, 28))}</text></g>')
        return "".join([dots, marked, *shapes, *labels, *marks, "</svg>"])

    def _layers(self, model: TopicModel) -> tuple[str, dict[int, tuple[str, str]]]:
        """(the SVG's opening and its dots, topic -> (region, label)), cached until papers change."""
        return self._cached("layers", lambda: self._draw_layers(model))

    def _draw_layers(self, model: TopicModel) -> tuple[str, dict[int, tuple[str, str]]]:
        public = np.flatnonzero(self._visible(model))
        n = len(public)
        rows = public if n <= MAP_POINTS else np.sort(np.random.default_rng(0).choice(public, MAP_POINTS,
                                                                                      replace=False))
        px = _pxs(model.xy[rows])
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="100%" class="topicmap" '
                 f'role="img" aria-labelledby="maptitle"><title id="maptitle">Map of {n} papers in '
                 f'{model.k} topics</title><rect width="{W}" height="{H}" fill="#fcfcfc" stroke="#ddd"/>']
        topics = model.topic[rows]
        for t in range(model.k):
            if len(pts := px[topics == t]):
                parts.append(f'<path class="dots" stroke="{colour(t)}" stroke-width="4" stroke-linecap="round" '
                             f'fill="none" opacity="0.6" d="{"".join(f"M{x} {y}h0" for x, y in pts)}"/>')
        regions = {}
        all_rows = model._rows()
        for t in range(model.k):  # regions, then (in map_svg) every label above every region; both links
            members = self._public_members(model, t)
            if not len(members):
                continue
            xy = model.xy[[all_rows[int(i)] for i in members[:2000]]]
            cx, cy = _px(np.median(xy, 0))
            rx, ry = (np.clip(xy.std(0) * [W * SCALE, H * SCALE] * 1.6, 18, 160)).astype(int)
            title = f"<title>{escape(model.labels[t])} ({len(members)} papers)</title>"
            short = ", ".join(model.labels[t].split(", ")[:2])  # two terms on the map, all three in the title
            regions[t] = (f'<a href="/topics/{model.slugs[t]}">{title}<ellipse class="region" cx="{cx}" cy="{cy}" '
                          f'rx="{rx}" ry="{ry}" fill="{colour(t)}" fill-opacity="0.06" stroke="{colour(t)}" '
                          f'stroke-width="1.5" stroke-dasharray="4 3"/></a>',
                          f'<a href="/topics/{model.slugs[t]}" class="label">{title}<text x="{cx}" y="{cy + 4}" '
                          f'text-anchor="middle" fill="#222" {LABEL}>{escape(_short(short, 30))}</text></a>')
        return "".join(parts), regions

    def trending_scores(self, listings: Any, ttl: float = 60.0) -> dict[int, float]:
        """``listings.scores()`` kept for ``ttl`` seconds: every topic page filters the same ranking."""
        now = time.monotonic()
        got = self._cache.get("scores")
        if got is None or now - got[0] > ttl:
            got = self._cache["scores"] = (now, listings.scores())
        return got[1]


def colour(t: int) -> str:
    """Topic ``t``'s colour: hues a golden angle apart, so neighbours in number differ."""
    import colorsys

    r, g, b = colorsys.hls_to_rgb((t * 0.381966) % 1.0, 0.42, 0.65)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def _px(p: np.ndarray) -> tuple[int, int]:
    return int(round(p[0] * W * SCALE + W / 2)), int(round(-p[1] * H * SCALE + H / 2))


def _pxs(xy: np.ndarray) -> np.ndarray:
    return np.round((xy * [1, -1] * [W * SCALE, H * SCALE]) + [W / 2, H / 2]).astype(int)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1].rstrip(", ") + "…"


def _date(n: int) -> date:
    try:
        return date(n // 10000, max(1, n // 100 % 100), max(1, n % 100))
    except ValueError:
        return date.today()


def interest_points(engine: Any, user_id: int, per: int = 10) -> list[tuple[str, list[int]]]:
    """The signed-in reader's interests, each as (name, its ``per`` nearest papers), for the map:
    only the ``MAP_INTERESTS`` the map marks are searched. Kept per reader until their library or
    interest settings, the topic model or the store's papers change (the reader's clustering and
    the vector searches are the cost; reading the reader from the store is cheap)."""
    from .library import reader_for

    rec = engine.recommender()
    vectors = engine.vectors()
    if rec is None or vectors is None:
        return []
    topics = engine.topics()
    reader, profile = reader_for(engine, user_id)
    key = (topics._version, engine.store.max_rev(), id(vectors), tuple(reader.positives), profile["statement"],
           tuple(sorted(reader.muted)), tuple(sorted(reader.deleted)), tuple(sorted(reader.names.items())))
    with topics._lock:
        got = topics.interest_cache.get(user_id)
    if got is not None and got[0] == key:
        return got[1]
    out = []
    for it in [i for i in rec.interests(reader) if not i.muted][:MAP_INTERESTS]:
        ids, _ = vectors.search(np.asarray(it.centroid, np.float32), per)
        out.append((it.name, [int(i) for i in ids]))
    with topics._lock:
        cache = topics.interest_cache
        cache.pop(user_id, None)
        cache[user_id] = (key, out)
        while len(cache) > INTEREST_READERS:  # the least recently computed readers go first
            cache.pop(next(iter(cache)))
    return out


def latest_day_ids(engine: Any) -> tuple[str | None, list[int]]:
    """(label, paper ids) of the latest listed day; (None, []) before any."""
    period = engine.listings.period(None)
    return (period.label, engine.store.day_ids(period.first, period.last)) if period else (None, [])


def topic_by_slug(engine: Any, slug: str) -> int:
    """A topic by its slug; NotFound for anything else (hostile input included) and without a model."""
    if len(slug) > 80 or not SLUG.fullmatch(slug):
        raise NotFound("no such topic")
    model = engine.topics().current()
    if model is None:
        raise NotFound(str(TopicsMissing()))
    if slug not in model.slugs:
        raise NotFound(f"no topic {slug!r}: see /topics for the list")
    return model.slugs.index(slug)


def topic_lists(engine: Any, t: int, user_id: int | None) -> dict[str, Any]:
    """One topic's latest-day list, trending and newest papers, as list entries (public papers only)."""
    topics = engine.topics()
    members = topics.members_set(t)
    lst = engine.listings
    day, today = latest_day_ids(engine)
    today = [i for i in today if i in members]
    votes = engine.store.votes(today)
    today.sort(key=lambda i: (-votes.get(i, 0), -i))
    scores = topics.trending_scores(lst)
    hot = sorted((i for i in scores if i in members), key=lambda i: -scores[i])[:10]
    trending = lst.entries(hot, user_id)
    for e in trending:
        e.score = round(scores[e.paper.id], 4)
    return {"day": day, "today": lst.entries(today[:LIST_LIMIT], user_id), "trending": trending,
            "newest": lst.entries(topics.newest(t, 20), user_id), "today_total": len(today)}


def topic_feed(engine: Any, slug: str, limit: int = 50) -> tuple[str, list[tuple[Any, str | None]]]:
    """(title, [(paper, note)]) of /feeds/topics/{slug}.atom: the topic's newest public papers."""
    t = topic_by_slug(engine, slug)
    topics = engine.topics()
    ids = topics.newest(t, limit)
    papers = engine.store.get_papers(ids)
    label = topics.require().labels[t]
    return label, [(papers[i], f"Topic: {label}") for i in ids if i in papers]


def follow_topics(engine: Any) -> int:
    """The web follower thread's step: the TF-IDF rows (when loaded) and a fitted topic model caught
    up with the store beside the requests, which never assign papers themselves. Without a model no
    TF-IDF index is built for it."""
    topics = engine.topics()
    try:
        tfidf = engine.follow_tfidf(need=topics.current() is not None)
    except ConfigError:  # no scikit-learn: no TF-IDF rows, no topic model to follow
        return 0
    if tfidf is None or topics.current() is None:
        return 0
    n = topics.follow(tfidf)
    topics.hidden()  # and the upload-only set, so the next topic request finds it made
    return n


def fit_topics(engine: Any, k: int | None = None) -> TopicModel:
    """``paperboy topics fit``: TF-IDF rows brought up to date and saved, then the topics refitted."""
    tfidf = engine.tfidf()
    tfidf.sync(engine.store)
    if tfidf.matrix is None:
        raise ConfigError("topics need the TF-IDF rows of at least 50 papers: ingest papers first")
    return engine.topics().fit(tfidf, k)


def ensure_topics(engine: Any) -> TopicModel | None:
    """Fit the topics once when a home has none yet (``paperboy run``); None when there was one."""
    if engine.topics().current() is not None:
        return None
    return fit_topics(engine)
