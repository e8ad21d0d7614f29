"""Offline evaluation of recommendations with simulated readers.

Readers are simulated from the corpus itself: a *topic* is a title phrase (two or three words,
e.g. "quantum key distribution", "Bose-Einstein condensates") that 2 * per_topic or more papers
have in their titles; it plays the part of a reader's folder of related papers. A reader follows
1-3 topics; from each, ``per_topic`` papers are their library and up to ``per_topic`` others are
hidden. Each method ranks the corpus (minus the library) and is scored on the hidden papers:
recall@k (hits / min(k, hidden)), nDCG@k (binary), and the Vendi score of its top k (diversity).

Methods: ``paperboy`` (services/recommend.py: the engine's own recommender, the one pages, feeds
and digests use, built by ``build_recommender``), ``centroid`` (cosine to the mean library vector),
``arxiv-sanity`` (arxiv-sanity-lite: TF-IDF of title + abstract, unigrams and bigrams, and a linear
SVM per reader with C=0.01 and balanced classes, library against everything else).
Topics are defined by title words, which favours lexical methods such as the SVM.

With ``folders`` (``eval recs --topics FILE``: human-curated topic folders, ``eval/topics.py``) a
topic is a folder instead: a reader follows 1-3 folders; from each, ``min(per_topic, n // 2)`` of
its ``n`` papers (in a random order) are the library and all the others are hidden, so recall@k
asks for any of the folder's remaining papers. Folders with fewer than ``MIN_FOLDER`` (4) papers
cannot give at least two library and two hidden papers and are not used. A paper filed in two of a
reader's folders counts once, in the library if either folder put it there.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..index.lexical import STOP_WORDS
from ..index.tfidf import PARAMS
from ..services.recommend import Reader, vendi

WORD = re.compile(r"[a-z][a-z0-9-]+")
MIN_FOLDER = 4  # papers in a topic folder for it to be split into library and hidden papers


@dataclass
class SimReader:
    topics: list[str]
    library: list[int]
    hidden: set[int]


def topics(titles: dict[int, str], min_df: int, max_df: int, n: int, rng: np.random.Generator) -> dict[str, list[int]]:
    """Title phrases of 2-3 words (no stop word at either end) found in min_df..max_df titles,
    keeping phrases whose papers overlap less than half with a kept one."""
    df: Counter[str] = Counter()
    has: dict[str, list[int]] = {}
    for pid, t in titles.items():
        w = WORD.findall(t.lower())
        grams = {" ".join(w[i:i + m]) for m in (2, 3) for i in range(len(w) - m + 1)
                 if w[i] not in STOP_WORDS and w[i + m - 1] not in STOP_WORDS}
        for g in grams:
            df[g] += 1
            has.setdefault(g, []).append(pid)
    ok = [g for g, c in df.items() if min_df <= c <= max_df]
    ok.sort(key=lambda g: (-len(g.split()), -df[g], g))  # longer phrases are more specific topics
    kept: dict[str, list[int]] = {}
    for g in ok:
        s = set(has[g])
        if all(len(s & set(v)) < 0.5 * min(len(s), len(v)) and g not in k and k not in g for k, v in kept.items()):
            kept[g] = has[g]
        if len(kept) >= n * 3:
            break
    keys = sorted(kept)
    pick = rng.choice(len(keys), size=min(n, len(keys)), replace=False)
    return {keys[i]: kept[keys[i]] for i in sorted(pick)}


def _readers(topic_papers: dict[str, list[int]], n_readers: int, rng: np.random.Generator,
             split: Callable[[list[int], list[int], set[int]], tuple[list[int], set[int]]]) -> list[SimReader]:
    """Readers of 1-3 topics (1, 2, 3, 1, ...); ``split(topic's papers, library so far, hidden so far)``
    gives the library and hidden papers a topic adds."""
    names = list(topic_papers)
    out = []
    for r in range(n_readers):
        chosen = [names[i] for i in rng.choice(len(names), size=min(1 + r % 3, len(names)), replace=False)]
        lib: list[int] = []
        hidden: set[int] = set()
        for t in chosen:
            more, hide = split(topic_papers[t], lib, hidden)
            lib += more
            hidden |= hide
        out.append(SimReader(chosen, lib, hidden - set(lib)))
    return out


def simulate(topic_papers: dict[str, list[int]], n_readers: int, per_topic: int,
             rng: np.random.Generator) -> list[SimReader]:
    """Title-phrase readers: ``per_topic`` library papers and up to ``per_topic`` hidden ones per topic."""
    def split(members: list[int], lib: list[int], hidden: set[int]) -> tuple[list[int], set[int]]:
        papers = [p for p in rng.permutation(members).tolist() if p not in lib and p not in hidden]
        return papers[:per_topic], set(papers[per_topic:2 * per_topic])
    return _readers(topic_papers, n_readers, rng, split)


def simulate_folders(folders: dict[str, list[int]], n_readers: int, per_topic: int,
                     rng: np.random.Generator) -> list[SimReader]:
    """Readers of 1-3 topic folders (1, 2, 3, 1, ...): ``min(per_topic, n // 2)`` of each folder's
    ``n`` papers are the library, the rest of the folder is hidden; folders under MIN_FOLDER papers are skipped."""
    usable = {f: list(dict.fromkeys(folders[f])) for f in sorted(folders) if len(set(folders[f])) >= MIN_FOLDER}

    def split(members: list[int], lib: list[int], hidden: set[int]) -> tuple[list[int], set[int]]:
        papers = rng.permutation(members).tolist()
        return [p for p in papers[:min(per_topic, len(papers) // 2)] if p not in lib], set(papers)
    return _readers(usable, n_readers, rng, split)


def score(ranked: list[int], hidden: set[int], k: int) -> tuple[float, float]:
    hits = [1.0 if p in hidden else 0.0 for p in ranked[:k]]
    recall = sum(hits) / max(min(k, len(hidden)), 1)
    dcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits))
    idcg = sum(1 / math.log2(i + 2) for i in range(min(k, len(hidden))))
    return recall, dcg / idcg if idcg else 0.0


class Baselines:
    """The two comparison methods over the same corpus."""

    def __init__(self, ids: np.ndarray, mat: np.ndarray, texts: list[str]) -> None:
        try:
            from sklearn.feature_extraction.text import TfidfVectorizer
        except ImportError as e:
            raise ConfigError("the arxiv-sanity baseline needs scikit-learn: pip install 'paperboy[embed]'") from e
        self.ids, self.mat = ids, mat
        self.pos = {int(i): n for n, i in enumerate(ids)}
        # arxiv-sanity-lite's features: TF-IDF of title + abstract, unigrams and bigrams (index/tfidf.py).
        self.tfidf = TfidfVectorizer(**PARAMS, max_df=0.1, min_df=5).fit_transform(texts)  # compute.py's

    def _top(self, scores: np.ndarray, library: list[int], k: int) -> list[int]:
        scores = scores.copy()
        scores[[self.pos[p] for p in library if p in self.pos]] = -np.inf
        top = np.argpartition(-scores, k)[:k]
        return [int(self.ids[i]) for i in top[np.argsort(-scores[top])]]

    def centroid(self, library: list[int], k: int) -> list[int]:
        c = self.mat[[self.pos[p] for p in library if p in self.pos]].mean(0)
        return self._top(self.mat @ (c / (np.linalg.norm(c) or 1)), library, k)

    def svm(self, library: list[int], k: int) -> list[int]:
        from sklearn import svm

        y = np.zeros(len(self.ids))
        y[[self.pos[p] for p in library if p in self.pos]] = 1
        clf = svm.LinearSVC(class_weight="balanced", verbose=False, max_iter=10000, tol=1e-6, C=0.01)
        clf.fit(self.tfidf, y)
        return self._top(clf.decision_function(self.tfidf), library, k)


def evaluate(engine: Any, n_readers: int = 200, per_topic: int = 10, k: int = 20, seed: int = 0,
             max_df: int = 400, progress: Any = None,
             folders: dict[str, list[int]] | None = None) -> dict[str, Any]:
    """Mean recall@k, nDCG@k and Vendi@k per method over simulated readers: of title phrases, or of
    ``folders`` (folder -> paper ids, from ``eval.topics.prepare``) when given (``max_df`` unused then)."""
    vectors = engine.vectors()
    if vectors is None or len(vectors) < (2 * MIN_FOLDER if folders is not None else 100):
        raise ConfigError("eval recs needs an embedded corpus of 100+ papers: paperboy ingest ... && paperboy embed")
    ids, mat = vectors.matrix()
    ids, mat = np.array(ids), np.array(mat, np.float32)  # eval corpora are small: one f32 copy
    papers = {}
    for s in range(0, len(ids), 5000):
        papers.update(engine.store.get_papers([int(i) for i in ids[s:s + 5000]]))
    titles = {int(i): papers[int(i)].title for i in ids if int(i) in papers}
    rng = np.random.default_rng(seed)
    if folders is not None:
        topic_papers = {f: [p for p in v if p in titles] for f, v in folders.items()}
        topic_papers = {f: v for f, v in topic_papers.items() if len(set(v)) >= MIN_FOLDER}
        if len(topic_papers) < 2:
            raise ConfigError(f"only {len(topic_papers)} topic folders with {MIN_FOLDER}+ embedded papers; 2 are needed")
        readers = simulate_folders(topic_papers, n_readers, per_topic, rng)
    else:
        topic_papers = topics(titles, 2 * per_topic, max_df, max(n_readers // 2, 3), rng)
        if len(topic_papers) < 3:
            raise ConfigError(f"only {len(topic_papers)} title phrases in {2 * per_topic}..{max_df} papers: "
                              "corpus too small")
        readers = simulate(topic_papers, n_readers, per_topic, rng)
    base = Baselines(ids, mat, [f"{papers[int(i)].title} {papers[int(i)].abstract}" if int(i) in papers else ""
                                for i in ids])
    rec = engine.recommender()
    pos = base.pos
    methods = {
        "paperboy": lambda r: [x.paper_id for x in rec.recommend(Reader(r.library), k)[0]],
        "centroid": lambda r: base.centroid(r.library, k),
        "arxiv-sanity": lambda r: base.svm(r.library, k),
    }
    rows: dict[str, list[tuple[float, float, float]]] = {m: [] for m in methods}
    for r in readers:
        for name, fn in methods.items():
            ranked = fn(r)
            rc, nd = score(ranked, r.hidden, k)
            rows[name].append((rc, nd, vendi(mat[[pos[p] for p in ranked if p in pos]])))
        if progress:
            progress(1)
    return {"readers": len(readers), "topics": len(topic_papers), "k": k, "per_topic": per_topic,
            "examples": [" + ".join(r.topics) for r in readers[:3]],
            "methods": {m: {"recall": float(np.mean([x[0] for x in v])), "ndcg": float(np.mean([x[1] for x in v])),
                            "vendi": float(np.mean([x[2] for x in v]))} for m, v in rows.items()}}
