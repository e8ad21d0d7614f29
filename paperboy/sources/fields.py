"""Typed access to the fields of a JSON record, shared by every JSON source.

JSON from outside can hold any type anywhere (``"authors": 5``, a DOI that is an object, a title
that is a list). Each getter accepts the shapes a field really takes and raises ``FieldError``
naming the field and the JSON type it found otherwise; ``parse_each`` turns that into a
``BadRecord`` for the one record, so the rest of the batch is kept. Getters take several keys
(aliases, tried in order) and return the first one present and not null.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..models import BadRecord, PaperRecord
from ..normalize import clean_latex, parse_date, split_authors
from ..errors import FormatError
from .base import json_type


class FieldError(ValueError):
    """A field holds a JSON type the record cannot be read with."""


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, Any]:
    for key in keys:
        value = obj.get(key)
        if value is not None:
            return key, value
    return keys[0] if keys else "", None


def _wrong(key: str, want: str, value: object) -> FieldError:
    return FieldError(f"field {key!r} must be {want}, got {json_type(value)}")


def text(obj: dict[str, Any], *keys: str) -> str:
    """A text field ('' when absent); anything but a string is a FieldError."""
    key, value = _first(obj, keys)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _wrong(key, "text", value)
    return value


def ident(obj: dict[str, Any], *keys: str) -> str:
    """An identifier: text or a whole number ('' when absent)."""
    key, value = _first(obj, keys)
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _wrong(key, "text or a whole number", value)


def date(obj: dict[str, Any], *keys: str) -> str | None:
    """An ISO date from a date text or a year number (None when absent or unparseable)."""
    key, value = _first(obj, keys)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _wrong(key, "a date (text)", value)
    return parse_date(value)


def count(obj: dict[str, Any], *keys: str) -> int | None:
    """A non-negative whole number (upvotes, comments); None when absent."""
    key, value = _first(obj, keys)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _wrong(key, "a whole number >= 0", value)
    return value


def mapping(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    """A nested object ({} when absent)."""
    key, value = _first(obj, keys)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _wrong(key, "an object", value)
    return value


def array(obj: dict[str, Any], *keys: str) -> list[Any]:
    """A list ([] when absent); its items are checked by the caller."""
    key, value = _first(obj, keys)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _wrong(key, "an array", value)
    return value


def names(obj: dict[str, Any], *keys: str) -> list[str]:
    """Author names from "A, B and C", a list of names, or a list of {"name": ...} objects."""
    key, value = _first(obj, keys)
    if value is None:
        return []
    if isinstance(value, str):
        return split_authors(value)
    if not isinstance(value, list):
        raise _wrong(key, "a list of names or text", value)
    out = []
    for i, item in enumerate(value):
        if isinstance(item, dict):
            item = item.get("name")
        if not isinstance(item, str):
            raise FieldError(f"field {key!r} item {i} must be a name (text or {{\"name\": text}}), "
                             f"got {json_type(item)}")
        if name := clean_latex(item):
            out.append(name)
    return out


def terms(obj: dict[str, Any], *keys: str) -> list[str]:
    """Categories or keywords: "cs.LG stat.ML" (spaces or commas) or a list of texts."""
    key, value = _first(obj, keys)
    if value is None:
        return []
    if isinstance(value, str):
        return value.replace(",", " ").split()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _wrong(key, "a list of texts or text", value)
    return [v.strip() for v in value if v.strip()]


Parse = Callable[[dict[str, Any], str], "PaperRecord | BadRecord"]


def parse_one(parse: Parse, obj: object, loc: str) -> PaperRecord | BadRecord:
    """``parse(obj, loc)``, with a record that is not an object or has a field of the wrong type
    turned into a ``BadRecord`` instead of an exception."""
    if not isinstance(obj, dict):
        return BadRecord(loc, f"expected a JSON object, got {json_type(obj)}")
    try:
        return parse(obj, loc)
    except FieldError as e:
        return BadRecord(loc, str(e))
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError, OverflowError) as e:
        # Belt and braces: a shape no getter foresaw still costs one record, not the batch.
        return BadRecord(loc, f"cannot read record ({type(e).__name__}: {e})")


def parse_each(parse: Parse, items: Iterable[tuple[str, object, str | None]]) -> Iterator[PaperRecord | BadRecord]:
    """``parse_one`` over (location, object, error) triples; an error is a BadRecord as is."""
    for loc, obj, err in items:
        yield BadRecord(loc, err) if err is not None else parse_one(parse, obj, loc)


def dois(obj: dict[str, Any], *keys: str) -> str:
    """One or several DOIs: "10.1/a", "10.1/a 10.2/b" (Kaggle) or a list of texts; as one text that
    ``normalize.check_record`` splits (the first is the DOI, the rest are kept as links)."""
    key, value = _first(obj, keys)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _wrong(key, "a DOI (text) or a list of them", value)
    return " ".join(v.strip() for v in value if v.strip())


# Record fields that --map can point at a key (JSON lines) or a column (CSV), shared by both.
MAPPED = ("id", "title", "abstract", "authors", "date", "updated", "categories", "primary_category", "doi",
          "comments", "journal_ref")


def parse_mapping(spec: str | None) -> dict[str, tuple[str, ...]]:
    """'title=name,abstract=summary' -> {'title': ('name',), 'abstract': ('summary',)}: the fields
    the user named; each source fills the others from its own usual names."""
    out: dict[str, tuple[str, ...]] = {}
    for part in filter(None, (spec or "").split(",")):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in MAPPED or not value.strip():
            raise FormatError(f"bad field mapping {part!r}: use FIELD=KEY with FIELD one of {', '.join(MAPPED)}")
        out[key.strip()] = (value.strip(),)
    return out


def with_primary(categories: list[str], primary: str) -> tuple[list[str], str | None]:
    """Categories with the primary one first (added when the list lacks it), and the primary."""
    primary = primary.strip()
    if not primary:
        return categories, categories[0] if categories else None
    return [primary, *(c for c in categories if c != primary)], primary
