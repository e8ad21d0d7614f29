"""Generations of saved index files: named arrays (.npy, no pickle), optional files a caller writes
itself (a usearch graph, a vocabulary), and a JSON sidecar naming them.

One save writes a new generation ``{prefix}{name}-{gen}.{ext}`` (``gen``: UTC time and pid, a name no
other process picks), each file to a temp file that is fsynced and renamed; the sidecar comes LAST (the
commit point), so a reader never sees a sidecar naming half-written files, and a crash mid-save leaves
the previous generation in use. Then older generations are swept. Several processes (web workers, the
CLI) may save into one directory; the sweep keeps what the sidecar names and leaves another process's
young files alone (its save may be in progress). A load checks the sidecar and every array against the
caller's spec and raises ``GenerationError`` for anything damaged: derived data, which the caller
rebuilds from the store. One set of generations per (directory, prefix).
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ..errors import PaperboyError

SWEEP_GRACE = 120.0  # seconds: another process's files younger than this may belong to a save in progress
_RESERVED = ("generation", "files", "saved_at")  # sidecar keys written here
# an array's spec: dtype and shape; a str dimension names an integer of the sidecar (e.g. "count")
Spec = Mapping[str, tuple[Any, tuple[int | str, ...]]]
Writer = Callable[[Path], Any]  # writes one file at the path it is given
Reader = Callable[[Path], Any]  # reads one file; raises ValueError (or OSError) if it is damaged


class GenerationError(PaperboyError):
    """The saved generation is damaged: sidecar unreadable or not an object, files missing, arrays
    unlike the spec."""


class GenerationMissing(GenerationError, FileNotFoundError):
    """No sidecar in the directory: nothing saved yet."""


def write_atomic(path: Path, write: Writer) -> None:
    """Write to a temp file beside ``path`` (named by our pid: two processes may write one file), fsync
    it, rename it over ``path``."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    write(tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would append ".npy" to a ".tmp" name
        np.save(f, array, allow_pickle=False)


def save_generation(directory: Path, sidecar: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], *,
                    files: Mapping[str, tuple[str, Writer]] | None = None, prefix: str = "") -> str:
    """Write ``arrays`` (name -> array) and ``files`` (name -> (extension, writer)) as a new generation,
    then the sidecar: ``meta`` plus ``generation``, ``files`` (name -> file name) and ``saved_at``; then
    sweep older generations. Returns the generation."""
    if clash := set(_RESERVED) & set(meta):
        raise ValueError(f"sidecar keys {sorted(clash)} are written by save_generation")
    (d := Path(directory)).mkdir(parents=True, exist_ok=True)
    gen = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}-{os.getpid()}"
    writers: dict[str, tuple[str, Writer]] = {
        name: ("npy", lambda p, a=a: _save_npy(p, np.asarray(a))) for name, a in arrays.items()}
    writers.update(files or {})
    names = {name: f"{prefix}{name}-{gen}.{ext}" for name, (ext, _) in writers.items()}
    for name, (_, write) in writers.items():
        write_atomic(d / names[name], write)
    side = {**meta, "generation": gen, "files": names,
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    write_atomic(d / sidecar, lambda p: p.write_text(json.dumps(side, indent=1)))  # the commit point
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)  # make the renames durable
    finally:
        os.close(fd)
    sweep(d, sidecar, prefix, keep=names.values())
    return gen


def read_sidecar(directory: Path, sidecar: str) -> dict[str, Any]:
    """The sidecar as a dict with a ``files`` dict of plain file names; GenerationMissing if none."""
    path = Path(directory) / sidecar
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise GenerationMissing(f"no {sidecar} in {directory}") from e
    except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        raise GenerationError(f"{sidecar} unreadable: {e}") from e
    if not isinstance(meta, dict):
        raise GenerationError(f"{sidecar} is not an object")
    files = meta.get("files")
    if not isinstance(files, dict) or not all(
            isinstance(f, str) and f and "/" not in f and "\\" not in f and not f.startswith(".")
            for f in files.values()):  # a sidecar must not point outside its directory
        raise GenerationError(f"{sidecar} names no files of its own")
    return meta


