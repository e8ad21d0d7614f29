"""Papers that change (issue 13): which arXiv version a stored paper is at, the "updated to vN" note
lists, pages, feeds and digests show, and the key an update notice is announced once per.

The store merges versions (``store/merge.py``): ``Paper.versions`` maps each version number a source
listed to its date, ``arxiv_version`` is the highest number seen, ``updated`` the date of the newest
version. An OAI-PMH record in the ``arXiv`` format names no version numbers, only ``updated``: such
a paper is "updated" with that date and no number is made up.
"""

from __future__ import annotations

from ..models import Paper


def latest(paper: Paper) -> tuple[int | None, str | None]:
    """(number, date) of the paper's newest known version; the number is None when no source gave one."""
    numbers = [n for n in paper.versions if isinstance(n, int) and n > 0]
    number = max([*numbers, paper.arxiv_version or 0]) or None
    day = paper.versions.get(number) if number else None
    if paper.updated and (not day or paper.updated[:10] > day[:10]):
        # a later date than the numbered version's (an arXiv-format OAI record of a newer version)
        return (number if day is None else None), paper.updated[:10]
    return number, (day or paper.updated or "")[:10] or None


def update_note(paper: Paper) -> str | None:
    """``updated to v3 (2024-05-02)`` for a paper with more than one version, None for one version."""
    number, day = latest(paper)
    if number and number > 1:
        return f"updated to v{number}" + (f" ({day})" if day else "")
    if number is None and day and paper.submitted and day > paper.submitted[:10]:
        return f"updated {day}"
    return None


def version_key(paper: Paper) -> str:
    """What identifies the version a reader was told about: its number and date."""
    number, day = latest(paper)
    return f"{number or ''}:{day or ''}"
