"""What paperboy can say about a paper beyond its record, from the record alone: keywords, code and
project links, linked Hugging Face repositories and withdrawal (``meta``), an SVG title card
(``thumbnail_svg``) and the paper as Markdown (``markdown``). Pure functions of the text, no I/O:
the HF-compatible API, the pages and the MCP server share them.

Keywords (``keywords``) are candidate phrases scored RAKE-style (Rose et al. 2010, "Automatic
keyword extraction from individual documents"): title and abstract are cut into phrases of at most
four words at punctuation, numbers, adverbs and stop words (English function words, the filler of
abstracts such as "propose", "results", "novel", and common verbs in all their forms); each word
scores deg/freq (how many words share its phrases, over how often it occurs), a phrase the sum of
its words times the square root of how often it occurs, plus one per word that recurs, x1.5 when it
is all in the title and x1.2 for a name such as "LARP" or "FlowVid". A single word must be a name or
in the title. The best ``k`` are kept, skipping a phrase whose words (plural or not) an earlier one
already has. Deterministic, no model and no corpus statistics, about 1 ms per abstract.

Links (``links``) are the URLs in the abstract and the arXiv comments (``\\url{}``, ``\\href{}``,
broken ``https: //``, bare ``x.github.io`` and ``github.com/...`` included; trailing punctuation and
unbalanced brackets cut): the first GitHub/GitLab/Bitbucket/Codeberg/Gitee (or anonymized 4open.science) URL is the code
repository;
huggingface.co/hf.co URLs name models, datasets and Spaces; of the rest (no video, drive, arXiv, DOI
or social links), the first one a cue such as "project page" or "website" introduces, else the first
github.io or Google Sites page, else the first other one, is the project page.

Withdrawal (``withdrawn``): arXiv marks a withdrawn paper by a notice in its comments or in place of
its abstract ("This paper has been withdrawn by the author..."); it matched 181 of the 183 quant-ph
abstracts that mention a withdrawal, the other two only talk about an earlier paper.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

from ..models import Paper
from ..normalize import strip_invalid

# -- keywords ---------------------------------------------------------------------------------

_FUNCTION = """a about above across after again against all almost along already also although always am among an
and another any anyone anything are around as at be became because become becomes been before being below between
beyond both but by can cannot could did do does doing done down due during each either else enough especially etc
even ever every few for from further had has have having he her here hers herself him himself his how however i if in
into is it its itself just least less like many may me might more most much must my myself neither no nor not now of
off often on once one only onto or other others otherwise our ours ourselves out over own per perhaps quite rather
same several she should since so some such than that the their theirs them themselves then there therefore these
they this those though through throughout thus to together too toward towards under unless until up upon us very
via was we well were what whatever when where whereas whether which while who whom whose why will with within
without would yet you your yours yourself e.g i.e vs versus et al"""
# Words of abstracts that say how a paper talks, not what it is about.
_FILLER = """able achieve achieved achieves achieving across address addresses addressing allow allows apply applied
approach approaches based certain substantial become benefit best better beyond bring brings call called can challenge challenging
challenges clearly compared comparable comprehensive consider considered consistently contrary conventional crucial
current currently demonstrate demonstrated demonstrates demonstrating describe described design designed despite
develop developed different difficult directly easily effective effectively efficient efficiently enable enables
enabling enhance enhanced enhances enhancing ensure especially evaluate evaluated existing experiment experiments
experimental explore extensive extensively facilitate facilitating finally find finding findings first focus
furthermore given good great help helps higher highly however impressive improve improved improves improving
include included includes including incorporate increasing instead introduce introduced introduces introducing
investigate investigated key knowledge largely lead leading leads leverage leverages leveraging limited make
makes making manner method methods moreover namely new notably novel obtain obtained offer offers order outperform
outperforming outperforms overall paper particular particularly perform performance performs plays pose poses
possible potential present presented presents previous prior problem problems promising propose proposed proposes
proposing provide provided provides providing publicly recent recently reduce reduced remarkable remains report
require requires requiring research result results reveal reveals robust seamlessly second several show showing
shown shows significant significantly simple simply specifically state-of-the-art strong study studies
substantially successfully suggest superior surpass surpasses task tasks three two typically understand understanding
unique use used uses using utilize utilizing various way ways wide widely work works yields available code codes
project page website released release open-source github http https url www com"""
# Verbs abstracts use, in every form ("utilize": utilize, utilizes, utilized, utilizing); not those
# whose noun is a keyword of its own (model, search, control, transfer...).
_VERBS = """accelerate accomplish adapt adopt aim align alleviate allow analyze annotate apply assess assist attain augment
calculate customize deal inherit replicate simulate undergo update
avoid boost bridge build capture choose combine compare compose comprise conduct confirm consist construct contain
contribute convert craft create deliver demonstrate depend derive detect determine devise discover distill employ
encode encompass encourage enforce equip establish examine exceed exhibit exist expand exploit extend extract fail
fall feature fill fine-tune follow foster gain gather generalize generate grow handle harness hinder identify
illustrate impose incorporate increase inject inspire integrate involve keep lack learn let lie maintain manage
measure mitigate motivate need observe operate outline outperform overcome pave permit pretrain prevent process
produce promote prompt prove push reach realize receive reconstruct reduce refer refine reflect rely remain render
replace represent reproduce resolve restrict retain reveal scale seek select serve solve spark specify spend
struggle suffer suit supply support surpass sustain synthesize tackle tailor take target tend train transform treat
unify unlock utilize validate verify yield"""


def _forms(verb: str) -> list[str]:
    stem = verb[:-1] if verb.endswith("e") else verb
    s = verb + ("es" if verb.endswith(("s", "sh", "ch", "x", "o")) else "s")
    past = verb + "d" if verb.endswith("e") else (verb[:-1] + "ied" if verb.endswith("y") else verb + "ed")
    third = verb[:-1] + "ies" if verb.endswith("y") and verb[-2] not in "aeiou" else s
    return [verb, third, past, stem + "ing"]


_STOP = frozenset((_FUNCTION + " " + _FILLER).split() + [f for v in _VERBS.split() for f in _forms(v)])
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:['’\-+][A-Za-z0-9]+)*\+*|\S")
_STRIP = re.compile(r"(?:https?:\s?//|www\.)\S+|\$[^$]*\$|\\[a-zA-Z]+")  # URLs, inline math, LaTeX commands
MAX_WORDS = 4


def _is_name(word: str) -> bool:
    """An acronym or a coined name (LARP, FlowVid, GPT-4, V2V, 3D): a capital past the first letter
    of a part ("Low-Cost" is a title's capitals, not a name)."""
    return any(any(c.isupper() for c in part[1:]) for part in re.split(r"[-'’+]", word))


def _phrases(text: str) -> list[list[str]]:
    """Runs of content words, cut at punctuation, numbers and stop words."""
    out: list[list[str]] = []
    run: list[str] = []
    for tok in _TOKEN.findall(_STRIP.sub(" . ", text)):
        low = tok.lower()
        if (not tok[0].isalnum() or low in _STOP or not any(c.isalpha() for c in tok)
                or (len(tok) < 3 and not _is_name(tok)) or (tok[0].isdigit() and len(tok) > 3)
                or re.fullmatch(r"\d+x", low) or (low.endswith("ly") and len(low) > 4)):
            if run:
                out.append(run)
            run = []
        else:
            run.append(tok)
    if run:
        out.append(run)
    # Participles at the edges are verbs more often than names: "(imitating) mobile manipulation",
    # "neural radiance field (trained)".
    for run in out:
        while len(run) > 1 and run[-1].lower().endswith("ed"):
            run.pop()
        while len(run) > 2 and run[0].lower().endswith("ing"):
            run.pop(0)
    # A run longer than a keyword (a list of names, a sentence without stop words) gives its pairs.
    return [r for run in out for r in ([run] if len(run) <= MAX_WORDS else
                                      [run[i:i + 2] for i in range(len(run) - 1)])]


def _show(words: list[str]) -> str:
    return " ".join(w if _is_name(w) else w.lower() for w in words)


def _stem(word: str) -> str:
    w = word.lower()
    return w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w


def keywords(title: str, abstract: str, k: int = 10) -> list[str]:
    """The ``k`` best key phrases of a paper (see the module docstring for how they are scored)."""
    title_phrases = _phrases(title)
    phrases = title_phrases + _phrases(abstract)
    freq: dict[str, int] = {}
    degree: dict[str, int] = {}
    for p in phrases:
        for w in p:
            freq[_stem(w)] = freq.get(_stem(w), 0) + 1
            degree[_stem(w)] = degree.get(_stem(w), 0) + len(p)
    in_title = {_stem(w) for p in title_phrases for w in p}
    count: dict[str, int] = {}
    for p in phrases:
        key = " ".join(_stem(w) for w in p)
        count[key] = count.get(key, 0) + 1
    scored: dict[str, tuple[float, int, list[str]]] = {}
    for order, p in enumerate(phrases):
        key = " ".join(_stem(w) for w in p)
        if key in scored:
            continue
        stems = [_stem(w) for w in p]
        if len(p) == 1 and not (_is_name(p[0]) or stems[0] in in_title):
            continue
        score = sum(degree[s] / freq[s] for s in stems) * count[key] ** 0.5 + sum(freq[s] > 1 for s in stems)
        score *= 1.5 if all(s in in_title for s in stems) else 1.0
        score *= 1.2 if any(_is_name(w) for w in p) else 1.0
        scored[key] = (score, order, p)
    out: list[str] = []
    taken: list[set[str]] = []
    for _, _, p in sorted(scored.values(), key=lambda x: (-x[0], x[1])):
        stems = {_stem(w) for w in p}
        if any(stems <= t for t in taken):
            continue
        taken.append(stems)
        out.append(_show(p))
        if len(out) == k:
            break
    return out


# -- links ------------------------------------------------------------------------------------

_URLISH = r"[^\s<>\"'{}\\|^`]"
_URL = re.compile(rf"(?:https?:\s?//|www\.){_URLISH}+"
                  rf"|\b(?:[a-z0-9-]+\.)+github\.io(?:/{_URLISH}*)?"
                  rf"|\b(?:github|gitlab)\.com/{_URLISH}+", re.I)
CODE_HOSTS = ("github.com", "gitlab.com", "bitbucket.org", "codeberg.org", "gitee.com", "anonymous.4open.science")
HF_HOSTS = ("huggingface.co", "hf.co")
_HF_RESERVED = {"papers", "docs", "blog", "collections", "learn", "posts", "organizations", "settings", "join",
                "api", "chat", "tasks", "models", "spaces", "datasets"}
NOT_PAGES = ("arxiv.org", "doi.org", "dx.doi.org", "youtube.com", "youtu.be", "vimeo.com", "drive.google.com",
             "docs.google.com", "colab.research.google.com", "twitter.com", "x.com", "openreview.net",
             "paperswithcode.com", "creativecommons.org", "bit.ly")
_CUE = re.compile(r"(?:project|home|web|demo|landing)[\s-]*(?:page|site|website)|website|webpage|homepage|"
                  r"project\s*:|project\s+(?:is|at|can)", re.I)


def _clean_url(raw: str) -> str:
    url = re.sub(r"\s+", "", raw)
    while url and url[-1] in ".,;:!?*'\"":
        url = url[:-1]
    for open_, close in ("()", "[]"):
        while url.endswith(close) and url.count(close) > url.count(open_):
            url = url[:-1]
            url = url.rstrip(".,;:!?")
    if not re.match(r"https?://", url, re.I):
        url = "https://" + url
    return url


def _host(url: str) -> str:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
    return host[4:] if host.startswith("www.") else host


def _on(host: str, domains: tuple[str, ...]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


@dataclass(frozen=True, slots=True)
class Links:
    """Links found in a paper's text, in the order they appear."""

    github_repo: str | None = None
    project_page: str | None = None
    code: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    spaces: tuple[str, ...] = ()
    pages: tuple[str, ...] = ()


def links(*texts: str | None) -> Links:
    """Code, Hugging Face repositories and project pages in ``texts`` (abstract, comments)."""
    code: list[str] = []
    hub: dict[str, list[str]] = {"models": [], "datasets": [], "spaces": []}
    pages: list[tuple[int, int, str]] = []
    for text in texts:
        if not text:
            continue
        for m in _URL.finditer(text):
            url = _clean_url(m.group(0))
            host = _host(url)
            if not host or "." not in host:
                continue
            parts = [p for p in urlsplit(url).path.split("/") if p]
            if _on(host, CODE_HOSTS):
                if parts and url not in code:
                    code.append(url)
            elif host in HF_HOSTS:
                kind = parts[0] if parts and parts[0] in ("datasets", "spaces", "models") else "models"
                repo = parts[1:3] if parts and parts[0] in ("datasets", "spaces", "models") else parts[:2]
                if len(repo) == 2 and (kind != "models" or parts[0] not in _HF_RESERVED):
                    name = "/".join(repo)
                    if name not in hub[kind]:
                        hub[kind].append(name)
            elif not _on(host, NOT_PAGES):
                before = text[max(0, m.start() - 60):m.start()]
                cue = _CUE.search(before.split(".")[-1] if ". " in before else before)
                rank = 0 if cue else 1 if _on(host, ("github.io", "sites.google.com", "gitlab.io")) else 2
                if all(u != url for _, _, u in pages):
                    pages.append((rank, len(pages), url))
    repos = [u for u in code if len([p for p in urlsplit(u).path.split("/") if p]) >= 2] or code
    return Links(github_repo=repos[0] if repos else None, project_page=min(pages)[2] if pages else None,
                 code=tuple(code), models=tuple(hub["models"]), datasets=tuple(hub["datasets"]),
                 spaces=tuple(hub["spaces"]), pages=tuple(u for _, _, u in pages))


# -- withdrawal -------------------------------------------------------------------------------

_NOUN = r"(?:paper|article|manuscript|submission|preprint|e-?print|version|work|comment|note|letter)"
_WITHDRAWN = (
    re.compile(rf"^\W*(?:(?:this|the)\s+)?{_NOUN}?\s*(?:(?:is|has\s+been|was|have\s+been|had\s+been)\s+)?"
               r"(?:now\s+)?withdrawn?\b", re.I),
    re.compile(rf"\b(?:this|the)\s+(?:[\w-]+\s+){{0,3}}?{_NOUN}\s+(?:has|have|had|is|was|is\s+being)\s+"
               r"(?:been\s+)?(?:[\w-]+\s+)?withdraw(?:n|ed)?\b", re.I),
    re.compile(rf"\b(?:withdrawn\s+by\s+(?:the\s+)?(?:authors?|submitter|arxiv)|(?:we|authors?)\s+(?:have\s+)?"
               rf"withdr[ae]wn?\s+(?:this|our|the)\s+{_NOUN}|now\s+withdrawn)\b", re.I),
)


def is_withdrawal(text: str | None) -> bool:
    """Whether ``text`` (arXiv comments or abstract) is a withdrawal notice."""
    # every pattern needs "withdr": checked first, lists and recommendation filters call this per paper
    return bool(text) and "withdr" in text.lower() and any(p.search(text) for p in _WITHDRAWN)


def withdrawn(paper: Paper) -> str | None:
    """The date (ISO) of the latest version when arXiv's comments or abstract say the paper was
    withdrawn (the withdrawal is that version), else None."""
    if not (is_withdrawal(paper.comments) or is_withdrawal(paper.abstract)):
        return None
    dates = [d for d in paper.versions.values() if d]
    return max(dates) if dates else paper.updated or paper.submitted


# -- all of it --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaperMeta:
    keywords: list[str] = field(default_factory=list)
    links: Links = Links()
    withdrawn_at: str | None = None


@lru_cache(maxsize=4096)
def _meta(title: str, abstract: str, comments: str | None) -> tuple[tuple[str, ...], Links]:
    return tuple(keywords(title, abstract)), links(abstract, comments)


def meta(paper: Paper) -> PaperMeta:
    """Keywords, links and withdrawal of a paper (cached on its text)."""
    kw, found = _meta(paper.title, paper.abstract, paper.comments)
    return PaperMeta(list(kw), found, withdrawn(paper))


# -- thumbnail --------------------------------------------------------------------------------

W, H = 1200, 630


def _text(value: str | None) -> str:
    """Text fit for an XML text node: no control characters, one line, &, < and > escaped."""
    return escape(" ".join(strip_invalid(value or "").split()))


def _wrap(text: str, width: int, lines: int) -> list[str]:
    words, out, line = " ".join(text.split()).split(" "), [], ""
    for w in words:
        if len(w) > width:
            w = w[:width - 1] + "…"
        if line and len(line) + 1 + len(w) > width:
            out.append(line)
            line = w
        else:
            line = f"{line} {w}" if line else w
    if line:
        out.append(line)
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][:width - 1].rstrip() + "…"
    return out


def byline(authors: list[str], n: int = 3) -> str:
    """The first ``n`` authors, then "et al."."""
    return ", ".join(authors[:n]) + (" et al." if len(authors) > n else "")


def thumbnail_svg(paper: Paper, site: str = "paperboy") -> str:
    """A 1200x630 title card: title (up to 4 lines), first authors, date and category. Every value
    is escaped text, and the card has no script, link or external resource."""
    title = " ".join(strip_invalid(paper.title).split()) or "untitled"
    size, width = (60, 32) if len(title) <= 64 else (50, 40) if len(title) <= 120 else (42, 48)
    lines = _wrap(title, width, 4)
    tspans = "".join(f'<tspan x="80" dy="{0 if i == 0 else round(size * 1.2)}">{_text(t)}</tspan>'
                     for i, t in enumerate(lines))
    when = (paper.submitted or "")[:10]
    detail = " · ".join(x for x in (when, paper.primary_category or (paper.categories or [""])[0],
                                   f"arXiv:{paper.arxiv_id}" if paper.arxiv_id else "") if x)
    authors = _wrap(byline(paper.authors), 70, 1)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img">'
        f'<title>{_text(title)}</title>'
        f'<rect width="{W}" height="{H}" fill="#fdfcf8"/><rect width="16" height="{H}" fill="#b8410f"/>'
        f'<g font-family="Helvetica, Arial, sans-serif" fill="#1b1b1b">'
        f'<text x="80" y="{150 if len(lines) > 2 else 200}" font-size="{size}" font-weight="700">{tspans}</text>'
        f'<text x="80" y="500" font-size="30" fill="#444">{_text(authors[0] if authors else "")}</text>'
        f'<text x="80" y="560" font-size="26" fill="#777">{_text(detail)}</text>'
        f'<text x="{W - 60}" y="80" font-size="26" fill="#b8410f" text-anchor="end">{_text(site)}</text>'
        f'</g></svg>')


