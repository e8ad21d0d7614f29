"""Faster embedding (issue 14): length-sorted batches and the ONNX Runtime backend, against the real
torch model on real abstracts. One ONNX export per module, into a temporary models folder."""

import hashlib
import json
import os
import shutil
import socket
import sys

import numpy as np
import pytest

from conftest import DATA
from paperboy.embed import BACKENDS, length_batches, make_embedder
from paperboy.embed.onnx import OnnxEmbedder, ensure_model
from paperboy.embed.sbert import MODEL_ID, SbertEmbedder
from paperboy.engine import Engine
from paperboy.errors import ConfigError
from paperboy.index.sync import vector_dir


def _texts():
    """20 real abstracts (title + abstract, as paperboy embeds a paper) and 4 bare titles."""
    rows = [json.loads(line) for line in (DATA / "kaggle_excerpt.jsonl").read_text().splitlines() if line.strip()]
    rows += [json.loads(line) for line in (DATA / "quant_ph_excerpt.jsonl").read_text().splitlines() if line.strip()]
    papers = [r for r in rows if r.get("abstract")][:20]
    return [f"{p['title'].strip()}\n{p['abstract'].strip()}" for p in papers] + [p["title"] for p in papers[:4]]


TEXTS = _texts()


@pytest.fixture(scope="module")
def torch_embedder():
    return SbertEmbedder()


@pytest.fixture(scope="module")
def reference(torch_embedder):
    """Today's loop: slices of 8 in the given order, each one model call."""
    m = torch_embedder.model
    return np.vstack([m.encode(TEXTS[i:i + 8], batch_size=8, normalize_embeddings=True, show_progress_bar=False)
                      for i in range(0, len(TEXTS), 8)])


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """A models folder with the int8 file, exported while no socket may connect (nothing downloads)."""
    pytest.importorskip("onnxruntime")  # the onnx extra; the torch tests here run without it
    d = tmp_path_factory.mktemp("models")

    def refuse(*a, **k):
        raise OSError("no network in this test")

    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", refuse)
    try:
        ensure_model(d, "int8")
    finally:
        mp.undo()
    return d


@pytest.fixture(scope="module")
def int8(models_dir):
    return OnnxEmbedder(quant="int8", models_dir=models_dir)


def _cos(a, b):
    return (a * b).sum(axis=1)


def test_length_batches_are_longest_first_stable_and_complete():
    lengths = [3, 9, 3, 1, 9, 5]
    got = length_batches(lengths, 4)
    assert got == [[1, 4, 5, 0], [2, 3]]  # ties keep their order
    assert length_batches([], 4) == []
    assert sorted(i for b in length_batches(lengths, 1) for i in b) == list(range(6))


def test_sorted_torch_batches_give_todays_vectors_in_the_given_order(torch_embedder, reference):
    got = torch_embedder.encode(TEXTS, batch_size=8)
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), 384)
    assert _cos(got, reference).min() >= 0.9999
    seen = []
    back = torch_embedder.encode(TEXTS[::-1], batch_size=8, progress=seen.append)
    assert _cos(back[::-1], reference).min() >= 0.9999  # rows come back where their texts were
    assert sum(seen) == len(TEXTS) and len(seen) == 3


def test_onnx_int8_matches_torch_per_text(int8, reference):
    got = int8.encode(TEXTS)
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert _cos(got, reference).min() >= 0.99


def test_onnx_fp32_matches_torch(models_dir, reference):
    fp32 = OnnxEmbedder(quant="fp32", models_dir=models_dir)
    got = fp32.encode(TEXTS, batch_size=8)
    assert _cos(got, reference).min() >= 0.999


def test_int8_vector_does_not_depend_on_its_batch_mates(int8):
    text = TEXTS[3]
    alone = int8.encode([text])[0]
    within = int8.encode(TEXTS[:10], batch_size=10)[3]
    with_titles = int8.encode([TEXTS[-1], text, TEXTS[-2]], batch_size=3)[1]
    assert np.array_equal(alone, within) and np.array_equal(alone, with_titles)
    assert np.array_equal(int8.encode_query(text), alone)  # the one-thread query session too


