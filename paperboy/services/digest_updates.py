"""'Updated in your library' (issue 13): a reader is told in their next digest when a paper they saved
got a new arXiv version, once per version.

What was announced lives in the store's cursor ``digest-updates:{user id}`` (no table of its own):
``seen`` maps each saved paper to the version key (``versions.version_key``) the reader knows, and
``pending`` holds the updates of the last recorded digest (``seen`` keeps what was known before them). A digest's updates count as told only once
that digest is marked sent (checked when the next one is built): a digest given up for good leaves
them to be told again, a resumed one mails exactly the updates it was recorded with. The sent ledger
is not involved, so a paper mailed before is still announced when it changes.

A saved paper the cursor does not know yet (saved since the last digest, or before this feature) is
announced when its newest version is dated on or after the day it was saved; otherwise its current
version becomes what the reader knows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..models import Paper
from .paper_meta import withdrawn
from .versions import latest, update_note, version_key

if TYPE_CHECKING:
    from ..store.base import Store

MAX_NOTICES = 20  # a digest lists at most this many updated papers (newest first)


def _name(user_id: int) -> str:
    return f"digest-updates:{user_id}"


def _told(store: Store, user_id: int) -> dict[str, str]:
    """What the reader knows: ``seen`` plus the updates of their last digest once it was sent."""
    state = store.get_cursor(_name(user_id)) or {}
    seen = dict(state.get("seen") or {})
    pending = state.get("pending") or {}
    if pending.get("period"):
        d = store.digest(user_id, pending["period"])
        if d is not None and d["id"] == pending.get("id") and d["status"] == "sent":
            seen.update(pending.get("updates") or {})
    return seen


def pending_updates(store: Store, user_id: int) -> tuple[dict[int, str], dict[str, str]]:
    """(updates to tell: paper id -> version key, newest first; what the reader knows of every other
    saved paper) for the reader's next digest."""
    first_saved: dict[int, str] = {}
    for s in store.saves(user_id):
        at = str(s.get("created_at") or "")[:10]
        first_saved[s["paper_id"]] = min(first_saved.get(s["paper_id"], at), at)
    seen = _told(store, user_id)
    papers = store.get_papers(list(first_saved))
    updates: dict[int, tuple[str, str]] = {}
    known: dict[str, str] = {}
    for pid, p in papers.items():
        key = version_key(p)
        told = seen.get(str(pid))
        day = latest(p)[1] or ""
        if update_note(p) and (told != key if told is not None else day >= first_saved[pid]):
            updates[pid] = (key, day)
        else:
            known[str(pid)] = key
    for pid in updates:  # until told, they know what they knew ("": no version yet, so it is told)
        known[str(pid)] = seen.get(str(pid), "")
    newest = sorted(updates, key=lambda i: updates[i][1], reverse=True)[:MAX_NOTICES]
    return {pid: updates[pid][0] for pid in newest}, known


def record(store: Store, user_id: int, digest: dict[str, Any], updates: dict[int, str],
           known: dict[str, str]) -> None:
    """Remember a recorded digest's updates (told once it is sent) and what the reader knows."""
    store.set_cursor(_name(user_id), {"seen": known, "pending": {
        "id": digest["id"], "period": digest["period"], "updates": {str(k): v for k, v in updates.items()}}})


def notices(store: Store, user_id: int, digest_id: int, papers: dict[int, Paper] | None = None
            ) -> list[tuple[Paper, str]]:
    """(paper, ``now v3 (2024-05-02)``) for each update the digest was recorded with, naming the
    version recorded (the one counted as told once it is sent), even if a newer one has landed since."""
    pending = (store.get_cursor(_name(user_id)) or {}).get("pending") or {}
    if pending.get("id") != digest_id:
        return []
    updates = {int(k): v for k, v in (pending.get("updates") or {}).items()}
    papers = store.get_papers(list(updates)) if papers is None else papers
    return [(papers[i], _recorded_notice(papers[i], key)) for i, key in updates.items() if i in papers]


def _recorded_notice(p: Paper, key: str) -> str:
    """The notice of the version ``key`` (``version_key``): the paper's own when it is still at that
    version; else built from the key, and a newer version (withdrawn or not) is told next time."""
    if version_key(p) == key:
        return notice(p)
    number, _, day = key.partition(":")
    if number.isdigit() and int(number) > 1:
        return f"now v{number}" + (f" ({day})" if day else "")
    return f"updated {day}" if day else notice(p)


def notice(p: Paper) -> str:
    """``now v3 (2024-05-02)``, ``updated 2024-05-02``; ``, withdrawn`` when that version withdrew it."""
    note = update_note(p) or ""
    text = "now " + note[len("updated to "):] if note.startswith("updated to ") else note
    return text + (", withdrawn" if withdrawn(p) else "")
