"""Author names as keys: one key per way of writing a person's name, folded so that spelling
variants meet, and a rule for initials that never merges people on evidence of a surname alone.

``parse(name)`` folds case, accents (NFKD, combining marks dropped, then ø->o, ł->l, ß->ss ...),
punctuation, hyphen and space variants ("Jean-Pierre" = "Jean Pierre", "LeCun" = "Le Cun"),
"Last, First" order, particles kept with the surname ("van der Waals", "de la Cruz"; a particle
is taken only while a given name stays before it, so "Le Song" keeps "Le" as its given name),
suffixes (Jr., III) and affiliations in parentheses dropped. The key is ``given-surname`` with
each part's letters run together: "Yann LeCun", "yann lecun", "LeCun, Yann" and "Yann Le Cun" are
all ``yann-lecun``; "Y. LeCun" is ``y-lecun``, a key of its own. "et al.", "others" and names
with no letter are not authors (None); organisations ("The ATLAS Collaboration") key their words
and never take part in the initials rule.

Initials (``index/authors.py``, the only place that merges two keys): a name whose first given
name is an initial ("Y. LeCun", "J. M. Smith") is an *abbreviated* form. A full name of the same
surname is *compatible* with it when the abbreviation's initials are the start of the full name's
(one letter per given name and per part of a hyphenated one: "J. Smith" and "J. M. Smith" fit
"John Michael Smith", "Z.-H. Zhou" fits "Zhi-Hua Zhou"; "S. Kevin Zhou" does not fit "Siyuan Zhou",
nor "J. M. Smith" "John Smith") and every given name it spells out is among the full name's. On
one paper, the abbreviation is read as a compatible full name that is not itself on that paper when

1. exactly one compatible full name shares a co-author with that paper: the same co-author key,
   or a co-author's abbreviation that fits only one full name in the corpus ("L. Bottou" and
   "Léon Bottou" count; "J. Lee", where twenty J-something Lees are known, does not); or
2. no compatible full name shares one, and exactly one compatible full name is known at all.

Otherwise it stays its own key, whose page lists the full names it may stand for. So "J. Smith"
joins "John Smith" only while no other J-Smith is known or when the co-authors say so; "John Smith"
and "Jane Smith" never meet, as full names are only ever merged by spelling; and a full first name
with another middle name or initial ("John M. Smith", "John Smith") keeps its own key (the cost:
one person written both ways has two pages). A new paper can undo a merge: a second J-Smith makes
rule 2 ambiguous again, at once.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

MAX_NAME = 300  # longer is not a name (hostile or broken input): not an author
PARTICLES = frozenset({"van", "von", "der", "den", "de", "del", "della", "delle", "dei", "di", "da", "das", "dos",
                       "do", "du", "la", "le", "lo", "les", "ter", "ten", "te", "zu", "zur", "af", "av", "y", "bin",
                       "ibn", "al", "el", "st", "st.", "san", "santa"})
SUFFIXES = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv", "2nd", "3rd"})
ORG_WORDS = frozenset({"collaboration", "consortium", "team", "group", "project", "university", "institute",
                       "laboratory", "laboratories", "inc", "inc.", "ltd", "ltd.", "corporation", "corp", "corp.",
                       "company", "foundation", "society", "association", "organization", "organisation",
                       "committee", "council", "center", "centre", "network", "initiative", "alliance",
                       "department", "programme", "llc", "gmbh", "contributors", "authors", "members",
                       "observatory", "survey", "experiment"})
NOT_AUTHORS = re.compile(r"(?:and\s+)?(?:et\.?\s*al\.?|others|et\s+alii|etc\.?|anonymous|unknown|n/?a|none)",
                         re.IGNORECASE)
_ET_AL = re.compile(r"[\s,;]+(?:et\.?\s*al\.?|and\s+others)\s*$", re.IGNORECASE)
_PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
# Letters NFKD does not take apart (no combining mark to drop).
_FOLD = str.maketrans({"ø": "o", "Ø": "o", "ł": "l", "Ł": "l", "đ": "d", "Đ": "d", "ð": "d", "þ": "th",
                       "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ı": "i", "ß": "ss", "ħ": "h"})
_NOT_WORD = re.compile(r"[\W_]+")
_HYPHENS = re.compile(r"[-\u2010-\u2015]")


@dataclass(frozen=True, slots=True)
class Name:
    """A parsed author name: ``given`` folded given names (an initial is one letter), ``surname``
    folded (its particles run together), ``org`` for organisations and single names."""

    key: str
    given: tuple[str, ...]
    initials: tuple[bool, ...]  # per given name: written as an initial
    surname: str
    org: bool = False
    sig: str = ""  # the first letter of every given name and of each part of a hyphenated one

    @property
    def abbreviated(self) -> bool:
        """The first given name is an initial: the form the initials rule may read as a full name."""
        return bool(self.initials) and self.initials[0] and not self.org

    @property
    def block(self) -> str:
        """Surname and first initial: the names one person's abbreviations may stand for; co-authors
        are compared by it. Organisations and single names are their own block."""
        return f"{self.surname}|{self.given[0][0]}" if self.given and not self.org else self.key


def fold(text: str) -> str:
    """Lower-case letters and digits only: accents, punctuation, hyphens and spaces dropped."""
    if text.isascii():  # most names: no accent to take apart
        return _NOT_WORD.sub("", text.lower())
    text = unicodedata.normalize("NFKD", text.translate(_FOLD))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).translate(_FOLD)
    return _NOT_WORD.sub("", text.casefold())


def clean(name: object) -> str | None:
    """The name as written, tidied (NFKC, control characters out, one space); None when it is no
    author's name: not text, too long, empty, "et al." or without a letter."""
    if not isinstance(name, str) or len(name) > MAX_NAME:
        return None
    s = _SPACE.sub(" ", _CONTROL.sub(" ", unicodedata.normalize("NFKC", name))).strip()
    s = _SPACE.sub(" ", _ET_AL.sub("", _PARENS.sub(" ", s))).strip(" ,;:*†‡§¶0123456789")
    if not s or NOT_AUTHORS.fullmatch(s) or not any(ch.isalpha() for ch in s):
        return None
    return s


