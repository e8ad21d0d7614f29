"""A reader's library as citations: BibTeX, CSL-JSON and RIS, the formats Zotero, JabRef, Mendeley and
EndNote import. One entry per saved paper, carrying every folder it is in (as keywords) and the reader's
rating (as a note), with citation keys that stay the same between exports (issue 12).

Texts are written so that they read back as they were: BibTeX through bibtexparser's writer with the
LaTeX specials escaped (math spans ``$...$`` kept as written, since stored titles keep math as LaTeX),
CSL-JSON as plain JSON, RIS through rispy with each value on one line. ``sources/bibtex.py`` and
``sources/csl_json.py`` read the first two back into the same papers (``tests/test_export.py``)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import BadRequest, NotFound
from ..models import Paper

if TYPE_CHECKING:
    from ..store import Store

FORMATS = ("bibtex", "csl-json", "ris")
MEDIA_TYPES = {"bibtex": "application/x-bibtex; charset=utf-8",
               "csl-json": "application/vnd.citationstyles.csl+json; charset=utf-8",
               "ris": "application/x-research-info-systems; charset=utf-8"}
EXTENSIONS = {"bibtex": "bib", "csl-json": "json", "ris": "ris"}
RATINGS = {"up": "rated up", "down": "rated down", "dismiss": "dismissed"}

# Words a citation key skips at the start of a title (Google Scholar's and Better BibTeX's habit).
_STOP = frozenset("a an the on of in for and to with at by from is are do does how what why when via "
                  "towards toward".split())
_SUFFIX = re.compile(r"(?:jr|sr|ii|iii|iv)\.?", re.IGNORECASE)
# A name that is an organisation is written as one literal name, not split into given and family.
_CORPORATE = re.compile(r"\b(?:collaboration|consortium|team|group|project|institute|laboratory|university|"
                        r"inc|ltd|corporation|committee|council|network|association|society|foundation|"
                        r"initiative|contributors)\b", re.IGNORECASE)
_AND = re.compile(r"\band\b", re.IGNORECASE)
_MATH = re.compile(r"\$[^$]+\$")
# A math span that could read or write files or redefine TeX when the .bib is typeset is escaped as
# text: uploaded metadata is anyone's ($\input{/etc/passwd}$, $\immediate\write18{...}$), and ^^5c
# spells a backslash to TeX.
_UNSAFE_TEX = re.compile(r"\\(?:(?:input|include|write|open|catcode|immediate|csname|special)[A-Za-z]*"
                         r"|(?:def|edef|gdef|xdef|let|read|newcommand|renewcommand|providecommand)(?![A-Za-z]))|\^\^")
_TEX = {"\\": r"\textbackslash{}", "$": r"\$", "&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_",
        "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


@dataclass
class Name:
    """A person's name split for citation formats (``literal``: an organisation or a name that must stay whole)."""

    given: str = ""
    family: str = ""
    suffix: str = ""
    literal: str = ""


@dataclass
class Entry:
    """One paper of a library export."""

    paper: Paper
    key: str
    folders: list[str] = field(default_factory=list)
    saved_at: str = ""
    rating: str | None = None


@dataclass
class Export:
    """An export's text, its media type and a file name for it."""

    text: str
    media_type: str
    filename: str
    count: int


# -- names, dates, keys ---------------------------------------------------------------------------

def split_name(name: str) -> Name:
    """"First von Last Jr." as given / family / suffix, by BibTeX's own rules (bibtexparser's
    ``splitname``: "Ludwig van Beethoven" -> family "van Beethoven"); an organisation, a single word
    or a name with a comma, "and" or braces stays one literal name."""
    from bibtexparser.customization import InvalidName, splitname

    name = " ".join(name.split())
    if not name or _CORPORATE.search(name) or _AND.search(name) or any(c in name for c in ",{}\\"):
        return Name(literal=name)
    words = name.split(" ")
    suffix = ""
    if len(words) > 2 and _SUFFIX.fullmatch(words[-1]):
        suffix, words = words[-1], words[:-1]
    try:
        parts = splitname(" ".join(words))
    except InvalidName:
        return Name(literal=name)
    family = " ".join(parts["von"] + parts["last"])
    if not parts["first"]:
        return Name(literal=name) if not suffix else Name(family=family, suffix=suffix)
    return Name(given=" ".join(parts["first"]), family=family, suffix=suffix)