def _check(name: str, a: np.ndarray, want: tuple[Any, tuple[int | str, ...]], meta: Mapping[str, Any]) -> None:
    dtype, dims = want
    shape = []
    for dim in dims:
        v = meta.get(dim) if isinstance(dim, str) else dim
        if not isinstance(v, int) or isinstance(v, bool):
            raise GenerationError(f"sidecar has no integer {dim!r} for array {name}")
        shape.append(v)
    if a.dtype != np.dtype(dtype) or a.shape != tuple(shape):
        raise GenerationError(f"array {name} is {a.shape} {a.dtype}, the sidecar says {tuple(shape)} "
                              f"{np.dtype(dtype)}")


def load_generation(directory: Path, sidecar: str, spec: Spec, *, readers: Mapping[str, Reader] | None = None,
                    check: Callable[[dict[str, Any]], None] | None = None,
                    mmap: Iterable[str] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    """(name -> loaded, sidecar) of the saved generation: the arrays in ``spec`` (each checked for
    dtype and shape) and what ``readers`` return for their files. Arrays named in ``mmap`` are mapped
    copy-on-write instead of read: pages come from the file as they are touched, and writes stay
    private to this process. ``check`` sees each sidecar before any file is read (what it raises
    passes through). GenerationMissing (a FileNotFoundError) if nothing is saved, GenerationError if
    anything is damaged."""
    mapped = set(mmap)
    d, readers = Path(directory), readers or {}
    for attempt in range(3):  # a concurrent save may sweep the files between our two reads
        meta = read_sidecar(d, sidecar)
        if check is not None:
            check(meta)
        try:
            out: dict[str, Any] = {}
            for name in [*spec, *readers]:
                if name not in meta["files"]:
                    raise GenerationError(f"{sidecar} names no file {name!r}")
                path = d / meta["files"][name]
                if name not in spec:
                    out[name] = readers[name](path)
                    continue
                out[name] = np.load(path, allow_pickle=False, mmap_mode="c" if name in mapped else None)
                if not isinstance(out[name], np.ndarray):  # np.load answers an NpzFile for a zip
                    raise GenerationError(f"{path.name} is not one array")
                _check(name, out[name], spec[name], meta)
            return out, meta
        except FileNotFoundError as e:
            if attempt == 2 or read_sidecar(d, sidecar) == meta:  # not a concurrent save: a missing file
                raise GenerationError(f"missing file {Path(e.filename or '').name}") from e
        except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
            raise GenerationError(f"unreadable file: {e}") from e
    raise AssertionError("unreachable")


_STAMP = r"-\d{8}T\d{12}-(\d+)\."  # the generation in a file name, the pid its group


def sweep(directory: Path, sidecar: str, prefix: str = "", keep: Iterable[str] = ()) -> int:
    """Delete generation files (and sidecar temp files) not in ``keep`` and not named by the sidecar
    now: ours at once, another process's only once older than ``SWEEP_GRACE``. Returns how many."""
    d, keep = Path(directory), set(keep)
    try:  # another process may have committed after us: never take the files its sidecar names
        keep |= set(read_sidecar(d, sidecar)["files"].values())
    except GenerationError:
        pass
    gen_file = re.compile(re.escape(prefix) + r"[A-Za-z0-9_]+" + _STAMP)
    tmp_file = re.compile(re.escape(sidecar) + r"\.(\d+)\.tmp$")
    now, me, gone = datetime.now(timezone.utc).timestamp(), os.getpid(), 0
    for p in d.iterdir():
        m = gen_file.match(p.name) or tmp_file.match(p.name)
        if m is None or p.name in keep:
            continue
        try:
            if int(m.group(1)) == me or now - p.stat().st_mtime > SWEEP_GRACE:
                p.unlink()
                gone += 1
        except OSError:  # swept by another process meanwhile
            pass
    return gone
