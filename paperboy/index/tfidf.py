"""TF-IDF features of every paper (title + abstract) and per-reader linear SVMs over them, as
arxiv-sanity-lite does: the lexical half of the recommender's per-reader model.

The reader's SVM (``svm_scores``) sees three blocks per paper: the TF-IDF of title + abstract
(arxiv-sanity-lite's features), the TF-IDF of the title alone (same vocabulary and idf; a title says
what a paper is about, an abstract also says how, so the title's words count again) and, when the
caller passes the vector index's matrix, the paper's embedding (the semantic side that TF-IDF lacks;
issue 11). It is trained on the reader's positives against their negatives and a fixed random sample
of the corpus (not every paper, as arxiv-sanity-lite does): the training cost stays flat as the
corpus grows. ``train_svm`` gives the model (``SvmModel``, tagged with the index ``version`` it was
trained on, so a cache never serves a model of other rows) and ``decision`` scores a given set of
papers (``RowBlock``), so a request scores its candidates and not the corpus; ``svm_scores`` scores
every paper, one sparse product per block (the reference, and the tests').

Derived data beside the store: the fitted vocabulary (JSON), idf (.npy), the paper ids (.npy) and the
sparse matrices of texts and of titles (their CSR arrays, one .npy each, no pickle): one generation, the
sidecar written last (``generations.py``). The matrices are memory-mapped when loaded (``csr_rows.py``):
a process holds the pages of the rows it reads, not the corpus. New or changed papers are transformed
with the fitted vocabulary and appended in memory below the mapped rows (a changed paper's old row is
retired); the vocabulary is refitted when the corpus has doubled since the last fit. Files that cannot be
read or do not fit together (vocabulary, idf, ids and matrix shapes) are logged once and rebuilt from the
store; an index saved as .npz matrices (before) is read whole once and saved in the new form.
"""

from __future__ import annotations

import itertools
import json
import logging
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .csr_rows import StackedRows, csr_arrays, csr_spec, from_arrays
from .generations import GenerationError, load_generation, read_sidecar, save_generation
from .vectors import IdRows

# arxiv-sanity-lite's features (compute.py): unigrams and bigrams, sublinear tf, at most 20k terms.
PARAMS: dict[str, Any] = dict(input="content", encoding="utf-8", decode_error="replace", strip_accents="unicode",
                              lowercase=True, analyzer="word", stop_words="english",
                              token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b", ngram_range=(1, 2),
                              max_features=20000, norm="l2", use_idf=True, smooth_idf=True, sublinear_tf=True,
                              dtype=np.float32)  # saved and mapped as float32: half of float64's bytes
SIDE = "tfidf.json"
log = logging.getLogger(__name__)
REFIT_GROWTH = 2.0
TITLE_WEIGHT = 0.5  # the title block's weight in the reader's SVM (0: title + abstract only)
DENSE_WEIGHT = 0.5  # the embedding block's weight (embeddings are unit vectors, like the TF-IDF rows)
NEGATIVE_SAMPLE = 5000  # corpus papers the reader's SVM is trained against (fixed sample: deterministic)
SVM_C = 0.01  # arxiv-sanity-lite's
MIN_PAPERS = 50
_SPEC = {"idf": (np.float64, ("terms",)), "ids": (np.int64, ("rows",))}  # "terms", "rows": the sidecar's
_MAPPED = {**csr_spec("text"), **csr_spec("titles")}
_VERSIONS = itertools.count(1)  # process-wide: two indexes (a reload, a repair) never share a version
Dense = Callable[[np.ndarray], np.ndarray]  # paper ids -> their unit vectors (zeros for a paper without one)


@dataclass(frozen=True)
class SvmModel:
    """A reader's trained SVM, weights per block with the block weights folded in (float32: a cached
    model is ~160 KB at 20k terms)."""

    version: int  # the ``TfidfIndex.version`` it was trained on
    text: np.ndarray
    title: np.ndarray | None
    dense: np.ndarray | None
    intercept: float


@dataclass(frozen=True)
class RowBlock:
    """Some papers' TF-IDF rows, cut out once to be scored by many readers' models."""

    version: int
    ids: np.ndarray  # the papers with a live row, in the order given
    text: Any
    titles: Any


