"""CSV (or semicolon- or tab-separated) tables with a header row, as arXiv scrapers export them.

The header names the columns (``index,title,tags,authors,abstract``; ``titles,summaries,terms``);
each field is read from the first of its usual column names (case-insensitive) or, with
``--map FIELD=COLUMN``, from that column only. List-valued cells may be Python lists
(``['cs.LG', 'cs.AI']``, read with ``ast.literal_eval``, which evaluates literals only), JSON lists,
or plain text ("A, B and C"; "cs.LG; cs.AI"). The delimiter is the one of ``,`` ``;`` tab that
makes the header name a title column. A row with more or fewer cells than the header, or with bytes
that are not UTF-8, is reported where it is (``FILE:LINE``) and skipped; the other rows are kept.
"""

from __future__ import annotations

import ast
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from ..errors import FormatError
from ..models import BadRecord, PaperRecord
from ..normalize import parse_arxiv_id, split_authors
from . import fields
from .base import MAX_LINE_BYTES, StreamError, _raw_lines, open_binary

FORMAT = "csv"
DESCRIPTION = "CSV/TSV with a header row (title, abstract, authors, tags, ...; list cells ['a', 'b']; --map)"
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "arxiv_id", "arxivid", "paper_id", "entry_id", "url", "link", "index"),
    "title": ("title", "titles", "paper_title"),
    "abstract": ("abstract", "abstracts", "summary", "summaries"),
    "authors": ("authors", "author", "creators"),
    "date": ("date", "published", "publication_date", "submitted", "created", "year", "update_date", "updated"),
    "updated": ("updated", "update_date", "last_updated"),
    "categories": ("categories", "category", "tags", "terms", "subjects"),
    "primary_category": ("primary_category", "primary category", "primarycategory"),
    "doi": ("doi",),
    "comments": ("comments", "comment"),
    "journal_ref": ("journal_ref", "journal-ref", "journalref", "journal"),
}
DELIMITERS = (",", ";", "\t")
MAX_LITERAL_CELL = 64 << 10  # literal_eval takes ~2 s on a 1 MiB cell: a longer Python list is refused
# The csv module refuses fields over 128 KiB by default; an abstract can be longer before clean-up,
# and a longer one is the record gate's to refuse with its reason ("abstract too long"), per row.
csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))


def _header(line: str) -> tuple[str, list[str]] | None:
    """(delimiter, column names) when ``line`` is a header naming a title column, else None."""
    for delim in DELIMITERS:
        try:
            cells = next(csv.reader([line], delimiter=delim))
        except (csv.Error, StopIteration):
            continue
        names = [c.strip().lower() for c in cells]
        if len(names) >= 2 and any(n in ALIASES["title"] for n in names):
            return delim, cells
    return None


def sniff(path: Path, head: str) -> bool:
    first = head.split("\n", 1)[0].rstrip("\r")
    return not first.lstrip().startswith(("{", "[", "<", "@")) and _header(first) is not None


def _columns(header: list[str], mapping: dict[str, Any]) -> dict[str, int]:
    """Field -> column index: a --map COLUMN (exact, then any case) or the first alias present."""
    exact = {name.strip(): i for i, name in reversed(list(enumerate(header)))}
    lower = {name.strip().lower(): i for i, name in reversed(list(enumerate(header)))}
    out: dict[str, int] = {}
    for field, aliases in ALIASES.items():
        if field in mapping:
            col = mapping[field][0]
            if col not in exact and col.lower() not in lower:
                raise FormatError(f"--map {field}={col}: no column {col!r}; the columns are {', '.join(header)}")
            out[field] = exact.get(col, lower.get(col.lower(), -1))
            continue
        for alias in aliases:
            if alias in lower:
                out[field] = lower[alias]
                break
    return out


def _list_cell(cell: str) -> list[str] | None:
    """A Python or JSON list of texts written in one cell, or None when the cell is not one."""
    text = cell.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    try:
        value = orjson.loads(text)  # fast at any length the line limit allows
    except orjson.JSONDecodeError:
        if len(text) > MAX_LITERAL_CELL:
            raise fields.FieldError(f"a list cell over {MAX_LITERAL_CELL >> 10} KiB must be a JSON list "
                                    f"(this one is {len(text) >> 10} KiB)") from None
        try:
            value = ast.literal_eval(text)  # literals only: never runs code
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise fields.FieldError("a list cell must hold texts only")


