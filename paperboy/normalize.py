"""Normalization shared by every source: arXiv ids, DOIs, dates, names, text, dedup keys."""

from __future__ import annotations

import calendar
import re
import unicodedata
from datetime import date, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

import orjson

from .models import PaperRecord

# Field limits: past these a record is rejected as malformed rather than stored.
MAX_TITLE = 1_000
MAX_ABSTRACT = 20_000
MAX_AUTHORS = 5_000
MAX_AUTHOR_NAME = 300
MAX_NOTE = 5_000  # comments, journal reference
MAX_CATEGORIES = 100
MAX_SHORT = 1_000  # one category, an id, a DOI, a link
MAX_EXTRA_BYTES = 64 << 10  # a source's signals (upvotes, keywords), as JSON
MAX_DOIS = 20  # DOIs kept of one record (the first is ``doi``, the others links doi2, doi3, ...)
MAX_VERSION = 9_999  # an arXiv version number (SQLite integers overflow past 2**63)

# Dates outside this range are dropped (the record is kept): a year 9999 or 0001 is a typo or an
# attack, and would sort first in every date-ordered list. The future bound is today + MAX_FUTURE.
MIN_DATE = date(1800, 1, 1)
MAX_FUTURE = timedelta(days=366)

# New-style ids (0704.0001, 2401.01234) and old-style ids (hep-th/9901001, math.GT/0309136).
# Digits are ASCII [0-9] only: \d would also take "３" or Arabic-Indic digits (a second spelling of
# an id); the surrounding \w stays Unicode so such a digit next to an id stops the match.
_NEW_ID = r"[0-9]{4}\.[0-9]{4,5}"
_OLD_ID = r"[a-z][a-z\-]*(?:\.[A-Z]{2})?/[0-9]{7}"
_VERSION = r"(?:v([0-9]{1,4}))?"
_ARXIV_RE = re.compile(rf"(?:^|[^\w.\-/])({_NEW_ID}|{_OLD_ID}){_VERSION}(?![\w.])", re.IGNORECASE)
_ARXIV_EXACT = re.compile(rf"^({_NEW_ID}|{_OLD_ID}){_VERSION}$", re.IGNORECASE)
_DOI_RE = re.compile(r"(10\.[0-9]{4,9}/\S+)")
# Control and invisible format characters (Cc, soft hyphen, zero-width, bidi overrides, BOM), and
# what XML 1.0 cannot carry at all (lone surrogates, U+FFFE, U+FFFF) or reserves (noncharacters):
# one of these in a title would break every feed listing it.
_NONCHARS = "".join(chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(1, 17))
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff"
                      f"\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff{_NONCHARS}]")
_NON_WORD = re.compile(r"[\W_]+")
# The C1 controls \x91-\x97 in real text are Windows-1252 quotes and dashes read as Latin-1 (a
# SciFact abstract has "function1\x964"): they become what was meant, "function1–4", not "function14".
_CP1252 = {c: bytes([c]).decode("cp1252") for c in range(0x91, 0x98)}


def parse_arxiv_id(text: str | None) -> tuple[str, int | None] | None:
    """Return (id, version) found in an id, URL or OAI identifier, or None.

    >>> parse_arxiv_id("https://arxiv.org/abs/2401.01234v2")
    ('2401.01234', 2)
    >>> parse_arxiv_id("oai:arXiv.org:hep-th/9901001")
    ('hep-th/9901001', None)
    """
    if not text:
        return None
    text = text.strip()
    m = _ARXIV_EXACT.match(text)
    if not m:
        text = re.sub(r"(?i)^(arxiv:|oai:arxiv\.org:)", " ", text)
        text = re.sub(r"(?i)(abs|pdf|html)/", " ", text)
        text = re.sub(r"\.pdf$", "", text)
        m = _ARXIV_RE.search(" " + text)
        if not m:
            return None
    ident = m.group(1)
    if "/" in ident:  # old style: archive lower case, subject class upper case
        archive, num = ident.split("/")
        head, _, sub = archive.partition(".")
        ident = f"{head.lower()}.{sub.upper()}/{num}" if sub else f"{head.lower()}/{num}"
    return ident, int(m.group(2)) if m.group(2) else None


def normalize_doi(text: str | None) -> str | None:
    """Lower-case bare DOI ("10.x/y") from a DOI, ``doi:`` prefix or doi.org URL."""
    if not text:
        return None
    m = _DOI_RE.search(text.strip())
    if not m:
        return None
    return m.group(1).rstrip(".,;").lower()


