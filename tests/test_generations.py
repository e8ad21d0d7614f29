"""index/generations.py: named arrays plus a JSON sidecar written last, checked on load, old
generations swept without taking another process's files."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from paperboy.index.generations import (SWEEP_GRACE, GenerationError, GenerationMissing, load_generation,
                                        save_generation, sweep)

SIDE = "things.json"
SPEC = {"ids": (np.int64, ("count",)), "x": (np.float32, ("count", 3))}
REPO = Path(__file__).resolve().parents[1]


def arrays(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"ids": np.arange(n, dtype=np.int64) * 7, "x": rng.standard_normal((n, 3)).astype(np.float32)}


def save(d: Path, n: int, seed: int = 0, **kw) -> str:
    return save_generation(d, SIDE, arrays(n, seed), {"count": n, "note": f"n={n}"}, **kw)


def savez(p: Path) -> None:
    with open(p, "wb") as f:  # a file object: np.savez would append ".npz"
        np.savez(f, a=np.zeros(1))


def read_note(p: Path) -> str:
    return p.read_text()


def test_round_trip_with_a_file_of_the_callers(tmp_path):
    gen = save(tmp_path, 5, files={"note": ("txt", lambda p: p.write_text("hello"))})
    got, meta = load_generation(tmp_path, SIDE, SPEC, readers={"note": read_note})
    want = arrays(5)
    assert (got["ids"] == want["ids"]).all() and (got["x"] == want["x"]).all() and got["note"] == "hello"
    assert meta["generation"] == gen and meta["count"] == 5 and meta["note"] == "n=5"
    assert meta["files"] == {"ids": f"ids-{gen}.npy", "x": f"x-{gen}.npy", "note": f"note-{gen}.txt"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([SIDE, *meta["files"].values()])
    with pytest.raises(ValueError, match="generation"):  # a key the module writes itself
        save_generation(tmp_path, SIDE, arrays(1), {"generation": "mine"})


def test_a_crash_before_the_sidecar_leaves_the_previous_generation(tmp_path):
    save(tmp_path, 4)
    before = (tmp_path / SIDE).read_bytes()
    bad = {**arrays(6), "z": np.array([{"no": "pickle"}], dtype=object)}  # np.save refuses it mid-save
    with pytest.raises(ValueError, match="allow_pickle"):
        save_generation(tmp_path, SIDE, bad, {"count": 6})

    def disk_full(p: Path) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save(tmp_path, 6, files={"graph": ("bin", disk_full)})
    assert (tmp_path / SIDE).read_bytes() == before
    assert len(list(tmp_path.glob("ids-*.npy"))) == 3  # the failed saves' arrays did land
    got, meta = load_generation(tmp_path, SIDE, SPEC)
    assert len(got["ids"]) == meta["count"] == 4 and (got["x"] == arrays(4)["x"]).all()
    save(tmp_path, 6)  # the next save commits and sweeps the failed saves' leftovers
    _, meta = load_generation(tmp_path, SIDE, SPEC)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([SIDE, *meta["files"].values()])


@pytest.mark.parametrize("sidecar, why", [("{garbage", "unreadable"), ("[1, 2]", "not an object"),
                                          ('{"count": 4}', "names no files"),
                                          ('{"count": 4, "files": {"ids": "../ids.npy"}}', "names no files"),
                                          ('{"count": 4, "files": {"ids": "ids-x.npy"}}', "missing file")])
def test_a_damaged_sidecar_raises_generation_error(tmp_path, sidecar, why):
    with pytest.raises(GenerationMissing) as missing:
        load_generation(tmp_path, SIDE, SPEC)
    assert isinstance(missing.value, FileNotFoundError)  # nothing saved: not damage
    (tmp_path / SIDE).write_text(sidecar)
    with pytest.raises(GenerationError, match=why) as e:
        load_generation(tmp_path, SIDE, SPEC)
    assert not isinstance(e.value, GenerationMissing)


@pytest.mark.parametrize("damage, why", [
    (lambda f: np.save(f["x"], arrays(4)["x"].astype(np.float64)), "float64"),
    (lambda f: np.save(f["x"], arrays(3)["x"]), r"\(3, 3\)"),
    (lambda f: np.save(f["ids"], np.arange(4, dtype=np.int64)[:, None]), r"\(4, 1\)"),
    (lambda f: np.save(f["ids"], np.array([{}] * 4, dtype=object), allow_pickle=True), "pickle"),
    (lambda f: f["x"].write_bytes(f["x"].read_bytes()[:100]), "unreadable"),
    (lambda f: savez(f["x"]), "not one array"),
])
def test_an_array_unlike_the_sidecar_is_caught(tmp_path, damage, why):
    save(tmp_path, 4)
    meta = json.loads((tmp_path / SIDE).read_text())
    with open(tmp_path / meta["files"]["x"], "rb") as f:
        assert np.load(f).shape == (4, 3)
    damage({k: tmp_path / v for k, v in meta["files"].items()})
    with pytest.raises(GenerationError, match=why):
        load_generation(tmp_path, SIDE, SPEC)


def test_the_sidecar_must_hold_the_dimensions_it_promises(tmp_path):
    save(tmp_path, 4)
    meta = json.loads((tmp_path / SIDE).read_text())
    (tmp_path / SIDE).write_text(json.dumps({**meta, "count": "4"}))
    with pytest.raises(GenerationError, match="no integer 'count'"):
        load_generation(tmp_path, SIDE, SPEC)
    seen = []

    def refuse(m: dict) -> None:  # sees the sidecar before any array is read
        seen.append(m["generation"])
        raise LookupError("not mine")

    with pytest.raises(LookupError, match="not mine"):
        load_generation(tmp_path, SIDE, SPEC, check=refuse)
    assert seen == [meta["generation"]]


def test_old_generations_are_swept_as_new_ones_commit(tmp_path):
    gens = [save(tmp_path, n, files={"note": ("txt", lambda p: p.write_text("x"))}) for n in (2, 3, 4)]
    assert len(set(gens)) == 3
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([SIDE, f"ids-{gens[2]}.npy", f"x-{gens[2]}.npy", f"note-{gens[2]}.txt"])
    other = save_generation(tmp_path / "sub", SIDE, arrays(1), {"count": 1}, prefix="hub-")
    save_generation(tmp_path / "sub", "other.json", arrays(1), {"count": 1}, prefix="lex-")
    assert (tmp_path / "sub" / f"hub-ids-{other}.npy").exists()  # another prefix: another set, not swept


def test_another_process_save_in_progress_and_its_committed_generation_are_kept(tmp_path):
    save(tmp_path, 2)
    stamp = "20200101T000000000000"
    young, old = tmp_path / f"ids-{stamp}-999999999.npy", tmp_path / f"x-{stamp}-999999998.npy"
    young.write_bytes(b"a save in progress")
    old.write_bytes(b"a crashed save")
    old_tmp = tmp_path / f"{SIDE}.999999998.tmp"
    old_tmp.write_text("{}")
    long_ago = time.time() - 10 * SWEEP_GRACE
    for p in (old, old_tmp):
        os.utime(p, (long_ago, long_ago))
    save(tmp_path, 3)
    assert young.exists() and not old.exists() and not old_tmp.exists()

    # another process commits after our save: a sweep of ours, however late, keeps what its sidecar names
    code = ("import sys, numpy as np; from paperboy.index.generations import save_generation; "
            "save_generation(sys.argv[1], 'things.json', {'ids': np.arange(9), "
            "'x': np.zeros((9, 3), np.float32)}, {'count': 9})")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, cwd=REPO,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    theirs = json.loads((tmp_path / SIDE).read_text())["files"]
    assert not theirs["ids"].endswith(f"-{os.getpid()}.npy")
    for name in theirs.values():
        os.utime(tmp_path / name, (long_ago, long_ago))
    sweep(tmp_path, SIDE)
    got, meta = load_generation(tmp_path, SIDE, SPEC)
    assert meta["count"] == 9 and (got["ids"] == np.arange(9)).all()
    assert not list(tmp_path.glob(f"ids-*-{os.getpid()}.npy"))  # ours, superseded: swept at once
    assert young.exists()


def test_a_generation_swept_during_a_load_is_retried_not_half_read(tmp_path):
    save(tmp_path, 2, files={"note": ("txt", lambda p: p.write_text("first"))})
    calls = []

    def note_then_concurrent_save(p: Path) -> str:
        if not calls:  # between reading the sidecar and this file, a new generation commits and sweeps
            save(tmp_path, 5, seed=1, files={"note": ("txt", lambda q: q.write_text("second"))})
        calls.append(p.name)
        return p.read_text()

    got, meta = load_generation(tmp_path, SIDE, SPEC, readers={"note": note_then_concurrent_save})
    assert len(calls) == 2 and calls[0] != calls[1]  # the first generation's file was gone: read again
    assert got["note"] == "second" and meta["count"] == len(got["ids"]) == 5
    assert (got["x"] == arrays(5, seed=1)["x"]).all()  # arrays and file of one generation