# -- markdown ---------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\<>\[\]`*_])")


def md_text(value: str | None, one_line: bool = False) -> str:
    """Plain text as Markdown that stays text: the characters that start HTML, links, code or
    emphasis are backslash-escaped (CommonMark), control characters dropped."""
    text = strip_invalid(value or "")
    text = " ".join(text.split()) if one_line else "\n".join(" ".join(x.split()) for x in text.splitlines())
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_url(url: str) -> str:
    return url if re.fullmatch(r"https?://[^\s<>()\[\]]+", url) else md_text(url, True)


def markdown(paper: Paper, info: PaperMeta, url: str | None = None, upvotes: int = 0,
             discussion: list[dict] | None = None) -> str:
    """The paper as Markdown: title, authors, dates, categories, links, keywords, abstract, the
    authors' comments and the discussion here."""
    rows = [("Authors", md_text(", ".join(paper.authors), True) or None),
            ("Published", (paper.submitted or "")[:10] or None),
            ("Updated", (paper.updated or "")[:10] if paper.updated and paper.updated != paper.submitted else None),
            ("Withdrawn", info.withdrawn_at[:10] if info.withdrawn_at else None),
            ("Categories", md_text(", ".join(paper.categories), True) or None),
            ("arXiv", f"[{paper.arxiv_id}](https://arxiv.org/abs/{paper.arxiv_id})" if paper.arxiv_id else None),
            ("DOI", f"[{md_text(paper.doi)}](https://doi.org/{quote(paper.doi, safe='/')})" if paper.doi else None),
            ("Journal", md_text(paper.journal_ref, True) or None),
            ("Code", _md_url(info.links.github_repo) if info.links.github_repo else None),
            ("Project page", _md_url(info.links.project_page) if info.links.project_page else None),
            ("Upvotes", str(upvotes)),
            ("Keywords", md_text(", ".join(info.keywords), True) or None),
            ("Page", url)]
    out = [f"# {md_text(paper.title, True)}", ""]
    out += [f"- **{name}:** {value}" for name, value in rows if value]
    out += ["", "## Abstract", "", md_text(paper.abstract) or "(no abstract)"]
    if paper.comments:
        out += ["", "## Comments", "", md_text(paper.comments)]
    if discussion:
        out += ["", "## Discussion", ""]
        out += [f"- **{md_text(str(c.get('user') or ''), True)}** ({md_text(str(c.get('created_at') or '')[:10])}): "
                f"{md_text(str(c.get('body') or ''), True)}" for c in discussion]
    return "\n".join(out) + "\n"
