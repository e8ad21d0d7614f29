"""Topics over the whole corpus: a fitted model, each paper's topic, and a 2D map (issue 13).

Two methods were compared on the 45 human topic folders of the dev topic collection (2,026 papers,
benchmarks/topics.py): NMF on the TF-IDF rows ("Unsupervised Learning under Latent Label Shift"
factorizes a non-negative matrix; the arxiv-sanity-style TF-IDF of ``tfidf.py``) and spherical
k-means on the paper embeddings labelled by class-based TF-IDF (BERTopic's c-TF-IDF). At the default
k (22 there) NMF agreed better with the folders (NMI 0.789 vs 0.761, ARI 0.695 vs 0.609; k-means the
mean of 3 seeds) and its topics were more coherent at every k tried (15-45: NPMI of the top 10
words 0.28-0.37 vs 0.25-0.32); k-means led NMI only at k >= 30, ARI only at k = 15 and 45. So the
stored model is NMF; ``fit_kmeans``/``class_tfidf`` stay for the benchmark.

The fit is derived data under ``<home>/index/topics`` (``generations.py``: arrays plus a JSON
sidecar, no pickle): the topic-term matrix H over the fitted vocabulary, each topic's label, slug
and top terms, the 2D position of each topic, and for every paper its topic, share (its weight in
that topic, 0..1) and map coordinates. A new or changed paper is assigned as its TF-IDF row arrives
(``sync``: NMF with H held fixed, 0.45 ms for one paper at 38,858 papers; no refit). The map: topics
placed by classical MDS of their term profiles' cosine distances, then pushed apart to a minimum
gap (``_spread``), each paper at its topic's position drawn toward its
second topic by their relative shares plus a deterministic spread inside the topic's region (cheap,
stable, and a new paper lands where a refit would put it).
"""

from __future__ import annotations

import copy
import json
import math
import re
import time
import unicodedata
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError
from .generations import GenerationError, GenerationMissing, load_generation, save_generation

SIDE = "topics.json"
K_MIN, K_MAX = 4, 60
LABEL_WORDS = 3
TOP_TERMS = 12
TRANSFORM_ITERS = 100
FIT_SAMPLE = 20_000  # papers the NMF is fitted on (seeded sample); every paper is then placed
_SPEC = {"components": (np.float32, ("k", "terms_n")), "pos": (np.float32, ("k", 2)), "ids": (np.int64, ("rows",)),
         "topic": (np.int32, ("rows",)), "weight": (np.float32, ("rows",)), "xy": (np.float32, ("rows", 2)),
         "day": (np.int32, ("rows",))}
DayOf = Callable[[np.ndarray], np.ndarray]  # paper ids -> their dates as YYYYMMDD (0: undated)


class TopicsMissing(ConfigError):
    """No topic model fitted yet."""

    def __init__(self, msg: str = "no topic model yet: run `paperboy topics fit`") -> None:
        super().__init__(msg)


