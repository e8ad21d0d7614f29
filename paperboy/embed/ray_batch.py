"""Embedding the backlog on Ray Data (``paperboy embed --engine ray``, issue 10).

The driver does everything that touches the store, exactly as :func:`paperboy.embed.embed_pending`
does: it walks ``papers_since`` from the cursor ``embed:{model}`` in shards of ``chunk`` papers, hashes
each paper's text, skips papers whose stored vector has the same hash and reuses a vector stored for
the same hash under another paper. Only the texts that truly need the model go to Ray, and they go as
*the same model batches the plain loop would make* (the shard's new texts sorted by length, ``batch_size``
at a time): sentence-transformers pads a batch to its longest text, so another grouping changes the floats
by ~1e-7, and the same grouping gives the same bytes. One Ray row is one model batch; ``EmbedActor``
loads the model once per actor and encodes it.

The driver writes each shard's vectors with ``put_embeddings`` in the plain loop's row order and with
its cursor, one commit per shard, in shard order as results come back; a killed job resumes from the
last committed shard and never embeds a committed shard again (at most the shards in flight are lost).
Workers never open the store, so a SQLite file on the driver's disk and a PostgreSQL URL work alike.

Shards are planned a window at a time (``window`` texts for the model), one Ray Data execution per
window, so the driver never holds the texts of a million-paper backlog and the model is loaded once per
actor per window. Ray is the ``ray`` extra, imported only in this module. Scaling out is Ray's own
business: start a cluster with ``ray up`` (the cluster launcher) or ``ray start --head`` / ``ray start
--address``, and point ``ray_address`` at it; the actor pool grows to the cluster's CPUs (or GPUs).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError, PaperboyError
from ..store import Store
from . import plan_chunk
from .base import Embedder, length_batches

# What the workers need in their environment: the model comes from the bundled package, never a hub.
WORKER_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
              "TOKENIZERS_PARALLELISM": "false"}


def _ray() -> Any:
    try:
        import ray
        import ray.data  # the data extra, not just ray core
    except ImportError as e:
        raise ConfigError("batch_engine 'ray' needs the ray extra: pip install 'paperboy[ray]'") from e
    return ray


class EmbedActor:
    """A Ray Data callable class: the model is loaded once, in ``__init__``, per actor."""

    def __init__(self, model_name: str, device: str, model_id: str, threads: int) -> None:
        import torch

        from .sbert import SbertEmbedder

        torch.set_num_threads(threads)  # the CPUs Ray reserved for this actor, no more
        self.embedder = SbertEmbedder(model_name, device)
        _ = self.embedder.model  # load now, not inside the first batch
        if self.embedder.model_id != model_id:
            raise ConfigError(f"worker loaded {self.embedder.model_id!r}, the driver expects {model_id!r}")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"shard": [], "batch": [], "hashes": [], "vectors": []}
        for shard, number, hashes, texts in zip(batch["shard"], batch["batch"], batch["hashes"], batch["texts"]):
            texts = [str(t) for t in texts]
            # One model batch, exactly as the plain loop groups it (see the module docstring).
            vecs = self.embedder.encode(texts, batch_size=max(len(texts), 1))
            out["shard"].append(int(shard))
            out["batch"].append(int(number))
            out["hashes"].append([str(h) for h in hashes])
            out["vectors"].append(np.ascontiguousarray(vecs, dtype=np.float32).tobytes())
        return out


@dataclass
class _Shard:
    """One ``papers_since`` chunk: committed as one ``put_embeddings`` call with its cursor."""

    rev: int
    seen: int
    todo: list[tuple[str, str]]  # (paper id, content hash) to write, in the plain loop's order
    known: dict[str, bytes]  # vectors found in the store by hash
    new: list[str]  # hashes this shard sends to the model
    reused: int
    batches: int = 0
    got: dict[str, bytes] = field(default_factory=dict)
    arrived: int = 0


def _plan(store: Store, model: str, rev: int, chunk: int, batch_size: int, window: int,
          ) -> tuple[list[_Shard], list[dict[str, Any]], int]:
    """Shards from ``rev`` on until about ``window`` texts need the model: (shards, Ray rows, last rev)."""
    shards: list[_Shard] = []
    rows: list[dict[str, Any]] = []
    pending: set[str] = set()  # hashes sent to the model by an earlier shard of this window
    texts_out = 0
    while texts_out < window and (papers := store.papers_since(rev, chunk)):
        # A hash an earlier, not yet committed shard embeds is one the plain loop would find stored.
        c = plan_chunk(store, model, papers, skip=pending)
        rev = papers[-1]["rev"]
        shard = _Shard(rev, len(papers), c.todo, c.known, c.new, reused=c.reused)
        # the plain loop's batches: SbertEmbedder.encode sorts the shard's texts by length, then slices
        for idx in length_batches([len(c.texts[h]) for h in c.new], batch_size):
            part = [c.new[i] for i in idx]
            rows.append({"shard": len(shards), "batch": shard.batches, "hashes": part,
                         "texts": [c.texts[h] for h in part]})
            shard.batches += 1
        pending |= set(c.new)
        texts_out += len(c.new)
        shards.append(shard)
    return shards, rows, rev


def _pool(ray: Any, device: str, actors: int | None) -> tuple[int, int, int]:
    """(actors, CPUs per actor, GPUs per actor) on the cluster Ray is connected to."""
    gpus = 1 if str(device).startswith("cuda") else 0
    resources = ray.cluster_resources()
    if actors is None:  # as many actors as the cluster has room for, one CPU (or GPU) each
        actors = int(resources.get("GPU" if gpus else "CPU", 1))
    actors = max(1, actors)
    # Fewer actors than CPUs: each gets a share (within one node), so 1 actor on 2 cores uses both.
    node = max((int(n["Resources"].get("CPU", 1)) for n in ray.nodes() if n.get("Alive")), default=1)
    cpus = 1 if gpus else max(1, min(node, int(resources.get("CPU", 1)) // actors))
    return actors, cpus, gpus


def _results(ray: Any, rows: list[dict[str, Any]], embedder: Any, pool: tuple[int, int, int],
             ) -> Iterator[dict[str, Any]]:
    """Run the model batches on an actor pool; yields result rows as they come back (any order)."""
    ray.data.DataContext.get_current().enable_progress_bars = False
    actors, cpus, gpus = pool
    actors = min(actors, len(rows))
    ds = ray.data.from_items(rows, override_num_blocks=min(len(rows), actors * 4))
    ds = ds.map_batches(EmbedActor, fn_constructor_args=(embedder.name, embedder.device, embedder.model_id, cpus),
                        compute=ray.data.ActorPoolStrategy(size=actors), batch_size=1,
                        num_cpus=0 if gpus else cpus, num_gpus=gpus, batch_format="numpy")
    yield from ds.iter_rows()


def embed_pending_ray(store: Store, embedder: Embedder, *, batch_size: int = 32, chunk: int = 512,
                      progress: Callable[[int], None] | None = None, address: str = "",
                      actors: int | None = None, window: int | None = None) -> dict[str, int]:
    """:func:`paperboy.embed.embed_pending` with the model on Ray Data; same counts, same vectors.

    ``address``: a Ray cluster (``auto``, ``HOST:PORT`` or ``ray://HOST:10001``); empty starts a local
    Ray for this call and shuts it down after. ``actors``: the pool size (default: one per CPU of the
    cluster, or per GPU when ``embed_device`` is cuda). ``window``: texts planned per Ray Data execution
    (default 2,000 per actor, at least 20,000), which bounds the driver's memory; the actors and their
    model are started once per window. The embedder must be an ``SbertEmbedder``: each actor builds its
    own from the model name and device.
    """
    for attr in ("name", "device", "model_id"):
        if not hasattr(embedder, attr):
            raise ConfigError("batch_engine 'ray' needs a sentence-transformers embedder (embed_model)")
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        env = {k: os.environ.get(k, v) for k, v in WORKER_ENV.items()}
        kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                                  "log_to_driver": False, "runtime_env": {"env_vars": env}}
        if not address:  # a local Ray on this machine's cores; a cluster brings its own resources
            kwargs["num_cpus"] = os.cpu_count() or 1
        try:
            ray.init(address=address or None, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise ConfigError(f"cannot start or reach Ray at {address or 'a local instance'}: {e}") from e
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    try:
        return _run(ray, store, embedder, batch_size, chunk, progress, actors, window)
    finally:
        if started:
            ray.shutdown()


def _commit_ready(store: Store, model: str, shards: list[_Shard], done: int, window_hashes: dict[str, bytes],
                  counts: dict[str, int]) -> int:
    """Commit, in order, every shard from ``done`` on whose batches are all back; the new ``done``."""
    while done < len(shards) and shards[done].arrived == shards[done].batches:
        s = shards[done]
        window_hashes.update(s.got)
        rows = [(pid, h, s.known[h] if h in s.known else window_hashes[h]) for pid, h in s.todo]
        store.put_embeddings(model, rows, cursor=(f"embed:{model}", {"rev": s.rev}))
        s.got, s.known = {}, {}
        counts["seen"] += s.seen
        counts["embedded"] += len(s.new)
        counts["reused"] += s.reused
        counts["unchanged"] += s.seen - len(s.todo)
        done += 1
    return done


def _run(ray: Any, store: Store, embedder: Any, batch_size: int, chunk: int,
         progress: Callable[[int], None] | None, actors: int | None, window: int | None) -> dict[str, int]:
    pool = _pool(ray, embedder.device, actors)
    window = window or max(20000, 2000 * pool[0])
    model = embedder.model_id
    name = f"embed:{model}"
    rev = (store.get_cursor(name) or {}).get("rev", 0)
    counts = {"seen": 0, "embedded": 0, "reused": 0, "unchanged": 0}
    while True:
        shards, rows, last = _plan(store, model, rev, chunk, batch_size, window)
        if not shards:
            return counts
        window_hashes: dict[str, bytes] = {}  # vectors of this window, for later shards' reuse
        done = _commit_ready(store, model, shards, 0, window_hashes, counts)  # leading shards with nothing to embed
        if rows:
            for row in _results(ray, rows, embedder, pool):
                s = shards[int(row["shard"])]
                vecs = np.frombuffer(row["vectors"], dtype=np.float32).reshape(len(row["hashes"]), -1)
                s.got.update({str(h): v.tobytes() for h, v in zip(row["hashes"], vecs)})
                s.arrived += 1
                if progress:
                    progress(len(row["hashes"]))
                done = _commit_ready(store, model, shards, done, window_hashes, counts)
        if done != len(shards):  # cannot happen unless Ray lost results without raising
            raise PaperboyError(f"Ray returned {sum(s.arrived for s in shards)} of {len(rows)} batches")
        rev = last
