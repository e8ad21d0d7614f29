"""arXiv over OAI-PMH: ``ListRecords`` pages (metadataPrefix ``arXiv`` or ``oai_dc``), from files or
harvested live. HTTP, 503 + Retry-After and retries come from the Sickle client; pages are split
into records and each record is parsed on its own, so one bad record (a bad entity, say) is
reported and skipped instead of losing its page.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import requests
from lxml import etree
from sickle import Sickle

from ..errors import FormatError, SourceError
from ..models import BadRecord, PaperRecord
from ..normalize import (
    clean_text,
    normalize_doi,
    normalize_name,
    parse_arxiv_id,
    parse_date,
)
from .base import read_document

FORMAT = "oai-pmh"
DESCRIPTION = "arXiv OAI-PMH ListRecords response (metadataPrefix arXiv or oai_dc)"
OAI = "http://www.openarchives.org/OAI/2.0/"
NS = {"o": OAI, "a": "http://arxiv.org/OAI/arXiv/", "dc": "http://purl.org/dc/elements/1.1/"}
_RECORD = re.compile(rb"<record\b[^>]*>.*?</record>", re.DOTALL)
_TOKEN = re.compile(rb"<resumptionToken\b[^>]*>([^<]*)</resumptionToken>")
_END = b"</OAI-PMH>"
_ERROR = re.compile(rb'<error\b[^>]*code="([^"]+)"[^>]*>([^<]*)</error>')
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
_COMMENT = re.compile(rb"<!--.*?-->", re.DOTALL)
_DECL = re.compile(rb"""\A\s*<\?xml\b[^>]*?\bencoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]*)["']""")
_XMLNS = re.compile(rb"""\sxmlns(?::([A-Za-z_][\w.-]*))?\s*=\s*("[^"<]*"|'[^'<]*')""")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_TAIL = 1 << 16
MAX_RETRY_AFTER = 3600


@dataclass
class Page:
    items: list[PaperRecord | BadRecord] = field(default_factory=list)
    token: str | None = None
    error: tuple[str, str] | None = None
    truncated: bool = False  # the response broke off: its last item is a BadRecord saying so


def sniff(path: Path, head: str) -> bool:
    return "<OAI-PMH" in head


def _text(el: Any, path: str) -> str:
    return clean_text(" ".join(t for t in el.xpath(path + "//text()", namespaces=NS)))


def _from_arxiv(md: Any, oai_id: str) -> PaperRecord:
    """metadataPrefix=arXiv: id, created, updated, authors/author, title, categories, abstract..."""
    parsed = parse_arxiv_id(_text(md, "a:id") or oai_id)
    authors = []
    for a in md.xpath("a:authors/a:author", namespaces=NS):
        parts = [_text(a, "a:forenames"), _text(a, "a:keyname"), _text(a, "a:suffix")]
        authors.append(normalize_name(" ".join(p for p in parts if p)))
    cats = _text(md, "a:categories").split()
    created, updated = parse_date(_text(md, "a:created")), parse_date(_text(md, "a:updated"))
    return PaperRecord(
        source="arxiv-oai", source_id=parsed[0] if parsed else oai_id, title=_text(md, "a:title"),
        abstract=_text(md, "a:abstract"), authors=[a for a in authors if a],
        arxiv_id=parsed[0] if parsed else None, doi=normalize_doi(_text(md, "a:doi")),
        categories=cats, primary_category=cats[0] if cats else None,
        submitted=created, updated=updated or created, comments=_text(md, "a:comments") or None,
        journal_ref=_text(md, "a:journal-ref") or None, authoritative=True)


