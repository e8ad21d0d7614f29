"""Plain text of a Hugging Face "Daily Papers" page: a short header, then title / abstract pairs.

Rules:

* Header lines (``new``, ``Get trending papers in your email inbox[ once a day]!``, ``Subscribe``,
  ``byAK and the research community``, ``Daily Papers``, a date such as ``Jun 26``, ``Jan 3``,
  ``December 12, 2023`` or ``2024-01-03``) are skipped wherever they stand on a line of their own,
  and stripped as a prefix of the first content line (``SubscribeLegendreTron: ...``). The first
  date seen becomes ``extra["page_date"]``.
* Lines are grouped into paragraphs by blank lines. A line is abstract-like when it is long
  (>= 300 chars or >= 40 words) or is several sentences (>= 120 chars, ends a sentence, has a
  sentence break inside); anything else is short.
* A short line followed in its paragraph by an abstract-like line is a title. Consecutive
  abstract-like lines (or paragraphs) after a title form one abstract. A short line right after an
  abstract line in the same paragraph continues that abstract when it starts in lower case, ends a
  sentence, or the abstract line did not end a sentence (URLs aside); otherwise it is a new title.
  A short line ending with ``.`` right after a title is a (short) abstract.
* A paragraph of several short lines is one hard-wrapped abstract when its joined text is
  abstract-like, one wrapped title when no line but the last ends a sentence and the last does not
  end with ``.``; else its lines are taken one by one.
* A title with no abstract yields ``BadRecord("title without abstract")``; abstract text with no
  title yields ``BadRecord("text without a title")``. Text is whitespace-collapsed only.
* ``FormatError`` when the file starts like JSON/XML/HTML, holds NUL bytes, or has no title /
  abstract pair (nothing is yielded before the first pair, so a wrong file yields nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ..errors import FormatError
from ..models import BadRecord, PaperRecord
from ..normalize import clean_text
from .base import iter_lines

FORMAT = "hf-page"
DESCRIPTION = "plain text of a Hugging Face Daily Papers page (title line, then abstract)"

_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
          r"|Sep(?:t(?:ember)?|tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
_DATE = (rf"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? )?(?:{_MONTH} \d{{1,2}}(?:st|nd|rd|th)?"
         rf"(?:,? \d{{4}})?|\d{{1,2}} {_MONTH},? \d{{4}}|\d{{4}}-\d{{2}}-\d{{2}})")
_TOKENS = (r"new|Get trending papers in your email inbox(?: once a day)?!?|Subscribe"
           rf"|by ?AK and the research community|Daily Papers|{_DATE}")
_HEADER_LINE = re.compile(rf"(?:(?:{_TOKENS})\s*)+", re.IGNORECASE)
# As a prefix: case-sensitive and not running on into a lower-case word ("Subscribers", "newt").
_HEADER_PREFIX = re.compile(rf"(?:(?:{_TOKENS})(?![a-z])\s*)+")
_DATE_RE = re.compile(_DATE, re.IGNORECASE)
_SNIFF = re.compile(r"^\s*(?:new\s*)?(?:get trending papers in your email inbox|by ?ak and the research "
                    r"community)", re.IGNORECASE | re.MULTILINE)
_NOT_TEXT = re.compile(r"\s*(?:\{|\[\s*(?:[{\[\"\d\]]|$)|<[?!A-Za-z])")
_ENDS_SENTENCE = re.compile(r"[.!?][\"')\]]*$")
_SENTENCE_BREAK = re.compile(r"[a-z0-9)\]][.!?] +[A-Z]")
_URL_END = re.compile(r"\w+://\S+$")
_MAX_BAD_BEFORE_FIRST = 100

Para = list[tuple[int, str]]


def sniff(path: Path, head: str) -> bool:
    """True when the page's header markers stand near the top (first ~2 KB)."""
    return bool(_SNIFF.search(head[:2000])) and not _NOT_TEXT.match(head)


def _is_abstract(text: str) -> bool:
    if len(text) >= 300 or len(text.split()) >= 40:
        return True
    return len(text) >= 120 and bool(_ENDS_SENTENCE.search(text) and _SENTENCE_BREAK.search(text))


