"""Topic map: which method, how many topics, and how fast (issue 13).

1. Compare (``--home``, default the embedded dev topic home of ``paperboy eval``): NMF on the
   TF-IDF rows vs spherical k-means on the embeddings labelled by c-TF-IDF, for several k, against
   the 45 human topic folders of dev_topic_papers.jsonl (2,026 papers): NMI and ARI of each paper's
   topic (NMF: argmax of its row of W) vs its folder (a paper in several folders: its first), and
   coherence: mean NPMI of each topic's 10 best single words, on document co-occurrence in the corpus.
2. Scale (``--scale-home``, default /tmp/qph, the 38,858 quant-ph papers embedded): fit time at the
   default k, assignment of new papers (ms per paper, by batches of 1 and 100), and p50/p99 of
   /topics and /topics/{slug} in-process (TestClient), on a copy of the home.

Run: ``.venv/bin/python benchmarks/topics.py [--json out.json] [--skip-scale]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paperboy.engine import Engine  # noqa: E402
from paperboy.eval.topics import read_rows, resolve  # noqa: E402
from paperboy.index import topics as tm  # noqa: E402
from paperboy.index.tfidf import _dense_rows  # noqa: E402

DEV = Path("/work/shared/data/topics/dev_topic_papers.jsonl")


def compare(home: Path, data: Path, ks: list[int]) -> list[dict]:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    with Engine.from_settings(home=home) as engine:
        ids, vecs = engine.vectors().matrix()
        tfidf = engine.tfidf()
        folders, _ = resolve(engine.store, read_rows(data))
    truth: dict[int, int] = {}
    for f, (_, members) in enumerate(sorted(folders.items())):
        for pid in members:
            truth.setdefault(pid, f)
    rows = _dense_rows(ids, tfidf.ids)
    assert (rows >= 0).all(), "every embedded paper has a TF-IDF row"
    x = tfidf.matrix[rows]
    terms = [t for t, _ in sorted(tfidf.vectorizer.vocabulary_.items(), key=lambda kv: kv[1])]
    uni = np.array([" " not in t for t in terms])
    binary = (x > 0).astype(np.float64).tocsc()
    lab = np.array([truth.get(int(i), -1) for i in ids])
    have = lab >= 0
    out = []
    for k in ks:
        for method in ("nmf", "kmeans"):
            runs = []
            for seed in ((0,) if method == "nmf" else (0, 1, 2)):  # NMF's nndsvda start is deterministic
                t0 = time.perf_counter()
                if method == "nmf":
                    w, h = tm.fit_nmf(x, k, seed)
                    assign, scores = np.argmax(w, axis=1), h
                else:
                    assign, _ = tm.fit_kmeans(vecs, k, seed)
                    scores = tm.class_tfidf(x, assign, k)
                secs = time.perf_counter() - t0
                words = tm.top_terms(np.where(uni[None, :], scores, 0), terms, 10)
                col = {t: j for j, t in enumerate(terms)}
                coh = tm.npmi(binary, [[col[t] for t in ws] for ws in words if len(ws) > 1])
                labels, _ = tm.labels_of(tm.top_terms(scores, terms))
                sizes = np.bincount(assign, minlength=k)
                runs.append((normalized_mutual_info_score(lab[have], assign[have]),
                             adjusted_rand_score(lab[have], assign[have]), float(np.mean(coh)), secs,
                             sizes.max() / len(assign), labels))
            m = np.array([r[:5] for r in runs], float).mean(0)
            out.append({"method": method, "k": k, "seeds": len(runs), "nmi": round(m[0], 4), "ari": round(m[1], 4),
                        "npmi": round(m[2], 4), "fit_s": round(m[3], 2), "largest_share": round(m[4], 3),
                        "nmi_range": [round(min(r[0] for r in runs), 4), round(max(r[0] for r in runs), 4)],
                        "examples": runs[0][5][:4]})
            print(f"{method:7} k={k:3} NMI {m[0]:.4f} ARI {m[1]:.4f} NPMI {m[2]:.4f} fit {m[3]:6.2f}s "
                  f"({len(runs)} seed(s))  {runs[0][5][:3]}", flush=True)
    return out


def copy_home(src: Path, work: Path) -> Path:
    home = work / "home"
    shutil.copytree(src, home, ignore=shutil.ignore_patterns("*-wal", "*-shm", "eval", "topics"))
    os.remove(home / "paperboy.sqlite3")
    with sqlite3.connect(src / "paperboy.sqlite3") as db:
        db.execute(f"VACUUM INTO '{home / 'paperboy.sqlite3'}'")
    return home


def pct(xs: list[float], p: float) -> float:
    return round(float(np.percentile(np.array(xs), p)), 2)


def scale(src: Path, n: int) -> dict:
    from fastapi.testclient import TestClient

    from paperboy.services.topics import fit_topics
    from paperboy.web.app import create_app

    res: dict = {}
    with tempfile.TemporaryDirectory() as work:
        home = copy_home(src, Path(work))
        with Engine.from_settings(home=home) as engine:
            t0 = time.perf_counter()
            engine.tfidf()
            res["tfidf_s"] = round(time.perf_counter() - t0, 1)
            t0 = time.perf_counter()
            model = fit_topics(engine)
            res.update(papers=len(model.ids), k=model.k, fit_s=round(time.perf_counter() - t0, 1),
                       examples=model.labels[:8])
            print(f"fit: {res}", flush=True)
            tfidf = engine.tfidf()
            live = np.flatnonzero(tfidf.ids >= 0)
            pick = np.random.default_rng(0).choice(live, 200, replace=False)
            one = []
            for i in pick[:100]:  # as a new paper arrives: its TF-IDF row projected on the fitted topics
                t0 = time.perf_counter()
                model.assign(tfidf.ids[i:i + 1], tfidf.matrix[i:i + 1], tfidf.vectorizer)
                one.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            model.assign(tfidf.ids[pick[100:]], tfidf.matrix[pick[100:]], tfidf.vectorizer)
            res["assign_ms_per_paper_single"] = pct(one, 50)
            res["assign_ms_per_paper_batch100"] = round((time.perf_counter() - t0) * 10, 3)
            with TestClient(create_app(engine)) as c:
                urls = {"/topics": ["/topics"], "/topics/{slug}": [f"/topics/{s}" for s in model.slugs]}
                for name, us in urls.items():
                    assert c.get(us[0]).status_code == 200  # warm
                    times = []
                    for j in range(n):
                        t0 = time.perf_counter()
                        r = c.get(us[j % len(us)])
                        times.append((time.perf_counter() - t0) * 1000)
                        assert r.status_code == 200, (us[j % len(us)], r.status_code)
                    res[name] = {"p50_ms": pct(times, 50), "p99_ms": pct(times, 99), "bytes": len(r.content)}
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=Path("/tmp/evalhome/eval/dev_topic_papers.jsonl"))
    ap.add_argument("--data", type=Path, default=DEV)
    ap.add_argument("--ks", default="15,22,30,45")
    ap.add_argument("--scale-home", type=Path, default=Path("/tmp/qph"))
    ap.add_argument("--n", type=int, default=60, help="requests per page")
    ap.add_argument("--skip-compare", action="store_true")
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    out: dict = {}
    if not a.skip_compare:
        out["compare"] = compare(a.home, a.data, [int(k) for k in a.ks.split(",")])
        print("\n| method | k | NMI | ARI | NPMI | fit s | largest topic |\n|---|---|---|---|---|---|---|")
        for r in out["compare"]:
            print(f"| {r['method']}{' (mean of 3 seeds)' if r['seeds'] > 1 else ''} | {r['k']} | {r['nmi']:.4f} "
                  f"| {r['ari']:.4f} | {r['npmi']:.4f} | {r['fit_s']} | {r['largest_share']:.1%} |")
    if not a.skip_scale:
        out["scale"] = s = scale(a.scale_home, a.n)
        print(f"\n{s['papers']} papers, k={s['k']}: TF-IDF {s['tfidf_s']} s, fit {s['fit_s']} s; assign "
              f"{s['assign_ms_per_paper_single']} ms (one paper), {s['assign_ms_per_paper_batch100']} ms/paper (x100)")
        for name in ("/topics", "/topics/{slug}"):
            print(f"{name}: p50 {s[name]['p50_ms']} ms, p99 {s[name]['p99_ms']} ms, {s[name]['bytes']} bytes")
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
