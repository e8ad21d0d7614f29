"""Community part of the Store interface: users, sessions, API tokens, login failures and rate
limits, votes, comments, submissions, the audit log and the daily lists.

Secrets never reach the store: sessions and tokens are passed in as SHA-256 hashes. User names are
unique case-folded; a clash raises ``errors.Conflict``. A deleted account stays as a tombstone row.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from ..records import (
    Account,
    ApiToken,
    AuditEntry,
    Comment,
    CommentRow,
    ListedUser,
    RecentComment,
    RecentSubmission,
    SessionUser,
    Submission,
    SubmissionRow,
    TokenUser,
)


class CommunityStore(ABC):
    """Users and what they do; every method is one short transaction."""

    # -- users ----------------------------------------------------------------------------------

    @abstractmethod
    def create_user(self, name: str, email: str | None, password_hash: str, role: str = "member") -> int:
        """A new user's id; raises ``Conflict`` when the case-folded name is taken."""

    @abstractmethod
    def user_by_name(self, name: str) -> Account | None:
        """A live (not deleted) account by name, case-insensitively."""

    @abstractmethod
    def account(self, user_id: int) -> Account | None:
        """Every column of one user row (deleted tombstones too)."""

    @abstractmethod
    def users_by_email(self, email: str) -> list[Account]:
        """Live accounts with this address, case-insensitively."""

    @abstractmethod
    def list_users(self, limit: int = 10_000) -> list[ListedUser]:
        """Live accounts, newest first, each with its comment count."""

    @abstractmethod
    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        """Replace the password hash."""

    @abstractmethod
    def set_role(self, user_id: int, role: str) -> bool:
        """Change a live user's role; False when there is no such live user."""

    @abstractmethod
    def set_suspended(self, user_id: int, suspended: bool) -> bool:
        """Suspend (and end every session) or lift a suspension; False when there is no such live user."""

    @abstractmethod
    def delete_user(self, user_id: int) -> None:
        """Remove a person's data and leave a tombstone row: comments stay, shown as [deleted]."""

    # -- sessions -------------------------------------------------------------------------------

    @abstractmethod
    def create_session(self, token_hash: str, user_id: int, days: float) -> None:
        """Start a session lasting ``days`` (and drop expired ones)."""

    @abstractmethod
    def session_user(self, token_hash: str) -> SessionUser | None:
        """The live user of an unexpired session; suspended and deleted accounts have none."""

    @abstractmethod
    def delete_session(self, token_hash: str) -> None:
        """End one session (log out)."""

    @abstractmethod
    def delete_sessions(self, user_id: int, keep: str | None = None) -> int:
        """End every session of a user but ``keep`` (a token hash); returns how many ended."""

    # -- login failures and rate limits ---------------------------------------------------------

    @abstractmethod
    def failure_counts(self, keys: Sequence[str], minutes: float) -> dict[str, int]:
        """Login failures per key in the last ``minutes``."""

    @abstractmethod
    def login_failures(self, keys: Sequence[str], minutes: float) -> int:
        """The most failures any of ``keys`` had in the last ``minutes``."""

    @abstractmethod
    def add_login_failure(self, keys: Sequence[str]) -> None:
        """Record one failed login under each key."""

    @abstractmethod
    def clear_login_failures(self, key: str, older_than_minutes: float) -> None:
        """Forget ``key``'s failures, and everyone's older than the window."""

    @abstractmethod
    def rate_hit(self, checks: Sequence[tuple[str, int, float]]) -> tuple[float, str] | None:
        """Record one event per (key, limit, window_s) atomically, or (seconds to wait, key) if one is full."""

    # -- API tokens -----------------------------------------------------------------------------

    @abstractmethod
    def create_api_token(self, user_id: int, name: str, token_hash: str, scope: str = "write",
                         days: float | None = None) -> int:
        """A new token's id; ``days`` None: it never expires."""

    @abstractmethod
    def api_tokens(self, user_id: int) -> list[ApiToken]:
        """A user's tokens (no hashes), newest first, revoked ones included."""

    @abstractmethod
    def revoke_api_token(self, user_id: int, token_id: int) -> bool:
        """Revoke one of ``user_id``'s own tokens; False when there is no such live token."""

    @abstractmethod
    def token_user(self, token_hash: str, touch: bool = True) -> TokenUser | None:
        """The live user (with ``token_id``, ``scope``) of a token not revoked, expired or suspended."""

    # -- votes, comments, submissions -----------------------------------------------------------

    @abstractmethod
    def set_vote(self, user_id: int, paper_id: int, up: bool) -> bool:
        """Upvote (or take the upvote back); True when something changed."""

    @abstractmethod
    def voted(self, user_id: int, paper_ids: Sequence[int]) -> set[int]:
        """Which of ``paper_ids`` the user upvoted."""

    @abstractmethod
    def member_votes(self, paper_ids: Sequence[int]) -> dict[int, int]:
        """Members' upvotes per paper."""

    @abstractmethod
    def vote_events(self, since: str, until: str) -> list[tuple[int, str]]:
        """(paper id, when) of members' votes in the window ``since`` < t <= ``until``."""

    @abstractmethod
    def add_comment(self, paper_id: int, user_id: int, body: str) -> int:
        """A new comment's id."""

    @abstractmethod
    def comments(self, paper_id: int) -> list[Comment]:
        """A paper's visible comments, oldest first (hidden ones only in ``recent_comments``)."""

    @abstractmethod
    def comment(self, comment_id: int) -> CommentRow | None:
        """One comment row, hidden or not."""

    @abstractmethod
    def recent_comments(self, limit: int = 50) -> list[RecentComment]:
        """Newest comments with paper title and author, hidden ones included (for moderators)."""

    @abstractmethod
    def comment_counts(self, paper_ids: Sequence[int]) -> dict[int, int]:
        """Visible comments per paper."""

    @abstractmethod
    def set_comment_hidden(self, comment_id: int, hidden: bool) -> bool:
        """Hide or show a comment; True when that changed it."""

    @abstractmethod
    def submit(self, paper_id: int, user_id: int | None, day: str) -> bool:
        """List a paper on ``day`` with its submitter; False when it was submitted before (first wins)."""

    @abstractmethod
    def submissions(self, paper_ids: Sequence[int]) -> dict[int, Submission]:
        """Visible submissions of these papers, by paper id."""

    @abstractmethod
    def submission(self, paper_id: int) -> SubmissionRow | None:
        """One paper's submission row, hidden or not."""

    @abstractmethod
    def recent_submissions(self, limit: int = 50) -> list[RecentSubmission]:
        """Newest submissions with paper title and submitter, hidden ones included (for moderators)."""

    @abstractmethod
    def set_submission_hidden(self, paper_id: int, hidden: bool) -> bool:
        """Hide or show a submission; True when that changed it."""

    # -- audit log ------------------------------------------------------------------------------

    @abstractmethod
    def audit(self, actor_id: int | None, action: str, target_kind: str, target_id: int | None,
              detail: str = "") -> None:
        """Append a moderation or admin action to the audit log (``actor_id`` None: the operator)."""

    @abstractmethod
    def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        """Newest audit entries first."""

    # -- daily lists ----------------------------------------------------------------------------

    @abstractmethod
    def day_ids(self, first: str, last: str, submitter: str | None = None) -> list[int]:
        """Papers on the lists of days ``first``..``last`` (ISO dates, inclusive), or one submitter's."""

    @abstractmethod
    def day_listing(self, first: str, last: str, submitter: str | None = None) -> dict[int, str]:
        """``day_ids`` with each paper's listing day (as ``listing_days`` gives it), in one query."""

    @abstractmethod
    def listing_days(self, paper_ids: Sequence[int]) -> dict[int, str | None]:
        """Each paper's listing day: its submission day, else its daily date, else its arXiv date."""

    @abstractmethod
    def latest_day(self, until: str) -> str | None:
        """The latest day on or before ``until`` that has a list."""

    @abstractmethod
    def adjacent_day(self, day: str, forward: bool) -> str | None:
        """The next (or previous) day after (before) ``day`` that has a list."""