def _given(text: str, caps_initials: bool) -> tuple[list[str], list[bool], str]:
    """Folded given names, which are initials, and their signature (the first letter of every part):
    "J.-P." is two initials, "Jean-Pierre" one name, both of signature "jp"; "J.P." is two
    initials, "JP" too when the surname is not itself in capitals."""
    names: list[str] = []
    initials: list[bool] = []
    sig = ""
    for token in text.replace(".", ". ").split():
        raw = [p.strip(".") for p in _HYPHENS.split(token)]
        folded = [fold(p) for p in raw]
        raw, folded = [p for p, f in zip(raw, folded) if f], [f for f in folded if f]
        short = [len(f) == 1 or (caps_initials and 1 < len(p) <= 3 and p.isupper() and p.isalpha())
                 for p, f in zip(raw, folded)]
        if any(short):
            for p, f, sh in zip(raw, folded, short):
                if sh and len(f) > 1:  # "JP": one initial per letter
                    names += list(f)
                    initials += [True] * len(f)
                    sig += f
                else:
                    names.append(f)
                    initials.append(sh)
                    sig += f[0]
        elif folded:
            names.append("".join(folded))  # "Zhi-Hua" = "Zhihua"
            initials.append(False)
            sig += "".join(f[0] for f in folded)
    return names, initials, sig


def parse(name: object) -> Name | None:
    """The parsed name and its key (see the module docstring); None when it is no author's name."""
    if not isinstance(name, str):
        return None
    return _parse(name)


@lru_cache(maxsize=1 << 17)  # names repeat across papers: each is parsed once per process
def _parse(name: str) -> Name | None:
    s = clean(name)
    if s is None:
        return None
    tokens = s.replace(",", " ").split()
    if len(tokens) > 1 and any(t.casefold().strip(".,") in ORG_WORDS for t in tokens) or len(tokens) > 8 \
            or any(ch.isdigit() for ch in s):
        words = [w for w in (fold(t) for t in tokens) if w and w != "the"]
        return Name("-".join(words)[:200], (), (), "-".join(words)[:200], org=True) if words else None
    parts = [p.strip() for p in s.split(",") if p.strip()]
    parts = parts[:1] + [p for p in parts[1:] if p.casefold() not in SUFFIXES]
    if len(parts) >= 2:  # "Last, First" (a third part is an affiliation or a suffix)
        surname_text, given_text = parts[0], parts[1]
    else:
        words = parts[0].split()
        while len(words) > 1 and words[-1].casefold() in SUFFIXES:
            words.pop()
        i = len(words) - 1
        while i > 1 and words[i - 1].casefold() in PARTICLES:  # keep one given name before a particle
            i -= 1
        surname_text, given_text = " ".join(words[i:]), " ".join(words[:i])
    surname = fold(surname_text)
    if not surname:  # only initials after the comma, e.g. "A., B.": read as a single name
        surname, given_text = fold(s), ""
    given, initials, sig = _given(given_text, caps_initials=not surname_text.isupper())
    if not given:
        return Name(surname[:200], (), (), surname[:200])
    key = f"{''.join(given)}-{surname}"[:200]
    return Name(key, tuple(given), tuple(initials), surname, sig=sig)


def key_of(name: object) -> str | None:
    """The key of one way of writing a name (no initials rule: see ``index/authors.py``)."""
    n = parse(name)
    return n.key if n else None


def compatible(short: Name, full: Name) -> bool:
    """Whether the abbreviated ``short`` may stand for the full name ``full``: same surname, its
    initials the start of the full name's ("J. Smith" and "J. M. Smith" for "John Michael Smith",
    "Z.-H. Zhou" for "Zhi-Hua Zhou"; not "S. Kevin Zhou" for "Siyuan Zhou", nor "J. M. Smith" for
    "John Smith"), and every given name it spells out among the full name's."""
    if full.abbreviated or full.org or short.org or short.surname != full.surname or not full.given:
        return False
    if not short.sig or not full.sig.startswith(short.sig):
        return False
    words = set(full.given)
    return all(g in words for g, initial in zip(short.given, short.initials) if not initial)

