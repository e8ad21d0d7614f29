"""Typed records: the shapes of the rows the Store returns (besides ``models.Paper``).

They are ``TypedDict``s: the services keep reading ``user["name"]``, a type checker knows each key and
its type, and ``tests/test_store_contract.py::test_records_have_their_declared_shape`` checks that every
backend returns exactly these keys, so no backend can drift in what it returns.
"""

from typing import Any, NotRequired, TypedDict


class Account(TypedDict):
    """A whole user row (``account``, ``user_by_name``, ``users_by_email``)."""

    id: int
    name: str
    email: str | None
    password_hash: str
    created_at: str
    role: str
    email_verified_at: str | None
    suspended_at: str | None
    deleted_at: str | None


class ListedUser(Account):
    """An account in ``list_users``, with how many comments it wrote."""

    comments: int


class SessionUser(TypedDict):
    """The live user behind a session cookie."""

    id: int
    name: str
    email: str | None
    created_at: str
    role: str
    email_verified_at: str | None


class TokenUser(TypedDict):
    """The live user behind an API token, and the token."""

    id: int
    name: str
    email: str | None
    created_at: str
    role: str
    token_id: int
    scope: str


class User(TypedDict):
    """The public part of a user row (``user``)."""

    id: int
    name: str
    email: str | None
    created_at: str


class ApiToken(TypedDict):
    id: int
    name: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None
    scope: str
    expires_at: str | None


class Comment(TypedDict):
    """A visible comment on a paper page (``user``: the author's name, or ``[deleted]``)."""

    id: int
    body: str
    created_at: str
    user: str


class CommentRow(TypedDict):
    id: int
    paper_id: int
    user_id: int
    body: str
    created_at: str
    hidden_at: str | None


class RecentComment(CommentRow):
    """A comment in the moderators' list, with its author's name and its paper."""

    user: str
    title: str
    arxiv_id: str | None


class Submission(TypedDict):
    """A visible submission (``user``: the submitter's name; None for a deleted account)."""

    paper_id: int
    day: str
    created_at: str
    user: str | None


class SubmissionRow(TypedDict):
    paper_id: int
    user_id: int | None
    day: str
    created_at: str
    hidden_at: str | None


class RecentSubmission(SubmissionRow):
    user: str | None
    title: str
    arxiv_id: str | None


class AuditEntry(TypedDict):
    id: int
    at: str
    actor_id: int | None
    actor: str
    action: str
    target_kind: str
    target_id: int | None
    detail: str


class Save(TypedDict):
    paper_id: int
    folder: str
    created_at: str


class FeedbackRow(TypedDict):
    """One rating or dismissal, with when it was given (``feedback_rows``)."""

    paper_id: int
    kind: str
    created_at: str


class VoteRow(TypedDict):
    """One of a reader's upvotes and when (``votes_of``)."""

    paper_id: int
    created_at: str


class RestoredComment(TypedDict):
    """A comment to write back as it was (``restore_library``)."""

    paper_id: int
    body: str
    created_at: str
    hidden: bool


class Profile(TypedDict):
    """A reader's interest statement, rules and digest schedule (JSON lists decoded)."""

    user_id: int
    statement: str
    include_terms: list[str]
    exclude_terms: list[str]
    categories: list[str]
    digest: str
    digest_hour: int
    timezone: str
    quiet_days: str
    feed_token_hash: str | None
    updated_at: str
    subscribed_at: str | None


class Subscription(TypedDict):
    digest: str
    subscribed_at: str | None


class InterestPref(TypedDict):
    key: str
    name: str | None
    muted: int
    deleted: int
    members: list[int]


class LibraryRows(TypedDict):
    """Everything ``restore_library`` writes for one reader in one transaction (paper ids already
    this store's; ``profile``: fields of ``update_profile``)."""

    saves: list[Save]
    feedback: list[FeedbackRow]
    votes: list[VoteRow]
    comments: list[RestoredComment]
    interest_prefs: list[InterestPref]
    profile: dict[str, Any]


class Digest(TypedDict):
    """A digest and its ledger state; ``damaged`` only on a row whose id lists do not parse."""

    id: int
    user_id: int
    period: str
    status: str
    paper_ids: list[int]
    trending_ids: list[int]
    created_at: str
    sent_at: str | None
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    damaged: NotRequired[str]


class DigestReader(TypedDict):
    id: int
    name: str
    email: str
    email_verified_at: str | None
    digest: str
    digest_hour: int
    timezone: str
    quiet_days: str
    subscribed_at: str | None


class PaperText(TypedDict):
    """What ``papers_since`` gives the derived indexes for a changed paper."""

    id: int
    rev: int
    canonical_id: str
    title: str
    abstract: str
    authors: list[str]
    categories: list[str]
    primary_category: str | None
    submitted: str | None
    arxiv_id: str | None
    doi: str | None
    comments: str | None  # arXiv comments: where code links often are (the lexical index's has:)


class Job(TypedDict):
    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    status: str
    attempts: int
    run_after: str
    locked_by: str | None
    locked_until: str | None
    last_error: str | None
    result: dict[str, Any] | None
    created_at: str
    updated_at: str