def _sklearn() -> Any:
    try:
        import scipy.sparse as sp
        from sklearn import svm
        from sklearn.feature_extraction.text import TfidfVectorizer
    except ImportError as e:
        raise ConfigError("TF-IDF features need scikit-learn: pip install 'paperboy[embed]'") from e
    return sp, svm, TfidfVectorizer


def _read_vocab(path: Path) -> dict[str, int]:
    vocab = json.loads(path.read_text())
    if not isinstance(vocab, dict) or any(not isinstance(v, int) or isinstance(v, bool) for v in vocab.values()):
        raise ValueError("vocabulary is not an object of term -> column")
    return vocab


def _read_matrix(path: Path) -> Any:
    sp, _, _ = _sklearn()
    try:
        return sp.load_npz(path).tocsr()  # allow_pickle=False by default
    except (zipfile.BadZipFile, zlib.error) as e:
        raise ValueError(f"matrix unreadable: {e}") from e


def _text(p: dict[str, Any]) -> str:
    return f"{p['title']}. {p.get('abstract') or ''}"


def _dense_rows(ids: np.ndarray, dense_ids: np.ndarray) -> np.ndarray:
    """For each of ``ids``, its row in ``dense_ids`` (-1 where it has none)."""
    dense_ids = np.asarray(dense_ids)
    if not len(dense_ids):
        return np.full(len(ids), -1, np.int64)
    order = np.argsort(dense_ids, kind="stable")
    at = np.clip(np.searchsorted(dense_ids, ids, sorter=order), 0, len(order) - 1)
    rows = order[at]
    return np.where(dense_ids[rows] == ids, rows, -1)