def default_k(n: int) -> int:
    """Topics for ``n`` papers: ~sqrt(n)/2, clamped to K_MIN..K_MAX (22 at 2,026 papers, 60 at 38,858)."""
    return int(min(K_MAX, max(K_MIN, int(math.sqrt(max(n, 1)) / 2)), max(n // 5, 2)))


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(n > 0, n, 1)).astype(np.float32)


def fit_kmeans(x: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means on unit rows: (labels, unit centroids). sklearn's k-means (k-means++, 3
    restarts) on the unit vectors, whose centroids are then normalized (cosine assignment)."""
    try:
        from sklearn.cluster import KMeans
    except ImportError as e:
        raise ConfigError("topics need scikit-learn: pip install 'paperboy[embed]'") from e
    x = _unit(np.asarray(x, np.float32))
    km = KMeans(n_clusters=k, n_init=3, random_state=seed, max_iter=100).fit(x)
    centers = _unit(km.cluster_centers_)
    return np.argmax(x @ centers.T, axis=1).astype(np.int32), centers


def fit_nmf(matrix: Any, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """NMF of the TF-IDF rows: (W papers x k, H k x terms)."""
    from sklearn.decomposition import NMF

    nmf = NMF(n_components=k, init="nndsvda", max_iter=300, random_state=seed)
    w = nmf.fit_transform(matrix)
    return w, nmf.components_


def class_tfidf(matrix: Any, labels: np.ndarray, k: int) -> np.ndarray:
    """BERTopic's c-TF-IDF, k x terms: each topic's summed TF-IDF rows, l1-normalized, times
    log(1 + mean topic mass / the term's mass over all topics)."""
    import scipy.sparse as sp

    onehot = sp.csr_matrix((np.ones(len(labels)), (labels, np.arange(len(labels)))), shape=(k, len(labels)))
    tf = np.asarray((onehot @ matrix).todense(), np.float64)
    tf /= np.maximum(tf.sum(1, keepdims=True), 1e-12)
    idf = np.log1p(tf.sum(1).mean() / np.maximum(tf.sum(0), 1e-12))
    return tf * idf


def top_terms(scores: np.ndarray, terms: list[str], n: int = TOP_TERMS) -> list[list[str]]:
    """Each topic's ``n`` best terms, deduplicated: a word already inside a kept phrase (or a phrase
    of kept words) is skipped, and so is a term another topic ranks first (it says nothing here)."""
    out = []
    for row in scores:
        kept: list[str] = []
        words: set[str] = set()
        for j in np.argsort(-row)[: n * 6]:
            if row[j] <= 0:
                break
            t = terms[j]
            parts = t.split()
            if t in kept or set(parts) <= words:
                continue
            if len(parts) == 1 and any(t in k.split() for k in kept):
                continue
            inside = [n for n, k in enumerate(kept) if len(k.split()) == 1 and k in parts]
            if inside:  # the phrase takes its word's place (and rank)
                kept[inside[0]] = t
                kept = [k for n, k in enumerate(kept) if n not in inside[1:]]
            else:
                kept.append(t)
            words.update(parts)
            if len(kept) >= n:
                break
        out.append(kept)
    return out


def npmi(binary: Any, topics: list[list[int]]) -> list[float]:
    """Mean NPMI of each topic's term pairs on document co-occurrence (``binary``: papers x terms,
    0/1, CSC); a pair that never co-occurs counts -1."""
    n = binary.shape[0]
    out = []
    for cols in topics:
        sub = binary[:, cols]
        df = np.asarray(sub.sum(0)).ravel() / n
        co = np.asarray((sub.T @ sub).todense()) / n
        vals = []
        for a in range(len(cols)):
            for b in range(a + 1, len(cols)):
                if co[a, b] <= 0:
                    vals.append(-1.0)
                elif co[a, b] >= 1:
                    vals.append(1.0)
                else:
                    vals.append(math.log(co[a, b] / (df[a] * df[b])) / -math.log(co[a, b]))
        out.append(float(np.mean(vals)) if vals else 0.0)
    return out


def slugify(text: str) -> str:
    s = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", s).strip("-")[:60] or "topic"


def labels_of(terms: list[list[str]]) -> tuple[list[str], list[str]]:
    """Readable labels ("quantum error, surface code, decoder") from the top terms, and unique slugs."""
    labels, slugs, seen = [], [], set()
    for i, ts in enumerate(terms):
        picked: list[str] = []
        stems: set[str] = set()
        for t in ts:  # each label term brings a new word: not "quantum computing, quantum computation"
            own = {w[:4] for w in t.split()}
            if not own & stems:
                picked.append(t)
                stems |= own
            if len(picked) == LABEL_WORDS:
                break
        label = ", ".join(picked) or f"topic {i + 1}"
        slug = slugify(" ".join(picked[:2]) or f"topic-{i + 1}")
        while slug in seen:
            slug = f"{slug}-{i + 1}"
        seen.add(slug)
        labels.append(label)
        slugs.append(slug)
    return labels, slugs


def topic_positions(centers: np.ndarray) -> np.ndarray:
    """Classical MDS of the centroids' cosine distances, scaled to -1..1 (deterministic, k x 2)."""
    k = len(centers)
    if k < 3:
        return np.array([[-0.5, 0.0], [0.5, 0.0]][:k], np.float32)
    d2 = np.clip(2 - 2 * (centers @ centers.T), 0, None)
    j = np.eye(k) - 1.0 / k
    b = -0.5 * j @ d2 @ j
    vals, vecs = np.linalg.eigh(b)
    pos = vecs[:, -2:][:, ::-1] * np.sqrt(np.clip(vals[-2:][::-1], 1e-9, None))
    pos = pos * np.sign(pos[np.argmax(np.abs(pos), axis=0), [0, 1]])  # sign-stable across runs
    pos -= pos.mean(0)
    return _spread(pos / max(np.abs(pos).max(), 1e-9)).astype(np.float32)


def _spread(pos: np.ndarray, iters: int = 300) -> np.ndarray:
    """Push topics apart until each is ``min_gap`` from the others (NMF topics are nearly orthogonal,
    so MDS alone heaps most of them in the middle), keeping MDS's arrangement; fits -1..1."""
    k = len(pos)
    gap = 1.6 / math.sqrt(k)
    angle = np.arange(k) * 2.399963  # a deterministic nudge: coincident topics get a direction
    pos = pos + 1e-3 * np.c_[np.cos(angle), np.sin(angle)]
    for _ in range(iters):
        d = pos[:, None, :] - pos[None, :, :]
        dist = np.linalg.norm(d, axis=2) + np.eye(k)
        push = np.clip(gap - dist, 0, None) / dist
        np.fill_diagonal(push, 0)
        if not push.any():
            break
        pos = np.clip(pos + 0.25 * (d * push[..., None]).sum(1), -1, 1)
    pos -= (pos.max(0) + pos.min(0)) / 2
    return pos / max(np.abs(pos).max(), 1e-9)


def place(ids: np.ndarray, shares: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(topic, weight, xy) of papers from their topic shares (papers x k, rows summing to 1): the
    top topic and its share; on the map, at the topic's position drawn toward the second topic by
    its relative share, plus a deterministic spread (by paper id) inside the topic's region."""
    k = shares.shape[1]
    order = np.argsort(-shares, axis=1)
    first = order[:, 0]
    second = order[:, 1] if k > 1 else first
    rows = np.arange(len(ids))
    s1, s2 = shares[rows, first], shares[rows, second]
    toward = np.clip(s2 / np.maximum(s1 + s2, 1e-9), 0, 0.45)[:, None] * 0.8
    xy = pos[first] * (1 - toward) + pos[second] * toward
    spacing = 1.6 / max(math.sqrt(k), 1)  # the gap between topics on the -1..1 map (``_spread``)
    h = (ids.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
    angle = (h % np.uint64(3600)).astype(np.float64) / 3600 * 2 * math.pi
    radius = np.sqrt(((h // np.uint64(3600)) % np.uint64(1000)).astype(np.float64) / 1000) * spacing * 0.45
    radius *= np.clip(1.2 - s1, 0.35, 1.0)  # papers mostly of one topic near its centre
    xy = xy + np.c_[np.cos(angle), np.sin(angle)] * radius[:, None]
    return first.astype(np.int32), s1.astype(np.float32), xy.astype(np.float32)


def _shares(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of W as shares (summing to 1) and which rows have any topic at all."""
    total = w.sum(1)
    return w / np.where(total > 0, total, 1)[:, None], total > 0


class TopicModel:
    """The fitted topics and every paper's place in them (see the module docstring)."""

    def __init__(self, directory: Path | None, components: np.ndarray, vocab: list[str], pos: np.ndarray,
                 labels: list[str], slugs: list[str], terms: list[list[str]], meta: dict[str, Any]) -> None:
        self.directory = directory
        self.components, self.vocab, self.pos = components.astype(np.float64), vocab, pos
        self.labels, self.slugs, self.terms, self.meta = labels, slugs, terms, meta
        self.ids = np.zeros(0, np.int64)
        self.topic = np.zeros(0, np.int32)
        self.weight = np.zeros(0, np.float32)
        self.xy = np.zeros((0, 2), np.float32)
        self.day = np.zeros(0, np.int32)  # each paper's date as YYYYMMDD (0: undated), for "rising"
        self._row: dict[int, int] | None = None
        self._members: dict[int, np.ndarray] | None = None
        self._proj: tuple[Any, Any] | None = None  # (vectorizer, its columns -> ours)

    @property
    def k(self) -> int:
        return len(self.labels)

    def copy(self) -> "TopicModel":
        """A copy whose per-paper arrays and meta can change (``sync``) while readers keep this one;
        the fitted parts (components, vocabulary, labels) are shared, never written."""
        other = copy.copy(self)
        other.meta = dict(self.meta)
        other._set(self.ids.copy(), self.topic.copy(), self.weight.copy(), self.xy.copy(), self.day.copy())
        return other

    # -- fitting and assignment -----------------------------------------------------------------

    @classmethod
    def fit(cls, directory: Path | None, tfidf: Any, k: int | None = None, seed: int = 0,
            sample: int = FIT_SAMPLE, day_of: DayOf | None = None) -> "TopicModel":
        """Fit k topics (default ``default_k``) by NMF on the TF-IDF rows of ``tfidf``
        (``index/tfidf.TfidfIndex``; at most ``sample`` of them, seeded, so the fit stays bounded),
        then place every paper."""
        started = time.perf_counter()
        live = np.flatnonzero(tfidf.ids >= 0) if tfidf.matrix is not None else np.zeros(0, np.int64)
        if len(live) < 10:
            raise ConfigError(f"topics need at least 10 papers with TF-IDF rows, the corpus has {len(live)}")
        k = int(k or default_k(len(live)))
        if not 2 <= k <= min(len(live) // 2, 500):
            raise ConfigError(f"k must be between 2 and {min(len(live) // 2, 500)}, not {k}")
        fit_rows = live if len(live) <= sample else np.sort(
            np.random.default_rng(seed).choice(live, sample, replace=False))
        _, h = fit_nmf(tfidf.matrix[fit_rows], k, seed)
        vocab = [t for t, _ in sorted(tfidf.vectorizer.vocabulary_.items(), key=lambda kv: kv[1])]
        top = top_terms(h, vocab)
        labels, slugs = labels_of(top)
        meta = {"method": "nmf", "fitted_on": len(live), "fit_sample": len(fit_rows),
                "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        model = cls(directory, h.astype(np.float32), vocab, topic_positions(_unit(h)), labels, slugs, top, meta)
        model.meta.update(tfidf_fit=int(tfidf.fitted_on), tfidf_rows=0)
        model.sync(tfidf, day_of)
        model.meta["fit_seconds"] = round(time.perf_counter() - started, 2)
        return model

    def transform(self, rows: Any, vectorizer: Any, iters: int = TRANSFORM_ITERS) -> np.ndarray:
        """W (papers x k) of TF-IDF rows made by ``vectorizer``: its columns are mapped to the fitted
        vocabulary by term (the TF-IDF index may have refitted its vocabulary since), then the
        non-negative least squares of X ~ W H with H fixed, by multiplicative updates (Lee & Seung)
        from the clipped least-squares start. Only k x k products per update: ~0.1 ms for one paper
        where sklearn's solver spends ~15 ms on checks."""
        if self._proj is None or self._proj[0] is not vectorizer:
            import scipy.sparse as sp

            ours = {t: j for j, t in enumerate(self.vocab)}
            pairs = [(c, ours[t]) for t, c in vectorizer.vocabulary_.items() if t in ours]
            src, dst = (np.array(x, np.int64) for x in zip(*pairs)) if pairs else (np.zeros(0, np.int64),) * 2
            shape = (len(vectorizer.vocabulary_), len(self.vocab))
            proj = sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=shape)
            hht = self.components @ self.components.T
            self._proj = (vectorizer, np.asarray(proj @ self.components.T), hht, np.linalg.pinv(hht))
        _, pht, hht, inv = self._proj
        xht = np.asarray(rows @ pht, np.float64)  # X H^T, papers x k
        w = np.clip(xht @ inv, 1e-6, None) * (xht.sum(1, keepdims=True) > 0)
        for _ in range(iters):
            w *= xht / np.maximum(w @ hht, 1e-12)
        return w

    def assign(self, ids: np.ndarray, rows: Any, vectorizer: Any, day_of: DayOf | None = None) -> int:
        """Assign (or re-assign) papers from their TF-IDF rows; no refit. A paper with no word of
        the fitted vocabulary gets no topic. Returns how many got one."""
        ids = np.asarray(ids, np.int64)
        if not len(ids):
            return 0
        shares, ok = _shares(self.transform(rows, vectorizer))
        ids, shares = ids[ok], shares[ok]
        topic, weight, xy = place(ids, shares, self.pos)
        days = np.asarray(day_of(ids), np.int32) if day_of is not None and len(ids) else np.zeros(len(ids), np.int32)
        row = self._rows()
        old = np.array([row.get(int(i), -1) for i in ids], np.int64)
        known = old >= 0
        at = old[known]
        self.topic[at], self.weight[at], self.xy[at], self.day[at] = topic[known], weight[known], xy[known], days[known]
        if (~known).any():
            self._set(np.r_[self.ids, ids[~known]], np.r_[self.topic, topic[~known]],
                      np.r_[self.weight, weight[~known]], np.r_[self.xy, xy[~known]], np.r_[self.day, days[~known]])
        self._members = None
        return int(len(ids))

    def sync(self, tfidf: Any, day_of: DayOf | None = None, chunk: int = 5000) -> int:
        """Assign the papers whose TF-IDF rows were added since the last sync (new and changed papers:
        the index appends a changed paper's row); after a TF-IDF vocabulary refit, every row once
        more. Returns how many rows were looked at."""
        if tfidf.matrix is None:
            return 0
        start = int(self.meta.get("tfidf_rows", 0))
        if int(self.meta.get("tfidf_fit", -1)) != int(tfidf.fitted_on) or start > len(tfidf.ids):
            start = 0
        done = 0
        for at in range(start, len(tfidf.ids), chunk):
            ids = tfidf.ids[at:at + chunk]
            live = np.flatnonzero(ids >= 0)
            self.assign(ids[live], tfidf.matrix[at + live], tfidf.vectorizer, day_of)
            done += len(live)
        self.meta.update(tfidf_fit=int(tfidf.fitted_on), tfidf_rows=len(tfidf.ids))
        return done

    def _set(self, ids: np.ndarray, topic: np.ndarray, weight: np.ndarray, xy: np.ndarray, day: np.ndarray) -> None:
        self.ids, self.topic = ids.astype(np.int64), topic.astype(np.int32)
        self.weight, self.xy, self.day = weight.astype(np.float32), xy.astype(np.float32), day.astype(np.int32)
        self._row = self._members = None

    def _rows(self) -> dict[int, int]:
        if self._row is None or len(self._row) != len(self.ids):
            self._row = {int(i): n for n, i in enumerate(self.ids)}
        return self._row

    # -- reading --------------------------------------------------------------------------------

    def topic_of(self, paper_id: int) -> tuple[int, float] | None:
        """(topic, share) of a paper, None if it has none (no TF-IDF row yet, or no known word)."""
        n = self._rows().get(int(paper_id))
        return None if n is None else (int(self.topic[n]), float(self.weight[n]))

    def members(self, t: int) -> np.ndarray:
        """Paper ids of topic ``t`` (cached until papers are assigned)."""
        if self._members is None:
            order = np.argsort(self.topic, kind="stable")
            bounds = np.searchsorted(self.topic[order], np.arange(self.k + 1))
            self._members = {j: self.ids[order[bounds[j]:bounds[j + 1]]] for j in range(self.k)}
        return self._members.get(t, np.zeros(0, np.int64))

    def sizes(self) -> np.ndarray:
        return np.bincount(self.topic, minlength=self.k)

    def find(self, name: str) -> int | None:
        """A topic by slug or label (case and punctuation ignored)."""
        s = slugify(name)
        for i, (slug, label) in enumerate(zip(self.slugs, self.labels)):
            if s == slug or s == slugify(label):
                return i
        return None

    # -- files ----------------------------------------------------------------------------------

    def save(self) -> None:
        if self.directory is None:
            return
        arrays = {"components": self.components.astype(np.float32), "pos": self.pos.astype(np.float32),
                  "ids": self.ids, "topic": self.topic, "weight": self.weight, "xy": self.xy, "day": self.day}
        vocab = json.dumps(self.vocab)
        meta = {**self.meta, "labels": self.labels, "slugs": self.slugs, "terms": self.terms, "k": self.k,
                "terms_n": len(self.vocab), "rows": len(self.ids)}
        save_generation(self.directory, SIDE, arrays, meta,
                        files={"vocab": ("json", lambda p: p.write_text(vocab))})

    @classmethod
    def load(cls, directory: Path) -> "TopicModel":
        """The saved model; TopicsMissing when none is saved, GenerationError when it is damaged."""
        def vocab_of(p: Path) -> list[str]:
            v = json.loads(p.read_text())
            if not isinstance(v, list) or not all(isinstance(t, str) for t in v):
                raise ValueError("vocabulary is not a list of terms")
            return v
        try:
            got, meta = load_generation(directory, SIDE, _SPEC, readers={"vocab": vocab_of})
        except GenerationMissing as e:
            raise TopicsMissing() from e
        labels, slugs, terms, k = meta.get("labels"), meta.get("slugs"), meta.get("terms"), meta.get("k")
        if not (isinstance(labels, list) and isinstance(slugs, list) and isinstance(terms, list)
                and len(labels) == len(slugs) == len(terms) == k and len(got["vocab"]) == meta["terms_n"]
                and all(isinstance(s, str) and s == slugify(s) for s in slugs)
                and all(isinstance(ts, list) for ts in terms)):
            raise GenerationError(f"{SIDE}: labels, slugs, terms and vocabulary do not fit k={k}")
        if len(got["topic"]) and (got["topic"].min() < 0 or got["topic"].max() >= k):
            raise GenerationError(f"{SIDE}: a paper's topic is out of range")
        if not np.isfinite(got["components"]).all() or not np.isfinite(got["xy"]).all():
            raise GenerationError(f"{SIDE}: NaN or infinity in the model")
        m = cls(directory, got["components"], got["vocab"], got["pos"], [str(x) for x in labels], slugs,
                [[str(t) for t in ts] for ts in terms],
                {key: v for key, v in meta.items()
                 if key not in ("labels", "slugs", "terms", "files", "generation", "saved_at")})
        m._set(got["ids"], got["topic"], got["weight"], got["xy"], got["day"])
        return m


