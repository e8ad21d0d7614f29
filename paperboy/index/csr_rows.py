"""Sparse rows in two parts: the saved rows, memory-mapped from their ``.npy`` files (a process holds
only the pages of the rows it reads), and the rows appended in memory since (a web worker following
the store). What the TF-IDF index does with its rows works on both: row selection, a product with a
vector, the shape. Appending keeps the saved part shared; only ``tocsr`` (for saving) copies it."""

from __future__ import annotations

from typing import Any

import numpy as np


class StackedRows:
    """``base`` (a CSR matrix, typically over memory-mapped arrays) with ``extra`` rows below it."""

    def __init__(self, base: Any, extra: Any = None) -> None:
        self.base, self.extra = base, extra if extra is not None and extra.shape[0] else None

    @property
    def shape(self) -> tuple[int, int]:
        n = self.base.shape[0] + (self.extra.shape[0] if self.extra is not None else 0)
        return n, self.base.shape[1]

    @property
    def nnz(self) -> int:
        return int(self.base.nnz + (self.extra.nnz if self.extra is not None else 0))

    def append(self, rows: Any) -> StackedRows:
        """These rows and ``rows`` below them (a new object: readers of this one are not disturbed)."""
        import scipy.sparse as sp

        extra = rows if self.extra is None else sp.vstack([self.extra, rows]).tocsr()
        return StackedRows(self.base, extra)

    def __getitem__(self, rows: Any) -> Any:
        """The rows at these positions (an int, a slice or an array of them, in any order), as one CSR matrix."""
        import scipy.sparse as sp

        idx = np.arange(*rows.indices(self.shape[0])) if isinstance(rows, slice) else np.asarray(rows, np.int64).reshape(-1)
        n = self.base.shape[0]
        if self.extra is None or not len(idx) or idx.max() < n:
            return self.base[idx]
        if idx.min() >= n:
            return self.extra[idx - n]
        low = idx < n
        parts = sp.vstack([self.base[idx[low]], self.extra[idx[~low] - n]]).tocsr()
        order = np.r_[np.flatnonzero(low), np.flatnonzero(~low)]
        return parts[np.argsort(order, kind="stable")]

    def __matmul__(self, v: np.ndarray) -> np.ndarray:
        out = self.base @ v
        return out if self.extra is None else np.concatenate([out, self.extra @ v])

    def tocsr(self) -> Any:
        import scipy.sparse as sp

        return self.base.tocsr() if self.extra is None else sp.vstack([self.base, self.extra]).tocsr()


def csr_arrays(m: Any, name: str) -> dict[str, np.ndarray]:
    """A CSR matrix's arrays, to save one ``.npy`` each: ``{name}_data`` (float32), ``_indices``
    (int32), ``_indptr`` (int64)."""
    m = m.tocsr()
    return {f"{name}_data": np.asarray(m.data, np.float32), f"{name}_indices": np.asarray(m.indices, np.int32),
            f"{name}_indptr": np.asarray(m.indptr, np.int64)}


def csr_spec(name: str) -> dict[str, tuple[Any, tuple[str, ...]]]:
    """The ``load_generation`` spec of ``csr_arrays``; the sidecar holds ``{name}_nnz`` and ``rows1``."""
    return {f"{name}_data": (np.float32, (f"{name}_nnz",)), f"{name}_indices": (np.int32, (f"{name}_nnz",)),
            f"{name}_indptr": (np.int64, ("rows1",))}


def from_arrays(got: dict[str, np.ndarray], name: str, terms: int) -> Any:
    """The CSR matrix over loaded (memory-mapped) arrays, checked for structure without reading the
    rows: the row pointers rise from 0 to the number of stored values."""
    import scipy.sparse as sp

    data, indices, indptr = got[f"{name}_data"], got[f"{name}_indices"], got[f"{name}_indptr"]
    if indptr[0] != 0 or indptr[-1] != len(data) or (len(indptr) > 1 and np.any(np.diff(indptr) < 0)):
        raise ValueError(f"{name} row pointers do not fit its {len(data)} values")
    # int32 positions where they fit (scipy wants one index type for both): a copy of the row
    # pointers only, the values and columns stay mapped.
    ptr = indptr.astype(np.int32) if len(data) < 2**31 else indptr
    return sp.csr_matrix((data, indices, ptr), shape=(len(indptr) - 1, terms), copy=False)