def _from_dc(md: Any, oai_id: str) -> PaperRecord:
    """metadataPrefix=oai_dc: dc:title, dc:creator ("Last, First"), dc:description, dc:date..."""
    parsed = parse_arxiv_id(oai_id)
    descriptions = [clean_text(d) for d in md.xpath("dc:description/text()", namespaces=NS)]
    comments = [d[len("Comment:"):].strip() for d in descriptions if d.startswith("Comment:")]
    abstract = " ".join(d for d in descriptions if not d.startswith("Comment:"))
    dates = sorted(filter(None, (parse_date(d) for d in md.xpath("dc:date/text()", namespaces=NS))))
    dois = [normalize_doi(i) for i in md.xpath("dc:identifier/text()", namespaces=NS) if "doi" in i.lower()]
    return PaperRecord(
        source="arxiv-oai", source_id=parsed[0] if parsed else oai_id, title=_text(md, "dc:title"),
        abstract=abstract, authors=[normalize_name(c) for c in md.xpath("dc:creator/text()", namespaces=NS)],
        arxiv_id=parsed[0] if parsed else None, doi=next((d for d in dois if d), None),
        versions={i + 1: d for i, d in enumerate(dates)} if parsed else {},
        submitted=dates[0] if dates else None, updated=dates[-1] if dates else None,
        comments=comments[0] if comments else None, authoritative=True)


def as_ascii_compatible(data: bytes) -> bytes:
    """A UTF-16 response (BOM) transcoded to UTF-8, so the byte-level splitting below can see its tags."""
    if data.startswith(_UTF16_BOMS):
        try:
            return data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as e:
            raise FormatError(f"OAI-PMH response declared UTF-16 but is not: {e}") from e
    return data


def _wrapper(data: bytes) -> bytes:
    """The start of the document each record is parsed in: the response's XML declaration (its
    encoding, e.g. ISO-8859-1) and every namespace declared above the first record (on the
    ``<OAI-PMH>`` root or ``<ListRecords>``), so a record means what it meant in the response."""
    decl = b""
    if (m := _DECL.match(data)) and m.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8", b"utf-16"):
        decl = b'<?xml version="1.0" encoding="' + m.group(1) + b'"?>'
    first = data.find(b"<record")
    spaces = {b"": b'"' + OAI.encode() + b'"'}
    for prefix, uri in _XMLNS.findall(data[:first if first >= 0 else 4096]):
        spaces[prefix] = uri
    attrs = b" ".join((b"xmlns:" + k if k else b"xmlns") + b"=" + v for k, v in spaces.items())
    return decl + b"<w " + attrs + b">"


def _content_end(data: bytes) -> int:
    """The length of ``data`` without trailing whitespace (read from the end, not copied whole)."""
    end = len(data)
    while end > 0:
        chunk = data[max(0, end - _TAIL):end]
        kept = len(chunk.rstrip())
        end -= len(chunk) - kept
        if kept:
            break
    return end


def parse_record(chunk: bytes, loc: str, wrapper: bytes | None = None) -> PaperRecord | BadRecord | None:
    """One ``<record>`` element (parsed inside ``wrapper``, see ``_wrapper``); None for a deleted record."""
    wrapper = wrapper or b'<w xmlns="' + OAI.encode() + b'">'
    try:
        root = etree.fromstring(wrapper + chunk + b"</w>", _PARSER)
    except etree.XMLSyntaxError as e:
        return BadRecord(loc, f"malformed XML: {e.msg}")
    except LookupError as e:  # an encoding the declaration names but no codec knows
        return BadRecord(loc, f"cannot decode the record: {e}")
    header = root.find("o:record/o:header", NS)
    if header is None:
        return BadRecord(loc, "record without header")
    if header.get("status") == "deleted":
        return None
    oai_id = _text(header, "o:identifier")
    arxiv = root.find("o:record/o:metadata/a:arXiv", NS)
    if arxiv is not None:
        return _from_arxiv(arxiv, oai_id)
    dc = root.find("o:record/o:metadata/{http://www.openarchives.org/OAI/2.0/oai_dc/}dc", NS)
    if dc is not None:
        return _from_dc(dc, oai_id)
    return BadRecord(loc, f"{oai_id}: no arXiv or oai_dc metadata")