def _continues(prev: str, text: str) -> bool:
    """Is short ``text``, right below abstract line ``prev``, the rest of that abstract?"""
    ends = bool(_ENDS_SENTENCE.search(prev) or _URL_END.search(prev))
    return not text[:1].isupper() or not ends or text.endswith(".")


def _units(para: Para) -> Iterator[tuple[int, str, str, bool]]:
    """(line, text, kind, follows the previous unit in its paragraph); kind: T/A/S (short)."""
    if len(para) > 1 and not any(_is_abstract(t) for _, t in para):
        joined = " ".join(t for _, t in para)
        if _is_abstract(joined):
            yield para[0][0], joined, "A", False
            return
        if not any(_ENDS_SENTENCE.search(t) for _, t in para[:-1]) and not joined.endswith("."):
            yield para[0][0], joined, "S", False
            return
    for i, (n, t) in enumerate(para):
        if _is_abstract(t):
            kind = "A"
        else:
            kind = "T" if i + 1 < len(para) and _is_abstract(para[i + 1][1]) else "S"
        yield n, t, kind, i > 0


def _parse(path: Path, meta: dict[str, str]) -> Iterator[BadRecord | Para]:
    """Paragraphs of content lines (header dropped) and BadRecords for undecodable lines."""
    para: Para = []
    last, started = -1, False
    for lineno, text, err in iter_lines(path):
        if err is not None or text is None:
            if para:
                yield para
            para = []
            yield BadRecord(f"{path}:{lineno}", err or "unreadable line")
            continue
        text = text.strip()
        if "\x00" in text:
            if not started:
                raise FormatError(f"{path}:{lineno}: binary data (NUL bytes), not a Hugging Face papers page")
            yield BadRecord(f"{path}:{lineno}", "binary data (NUL bytes)")
            continue
        if not started and _NOT_TEXT.match(text):
            raise FormatError(f"{path} looks like JSON/XML/HTML, not the text of a Hugging Face papers page")
        m = _HEADER_LINE.fullmatch(text) or (None if started else _HEADER_PREFIX.match(text))
        if m:
            date = _DATE_RE.search(m.group(0))
            if date and "page_date" not in meta:
                meta["page_date"] = clean_text(date.group(0))
            text = text[m.end():].strip()
            if not text:
                continue
        started = True
        if para and lineno != last + 1:
            yield para
            para = []
        para.append((lineno, text))
        last = lineno
    if para:
        yield para


def read(path: Path) -> Iterator[PaperRecord | BadRecord]:
    """Stream the page's papers; see the module docstring for the rules."""
    meta: dict[str, str] = {}
    title: tuple[int, str] | None = None
    abstract: list[str] = []
    held: list[BadRecord] | None = []  # bad records held back until the first good one

    def flush() -> Iterator[PaperRecord | BadRecord]:
        nonlocal title, abstract
        if title and abstract:
            yield PaperRecord(source=FORMAT, source_id=None, title=clean_text(title[1]),
                              abstract=clean_text(" ".join(abstract)), extra=dict(meta),
                              match_title=True)
        elif title:
            yield BadRecord(f"{path}:{title[0]}", "title without abstract")
        title, abstract = None, []

    def items() -> Iterator[PaperRecord | BadRecord]:
        nonlocal title
        for para in _parse(path, meta):
            if isinstance(para, BadRecord):
                yield para
                continue
            for n, text, kind, adjacent in _units(para):
                if kind == "A" and title is None:
                    yield BadRecord(f"{path}:{n}", "text without a title")
                elif kind == "A" or (kind == "S" and title and abstract and adjacent
                                     and _continues(abstract[-1], text)):
                    abstract.append(text)
                elif kind == "S" and title and not abstract and text.endswith("."):
                    abstract.append(text)
                else:
                    yield from flush()
                    title = (n, text)
        yield from flush()

    for item in items():
        if held is None:
            yield item
        elif isinstance(item, PaperRecord):
            yield from held
            held = None
            yield item
        else:
            held.append(item)
            if len(held) > _MAX_BAD_BEFORE_FIRST:
                raise FormatError(f"{path}: no title/abstract pair in the first {len(held)} problems; "
                                  "not a Hugging Face papers page")
    if held is not None:
        raise FormatError(f"{path}: no title/abstract pairs found; not a Hugging Face papers page")
