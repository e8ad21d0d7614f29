"""An explained recommendation (``Rec``), as ``library.recommend`` returns it and
``authors.followed_first`` makes them: its own module, so that library imports authors and authors
does not import library back."""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Paper
from .recommend import Interest, Recommendation

FOLLOWS = "follows"  # the interest key of a followed author's paper (services/authors.py)


@dataclass
class Rec:
    """A recommendation with its paper and the words of its explanation."""

    paper: Paper
    rec: Recommendation
    interest: Interest
    because: list[tuple[Paper, float]]
    followed: str = ""  # the followed authors who wrote it (services/authors.py)

    @property
    def why(self) -> str:
        parts = [] if self.rec.interest == FOLLOWS else [f"matches your interest \u201c{self.interest.name}\u201d"]
        if self.followed:
            parts.insert(0, f"by an author you follow: {self.followed}")
        if self.because:
            parts.append("close to " + " and ".join(f"\u201c{p.title}\u201d" for p, _ in self.because))
        if self.rec.keywords >= 0.5:
            parts.append("shares distinctive words with your library")
        if self.rec.matched_terms:
            parts.append("mentions " + ", ".join(self.rec.matched_terms))
        return "; ".join(parts)