def date_parts(iso: str | None) -> list[int]:
    """[year], [year, month] or [year, month, day] of an ISO date, partial dates included."""
    m = re.fullmatch(r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?", (iso or "")[:10])
    return [int(g) for g in m.groups() if g] if m else []


def _ascii(text: str) -> str:
    """Lower-case ASCII letters and digits only (accents dropped), for citation keys."""
    folded = unicodedata.normalize("NFKD", text.replace("ß", "ss").replace("ø", "o").replace("ł", "l"))
    return re.sub(r"[^a-z0-9]", "", folded.encode("ascii", "ignore").decode().lower())


def base_key(paper: Paper) -> str:
    """firstauthorYEARfirstword, e.g. ``vaswani2017attention``."""
    first = split_name(paper.authors[0]) if paper.authors else Name()
    family = first.family.split(" ")[-1] if first.family else first.literal.split(" ")[0] if first.literal else ""
    words = [w for w in (_ascii(w) for w in re.split(r"[\s\-/:]+", _MATH.sub(" ", paper.title))) if w]
    word = next((w for w in words if w not in _STOP), words[0] if words else "")
    parts = date_parts(paper.submitted)
    key = f"{_ascii(family) or 'anon'}{parts[0] if parts else ''}{word[:20]}"
    return key[:60]


def citation_keys(papers: list[tuple[Paper, str]]) -> dict[int, str]:
    """A unique key per paper: the base key, then ``a``, ``b``, ... for later papers with the same
    one, in the order the reader first saved them (so an export's keys do not change as the library
    grows). ``papers``: (paper, first saved) pairs."""
    taken: set[str] = set()
    out: dict[int, str] = {}
    for paper, _ in sorted(papers, key=lambda ps: (ps[1], ps[0].canonical_id)):
        base = base_key(paper)
        key, n = base, 0
        while key in taken:
            key = f"{base}{_letters(n)}"
            n += 1
        taken.add(key)
        out[paper.id] = key
    return out


def _letters(n: int) -> str:
    """a, b, ..., z, aa, ab, ...: the n-th suffix (from 0)."""
    out = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(97 + r) + out
    return out


# -- the library ----------------------------------------------------------------------------------

def library_entries(store: Store, user_id: int, folder: str | None = None) -> list[Entry]:
    """A reader's saved papers, one entry each, by citation key; keys are computed over the whole
    library, so a folder's export uses the same keys as the full one. NotFound for an unknown folder."""
    saves = store.saves(user_id)
    if folder and not any(s["folder"] == folder for s in saves):
        raise NotFound(f"no folder {folder[:80]!r} in this library")
    folders: dict[int, list[str]] = {}
    first: dict[int, str] = {}
    for s in saves:
        folders.setdefault(s["paper_id"], []).append(s["folder"])
        first[s["paper_id"]] = min(first.get(s["paper_id"], s["created_at"]), s["created_at"])
    papers = store.get_papers(list(folders))
    keys = citation_keys([(p, first[i]) for i, p in papers.items()])
    ratings = store.feedback(user_id)
    entries = [Entry(p, keys[i], sorted(set(folders[i])), first[i], ratings.get(i)) for i, p in papers.items()
               if not folder or folder in folders[i]]
    return sorted(entries, key=lambda e: e.key)


def _arxiv_url(paper: Paper) -> str | None:
    return f"https://arxiv.org/abs/{paper.arxiv_id}" if paper.arxiv_id else None


def _url(paper: Paper) -> str | None:
    return _arxiv_url(paper) or paper.links.get("url") or (f"https://doi.org/{paper.doi}" if paper.doi else None)


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _note(e: Entry) -> str:
    parts = [f"paperboy folders: {', '.join(e.folders)}"] if e.folders else []
    if e.rating:
        parts.append(f"paperboy rating: {RATINGS.get(e.rating, e.rating)}")
    return "; ".join(parts)


# -- BibTeX ---------------------------------------------------------------------------------------

def _paired(text: str) -> set[int]:
    """Offsets of the braces in ``text`` that pair up; a lone one must be written as a macro, or
    BibTeX (which counts ``\\{`` too) would see an unbalanced field."""
    stack, paired = [], set()
    for i, ch in enumerate(text):
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            paired.update((stack.pop(), i))
    return paired


def _escape(text: str, protect: bool) -> str:
    """Plain text as LaTeX: specials escaped, unicode kept (BibTeX files are UTF-8); ``protect``:
    words with capitals after their first letter (BERT, GPT-4, LaTeX) in braces, so styles that
    lower-case titles keep them."""
    paired = _paired(text)
    out = []
    for i, ch in enumerate(text):
        if ch in "{}":
            out.append(("\\" + ch) if i in paired else r"\textbraceleft{}" if ch == "{" else r"\textbraceright{}")
        else:
            out.append(_TEX.get(ch, ch))
    if not protect:
        return "".join(out)
    words = re.split(r"(\s+)", "".join(out))
    return "".join(f"{{{w}}}" if not w.isspace() and any(c.isupper() for c in re.sub(r"\\[a-z]+", "", w)[1:])
                   else w for w in words)


def tex(text: str | None, protect: bool = False) -> str:
    """A field's text for BibTeX: math spans (``$...$`` with balanced braces, no file or definition
    commands) as written, the rest escaped."""
    text = _one_line(text)
    out, last = [], 0
    for m in _MATH.finditer(text):
        inner = m.group(0)[1:-1]
        if len(_paired(inner)) != inner.count("{") + inner.count("}") or inner.endswith("\\") \
                or _UNSAFE_TEX.search(inner):
            continue  # not a math span LaTeX would read back as written, or one that runs file or
            # definition commands: escaped as text
        out += [_escape(text[last:m.start()], protect), m.group(0)]
        last = m.end()
    out.append(_escape(text[last:], protect))
    return "".join(out)


def _bib_name(name: str) -> str:
    n = split_name(name)
    if n.literal:
        return "{" + tex(n.literal) + "}"
    return ", ".join(tex(p) for p in (n.family, n.suffix, n.given) if p)


def _verbatim(text: str | None) -> str:
    """A URL or identifier: written as is (the url package reads it verbatim), braces and spaces out."""
    return re.sub(r"[{}\s]", "", text or "")


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def bibtex_entry(e: Entry) -> dict[str, Any]:
    """The bibtexparser entry (field -> BibTeX value text; the month as BibTeX's macro) of one paper."""
    from bibtexparser.bibdatabase import BibDataString

    p = e.paper
    out = {"ENTRYTYPE": "article" if p.journal_ref else "misc", "ID": e.key, "title": tex(p.title, protect=True)}
    if p.authors:
        out["author"] = " and ".join(_bib_name(a) for a in p.authors)
    parts = date_parts(p.submitted)
    if parts:
        out["year"] = str(parts[0])
    if len(parts) > 1 and 1 <= parts[1] <= 12:
        out["month"] = BibDataString(None, _MONTHS[parts[1] - 1])  # month = aug, as styles expect
    if len(parts) > 2:
        out["date"] = p.submitted[:10]  # type: ignore[index]
    if p.journal_ref:
        out["journal"] = tex(p.journal_ref)
    if p.arxiv_id:
        out |= {"eprint": p.arxiv_id, "archivePrefix": "arXiv"}
        if p.primary_category:
            out["primaryClass"] = _verbatim(p.primary_category)
    if p.doi:
        out["doi"] = _verbatim(p.doi)
    if url := _url(p):
        out["url"] = _verbatim(url)
    if p.abstract:
        out["abstract"] = tex(p.abstract)
    if e.folders:
        out["keywords"] = tex(", ".join(e.folders))
    if e.rating:
        out["annote"] = tex(_note(e))
    return out


def to_bibtex(entries: list[Entry]) -> str:
    from bibtexparser.bibdatabase import BibDatabase
    from bibtexparser.bwriter import BibTexWriter

    db = BibDatabase()
    db.entries = [bibtex_entry(e) for e in entries]
    writer = BibTexWriter()
    writer.indent = "  "
    writer.order_entries_by = None  # already by key
    writer.display_order = ["title", "author", "year", "month", "date", "journal", "eprint", "archivePrefix",
                            "primaryClass", "doi", "url", "abstract", "keywords", "annote"]
    return writer.write(db)


# -- CSL-JSON -------------------------------------------------------------------------------------

def _csl_name(name: str) -> dict[str, str]:
    n = split_name(name)
    if n.literal:
        return {"literal": n.literal}
    out = {"family": n.family, "given": n.given}
    if n.suffix:
        out["suffix"] = n.suffix
    return {k: v for k, v in out.items() if v}


def csl_item(e: Entry) -> dict[str, Any]:
    """One CSL-JSON item (what Zotero's CSL JSON import reads)."""
    p = e.paper
    item: dict[str, Any] = {"id": e.key, "citation-key": e.key,
                            "type": "article-journal" if p.journal_ref else "article", "title": p.title}
    if p.authors:
        item["author"] = [_csl_name(a) for a in p.authors]
    if parts := date_parts(p.submitted):
        item["issued"] = {"date-parts": [parts]}
    if p.journal_ref:
        item["container-title"] = p.journal_ref
    if p.arxiv_id:
        item |= {"number": f"arXiv:{p.arxiv_id}", "archive": "arXiv", "publisher": "arXiv"}
    if p.doi:
        item["DOI"] = p.doi
    if url := _url(p):
        item["URL"] = url
    if p.abstract:
        item["abstract"] = p.abstract
    if p.categories:
        item["categories"] = list(p.categories)  # not CSL; paperboy's importer reads it, Zotero ignores it
    if e.folders:
        item["keyword"] = ", ".join(e.folders)
    if note := _note(e):
        item["note"] = note
    return item


def to_csl_json(entries: list[Entry]) -> str:
    return orjson.dumps([csl_item(e) for e in entries], option=orjson.OPT_INDENT_2).decode() + "\n"


# -- RIS ------------------------------------------------------------------------------------------

def _ris_name(name: str) -> str:
    n = split_name(name)
    return _one_line(n.literal) if n.literal else ", ".join(_one_line(x) for x in (n.family, n.given, n.suffix) if x)


def ris_entry(e: Entry) -> dict[str, Any]:
    """One rispy entry: TY JOUR (published) or ELEC (a preprint), TI, AU, PY/DA, DO, UR, AB, KW, N1."""
    p = e.paper
    out: dict[str, Any] = {"type_of_reference": "JOUR" if p.journal_ref else "ELEC", "id": e.key,
                           "title": _one_line(p.title)}
    if p.authors:
        out["authors"] = [_ris_name(a) for a in p.authors]
    if parts := date_parts(p.submitted):
        out["year"] = str(parts[0])
        out["date"] = "/".join(f"{x:02d}" if i else str(x) for i, x in enumerate(parts))
    if p.journal_ref:
        out["journal_name"] = _one_line(p.journal_ref)
    if p.arxiv_id:
        out |= {"name_of_database": "arXiv", "accession_number": p.arxiv_id}
    if p.doi:
        out["doi"] = _one_line(p.doi)
    if url := _url(p):
        out["urls"] = [_one_line(url)]
    if p.abstract:
        out["abstract"] = _one_line(p.abstract)
    if e.folders:
        out["keywords"] = [_one_line(f) for f in e.folders]
    if e.rating:
        out["notes"] = [f"paperboy rating: {RATINGS.get(e.rating, e.rating)}"]
    return out


def to_ris(entries: list[Entry]) -> str:
    import rispy
    from rispy.writer import RisWriter

    class Writer(RisWriter):
        def set_header(self, count: int) -> str:
            return ""  # rispy numbers references ("1."); RIS has no such line

    return rispy.dumps([ris_entry(e) for e in entries], implementation=Writer) if entries else ""


# -- one call for the front ends ------------------------------------------------------------------

WRITERS = {"bibtex": to_bibtex, "csl-json": to_csl_json, "ris": to_ris}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", unicodedata.normalize("NFKD", text)).strip("-.")[:60]


def export_library(store: Store, user_id: int, fmt: str = "bibtex", folder: str | None = None,
                   name: str = "") -> Export:
    """A reader's library (or one folder of it) in ``fmt``, with the media type and a file name
    (``paperboy-NAME[-FOLDER].bib``) front ends serve it under."""
    if fmt not in WRITERS:
        raise BadRequest(f"unknown export format {fmt[:40]!r}; formats: {', '.join(FORMATS)}")
    entries = library_entries(store, user_id, folder or None)
    stem = "-".join(s for s in ("paperboy", _slug(name), _slug(folder or "")) if s)
    return Export(WRITERS[fmt](entries), MEDIA_TYPES[fmt], f"{stem}.{EXTENSIONS[fmt]}", len(entries))