def parse_page(data: bytes, label: str) -> Page:
    """Split a ListRecords response into parsed records, its resumptionToken and any OAI error."""
    page = Page()
    data = as_ascii_compatible(data)
    if b"<!--" in data:  # a <record> inside a comment is no record; newlines kept for line numbers
        data = _COMMENT.sub(lambda m: b"\n" * m.group().count(b"\n"), data)
    if err := _ERROR.search(data):
        page.error = (err.group(1).decode("utf-8", "replace"), clean_text(err.group(2).decode("utf-8", "replace")))
        return page
    line, pos, wrapper = 1, 0, _wrapper(data)
    for i, m in enumerate(_RECORD.finditer(data), start=1):
        line += data.count(b"\n", pos, m.start())
        pos = m.start()
        item = parse_record(m.group(0), f"{label}:{line} (record {i})", wrapper)
        if item is not None:
            page.items.append(item)
    if tok := _TOKEN.search(data):
        page.token = tok.group(1).decode("utf-8", "replace").strip() or None
    end = _content_end(data)
    if _END not in data[max(0, end - 1024):end]:  # the records after the break, and the resumptionToken, are gone
        page.truncated = True
        line += data.count(b"\n", pos)
        page.items.append(BadRecord(f"{label}:{line}", f"response is truncated (no closing </OAI-PMH>) after "
                                    f"{len(page.items)} complete records; the rest of the page was not read"))
    return page


def read(path: Path) -> Iterator[PaperRecord | BadRecord]:
    data, broken = read_document(path, "OAI-PMH")
    try:
        data = as_ascii_compatible(data)
    except FormatError as e:
        raise FormatError(f"{path}: {e}") from e
    if b"<OAI-PMH" not in data[:4096]:
        raise FormatError(f"{path} is not an OAI-PMH response (no <OAI-PMH> root element)")
    page = parse_page(data, str(path))
    if page.error and page.error[0] != "noRecordsMatch":
        raise FormatError(f"{path}: OAI-PMH error {page.error[0]}: {page.error[1]}")
    if broken and page.truncated:
        page.items[-1] = BadRecord(page.items[-1].location, broken)  # one report of the break, its real cause
    elif broken:
        page.items.append(BadRecord(f"{path}:end", broken))
    yield from page.items


class _Client(Sickle):
    """Sickle with a Retry-After that may also be an HTTP date, capped."""

    def get_retry_after(self, http_response: requests.Response) -> int:
        value = http_response.headers.get("retry-after", "")
        try:
            seconds = int(value)
        except ValueError:
            try:
                seconds = int(parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                seconds = self.default_retry_after
        return max(0, min(seconds, MAX_RETRY_AFTER))


def harvest(settings: dict[str, Any], params: dict[str, str]) -> Iterator[Page]:
    """Yield ListRecords pages. ``params``: set/from/until/metadataPrefix, or resumptionToken.

    Waits ``oai_delay`` seconds between pages; raises SourceError on HTTP or OAI errors
    (``badResumptionToken`` included, so a caller can restart from the date).
    """
    client = _Client(settings["oai_url"], max_retries=settings["oai_max_retries"],
                     default_retry_after=settings["oai_retry_after"], timeout=settings["http_timeout"],
                     headers={"User-Agent": settings["user_agent"]})
    params = dict(params)
    while True:
        try:
            data = client.harvest(verb="ListRecords", **params).http_response.content
        except requests.RequestException as e:
            raise SourceError(f"OAI-PMH request to {settings['oai_url']} failed: {e}") from e
        page = parse_page(data, f"{settings['oai_url']} {params}")
        if page.truncated:  # not ingested: the saved cursor still points at this page, so a rerun refetches it
            raise SourceError(f"OAI-PMH response from {settings['oai_url']} broke off (no closing </OAI-PMH>, "
                              f"{len(page.items) - 1} complete records); stopped before it, rerun to resume")
        if page.error:
            if page.error[0] == "noRecordsMatch":
                return
            raise SourceError(f"OAI-PMH error {page.error[0]}: {page.error[1]}")
        yield page
        if not page.token:
            return
        if page.token == params.get("resumptionToken"):
            raise SourceError(f"OAI-PMH server repeated resumptionToken {page.token!r}")
        time.sleep(settings["oai_delay"])
        params = {"resumptionToken": page.token}
