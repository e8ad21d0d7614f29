"""Readers' part of the Store interface: saved papers, feedback, profiles, interest preferences,
and digests with their sent ledger. Every method is scoped to one reader (``user_id``) except the
digest queue (``pending_digests``, ``digest_readers``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, TypedDict

from ..records import (
    CommentRow,
    Digest,
    DigestReader,
    FeedbackRow,
    InterestPref,
    LibraryRows,
    Profile,
    Save,
    Subscription,
    User,
    VoteRow,
)


class Follow(TypedDict):
    """An author a reader follows: the author key (``paperboy/authors.py``), the name shown."""

    author_key: str
    name: str
    created_at: str


class LibraryStore(ABC):
    """A reader's library, profile and digests."""

    # -- library --------------------------------------------------------------------------------

    @abstractmethod
    def save(self, user_id: int, paper_id: int, folder: str = "saved") -> bool:
        """Save a paper into a folder; False when it was there already."""

    @abstractmethod
    def unsave(self, user_id: int, paper_id: int, folder: str = "saved") -> bool:
        """Take a paper out of a folder; False when it was not there."""

    @abstractmethod
    def saves(self, user_id: int) -> list[Save]:
        """A reader's saved papers (paper_id, folder, created_at), newest first."""

    @abstractmethod
    def save_events(self, since: str, until: str) -> list[tuple[int, str]]:
        """(paper id, first saved) per reader and paper saved in the window ``since`` < t <= ``until``."""

    @abstractmethod
    def set_feedback(self, user_id: int, paper_id: int, kind: str | None) -> None:
        """Rate up or down, dismiss, or (None) take the feedback back; the latest one counts."""

    @abstractmethod
    def feedback(self, user_id: int) -> dict[int, str]:
        """A reader's feedback kind per paper."""

    @abstractmethod
    def my_votes(self, user_id: int) -> list[int]:
        """Papers the reader upvoted."""

    # -- followed authors -----------------------------------------------------------------------

    @abstractmethod
    def follow(self, user_id: int, author_key: str, name: str, at: str | None = None) -> bool:
        """Follow an author (``at``: when, for an imported follow); False when followed already."""

    @abstractmethod
    def unfollow(self, user_id: int, author_key: str) -> bool:
        """Stop following an author; False when not followed."""

    @abstractmethod
    def follows(self, user_id: int) -> list[Follow]:
        """The authors a reader follows, the latest followed first."""

    # -- a whole account's rows (export and import, services/portability.py) --------------------

    @abstractmethod
    def feedback_rows(self, user_id: int) -> list[FeedbackRow]:
        """A reader's feedback with when it was given, by paper id."""

    @abstractmethod
    def votes_of(self, user_id: int) -> list[VoteRow]:
        """A reader's upvotes with when they were given, by paper id."""

    @abstractmethod
    def comments_of(self, user_id: int) -> list[CommentRow]:
        """Every comment the reader wrote, hidden ones too, oldest first."""

    @abstractmethod
    def restore_library(self, user_id: int, rows: LibraryRows) -> dict[str, int]:
        """Write a reader's saves, feedback, votes, comments, interest preferences and profile in one
        transaction, keeping the timestamps given; what exists already is kept (a newer rating wins),
        so restoring twice adds nothing. Returns how many rows of each kind were new."""

    # -- profile and interests ------------------------------------------------------------------

    @abstractmethod
    def profile(self, user_id: int) -> Profile:
        """A reader's profile (created with defaults on first use), JSON fields decoded."""

    @abstractmethod
    def update_profile(self, user_id: int, **values: Any) -> None:
        """Set profile fields (ValueError on an unknown one); digest on from off starts a new subscription."""

    @abstractmethod
    def user_by_feed_token(self, token_hash: str) -> int | None:
        """The reader whose private feed token has this hash."""

    @abstractmethod
    def user(self, user_id: int) -> User | None:
        """id, name, email, created_at of one user."""

    @abstractmethod
    def set_email(self, user_id: int, email: str | None) -> None:
        """Change the address (validated by the caller); a different address is unverified again."""

    @abstractmethod
    def mark_email_verified(self, user_id: int, at: str | None = None) -> None:
        """Record that the reader proved they read their current address (the verification link)."""

    @abstractmethod
    def subscription(self, user_id: int) -> Subscription | None:
        """The reader's digest setting and ``subscribed_at`` (None: no such live reader); reads only."""

    @abstractmethod
    def interest_prefs(self, user_id: int) -> dict[str, InterestPref]:
        """Interest preferences (name, muted, deleted, members) by interest key."""

    @abstractmethod
    def set_interest_pref(self, user_id: int, key: str, *, name: str | None = None, muted: bool | None = None,
                          deleted: bool | None = None, members: list[int] | None = None) -> None:
        """Rename, mute or delete one interest, keeping the fields not given."""

    @abstractmethod
    def reset_recommendations(self, user_id: int) -> None:
        """Forget interest names, mutes, deletions, ratings, dismissals, statement and rules."""

    # -- digests --------------------------------------------------------------------------------

    @abstractmethod
    def sent_ids(self, user_id: int) -> set[int]:
        """Papers in the reader's ledger: recorded for a digest, never to be picked again."""

    @abstractmethod
    def digest(self, user_id: int, period: str) -> Digest | None:
        """The reader's digest of ``period``, id lists decoded (``damaged`` set if they cannot be)."""

    @abstractmethod
    def pending_digests(self) -> list[Digest]:
        """Digests recorded but not mailed yet, fewest attempts first."""

    @abstractmethod
    def last_digest_at(self, user_id: int) -> str | None:
        """When the reader's last digest that was (or is still to be) mailed was recorded."""

    @abstractmethod
    def first_failed_digest_at(self, user_id: int) -> str | None:
        """When the reader's first digest given up for good was recorded."""

    @abstractmethod
    def record_digest(self, user_id: int, period: str, paper_ids: list[int],
                      trending_ids: list[int]) -> Digest | None:
        """Record a pending digest and its papers in the ledger atomically; None if the period exists."""

    @abstractmethod
    def mark_digest(self, digest_id: int, status: str) -> None:
        """Set a digest's status (e.g. 'sent') and when."""

    @abstractmethod
    def digest_failed(self, digest_id: int, error: str, next_attempt_at: str | None) -> None:
        """Count a failed attempt: retry from ``next_attempt_at``, or (None) fail for good and free its papers."""

    @abstractmethod
    def digest_readers(self, require_verified: bool = True) -> list[DigestReader]:
        """Readers with digests on, a live account and an address (verified, unless not required)."""
