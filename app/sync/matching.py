"""Does a write touch a read? Index keys compared in PostgreSQL's jsonb order, in Python.

jsonb orders values Object > Array > Boolean > Number > String > Null; a missing field
(SQL NULL in an index expression) sorts before everything. Strings compare by the
database collation: exactly when it is C (byte order, which Python's `str` order
matches for UTF-8); otherwise string comparisons answer "maybe", which invalidates.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from app.db.query import Bound
from app.db.readset import MISSING, RangeRead, doc_key

_RANK = {type(None): 0, str: 1, float: 2, int: 2, bool: 3, list: 4, dict: 5}
MAYBE = None  # a comparison we cannot decide exactly


def canonical(value: Any) -> Any:
    """A JSON value with every number as float (jsonb compares 1 and 1.0 as equal)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    return value


def key_text(values: tuple[Any, ...] | list[Any]) -> bytes:
    """A hashable text of an equality prefix."""
    return orjson.dumps([None if v is MISSING else canonical(v) for v in values])


def compare(a: Any, b: Any, exact_strings: bool, *, top: bool = True) -> int | None:
    """-1, 0, 1 in jsonb order (MISSING first); None when it cannot be decided."""
    if a is MISSING or b is MISSING:
        return 0 if a is b else (-1 if a is MISSING else 1)
    ra, rb = _RANK.get(type(a)), _RANK.get(type(b))
    if top:
        # jsonb quirk: an empty top-level array sorts before null (and everything else).
        if a == [] and isinstance(a, list):
            ra = -1
        if b == [] and isinstance(b, list):
            rb = -1
    if ra is None or rb is None:
        return MAYBE
    if ra != rb:
        return -1 if ra < rb else 1
    if ra == 1:
        if not exact_strings:
            return 0 if a == b else MAYBE
        ta, tb = str(a), str(b)  # rank 1: both are strings
        return (ta > tb) - (ta < tb)
    if ra in (2, 3):
        fa, fb = float(a), float(b)
        return (fa > fb) - (fa < fb)
    if ra in (0, -1):
        return 0
    if ra == 4:
        if len(a) != len(b):
            return -1 if len(a) < len(b) else 1
        for x, y in zip(a, b, strict=True):
            c = compare(x, y, exact_strings, top=False)
            if c != 0:
                return c
        return 0
    # int64 and bytes compare by their sort keys (`convect_sort_key`, migration 0004).
    sa, sb = _sort_scalar(a), _sort_scalar(b)
    if sa is not None and sb is not None and sa[0] == sb[0]:
        return (sa[1] > sb[1]) - (sa[1] < sb[1])  # type: ignore[operator]
    # Objects: jsonb compares pair counts, then keys and values in its storage order
    # (keys by length, then bytes). Equal when canonical forms are equal.
    if canonical(a) == canonical(b):
        return 0
    if len(a) != len(b):
        return -1 if len(a) < len(b) else 1
    return MAYBE


def _sort_scalar(value: dict[str, Any]) -> tuple[str, int | bytes] | None:
    """("$integer", n) or ("$bytes", b) for a wire-encoded int64 or bytes value."""
    if len(value) != 1:
        return None
    try:
        if "$integer" in value:
            raw = base64.b64decode(value["$integer"], validate=True)
            return (
                ("$integer", int.from_bytes(raw, "little", signed=True)) if len(raw) == 8 else None
            )
        if "$bytes" in value:
            return ("$bytes", base64.b64decode(value["$bytes"], validate=True))
    except (ValueError, TypeError):
        return None
    return None


def compare_keys(a: tuple[Any, ...], b: tuple[Any, ...], exact_strings: bool) -> int | None:
    """Compare two index keys field by field."""
    for x, y in zip(a, b, strict=False):
        c = compare(x, y, exact_strings)
        if c != 0:
            return c
    return (len(a) > len(b)) - (len(a) < len(b))


def _satisfies(value: Any, bound: Bound, lower: bool, exact: bool) -> bool:
    if value is MISSING:
        return False  # NULL never satisfies a comparison in SQL
    c = compare(value, canonical(bound.value), exact)
    if c is MAYBE:
        return True
    if c == 0:
        return bound.inclusive
    return c > 0 if lower else c < 0


def doc_in_range(doc: dict[str, Any], read: RangeRead, exact_strings: bool) -> bool:
    """True when a document's index key lies in the range that was read (or might)."""
    r = read.range
    key = doc_key(doc, r.fields)
    n = len(r.eq)
    for value, want in zip(key[:n], r.eq, strict=False):
        if value is MISSING:
            return False
        c = compare(canonical(value), canonical(want), exact_strings)
        if c is not MAYBE and c != 0:
            return False
    if r.lower is not None and not _satisfies(canonical(key[n]), r.lower, True, exact_strings):
        return False
    if r.upper is not None and not _satisfies(canonical(key[n]), r.upper, False, exact_strings):
        return False
    if read.last_key is not None:
        c = compare_keys(
            tuple(canonical(k) for k in key),
            tuple(canonical(k) for k in read.last_key),
            exact_strings,
        )
        if c is MAYBE:
            return True
        if (r.order == "asc" and c > 0) or (r.order == "desc" and c < 0):
            return False
    return True


def eq_prefix(doc: dict[str, Any], fields: tuple[str, ...], n: int) -> bytes | None:
    """The text of a document's first `n` index values (None if one is missing)."""
    key = doc_key(doc, fields)[:n]
    if any(v is MISSING for v in key):
        return None
    return key_text(key)
