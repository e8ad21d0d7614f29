"""Backend-independent dedup and merge: how an incoming record meets the paper already stored.

Rows are plain dicts of column -> stored value (JSON columns as compact, key-sorted JSON text), so
"did anything change" is a dict comparison and re-ingesting a file writes nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from ..models import PaperRecord
from ..normalize import title_key

JSON_COLUMNS = ("versions", "authors", "categories", "links")
# Descriptive fields: arXiv (authoritative) overwrites them; other sources only fill blanks.
DESCRIPTIVE = ("title", "abstract", "authors", "categories", "primary_category", "comments",
               "journal_ref", "submitted", "updated")
COLUMNS = ("canonical_id", "arxiv_id", "arxiv_version", "versions", "doi", "title", "title_key",
           "abstract", "authors", "categories", "primary_category", "submitted", "updated", "links",
           "comments", "journal_ref", "authority")


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def source_id_of(rec: PaperRecord) -> str:
    """The source's own id, or a title hash for sources without ids (a Papers page's text)."""
    if rec.source_id:
        return rec.source_id
    return "title:" + hashlib.sha1(title_key(rec.title).encode()).hexdigest()[:20]


def canonical_id(arxiv_id: str | None, doi: str | None, tkey: str) -> str:
    if arxiv_id:
        return f"arxiv:{arxiv_id}"
    if doi:
        return f"doi:{doi}"
    return "title:" + hashlib.sha1(tkey.encode()).hexdigest()[:20]


def compatible(row: dict[str, Any], rec: PaperRecord) -> bool:
    """A DOI or title match is only the same paper if the arXiv ids do not contradict it."""
    return not (row.get("arxiv_id") and rec.arxiv_id and row["arxiv_id"] != rec.arxiv_id)


def _empty(value: Any) -> bool:
    return value in (None, "", "[]", "{}")


def record_row(rec: PaperRecord) -> dict[str, Any]:
    """The row a record would be stored as if no paper matched it."""
    tkey = title_key(rec.title)
    canonical = canonical_id(rec.arxiv_id, rec.doi, tkey)
    if not (rec.match_title or rec.arxiv_id or rec.doi):  # e.g. BEIR docs: keyed by source id only
        canonical = f"{rec.source}:{source_id_of(rec)}"
    return {
        "canonical_id": canonical,
        "arxiv_id": rec.arxiv_id,
        "arxiv_version": rec.arxiv_version,
        "versions": dumps({int(k): v for k, v in rec.versions.items()}),
        "doi": rec.doi,
        "title": rec.title,
        "title_key": tkey,
        "abstract": rec.abstract,
        "authors": dumps(rec.authors),
        "categories": dumps(rec.categories),
        "primary_category": rec.primary_category,
        "submitted": rec.submitted,
        "updated": rec.updated,
        "links": dumps(rec.links),
        "comments": rec.comments,
        "journal_ref": rec.journal_ref,
        "authority": 1 if rec.authoritative else 0,
    }


def _number(arxiv_version: int | None, versions: dict[Any, Any]) -> int:
    """The newest version number a record or row names (an oai_dc record lists dates only: their count)."""
    return arxiv_version or max((int(k) for k in versions), default=0)


def older(row: dict[str, Any], rec: PaperRecord) -> bool:
    """Whether an arXiv record is of an older version than the stored row (an out-of-order harvest),
    so it must not roll the paper back: by version numbers when both name one, else by the date of
    the newest version (an ``arXiv``-format OAI record names no number, only ``updated``)."""
    mine = _number(row.get("arxiv_version"), orjson.loads(row["versions"]))
    theirs = _number(rec.arxiv_version, rec.versions)
    if mine and theirs:
        return theirs < mine
    have, got = (row.get("updated") or "")[:10], (rec.updated or "")[:10]
    return bool(have and got and got < have)


def merge(row: dict[str, Any], rec: PaperRecord) -> dict[str, Any]:
    """Merge a record into a stored row; returns the new row (the input is not modified).

    arXiv metadata of the same or a newer version overwrites descriptive fields; anything else
    only fills what is missing. Versions and links are unions; the arXiv version is the maximum.
    """
    new = record_row(rec)
    out = dict(row)
    old_version = row.get("arxiv_version") or 0
    newer = rec.authoritative and (not row["authority"] or not older(row, rec))
    for col in DESCRIPTIVE:
        if (newer and not _empty(new[col])) or (_empty(out[col]) and not _empty(new[col])):
            out[col] = new[col]
    if newer and new["title"] != row["title"]:
        out["title_key"] = new["title_key"]
    for col in ("arxiv_id", "doi"):
        out[col] = out[col] or new[col]
    out["arxiv_version"] = max(old_version, rec.arxiv_version or 0) or None
    versions = orjson.loads(row["versions"])
    for k, v in rec.versions.items():
        if versions.get(str(k)) is None:
            versions[str(k)] = v
    out["versions"] = dumps(versions)
    old_links, new_links = orjson.loads(row["links"]), orjson.loads(new["links"])
    out["links"] = dumps({**old_links, **new_links} if newer else {**new_links, **old_links})
    out["authority"] = max(row["authority"], new["authority"])
    if out["arxiv_id"] or out["doi"]:
        out["canonical_id"] = canonical_id(out["arxiv_id"], out["doi"], out["title_key"])
    return out


def match(rec: PaperRecord, sid: str, by_source: dict[tuple[str, str], int],
          keys: dict[str, dict[str, list[int]]], rows: dict[int, dict[str, Any]]) -> int | None:
    """The stored paper a record is: by its source id, else its arXiv id, else a compatible DOI or
    title match (``keys``: column -> value -> paper ids; ``rows``: the candidates' rows)."""
    pid = by_source.get((rec.source, sid))
    if pid is not None:
        return pid
    if rec.arxiv_id and keys["arxiv_id"].get(rec.arxiv_id):
        return keys["arxiv_id"][rec.arxiv_id][0]
    candidates = keys["doi"].get(rec.doi, []) if rec.doi else []
    if rec.match_title:
        candidates = candidates + keys["title_key"].get(title_key(rec.title), [])
    for pid in candidates:
        if compatible(rows[pid], rec):
            return pid
    return None