_DOI_SPLIT = re.compile(r"\s+|[,;]\s*(?=(?:doi:\s*|https?://(?:dx\.)?doi\.org/)?10\.)", re.IGNORECASE)


def split_dois(text: str | None) -> list[str]:
    """Every DOI in a text that lists several (space, comma or semicolon between), normalized, in
    order, each once: "10.1364/A.1 10.1364/B.2" -> ["10.1364/a.1", "10.1364/b.2"]."""
    out: list[str] = []
    for part in _DOI_SPLIT.split(text or ""):
        doi = normalize_doi(part)
        if doi and doi not in out:
            out.append(doi)
    return out


def clean_text(text: str | None) -> str:
    """Unicode NFC, control characters dropped (Windows-1252 ones read as what they meant),
    whitespace collapsed."""
    if not text:
        return ""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    text = " ".join(text.split())  # str.split is the fast path for collapsing whitespace
    if text.isprintable():
        return text
    return " ".join(_CONTROL.sub("", text.translate(_CP1252)).split())


# --- LaTeX to Unicode -------------------------------------------------------------------------
# Titles, names and abstracts arrive as LaTeX source. Each macro, accent, group, sub- and
# superscript is converted only where Unicode says the same thing (pylatexenc's tables give the
# symbols: \alpha -> α, \mathbb{Z} -> ℤ); anything else is kept as written, so no meaning is lost:
# an unknown macro (\CP) stays in text, and a math span ($...$) with any part that has no safe
# mapping ($\frac{a}{b}$, $x_{ij}$) stays whole. A bare % is text here, never a comment.
_ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303", "=": "\u0304",
            ".": "\u0307", "c": "\u0327", "v": "\u030c", "u": "\u0306", "H": "\u030b", "k": "\u0328",
            "r": "\u030a", "d": "\u0323", "b": "\u0331"}
_MATH_ACCENTS = {"hat": "\u0302", "widehat": "\u0302", "bar": "\u0304", "overline": "\u0305", "tilde": "\u0303",
                 "widetilde": "\u0303", "dot": "\u0307", "ddot": "\u0308", "check": "\u030c", "breve": "\u0306",
                 "acute": "\u0301", "grave": "\u0300", "vec": "\u20d7"}
# One-argument macros whose argument is the text (the styling carries no meaning a reader needs).
_PLAIN = frozenset("emph textit textbf textsc texttt textrm textsf textup textnormal textmd textsl text mbox "
                   "mathrm mathit mathbf mathsf mathtt mathnormal boldsymbol bm operatorname hbox underline "
                   "textsubscript textsuperscript".split())
_LETTERFORMS = frozenset(("mathbb", "mathcal", "mathfrak", "mathscr", "mathbbm"))  # ℤ, 𝒪, 𝔤: via pylatexenc
# Declarations that style what follows ({\it XY}) and sizing commands: dropped.
_DROP = frozenset("it bf em rm sc tt sl sf up md normalfont itshape bfseries scshape upshape rmfamily sffamily "
                  "ttfamily cal displaystyle textstyle scriptstyle left right big Big bigg Bigg bigl bigr Bigl "
                  "Bigr biggl biggr middle limits nolimits protect relax noindent".split())