def test_the_export_is_reused_and_a_damaged_file_is_rebuilt(models_dir, int8):
    path = ensure_model(models_dir, "int8")
    before = path.stat()
    assert ensure_model(models_dir, "int8") == path and path.stat().st_mtime_ns == before.st_mtime_ns
    good = path.read_bytes()
    expected = int8.encode(TEXTS[:2])

    path.write_bytes(good[: len(good) // 2])  # a half-written file (say, a copy cut short)
    (path.parent / ".build-killed").mkdir()  # and what a killed build left behind
    assert ensure_model(models_dir, "int8") == path
    assert path.read_bytes() == good  # the export is deterministic
    assert not list(path.parent.glob(".build-*"))
    rebuilt = OnnxEmbedder(quant="int8", models_dir=models_dir)
    assert np.array_equal(rebuilt.encode(TEXTS[:2]), expected)

    path.with_suffix(".json").unlink()  # no manifest: the file cannot be trusted, rebuilt
    ensure_model(models_dir, "int8")
    assert json.loads(path.with_suffix(".json").read_text())["quant"] == "int8"


def test_a_file_onnx_runtime_cannot_load_is_a_clear_error(tmp_path, models_dir):
    d = tmp_path / "models"
    shutil.copytree(models_dir, d)
    model = next(d.rglob("model-int8.onnx"))
    model.write_bytes(b"not an onnx file")
    manifest = json.loads(model.with_suffix(".json").read_text())
    manifest["sha256"] = hashlib.sha256(b"not an onnx file").hexdigest()
    model.with_suffix(".json").write_text(json.dumps(manifest))  # damage the manifest agrees with
    with pytest.raises(ConfigError, match="cannot load the ONNX model"):
        OnnxEmbedder(quant="int8", models_dir=d).encode(["x"])


def test_backend_is_in_the_model_id_and_vectors_never_mix(built_home, models_dir):
    assert BACKENDS == ("torch", "onnx-fp32", "onnx-int8")
    base = {"embed_model": "all-MiniLM-L6-v2", "embed_device": "cpu", "home": built_home}
    assert make_embedder({**base, "embed_backend": "torch"}).model_id == MODEL_ID
    assert make_embedder({**base, "embed_backend": "onnx-int8"}).model_id == MODEL_ID + "+onnx-int8"
    assert make_embedder({**base, "embed_backend": "onnx-fp32"}).model_id == MODEL_ID + "+onnx-fp32"
    with pytest.raises(ConfigError, match="embed_backend must be one of"):
        make_embedder({**base, "embed_backend": "tensorrt"})
    with pytest.raises(ConfigError, match="bundled all-MiniLM-L6-v2 only"):
        make_embedder({**base, "embed_backend": "onnx-int8", "embed_model": "some/other-model"})

    shutil.copytree(models_dir, built_home / "models")  # the home's own models folder, already exported
    with Engine.from_settings(home=built_home, embed_backend="onnx-int8") as e:
        counts = e.embed()
        assert e.embedder.model_id == MODEL_ID + "+onnx-int8"
        assert counts["embedded"] > 0 and counts["seen"] == e.store.count_embeddings(e.embedder.model_id)
        assert e.store.count_embeddings(MODEL_ID) == counts["seen"]  # torch vectors stay as they were
        paper = e.store.papers_since(0, 1)[0]
        top = [h.paper.id for h in e.search(paper["title"], mode="dense").hits[:3]]
        assert paper["id"] in top  # the query is encoded by the same backend as the papers
        assert vector_dir(built_home, MODEL_ID + "+onnx-int8").is_dir()


def test_missing_onnxruntime_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the extra were not installed
    e = OnnxEmbedder(quant="int8", models_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"paperboy\[onnx\]"):
        e.encode(["x"])
    assert not os.listdir(tmp_path)  # nothing exported before the runtime was found