def _authors(cell: str) -> list[str]:
    listed = _list_cell(cell)
    return fields.names({"a": listed}, "a") if listed is not None else split_authors(cell)


def _terms(cell: str) -> list[str]:
    listed = _list_cell(cell)
    return listed if listed is not None else cell.replace(";", " ").replace(",", " ").split()


def parse(row: dict[str, str], loc: str, path: Path) -> PaperRecord:
    """One row (field -> cell text) to a record; FieldError for a list cell of the wrong shape."""
    raw_id = row.get("id", "").strip()
    parsed = parse_arxiv_id(raw_id)
    cats, primary = fields.with_primary(_terms(row.get("categories", "")), row.get("primary_category", ""))
    return PaperRecord(
        source=FORMAT, source_id=f"{path.name.split('.')[0]}:{raw_id}" if raw_id else None,
        title=row.get("title", ""), abstract=row.get("abstract", ""), authors=_authors(row.get("authors", "")),
        arxiv_id=parsed[0] if parsed else None, arxiv_version=parsed[1] if parsed else None,
        doi=" ".join(_list_cell(row.get("doi", "")) or [row.get("doi", "")]).strip() or None,
        categories=cats, primary_category=primary,
        submitted=fields.date(row, "date"), updated=fields.date(row, "updated"),
        comments=row.get("comments", "").strip() or None, journal_ref=row.get("journal_ref", "").strip() or None)


def _text_lines(path: Path, bad: dict[int, str]) -> Iterator[str]:
    """Decoded lines for the csv reader; a line that cannot be read is noted in ``bad`` (by line
    number) and stands in as an empty line, so the rows around it are still read."""
    with open_binary(path) as f:
        for lineno, (raw, err) in enumerate(_raw_lines(f), start=1):
            if raw is None:
                bad[lineno] = err or "unreadable line"
                if isinstance(err, StreamError):
                    return
                yield "\n"
                continue
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as e:
                bad[lineno] = f"invalid UTF-8 at byte {e.start}"
                yield "\n"


def read(path: Path, mapping: dict[str, Any] | None = None) -> Iterator[PaperRecord | BadRecord]:
    bad: dict[int, str] = {}
    lines = _text_lines(path, bad)
    first = next(lines, "")
    if 1 in bad:
        raise FormatError(f"{path} does not look like CSV: line 1: {bad[1]}")
    found = _header(first.rstrip("\r\n"))
    mapping = mapping or {}
    if found is None and mapping.get("title"):  # a --map title=COLUMN names the title column
        for delim in DELIMITERS:
            cells = next(csv.reader([first], delimiter=delim), [])
            if mapping["title"][0] in cells:
                found = delim, cells
                break
    if found is None:
        raise FormatError(f"{path} does not look like CSV with a header: its first line names no title "
                          f"column ({', '.join(ALIASES['title'])}); name one with --map title=COLUMN")
    delim, header = found
    cols = _columns(header, mapping)
    reader = csv.reader(lines, delimiter=delim, strict=False)
    line_after = 1  # lines read so far (the header)
    while True:
        start = line_after + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as e:  # e.g. a field past the size limit
            line_after = reader.line_num + 1
            yield BadRecord(f"{path}:{start}", f"cannot read row ({e})")
            continue
        line_after = reader.line_num + 1
        loc = f"{path}:{start}"
        broken = [bad[n] for n in range(start, line_after + 1) if n in bad]
        if any(isinstance(b, StreamError) for b in broken):
            yield BadRecord(loc, next(b for b in broken if isinstance(b, StreamError)))
            return
        if broken:
            yield BadRecord(loc, broken[0])
            continue
        if not any(c.strip() for c in cells):
            continue  # a blank line
        if len(cells) != len(header):
            yield BadRecord(loc, f"row has {len(cells)} cells but the header has {len(header)} columns")
            continue
        row = {name: cells[i] for name, i in cols.items() if 0 <= i < len(cells)}
        try:
            yield parse(row, loc, path)
        except (fields.FieldError, ValueError, TypeError) as e:
            yield BadRecord(loc, str(e))
    for n, why in bad.items():  # a break after the last row (a truncated .gz)
        if n >= line_after and isinstance(why, StreamError):
            yield BadRecord(f"{path}:{n}", why)
