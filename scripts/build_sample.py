"""Build the bundled sample corpus (paperboy/data/) from ../shared/data: real CC0 arXiv metadata only.

Two files, each in a shape an existing source reads, ingested by ``paperboy run`` (paperboy/sample.py):

- ``sample.jsonl.gz`` (Kaggle snapshot JSON lines, source ``kaggle``): the 200-record Kaggle snapshot
  excerpt (categories of many fields), the arXiv API and OAI-PMH recordings (read with paperboy's own
  parsers; OAI's oai_dc carries no categories, so none are given), and the papers of the topic
  collection (``topic_folder`` dropped: evaluation only). The topic rows carry only a year, so they
  keep just the year (a partial date, never a made-up day); they are in search, not on daily lists.
- ``sample_hf.json.gz`` (a Daily Papers scrape, source ``hf-scrape``): the 753 Hugging Face Daily
  Papers with their dates and upvote counts, the community signal of the daily lists and Trending.

Records without authors are dropped; a paper in several sources is written once (Hugging Face first,
then Kaggle, API, OAI, topics). The dated lists end where the community signal ends: papers first
submitted after the newest Hugging Face day (a few arXiv API search results of 2024-2025) are left
out, so the first page a new user sees (the newest day with papers) is a full, upvoted list rather
than one stray search result. Format conversion only, nothing invented. Deterministic output (gzip
mtime 0); run once and commit: ``.venv/bin/python scripts/build_sample.py [DATA_DIR]``.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(root))

from paperboy.models import PaperRecord  # noqa: E402
from paperboy import normalize  # noqa: E402
from paperboy.normalize import parse_arxiv_id  # noqa: E402
from paperboy.sources import arxiv_api, arxiv_oai  # noqa: E402

KAGGLE_KEYS = ("id", "submitter", "authors", "title", "comments", "journal-ref", "doi", "categories",
               "abstract", "versions", "update_date", "authors_parsed")


def kaggle_row(r: PaperRecord) -> dict:
    """A parsed API/OAI record in the Kaggle snapshot's shape (v1 and latest-version dates kept)."""
    versions = {1: r.submitted} if r.submitted else {}
    latest = max(r.versions) if r.versions else r.arxiv_version
    if latest and latest > 1 and r.updated:
        versions[latest] = r.updated
    cats = ([r.primary_category] if r.primary_category else []) + [c for c in r.categories if c != r.primary_category]
    return {"id": r.arxiv_id, "authors": ", ".join(r.authors), "title": r.title, "abstract": r.abstract,
            "comments": r.comments, "journal-ref": r.journal_ref, "doi": r.doi, "categories": " ".join(cats),
            "versions": [{"version": f"v{n}", "created": d} for n, d in sorted(versions.items())],
            "update_date": r.updated or r.submitted}


def build(data: Path, out_dir: Path) -> dict[str, int]:
    hf = {}
    for key, p in json.load(open(data / "hf" / "paperexplorer_papers.json", encoding="utf-8")).items():
        if p.get("authors"):
            hf[key] = p
    rows: list[dict] = []
    seen = {parse_arxiv_id(key)[0] for key in hf}
    newest = max(p["publication_date"][:10] for p in hf.values())

    def add(row: dict) -> None:
        first = row["versions"][0]["created"] if row["versions"] else row["update_date"]
        first = normalize.parse_date(first) if first else None
        if first and len(first) == 10 and first > newest:  # a year-only paper is on no day's list
            return
        if row["authors"] and row["id"] not in seen:
            seen.add(row["id"])
            rows.append(row)

    for line in open(data / "arxiv" / "kaggle_snapshot_first200.jsonl", encoding="utf-8"):
        obj = json.loads(line)
        add({k: obj[k] for k in KAGGLE_KEYS})
    for folder, mod in (("api_atom", arxiv_api), ("oai_pmh", arxiv_oai)):
        for path in sorted((data / "arxiv" / folder).glob("*.xml")):
            for r in mod.read(path):
                if isinstance(r, PaperRecord):
                    add(kaggle_row(r))
    for line in open(data / "topics" / "dev_topic_papers.jsonl", encoding="utf-8"):
        obj = json.loads(line)
        parsed = parse_arxiv_id(obj["url"])
        if parsed:  # year only: kept as the year (never a made-up 1 January), so on no day's list
            year = obj.get("year")
            add({"id": parsed[0], "authors": obj["authors"], "title": obj["title"], "abstract": obj["abstract"],
                 "categories": "", "versions": [], "update_date": str(year) if year else None})
    out_dir.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(out_dir / "sample.jsonl.gz", "wb", mtime=0) as f:
        for row in rows:
            f.write((json.dumps(row, ensure_ascii=False) + "\n").encode())
    with gzip.GzipFile(out_dir / "sample_hf.json.gz", "wb", mtime=0) as f:
        f.write(json.dumps(hf, ensure_ascii=False, indent=0).encode())
    return {"sample.jsonl.gz": len(rows), "sample_hf.json.gz": len(hf)}


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else root.parent / "shared" / "data"
    for name, n in build(src, root / "paperboy" / "data").items():
        print(f"wrote {n} records to paperboy/data/{name}")
