"""A whole account as one JSON file, to move to another paperboy (issue 12).

The file (``{"paperboy_account": 1, ...}``) holds the reader's profile (interest statement, keyword
rules, categories, digest schedule, time zone, quiet days), address, saves with their folders and
times, ratings, interest preferences (names, mutes, deletions), upvotes, comments, followed authors (a
``follows`` list, only when there are some: author keys are the same on every paperboy), and every paper
these refer to: its identity (arXiv id, DOI, canonical id) and enough metadata (title, authors,
abstract, dates, categories, links) that a paperboy which has never seen it can store it. Papers are
referred to by their canonical id, never by this store's row ids. Never in it: the password hash, API
tokens, the feed token, sessions, the role, digests sent (they belong to this instance).

The file is deterministic (keys and lists sorted, no export time), so exporting, importing into a
fresh paperboy and exporting again gives the same bytes. Import checks the whole file first, stores
its papers through the normal ingest path (``Store.upsert_papers``, matched by arXiv id, DOI or
title to papers already there), then writes the reader's rows in one transaction
(``Store.restore_library``); running it twice adds nothing.

The file is the reader's to edit, so by default its papers come in as a member's upload (source
``upload``: off public lists, search and topic maps until arXiv or another source confirms them, as
``jobs.confirmed`` does for library uploads) and its votes and comments (public, with times the
file chooses) stay out. ``trusted=True`` (the operator vouches for the file, e.g. moving their own
account) records the papers as ``account`` and brings votes and comments too.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import BadRequest, NotFound
from ..models import PaperRecord
from ..normalize import check_record, clean_text
from ..records import LibraryRows
from .accounts import check_name
from .mail import validate_email

if TYPE_CHECKING:
    from ..store import Store
    from .library import ImportDeps

VERSION = 1
MAX_BYTES = 64 << 20  # ~10,000 papers with abstracts take ~20 MB
MAX_ROWS = 100_000  # papers, saves, ratings, votes, comments each
SOURCE = "account"  # the source name papers of a trusted import are recorded under
UPLOAD = "upload"  # an untrusted file's papers: a member's upload (see store.uploads_only, jobs.UPLOAD)
PROFILE = ("statement", "include_terms", "exclude_terms", "categories", "digest", "digest_hour", "timezone",
           "quiet_days")
_PREF_KEY = re.compile(r"p([0-9]{1,18})")

Text = Annotated[str, Field(max_length=20_000)]
Short = Annotated[str, Field(min_length=1, max_length=1_000)]
Stamp = Annotated[str, Field(min_length=10, max_length=40)]
Terms = Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=50)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PaperIn(_Strict):
    ref: Short
    arxiv_id: Short | None = None
    arxiv_version: int | None = None
    doi: Short | None = None
    title: Annotated[str, Field(max_length=1_000)]
    abstract: Text = ""
    authors: list[Annotated[str, Field(max_length=300)]] = Field(default_factory=list, max_length=5_000)
    categories: list[Short] = Field(default_factory=list, max_length=100)
    primary_category: Short | None = None
    submitted: Short | None = None
    updated: Short | None = None
    versions: dict[str, Short | None] = Field(default_factory=dict, max_length=10_000)
    links: dict[Short, Short] = Field(default_factory=dict, max_length=100)
    comments: Annotated[str, Field(max_length=5_000)] | None = None
    journal_ref: Annotated[str, Field(max_length=5_000)] | None = None


class _Stamped(_Strict):
    paper: Short
    at: Stamp

    @field_validator("at")
    @classmethod
    def _iso(cls, v: str) -> str:
        try:
            t = datetime.fromisoformat(v)
        except ValueError as e:
            raise ValueError(f"not an ISO date and time: {v[:40]!r}") from e
        # A vote or save dated ahead would count as fresh in trending for as long as it likes.
        if (t if t.tzinfo else t.replace(tzinfo=timezone.utc)) > datetime.now(timezone.utc) + timedelta(days=1):
            raise ValueError(f"{v[:40]!r} is in the future")
        return v


class SaveIn(_Stamped):
    folder: Annotated[str, Field(min_length=1, max_length=80)]


class FeedbackIn(_Stamped):
    kind: Literal["up", "down", "dismiss"]


class VoteIn(_Stamped):
    pass


class CommentIn(_Stamped):
    body: Annotated[str, Field(min_length=1, max_length=10_000)]
    hidden: bool = False


class InterestIn(_Strict):
    key: Annotated[str, Field(min_length=1, max_length=100)]  # "statement", or "paper" with ``paper``
    paper: Short | None = None
    name: Annotated[str, Field(max_length=80)] | None = None
    muted: bool = False
    deleted: bool = False
    members: list[Short] = Field(default_factory=list, max_length=10_000)


class ProfileIn(_Strict):
    statement: Annotated[str, Field(max_length=2_000)] = ""
    include_terms: Terms = Field(default_factory=list)
    exclude_terms: Terms = Field(default_factory=list)
    categories: Terms = Field(default_factory=list)
    digest: Literal["off", "daily", "weekly"] = "off"
    digest_hour: Annotated[int, Field(ge=0, le=23)] = 7
    timezone: Annotated[str, Field(min_length=1, max_length=64)] = "UTC"
    quiet_days: Literal["skip", "note"] = "skip"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v[:60]!r}") from e
        return v


class FollowIn(_Strict):
    """A followed author: the key (``paperboy/authors.py``: the same name gives the same key on every
    paperboy), the name shown, and when."""

    author: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\w-]+$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    at: Stamp

    @field_validator("at")
    @classmethod
    def _iso(cls, v: str) -> str:
        return _Stamped._iso(v)  # an ISO time, not in the future


class UserIn(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=40)]
    email: Annotated[str, Field(max_length=254)] | None = None


class AccountIn(_Strict):
    """The whole file, as ``import_account`` accepts it."""

    paperboy_account: Literal[1]
    user: UserIn
    profile: ProfileIn = Field(default_factory=ProfileIn)
    papers: list[PaperIn] = Field(default_factory=list, max_length=MAX_ROWS)
    saves: list[SaveIn] = Field(default_factory=list, max_length=MAX_ROWS)
    feedback: list[FeedbackIn] = Field(default_factory=list, max_length=MAX_ROWS)
    votes: list[VoteIn] = Field(default_factory=list, max_length=MAX_ROWS)
    comments: list[CommentIn] = Field(default_factory=list, max_length=MAX_ROWS)
    interests: list[InterestIn] = Field(default_factory=list, max_length=10_000)
    follows: list[FollowIn] = Field(default_factory=list, max_length=10_000)  # issue 13; absent when none


# -- export ---------------------------------------------------------------------------------------

def _paper_doc(p: Any) -> dict[str, Any]:
    return {"ref": p.canonical_id, "arxiv_id": p.arxiv_id, "arxiv_version": p.arxiv_version, "doi": p.doi,
            "title": p.title, "abstract": p.abstract, "authors": list(p.authors), "categories": list(p.categories),
            "primary_category": p.primary_category, "submitted": p.submitted, "updated": p.updated,
            "versions": {str(k): v for k, v in sorted(p.versions.items())}, "links": dict(p.links),
            "comments": p.comments, "journal_ref": p.journal_ref}


def export_account(store: Store, user_id: int) -> dict[str, Any]:
    """The account as a JSON-ready document (see the module docstring); NotFound for no such user."""
    user = store.account(user_id)
    if user is None or user["deleted_at"]:
        raise NotFound("no such user")
    profile = store.profile(user_id)
    saves, feedback, votes = store.saves(user_id), store.feedback_rows(user_id), store.votes_of(user_id)
    comments, prefs = store.comments_of(user_id), store.interest_prefs(user_id)
    anchors = {k: int(m.group(1)) for k in prefs if (m := _PREF_KEY.fullmatch(k))}
    ids = ({r["paper_id"] for r in [*saves, *feedback, *votes, *comments]} | set(anchors.values())
           | {i for p in prefs.values() for i in p["members"] if isinstance(i, int)})
    papers = store.get_papers(sorted(ids))
    ref = {i: p.canonical_id for i, p in papers.items()}
    interests = []
    for key, p in prefs.items():
        doc: dict[str, Any] = {"key": key, "name": p["name"], "muted": bool(p["muted"]), "deleted": bool(p["deleted"]),
                               "members": sorted({ref[i] for i in p["members"] if i in ref})}
        if key in anchors:
            if anchors[key] not in ref:
                continue  # its paper is gone: the interest cannot be named on another paperboy
            doc |= {"key": "paper", "paper": ref[anchors[key]]}
        interests.append(doc)
    doc = {
        "paperboy_account": VERSION,
        "user": {"name": user["name"], "email": user["email"]},
        "profile": {k: profile[k] for k in PROFILE},
        "papers": sorted((_paper_doc(p) for p in papers.values()), key=lambda d: d["ref"]),
        "saves": sorted(({"paper": ref[s["paper_id"]], "folder": s["folder"], "at": s["created_at"]}
                         for s in saves if s["paper_id"] in ref), key=lambda d: (d["paper"], d["folder"])),
        "feedback": sorted(({"paper": ref[f["paper_id"]], "kind": f["kind"], "at": f["created_at"]}
                            for f in feedback if f["paper_id"] in ref), key=lambda d: d["paper"]),
        "votes": sorted(({"paper": ref[v["paper_id"]], "at": v["created_at"]} for v in votes if v["paper_id"] in ref),
                        key=lambda d: d["paper"]),
        "comments": sorted(({"paper": ref[c["paper_id"]], "body": c["body"], "at": c["created_at"],
                             "hidden": c["hidden_at"] is not None} for c in comments if c["paper_id"] in ref),
                           key=lambda d: (d["at"], d["paper"], d["body"])),
        "interests": sorted(interests, key=lambda d: (d["key"], d.get("paper") or "")),
    }
    if follows := store.follows(user_id):  # followed authors (issue 13): only when there are some
        doc["follows"] = sorted(({"author": f["author_key"], "name": f["name"], "at": f["created_at"]} for f in follows),
                                key=lambda d: d["author"])
    return doc


def dumps(doc: dict[str, Any]) -> bytes:
    """The file's bytes: sorted keys, two-space indent, a final newline (the same document, the same bytes)."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