_SUP = dict(zip("0123456789+-=()ni", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱ")) | {"−": "⁻", "*": "*", "†": "†", "′": "′",
                                                             "'": "′", "∘": "°", "∗": "*"}
_SUB = dict(zip("0123456789+-=()", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎")) | {"−": "₋"}
# Macro names that, written without their backslash (emph{x}), still say their braces are an argument.
_MACRO_WORDS = _PLAIN | _LETTERFORMS | {"cite", "ref", "url", "href", "label", "footnote", "sqrt", "frac"}
_TEXT_LETTERS = frozenset("ss o O ae AE aa AA l L i j oe OE dh DH th TH ng NG dj DJ ij IJ".split())
_PREFIX_OPS = frozenset("√∂∇¬∞∑∏∫∬∭∮∀∃∄∅|‖∁")  # Sm characters that are not spaced as operators


@lru_cache(maxsize=1)
def _symbols() -> dict[str, str]:
    """Macro name -> Unicode, for pylatexenc's macros that take no argument and map to plain text."""
    from pylatexenc.latex2text import get_default_latex_context_db as text_db
    from pylatexenc.latexwalker import get_default_latex_context_db as walker_db

    walker = walker_db()
    out = {}
    for spec in text_db().iter_macro_specs():
        repl, parse = spec.simplify_repl, walker.get_macro_spec(spec.macroname)
        if isinstance(repl, str) and "%" not in repl and (parse is None or parse.args_parser.argspec == ""):
            out[spec.macroname] = repl
    out.pop("today", None)  # the date the title is read: not what it says
    return out | {"-": "", "prime": "′", "\\": " ", "/": "", "@": "", "%": "%", "textbackslash": "\\"}


@lru_cache(maxsize=4096)
def _letterform(macro: str, arg: str) -> str | None:
    """\\mathbb{Z} -> ℤ by pylatexenc's letter tables; None when it has no such letter."""
    from pylatexenc.latex2text import LatexNodes2Text

    out = LatexNodes2Text().latex_to_text(f"\\{macro}{{{arg}}}")
    return out if out and out != arg and "\\" not in out else None


_PLAIN_GROUP = re.compile(r"[\w\s.'’-]*")  # a word or words in braces: case protection, not a set
_SPECIAL_CHARS = frozenset("\\{}^_~$")
_SPECIAL_RE = re.compile(r"[\\{}^_~$]")


_MAX_DEPTH = 50  # nested groups and macro arguments read; deeper ones are kept as written


class _Parser:
    """A small LaTeX reader: ``group`` returns the Unicode of the source up to a closing brace, or
    None (math mode) when some part has no safe mapping; in text mode such a part is kept as written."""

    def __init__(self, src: str, math: bool, bibtex: bool = False, depth: int = 0) -> None:
        self.s, self.i, self.math, self.bibtex, self.depth = src, 0, math, bibtex, depth

    def _word(self) -> str:
        j = self.i
        while j < len(self.s) and self.s[j].isascii() and self.s[j].isalpha():
            j += 1
        name, self.i = self.s[self.i:j], j
        return name

    def _step(self) -> bool:
        self.i += 1
        return True

    def _skip_space(self) -> None:
        while self.i < len(self.s) and self.s[self.i] == " ":
            self.i += 1

    def _arg(self) -> str | None:
        """The next argument's source: a {group} (braces off) or one character; None at the end."""
        self._skip_space()
        if self.i >= len(self.s):
            return None
        if self.s[self.i] != "{":
            if self.s[self.i] == "\\":
                start = self.i
                self.i += 1
                if not self._word():
                    self.i += 1
                return self.s[start:self.i]
            self.i += 1
            return self.s[self.i - 1]
        depth, start = 0, self.i
        while self.i < len(self.s):
            depth += {"{": 1, "}": -1}.get(self.s[self.i], 0)
            self.i += 1
            if depth == 0:
                return self.s[start + 1:self.i - 1]
        return self.s[start + 1:]  # unbalanced: the rest

    def _group(self) -> str | None:
        """A {group} that is no macro's argument: its braces are grouping or case protection
        ({BERT}, {\\it XY}, {\\"o}) and go, except in text where they are written as such: a set
        {1,...,n} or {S_1,S_2} keeps them (not in BibTeX, where braces never stand for themselves)."""
        start = self.i
        src = self._arg() or ""
        inner = self._sub(src)
        if inner is not None and not self.math and self._glues(start, inner):
            # emph{all relevant variables}: a macro that lost its backslash, or a phrase in braces
            # touching a word: dropping the braces would glue two words; kept as written.
            return " " + inner + " " if self.bibtex else self.s[start:self.i]
        if inner is None or self.math or self.bibtex or src[:1] in "\\$" or _PLAIN_GROUP.fullmatch(inner):
            return inner
        return "{" + inner + "}" if self.s.startswith("}", self.i - 1) else "{" + inner

    def _glues(self, start: int, inner: str) -> bool:
        """Whether dropping the braces of the group at ``start`` would join two words: a phrase
        ({de facto}) touching a letter outside, or a group after a macro name with no backslash."""
        s = self.s
        before = start > 0 and s[start - 1].isalnum()
        if not before and not s[self.i:self.i + 1].isalnum() or not inner[:1].isalnum() and not inner[-1:].isalnum():
            return False
        j = start
        while j > 0 and s[j - 1].isascii() and s[j - 1].isalpha():
            j -= 1
        if j < start and s[j - 1:j] == "\\":
            return False  # {\bf{A 51}}: a macro's argument
        return " " in inner or before and s[j:start] in _MACRO_WORDS

    def _sub(self, arg: str | None, math: bool | None = None) -> str | None:
        """The Unicode of an argument's source, read in math mode (scripts) or the current mode; None
        (kept as written) past ``_MAX_DEPTH`` nested arguments, which no real text has: "{" * 20000
        would otherwise recurse past Python's limit, after seconds of rescanning."""
        if arg is None or self.depth >= _MAX_DEPTH:
            return None
        return _Parser(arg, self.math if math is None else math, self.bibtex, self.depth + 1).group()

    def _script(self, table: dict[str, str], start: int) -> str | None:
        """A sub- or superscript whose mark (``^``, ``_``, ``\\_``) is at ``start``."""
        braced = self.s.startswith("{", self.i)
        if not braced and not self.math and start > 1 and self.s[start - 1].isdigit() and table is _SUB \
                and self.s[start - 2] not in "^_":
            return None  # 3_1_23, 2_1: a name or number written with underscores, no subscript
        inner = self._sub(self._arg(), math=True)
        if not inner or not all(c in table for c in inner):
            return None
        if not braced and (inner in "()" or inner.isdigit() and self.s[self.i:self.i + 1].isdigit()):
            return None  # C_60, 10^10, PI3K_92D, 10^(-22): LaTeX would script one character, the writer meant more
        if self.s[self.i:self.i + 1] == self.s[start]:
            return None  # a_1_b: a double script is no LaTeX, but a name with underscores
        return "".join(table[c] for c in inner)

    def _macro(self) -> str | None:
        """The Unicode of the macro at ``self.i`` (just after the backslash), or None."""
        name = self._word()
        if not name:  # a control symbol: \" \& \, ...
            name = self.s[self.i:self.i + 1]
            self.i += 1
        elif self.i < len(self.s) and self.s[self.i] == " " and (self.math or name in _TEXT_LETTERS or name in _DROP):
            # A space ends a control word (Stra\ss e, {\it XY}); but outside math, "\rho of" is a
            # math symbol written without $ and its space parts two words.
            self._skip_space()
        if name == "_":  # Cs$\_2$, SO\_0(1,2): arXiv's abstract form escapes the subscript
            at = self.i
            out = self._script(_SUB, at - 2)
            if out is None and not self.math:
                self.i, out = at, "_"  # file\_name: an underscore, as cleaning it again would leave it
            return out
        if name in _ACCENTS and not (self.math and not name.isalpha()):
            return self._accent(_ACCENTS[name])
        if name in _MATH_ACCENTS:  # \bar{K} is written outside math too
            return self._accent(_MATH_ACCENTS[name])
        if name in _DROP:
            return ""
        if name in _PLAIN:
            return self._sub(self._arg())
        if name in _LETTERFORMS:
            arg = self._arg()
            return _letterform(name, arg) if arg and arg.isascii() and arg.isalpha() else None
        if name == "sqrt":
            if self.i < len(self.s) and self.s[self.i] == "[":
                return None  # \sqrt[3]{x}
            inner = self._sub(self._arg(), math=True)
            ok = inner and (len(inner) == 1 or inner.isdigit() or inner.isalpha() and len(inner) == 1)
            return f"√{inner}" if ok else None
        symbol = _symbols().get(name)
        if symbol is not None and unicodedata.category(symbol[:1] or " ") == "Sm" \
                and symbol not in _PREFIX_OPS:
            return f" {symbol} "  # a relation or operator: SU(2) ⊗ SU(2)
        if symbol and len(symbol) > 1 and symbol.replace(" ", "").isalpha() and self.i < len(self.s) \
                and (self.s[self.i].isalnum() or self.s[self.i] == "\\"):
            return symbol + " "  # an operator name: \log N is "log N", \tan\theta "tan θ"
        return symbol

    def _accent(self, mark: str) -> str | None:
        arg = self._sub(self._arg())
        if not arg or len(arg) != 1 or not arg.isalpha():
            return None
        return unicodedata.normalize("NFC", ("i" if arg == "ı" else "j" if arg == "ȷ" else arg) + mark)

    def _math_span(self, start: int) -> str:
        """$...$ (or $$...$$) from ``start``: its Unicode when every part has one, else as written."""
        delim = "$$" if self.s.startswith("$$", start) else "$"
        end = self.s.find(delim, start + len(delim))
        if end < 0 or end == start + len(delim) or delim == "$" and not _dollar_math(self.s, start, end):
            self.i = start + len(delim)
            return delim  # a lone $, an empty $$, or money ("$5 and $6", "US$ 202"): text
        self.i = end + len(delim)
        inner = _math(self.s[start + len(delim):end])
        return self.s[start:self.i] if inner is None else inner

    def group(self) -> str | None:
        out: list[str] = []
        s = self.s
        while self.i < len(s):
            if s[self.i] not in _SPECIAL_CHARS:  # a run of plain text, copied in one step
                m = _SPECIAL_RE.search(s, self.i)
                end = m.start() if m else len(s)
                out.append(s[self.i:end])
                self.i = end
                continue
            c, start = s[self.i], self.i
            self.i += 1
            if c == "\\":
                piece = self._macro()
            elif c == "{":
                self.i -= 1
                piece = self._group()
            elif c == "}":  # an unbalanced closing brace: dropped, but never joining two words
                piece = " " if self.math or 0 < start < len(s) - 1 and s[start - 1].isalnum() and not s[start + 1].isspace() else ""
            elif c == "$" and not self.math:
                piece = self._math_span(start)
            elif c in "^_":
                piece = self._script(_SUP if c == "^" else _SUB, start)
            elif c == "~":  # a tie (Fig.~1) is a space; "~10 nm" means about
                piece = " " if self.math or 0 < start < len(s) - 1 and (s[start - 1].isalnum() or s[start - 1] in ".,;:)$")\
                    and (s[start + 1].isalnum() or s[start + 1] in "\\($[{") else c
            else:
                piece = c
            if piece is None:
                if self.math:
                    return None
                if c == "\\":  # an unknown macro keeps its arguments: \foo{x} must not read \foox
                    self.i = start + 1
                    self._word() or self._step()
                    while self.i < len(s) and s[self.i] == "{":
                        self._arg()
                piece = s[start:self.i]  # no safe mapping: kept as written
            out.append(piece)
        return "".join(out)


# A prose word in a space-padded $ span: "to", "million", "kg"; not a macro's name or argument, not
# one letter (n), capitals (XX) or a function (osp(1|2n)).
_PROSE_WORD = re.compile(r"(?<![\\A-Za-z{])(?:[a-z]{2,}|[A-Za-z]{4,})(?![A-Za-z(_^{])")
_MATHY = re.compile(r"[\\^_A-Za-z]")
_ENDS_IN_OP = re.compile(r"(?:\\[A-Za-z]+|[=<>+\-±×])\s*$")  # $\sim $2, $I=$3: a relation before the number
_CURRENCY = frozenset(("US", "AU", "CA", "NZ", "HK"))  # US$ 202


def _dollar_math(s: str, start: int, end: int) -> bool:
    """Whether $...$ from ``start`` to ``end`` (the closing $) is math, not money: pandoc's
    tex_math_dollars rule (no space inside either $, no digit after the closing one: "$20 and
    $30", "US$ 5 to US$ 6" are text), eased where real abstracts are clearly math: a digit may
    follow a span glued to a number (41$-$137) or one that starts or ends with a symbol ($\\sim$20,
    $I=$3), and a space-padded span ($ \\alpha $, $ G/H $) is math when it holds no prose word."""
    inner = s[start + 1:end]
    if s[end + 1:end + 2].isdigit() and inner.lstrip()[:1].isalnum() and _ENDS_IN_OP.search(inner) is None \
            and (inner[0].isdigit() or start == 0 or not s[start - 1].isalnum()):
        return False  # $20 and $30: but $\sim$20 is math, and so is 41$-$137
    if s[end + 1:end + 2] == " " and s[end + 2:end + 3].isdigit() and s[end - 2:end] in _CURRENCY \
            and not s[end - 3:end - 2].isalpha():
        return False  # $5 to US$ 6
    if inner[0].isspace() or inner[-1].isspace():  # US$ 5 to US$: a $ glued to a word opens no padded span
        return not s[start - 1:start].isalnum() and _MATHY.search(inner) is not None \
            and _PROSE_WORD.search(inner) is None
    return True


_URL = re.compile(r"((?:https?://|www\.)[^\s{}$]+)")


@lru_cache(maxsize=16384)  # the same spans recur: $n$, $N$-qubit, $\alpha$
def _math(inner: str) -> str | None:
    """The Unicode of a math span's inside, or None when some part of it has no safe mapping."""
    out = _Parser(inner, True).group()
    return None if out is None or "$" in out else " ".join(out.split()) or (" " if out else "")  # $~$: a space


_HREF = re.compile(r"\\href\s*\{([^{}\s]*)\}\s*\{([^{}]*)\}|\\url\s*\{([^{}\s]*)\}")


def _link(m: re.Match[str]) -> str:
    return f"{m.group(2)} ({m.group(1)})" if m.group(1) is not None else m.group(3)


def latex_to_unicode(text: str, bibtex: bool = False) -> str:
    """LaTeX source to Unicode where a safe mapping exists, the rest kept as written (see above);
    ``bibtex``: a BibTeX field, whose braces are all grouping."""
    if "\\href" in text or "\\url" in text:
        text = _HREF.sub(_link, text)  # \href{URL}{text} -> text (URL); \url{URL} -> URL
    if "://" not in text and "www." not in text:
        return _Parser(text, False, bibtex).group() or ""
    parts = _URL.split(text)  # a link is never LaTeX: host/~user, file_2
    for i in range(0, len(parts), 2):
        if parts[i]:
            parts[i] = _Parser(parts[i], False, bibtex).group() or ""
    return "".join(parts)


def clean_latex(text: str | None, bibtex: bool = False) -> str:
    """Titles and names from LaTeX: accents, symbols and scripts to Unicode, styling and case
    braces dropped, what has no safe mapping kept as written (``latex_to_unicode``; ``bibtex``: a
    BibTeX field, all of whose braces go)."""
    text = clean_text(text)
    if "\\" not in text and "{" not in text and "$" not in text and "^" not in text and "_" not in text:
        return text
    out = latex_to_unicode(text, bibtex)
    # The input is clean already; what conversion adds is spaces around operators and for ties.
    return " ".join(out.split()) if "  " in out or out[:1] == " " or out[-1:] == " " else out


@lru_cache(maxsize=8192)  # the store asks for the same titles' keys several times per batch
def title_key(title: str) -> str:
    """Dedup key: case-folded letters and digits of the cleaned title, accents removed."""
    text = unicodedata.normalize("NFKD", clean_latex(title).casefold())
    return _NON_WORD.sub("", text)


def normalize_name(name: str) -> str:
    """"Last, First" -> "First Last"; LaTeX accents resolved; whitespace collapsed."""
    name = clean_latex(name)
    if name.count(",") == 1:
        last, first = (p.strip() for p in name.split(","))
        if first and last and not first.lower().startswith(("jr", "sr", "iii", "ii")):
            name = f"{first} {last}"
    return name.strip(" ,")


_AUTHOR_SPLIT = re.compile(r",\s*(?:and\s+)?|\s+and\s+|;\s*")


def split_authors(text: str | None) -> list[str]:
    """Split an arXiv-style author string ("A. One, B. Two and C. Three") into names.

    Parenthesised affiliations are dropped.
    """
    if not text:
        return []
    text = clean_text(text)
    depth, out = 0, []
    for ch in text:  # drop (affiliations), which may contain commas
        depth += ch == "("
        if depth == 0:
            out.append(ch)
        depth -= ch == ")" and depth > 0
    names = (clean_latex(n) for n in _AUTHOR_SPLIT.split("".join(out)))
    return [n for n in names if n]


_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}
_RFC_DATE = re.compile(r"^(?:\w{3}, )?(\d{1,2}) (\w{3}) (\d{4})\b", re.ASCII)
_WHOLE = re.compile(r"[0-9]{1,9}", re.ASCII)
_DATE_FORMATS = ("%Y-%m-%d", "%d %b %Y", "%b %d, %Y", "%B %d, %Y", "%Y/%m/%d")
# A date known only to the year or the month stays that precise: "2024", "2024-08" (never a
# made-up 1 January). Such text sorts just before the period's first day, as its start.
_PARTIAL = re.compile(r"([0-9]{4})(?:[-/]([0-9]{1,2}))?")
_MONTH_YEAR = re.compile(r"([A-Za-z]{3,9})\.? ([0-9]{4})")


def _partial(year: int, month: int | None = None) -> str | None:
    if not 1 <= year <= 9999 or month is not None and not 1 <= month <= 12:
        return None
    return f"{year:04d}" if month is None else f"{year:04d}-{month:02d}"


def parse_date(text: str | None) -> str | None:
    """ISO date from ISO timestamps, RFC 2822 dates and a few common forms: YYYY-MM-DD, or YYYY-MM
    and YYYY for a date given only to the month or the year ("2024", "Aug 2024")."""
    if not text:
        return None
    text = str(text).strip()
    if not text or not text.isascii():  # every form read is ASCII; strptime's \d takes any digit
        return None
    if len(text) <= 7 and (m := _PARTIAL.fullmatch(text)):
        return _partial(int(m.group(1)), int(m.group(2)) if m.group(2) else None)
    if text[0].isalpha() and len(text) <= 14 and (m := _MONTH_YEAR.fullmatch(text)) \
            and (month := _MONTHS.get(m.group(1)[:3].lower())) \
            and (len(m.group(1)) == 3 or m.group(1).lower() == calendar.month_name[month].lower()):
        return _partial(int(m.group(2)), month)
    if (m := _RFC_DATE.match(text)) and (month := _MONTHS.get(m.group(2).lower())):  # arXiv's versions
        try:
            return date(int(m.group(3)), month, int(m.group(1))).isoformat()
        except (ValueError, OverflowError):
            return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
    except (ValueError, OverflowError):
        pass
    try:
        return parsedate_to_datetime(text).date().isoformat()
    except (TypeError, ValueError, IndexError, OverflowError):
        pass
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except (ValueError, OverflowError):
            continue
    return None


def day_number(iso: str | None) -> int:
    """A date (YYYY, YYYY-MM or YYYY-MM-DD) as YYYYMMDD, a partial one as its period's first day
    (for date filters and sorting); 0 when undated."""
    return int((iso[:10].replace("-", "") + "0101")[:8]) if iso and iso[:4].isdigit() else 0


def date_start(iso: str | None) -> str | None:
    """The first day of a date's period: "2024" -> "2024-01-01", "2024-08" -> "2024-08-01"; a full
    date as is; None for None or anything else. For what needs a day (sorting, feeds, APIs)."""
    if not iso or not isinstance(iso, str):
        return None
    if len(iso) == 4 and iso.isdigit():
        return f"{iso}-01-01"
    if len(iso) == 7 and iso[:4].isdigit() and iso[4] == "-" and iso[5:].isdigit():
        return f"{iso}-01"
    return iso if len(iso) == 10 else None


def whole_number(value: object) -> int | None:
    """A small non-negative whole number from an int or ASCII digits ("12"), else None.

    Not ``int(x)`` on ``x.isdigit()``: that is true for "²" and "３" (ValueError, or a second
    spelling of a number), and a 20-digit number overflows ``date()``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 10**9 else None
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        return int(value.strip())
    return None


def sane_date(iso: str | None) -> str | None:
    """``iso`` (YYYY-MM-DD, or YYYY-MM / YYYY for a partial date) if it is a real date from
    MIN_DATE to today + MAX_FUTURE (a partial one: its first day), else None."""
    if not iso or not isinstance(iso, str) or not iso.isascii():
        return None
    start = iso if len(iso) == 10 else date_start(iso)
    try:
        day = date.fromisoformat(start) if start else None
    except ValueError:
        return None
    if day is None or not MIN_DATE <= day <= date.today() + MAX_FUTURE:
        return None
    return iso if len(iso) < 10 else day.isoformat()


def date_from_parts(parts: list[int] | None) -> str | None:
    """CSL-JSON ``date-parts`` entry ([2024, 1, 5], [2024, 1], [2024]) to an ISO date as precise as given."""
    if not parts or not isinstance(parts, (list, tuple)):
        return None
    nums = [whole_number(v) for v in list(parts)[:3]]
    if any(n is None for n in nums):
        return None
    if len(nums) < 3:
        return _partial(*nums)  # type: ignore[arg-type]
    try:
        return date(*nums).isoformat()  # type: ignore[arg-type]
    except (ValueError, OverflowError):
        return None


def arxiv_links(arxiv_id: str) -> dict[str, str]:
    """Canonical abstract and PDF links for an arXiv id."""
    return {"abs": f"https://arxiv.org/abs/{arxiv_id}", "pdf": f"https://arxiv.org/pdf/{arxiv_id}"}


def strip_invalid(text: str) -> str:
    """``text`` without control, invisible and XML-invalid characters (whitespace kept as is)."""
    return text if text.isprintable() else _CONTROL.sub("", text)


def _clean_json(value: Any) -> Any:
    """Strings anywhere in a JSON-like value stripped of invalid characters."""
    if isinstance(value, str):
        return strip_invalid(value)
    if isinstance(value, list):
        return [_clean_json(v) for v in value]
    if isinstance(value, dict):
        return {strip_invalid(str(k)): _clean_json(v) for k, v in value.items()}
    return value


_OPTIONAL_TEXT = ("source_id", "arxiv_id", "doi", "primary_category", "submitted", "updated", "comments",
                  "journal_ref")


def _type_error(rec: PaperRecord) -> str | None:
    """Why a field of ``rec`` has the wrong Python type (a source bug or hostile input), or None."""
    if not isinstance(rec.source, str) or not rec.source:
        return "record without a source name"
    for name in ("title", "abstract"):
        if not isinstance(getattr(rec, name), str):
            return f"{name} is not text"
    for name in _OPTIONAL_TEXT:
        if getattr(rec, name) is not None and not isinstance(getattr(rec, name), str):
            return f"{name} is not text"
    for name in ("authors", "categories"):
        value = getattr(rec, name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"{name} is not a list of texts"
    if rec.arxiv_version is not None and (not isinstance(rec.arxiv_version, int)
                                          or not 1 <= rec.arxiv_version <= MAX_VERSION):
        return f"arxiv_version is not a whole number from 1 to {MAX_VERSION}"
    if not isinstance(rec.versions, dict) or not all(
            isinstance(k, int) and 1 <= k <= MAX_VERSION and (v is None or isinstance(v, str))
            for k, v in rec.versions.items()):
        return "versions is not a map of version number to date"
    if not isinstance(rec.links, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in rec.links.items()):
        return "links is not a map of texts"
    if not isinstance(rec.extra, dict):
        return "extra is not a map"
    return None


def _too_long(rec: PaperRecord, factor: int = 1) -> str | None:
    """Which field of ``rec`` is past its limit (``factor`` times it, before clean-up), or None."""
    for name, value, limit in (("title", rec.title, MAX_TITLE), ("abstract", rec.abstract, MAX_ABSTRACT),
                               ("comments", rec.comments, MAX_NOTE), ("journal reference", rec.journal_ref, MAX_NOTE),
                               ("source id", rec.source_id, MAX_SHORT), ("DOI", rec.doi, MAX_SHORT)):
        if value and len(value) > factor * limit:
            return f"{name} too long ({len(value)} chars > {limit})"
    if len(rec.authors) > MAX_AUTHORS:
        return f"too many authors ({len(rec.authors)} > {MAX_AUTHORS})"
    if rec.authors and max(map(len, rec.authors)) > factor * MAX_AUTHOR_NAME:
        return f"author name too long (> {MAX_AUTHOR_NAME} chars)"
    if len(rec.categories) > MAX_CATEGORIES or len(rec.links) > MAX_CATEGORIES:
        return f"too many categories or links (> {MAX_CATEGORIES})"
    if max(map(len, (*rec.categories, *rec.links.values())), default=0) > factor * MAX_SHORT:
        return f"category or link too long (> {MAX_SHORT} chars)"
    return None


def check_record(rec: PaperRecord) -> str | None:
    """Clean a record in place and return why it is malformed, or None if it is fine.

    The one gate every record passes before the store, whatever its source: field types, lengths,
    and every text field stripped of control and XML-invalid characters.
    """
    if (why := _type_error(rec)) or (why := _too_long(rec, factor=4)):
        return why
    rec.title = clean_latex(rec.title)
    rec.abstract = clean_latex(rec.abstract)
    rec.authors = [a for a in map(clean_text, rec.authors) if a]
    rec.categories = [c for c in map(clean_text, rec.categories) if c]
    rec.primary_category = clean_text(rec.primary_category) or None
    rec.comments = clean_text(rec.comments) or None
    rec.journal_ref = clean_text(rec.journal_ref) or None
    if rec.source_id is not None:
        rec.source_id = strip_invalid(rec.source_id).strip() or None
    rec.links = {strip_invalid(k): strip_invalid(v).strip() for k, v in rec.links.items() if strip_invalid(v).strip()}
    try:
        rec.extra = _clean_json(rec.extra)
        extra_size = len(orjson.dumps(rec.extra, option=orjson.OPT_NON_STR_KEYS))
    except (TypeError, orjson.JSONEncodeError):
        return "extra is not JSON"
    if not rec.title and (rec.match_title or not rec.abstract):
        # Only a record keyed by its source id alone (a BEIR document) may be untitled, and only with
        # text: its title stays empty rather than repeating the text (issue 11); pages show Paper.title.
        return "missing title"
    if why := _too_long(rec):
        return why
    if extra_size > MAX_EXTRA_BYTES:
        return f"source data too large ({extra_size} bytes > {MAX_EXTRA_BYTES})"
    if rec.arxiv_id and not rec.links:
        rec.links = arxiv_links(rec.arxiv_id)
    if rec.arxiv_version and rec.arxiv_version not in rec.versions:
        rec.versions[rec.arxiv_version] = rec.updated
    if rec.versions and not rec.arxiv_version:
        rec.arxiv_version = max(rec.versions)
    if rec.doi:  # several DOIs ("10.1/a 10.2/b", Kaggle): the first is the DOI, the others links
        found = split_dois(strip_invalid(rec.doi))
        rec.doi = found[0] if found else None
        for n, doi in enumerate(found[1:MAX_DOIS], start=2):
            rec.links.setdefault(f"doi{n}", f"https://doi.org/{doi}")
    _sane_dates(rec)
    return None


def _sane_dates(rec: PaperRecord) -> None:
    """Dates out of range (see MIN_DATE) dropped, for every source in this one place; the record stays."""
    rec.submitted, rec.updated = sane_date(rec.submitted), sane_date(rec.updated)
    rec.versions = {k: sane_date(v) for k, v in rec.versions.items()}