class TfidfIndex:
    """TF-IDF rows for papers, and ``svm_scores`` for a reader."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.vectorizer: Any = None
        self.ids = np.zeros(0, np.int64)
        self.matrix: Any = None
        self.titles: Any = None  # the titles' rows, aligned with ``matrix``
        self.synced, self.fitted_on = 0, 0
        self._sorted: tuple[np.ndarray, IdRows] | None = None  # (the ids it was built from, live id -> row)
        self._unsaved = False  # rows updated in memory only (sync with save=False)
        self.version = next(_VERSIONS)  # a new one whenever the rows or the vocabulary change
        self._sample: tuple[int, int, np.ndarray] | None = None  # (version, size, rows) of the negative sample
        self._names: tuple[int, np.ndarray] | None = None  # (version, the vocabulary's terms by column)
        if directory is not None and (directory / SIDE).exists():
            try:
                self._load()
            except (GenerationError, ValueError, KeyError, TypeError) as e:  # derived data: rebuilt on the next sync
                log.warning("rebuilding the TF-IDF index in %s from the store: %s", directory, e)

    def _load(self) -> None:
        """Load the saved generation, all of it or nothing (GenerationError & co. if damaged)."""
        _, _, tfidf = _sklearn()
        assert self.directory is not None
        readers: dict[str, Any] = {"vocab": _read_vocab}
        legacy = "matrix" in read_sidecar(self.directory, SIDE).get("files", {})  # .npz matrices, read whole
        if legacy:
            readers |= {"matrix": _read_matrix, "titles": _read_matrix}
        spec = _SPEC if legacy else {**_SPEC, **_MAPPED}
        got, meta = load_generation(self.directory, SIDE, spec, readers=readers, mmap=() if legacy else _MAPPED)
        vocab, idf, ids = got["vocab"], got["idf"], got["ids"]
        if len(vocab) != len(idf) or set(vocab.values()) != set(range(len(idf))):
            raise ValueError("vocabulary does not match the idf array")
        if not np.isfinite(idf).all():
            raise ValueError("idf holds NaN or infinity")
        if legacy:
            matrix, titles = got["matrix"], got["titles"]
            if (matrix.nnz and not np.isfinite(matrix.data).all()) or (titles.nnz and not np.isfinite(titles.data).all()):
                raise ValueError("matrix holds NaN or infinity")
        else:  # structure checked, values not read: mapped pages come in as rows are used
            matrix, titles = from_arrays(got, "text", len(idf)), from_arrays(got, "titles", len(idf))
        if matrix.shape != (len(ids), len(idf)):
            raise ValueError(f"matrix {matrix.shape} does not fit {len(ids)} ids and {len(idf)} terms")
        if titles.shape != matrix.shape:
            raise ValueError(f"title matrix {titles.shape} does not fit the matrix {matrix.shape}")
        vectorizer = tfidf(**PARAMS, vocabulary=vocab)
        vectorizer.idf_ = idf
        self.vectorizer, self.ids = vectorizer, ids
        self.matrix, self.titles = StackedRows(matrix), StackedRows(titles)
        self.synced, self.fitted_on = int(meta["synced"]), int(meta["fitted_on"])
        self._unsaved = legacy  # the next saving sync writes the mapped form
        self.version = next(_VERSIONS)

    def _save(self) -> None:
        if self.directory is None:
            return
        vocab = {k: int(v) for k, v in self.vectorizer.vocabulary_.items()}
        idf = np.asarray(self.vectorizer.idf_, np.float64)
        arrays = {"idf": idf, "ids": self.ids, **csr_arrays(self.matrix, "text"), **csr_arrays(self.titles, "titles")}
        meta = {"synced": self.synced, "fitted_on": self.fitted_on, "rows": len(self.ids), "terms": len(idf),
                "rows1": len(self.ids) + 1, "text_nnz": len(arrays["text_data"]),
                "titles_nnz": len(arrays["titles_data"])}
        save_generation(self.directory, SIDE, arrays, meta,
                        files={"vocab": ("json", lambda p: p.write_text(json.dumps(vocab)))})
        self._unsaved = False

    def sync(self, store: Any, chunk: int = 20_000, save: bool = True) -> int:
        """Bring the rows up to date with the store; returns how many papers were (re)computed.
        ``save=False`` keeps the update in memory (a web worker following the store: the next
        ``paperboy embed`` saves)."""
        _, _, tfidf = _sklearn()
        total = store.max_rev()
        if total == self.synced:
            if save and self._unsaved:
                self._save()
            return 0
        refit = self.vectorizer is None or store.stats()["papers"] >= REFIT_GROWTH * max(self.fitted_on, 1)
        # Built in locals and published together at the end: request threads read these while the
        # web's follower thread syncs, and a refit takes minutes at scale.
        vectorizer, ids, matrix, titles, synced = self.vectorizer, self.ids, self.matrix, self.titles, self.synced
        fitted_on = self.fitted_on
        if refit:
            rows = store.papers_since(0, 10**9)
            if len(rows) < MIN_PAPERS:
                return 0
            vectorizer = tfidf(**PARAMS, min_df=min(5, max(1, len(rows) // 1000)), max_df=0.1
                               if len(rows) >= 1000 else 1.0).fit([_text(p) for p in rows])
            ids, matrix, titles = np.zeros(0, np.int64), None, None
            fitted_on, synced = len(rows), 0
        done = 0
        while papers := store.papers_since(synced, chunk):
            new = vectorizer.transform([_text(p) for p in papers])
            new_titles = vectorizer.transform([p["title"] for p in papers])
            pids = np.array([p["id"] for p in papers], np.int64)
            if len(ids):
                ids = np.where(np.isin(ids, pids), -1, ids)  # retire changed papers' rows
            ids = np.concatenate([ids, pids])
            # appended below the mapped rows: the saved ones stay shared pages of the file
            matrix = StackedRows(new) if matrix is None else matrix.append(new)
            titles = StackedRows(new_titles) if titles is None else titles.append(new_titles)
            synced = papers[-1]["rev"]
            done += len(papers)
        if done or refit:
            self.version = next(_VERSIONS)  # before and after: a model of the old rows fails its check
            self.vectorizer, self.matrix, self.titles, self.ids = vectorizer, matrix, titles, ids
            self.fitted_on, self.synced = fitted_on, synced
            self.version = next(_VERSIONS)
        if save or refit:
            self._save()
        else:
            self._unsaved = True
        return done

    def rows_of(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The live row of each of ``ids`` (-1 where it has none): a sorted array and a binary
        search, not a dict (at 2.7M papers a dict of rows would take ~300 MB)."""
        all_ids = self.ids  # read once: the follower thread may swap it meanwhile
        if self._sorted is None or self._sorted[0] is not all_ids:
            live = np.flatnonzero(all_ids >= 0)
            self._sorted = (all_ids, IdRows.of(all_ids[live], live))
        return self._sorted[1].get(np.asarray(ids, np.int64).reshape(-1))

    def cosines(self, paper_id: int, ids: np.ndarray) -> np.ndarray:
        """TF-IDF cosine of ``paper_id`` to each of ``ids`` (rows are l2-normalised); 0 where either
        has no row yet."""
        out = np.zeros(len(ids))
        if self.matrix is None or (target := int(self.rows_of([paper_id])[0])) < 0:
            return out
        rows = self.rows_of(ids)
        if (have := rows >= 0).any():
            out[have] = (self.matrix[rows[have]] @ self.matrix[target].T).toarray().ravel()
        return out

    def _negative_sample(self, sample: int) -> np.ndarray:
        """``sample`` random live rows (all of them when fewer), fixed per version: deterministic."""
        if self._sample is not None and self._sample[:2] == (self.version, sample):
            return self._sample[2]
        live = np.flatnonzero(self.ids >= 0)
        if sample and len(live) > sample:
            live = np.sort(np.random.default_rng(0).choice(live, sample, replace=False))
        self._sample = (self.version, sample, live)
        return live

    def train_svm(self, positives: Sequence[int], negatives: Sequence[int], dense: Dense | None = None, *,
                  title_weight: float = TITLE_WEIGHT, dense_weight: float = DENSE_WEIGHT,
                  sample: int = NEGATIVE_SAMPLE, c: float = SVM_C) -> SvmModel | None:
        """The reader's linear SVM (module docstring): positives against their negatives (3x) and
        ``sample`` random corpus papers, classes balanced, on the TF-IDF of title + abstract,
        ``title_weight`` x the title's and, with ``dense`` (ids -> unit vectors), ``dense_weight`` x
        the embedding. None when there is nothing to train on. Its cost does not depend on the corpus."""
        sp, svm, _ = _sklearn()
        if self.matrix is None or not positives:
            return None
        pos = np.unique(r[r >= 0]) if len(r := self.rows_of(list(positives))) else np.zeros(0, np.int64)
        if not len(pos):
            return None
        neg = np.setdiff1d(self.rows_of(list(negatives)), np.r_[pos, -1]).astype(np.int64)
        bg = np.setdiff1d(self._negative_sample(sample), np.r_[pos, neg])
        train = np.r_[pos, neg, bg]
        y = np.r_[np.ones(len(pos)), np.zeros(len(neg) + len(bg))]
        w = np.r_[np.ones(len(pos)), np.full(len(neg), 3.0), np.ones(len(bg))]
        use_title = bool(title_weight) and self.titles is not None
        out = [self.matrix[train]] + ([self.titles[train] * title_weight] if use_title else [])
        if dense is not None and dense_weight:
            x = np.asarray(dense(self.ids[train]), np.float32) * dense_weight
            n, dim = x.shape  # a full block: its CSR arrays directly (csr_matrix(x) would scan for zeros)
            out.append(sp.csr_matrix((x.ravel(), np.tile(np.arange(dim, dtype=np.int32), n),
                                      np.arange(0, n * dim + 1, dim, dtype=np.int64)), shape=(n, dim)))
        clf = svm.LinearSVC(class_weight="balanced", max_iter=10000, tol=1e-4, C=c, random_state=0)  # deterministic
        clf.fit(sp.hstack(out).tocsr() if len(out) > 1 else out[0], y, sample_weight=w)
        coef, width = clf.coef_.ravel(), self.matrix.shape[1]
        title = coef[width:2 * width] * title_weight if use_title else None
        rest = coef[(2 if use_title else 1) * width:]
        return SvmModel(self.version, coef[:width].astype(np.float32), None if title is None else title.astype(np.float32),
                        (rest * dense_weight).astype(np.float32) if len(rest) else None, float(clf.intercept_[0]))

    def strongest_terms(self, model: SvmModel, n: int) -> list[str]:
        """The ``n`` terms the model weighs most (text and title weights together), strongest first:
        a keyword query for the papers it would score highest."""
        if self._names is None or self._names[0] != self.version:
            self._names = (self.version, self.vectorizer.get_feature_names_out())
        w = model.text + (model.title if model.title is not None else 0)
        top = np.argpartition(-w, min(n, len(w) - 1))[:n]
        top = top[np.argsort(-w[top], kind="stable")]
        return [str(self._names[1][i]) for i in top if w[i] > 0]

    def block(self, ids: Sequence[int] | np.ndarray) -> RowBlock:
        """The rows of ``ids`` (those that have one), to score with ``decision``."""
        ids = np.asarray(ids, np.int64).reshape(-1)
        rows = self.rows_of(ids) if self.matrix is not None else np.full(len(ids), -1, np.int64)
        pids, rows = ids[rows >= 0], rows[rows >= 0]
        if not len(rows):
            return RowBlock(self.version, pids, None, None)
        return RowBlock(self.version, pids, self.matrix[rows], None if self.titles is None else self.titles[rows])

    def decision(self, model: SvmModel, block: RowBlock, dense: np.ndarray | None = None) -> np.ndarray:
        """The model's decision value for each paper of ``block`` (``dense``: their vectors, aligned)."""
        if model.version != self.version or block.version != self.version:
            raise ValueError("the SVM model or the row block is of another version of the TF-IDF rows")
        d = np.full(len(block.ids), model.intercept)
        if not len(block.ids):
            return d
        d += block.text @ model.text
        if model.title is not None and block.titles is not None:
            d += block.titles @ model.title
        if model.dense is not None and dense is not None:
            d += np.asarray(dense, np.float32) @ model.dense
        return d

    def svm_scores(self, positives: list[int], negatives: list[int], k: int, exclude: set[int],
                   dense: tuple[np.ndarray, np.ndarray] | None = None, *, title_weight: float = TITLE_WEIGHT,
                   dense_weight: float = DENSE_WEIGHT, sample: int = NEGATIVE_SAMPLE,
                   c: float = SVM_C) -> dict[int, float]:
        """The top ``k`` papers of the whole corpus by the reader's SVM (``train_svm``; ``dense``:
        (ids, unit vectors), e.g. ``VectorIndex.matrix()``), scores scaled to 0..1; {} when there is
        nothing to train on. Scores every row: the request path scores candidates (``decision``)."""
        drows = vecs = None
        lookup = None
        if dense is not None and dense_weight and len(dense[0]):
            drows, vecs = _dense_rows(self.ids, dense[0]), np.asarray(dense[1], np.float32)

            def lookup(ids: np.ndarray) -> np.ndarray:
                r = _dense_rows(ids, dense[0])
                return np.where((r >= 0)[:, None], vecs[np.maximum(r, 0)], 0)
        model = self.train_svm(positives, negatives, lookup, title_weight=title_weight, dense_weight=dense_weight,
                               sample=sample, c=c)
        if model is None:
            return {}
        d = np.full(len(self.ids), model.intercept)
        d += self.matrix @ model.text  # every paper, block by block (no stacked copy of the corpus)
        if model.title is not None:
            d += self.titles @ model.title
        if model.dense is not None and vecs is not None:
            assert drows is not None
            d += np.where(drows >= 0, (vecs @ model.dense)[np.maximum(drows, 0)], 0)
        d[self.ids < 0] = -np.inf
        r = self.rows_of(list(exclude))
        d[r[r >= 0]] = -np.inf
        return top_scaled(self.ids, d, k)


def top_scaled(ids: np.ndarray, d: np.ndarray, k: int) -> dict[int, float]:
    """The ``k`` best finite scores of ``d`` by id, scaled to 0..1 over those ``k``."""
    if not len(d) or k <= 0:
        return {}
    top = np.argpartition(-d, min(k, len(d) - 1))[:k]
    top = top[np.isfinite(d[top])]
    if not len(top):
        return {}
    hi, lo = d[top].max(), d[top].min()
    return {int(ids[i]): float((d[i] - lo) / (hi - lo)) if hi > lo else 1.0 for i in top}