# -- import ---------------------------------------------------------------------------------------

def _where(err: dict[str, Any]) -> str:
    return ".".join(str(x) for x in err["loc"])[:120] or "the file"


def parse_account(data: bytes | str) -> AccountIn:
    """The file checked from end to end, or BadRequest saying what is wrong and where; nothing is
    written before this passes."""
    if len(data) > MAX_BYTES:
        raise BadRequest(f"an account file may be at most {MAX_BYTES >> 20} MB (this one is {len(data) >> 20} MB)")
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"not a paperboy account file: the JSON does not parse ({e})") from e
    if not isinstance(raw, dict) or "paperboy_account" not in raw:
        raise BadRequest('not a paperboy account file: expected a JSON object with "paperboy_account": 1 '
                         '(made by `paperboy account export`)')
    version = raw["paperboy_account"]
    if version != VERSION or type(version) is not int:
        raise BadRequest(f"this account file is version {str(version)[:20]}; this paperboy reads version {VERSION}")
    try:
        doc = AccountIn.model_validate(raw)
    except ValidationError as e:
        errors = e.errors()
        shown = "; ".join(f"{_where(x)}: {x['msg'][:200]}" for x in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise BadRequest(f"invalid account file: {shown}{more}") from e
    refs = {p.ref for p in doc.papers}
    if len(refs) != len(doc.papers):
        raise BadRequest("invalid account file: a paper ref appears twice in papers")
    for section in ("saves", "feedback", "votes", "comments"):
        for n, row in enumerate(getattr(doc, section)):
            if row.paper not in refs:
                raise BadRequest(f"invalid account file: {section}.{n}.paper {row.paper[:100]!r} is not in papers")
    for n, it in enumerate(doc.interests):
        missing = [r for r in [it.paper or "", *it.members] if r and r not in refs]
        if _PREF_KEY.fullmatch(it.key):  # a row id of the paperboy it came from: meaningless here
            raise BadRequest(f"invalid account file: interests.{n}: key {it.key!r} must be 'paper' with a paper ref")
        if missing or (it.key == "paper") != (it.paper is not None):
            raise BadRequest(f"invalid account file: interests.{n} names a paper that is not in papers"
                             if missing else f"invalid account file: interests.{n}: key 'paper' goes with a paper")
    for n, p in enumerate(doc.papers):
        if why := check_record(_record(p)):
            raise BadRequest(f"invalid account file: papers.{n} ({p.ref[:100]}): {why}")
    return doc


def _record(p: PaperIn, source: str = SOURCE) -> PaperRecord:
    versions = {}
    for k, v in p.versions.items():
        if not k.isascii() or not k.isdigit() or len(k) > 4:
            raise BadRequest(f"invalid account file: paper {p.ref[:100]}: version {k[:20]!r} is not a number")
        versions[int(k)] = v
    return PaperRecord(source=source, source_id=p.ref, title=p.title, abstract=p.abstract, authors=list(p.authors),
                       arxiv_id=p.arxiv_id, arxiv_version=p.arxiv_version, versions=versions, doi=p.doi,
                       categories=list(p.categories), primary_category=p.primary_category, submitted=p.submitted,
                       updated=p.updated, links=dict(p.links), comments=p.comments, journal_ref=p.journal_ref)


def import_account(deps: ImportDeps, data: bytes | str, user: str | None = None, embed: bool = True,
                   trusted: bool = False) -> dict[str, Any]:
    """Import an account file into the user ``user`` (default: the name in the file): into that live
    account if there is one (its address is kept), else a new member account with the file's
    address (unconfirmed) and no password (set one with ``paperboy user set-password`` or a reset
    mail). Untrusted (the default): papers as ``upload``, no votes or comments (see the module
    docstring); ``trusted``: papers as ``account``, votes and comments kept."""
    doc = parse_account(data)
    source = SOURCE if trusted else UPLOAD
    store = deps.store
    name = check_name((user or doc.user.name).strip())
    email = validate_email(doc.user.email) if (doc.user.email or "").strip() else None
    records = [_record(p, source) for p in doc.papers]
    for r, p in zip(records, doc.papers):
        check_record(r)  # passed in parse_account; this cleans the record as ingest does,
        # except that the title and abstract are stored text already: converting their LaTeX again
        # would change what a first pass kept ("41$-137 ×$" loses its dollars the second time).
        r.title, r.abstract = clean_text(p.title), clean_text(p.abstract)
    counts = store.upsert_papers(records)
    ids = store.paper_ids_by_source(source, [p.ref for p in doc.papers])
    existing = store.user_by_name(name)
    created = existing is None
    # No password travels: "!" is no argon2 hash, so no password opens the account until one is set.
    user_id = store.create_user(name, email, "!imported") if existing is None else existing["id"]
    try:
        written = store.restore_library(user_id, _rows(doc, ids, trusted))
        if doc.follows:
            written["follows"] = sum(store.follow(user_id, f.author, f.name, f.at) for f in doc.follows)
    except BaseException:
        if created:
            store.delete_user(user_id)  # nothing half-imported: the new account goes again
        raise
    warnings: list[str] = []
    if not trusted and (doc.votes or doc.comments):
        warnings.append(f"{len(doc.votes)} votes and {len(doc.comments)} comments not imported "
                        "(public, with the file's times: only from a trusted file, --trusted)")
    if embed:
        try:
            deps.embed()
        except Exception as e:  # noqa: BLE001 - no embed extra: the library is saved, recommendations wait
            warnings.append(f"not embedded: {e}")
    return {"user": name, "user_id": user_id, "created": created, "papers": len(doc.papers),
            "papers_new": counts.inserted, "papers_updated": counts.updated, **written, "warnings": warnings}


def _rows(doc: AccountIn, ids: dict[str, int], trusted: bool) -> LibraryRows:
    prefs = []
    for it in doc.interests:
        key = f"p{ids[it.paper]}" if it.key == "paper" and it.paper else it.key
        prefs.append({"key": key, "name": it.name, "muted": int(it.muted), "deleted": int(it.deleted),
                      "members": sorted({ids[r] for r in it.members})})
    return {
        "saves": [{"paper_id": ids[s.paper], "folder": s.folder, "created_at": s.at} for s in doc.saves],
        "feedback": [{"paper_id": ids[f.paper], "kind": f.kind, "created_at": f.at} for f in doc.feedback],
        # Votes and comments are public and dated by the file (Trending, the discussion): trusted only.
        "votes": [{"paper_id": ids[v.paper], "created_at": v.at} for v in doc.votes] if trusted else [],
        "comments": [{"paper_id": ids[c.paper], "body": c.body, "created_at": c.at, "hidden": c.hidden}
                     for c in doc.comments] if trusted else [],
        "interest_prefs": prefs,  # type: ignore[typeddict-item]
        "profile": doc.profile.model_dump(),
    }
