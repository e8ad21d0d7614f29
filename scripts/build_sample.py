"""Build the bundled sample corpus (paperboy/data/sample.jsonl.gz) from ../shared/data.

Derived, format conversion only, from CC0 arXiv metadata: the 200-record Kaggle snapshot excerpt,
the 753 Daily Papers scrape (titles, authors, abstracts; upvotes left out), and the quant-ph
OAI-PMH records of 2016. Written in the Kaggle snapshot's JSON-lines shape. Run once; the output
is committed so a fresh clone works offline.
"""

import gzip
import json
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]
data = Path(sys.argv[1]) if len(sys.argv) > 1 else root.parent / "shared" / "data"
out = root / "paperboy" / "data" / "sample.jsonl.gz"
QUANT_PH_2016 = 2000

rows, seen = [], set()
for line in open(data / "arxiv" / "kaggle_snapshot_first200.jsonl", encoding="utf-8"):
    obj = json.loads(line)
    rows.append({k: obj[k] for k in ("id", "submitter", "authors", "title", "comments", "journal-ref",
                                     "doi", "categories", "abstract", "versions", "update_date",
                                     "authors_parsed")})
for arxiv_id, p in json.load(open(data / "hf" / "paperexplorer_papers.json", encoding="utf-8")).items():
    date = p.get("publication_date")
    rows.append({"id": arxiv_id, "title": p["title"], "abstract": p["abstract"],
                 "authors": ", ".join(p["authors"]), "categories": "", "update_date": date,
                 "versions": [{"version": "v1", "created": date}] if date else []})
with gzip.open(data / "arxiv" / "quant_ph_records.jsonl.gz", "rt", encoding="utf-8") as f:
    n = 0
    for line in f:
        obj = json.loads(line)
        if obj["date"].startswith("2016") and n < QUANT_PH_2016:
            n += 1
            rows.append({"id": obj["id"], "title": obj["title"], "abstract": obj["abstract"],
                         "authors": "", "categories": "quant-ph", "update_date": obj["date"],
                         "versions": [{"version": "v1", "created": obj["date"]}]})
out.parent.mkdir(parents=True, exist_ok=True)
with gzip.GzipFile(out, "wb", mtime=0) as f:
    for row in rows:
        if row["id"] not in seen:
            seen.add(row["id"])
            f.write((json.dumps(row, ensure_ascii=False) + "\n").encode())
print(f"wrote {len(seen)} records to {out}")
