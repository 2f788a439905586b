"""Documents in Convex's export JSON, to and from Convect's stored (wire) encoding.

Convex's snapshot export writes `ValueFormat::ConvexExportJSON`: an int64 is a JSON
integer, a finite float64 a number with a decimal point, bytes `{"$bytes": ...}` and a
non-finite float `{"$float": ...}`. A table whose `generated_schema.jsonl` says
`"uniform"` is read that way; a table without one (a hand-made file) reads a JSON number
as a float64, as Convex does. Strings that are ids of an exported table are rewritten
(`IdMap`), so references keep resolving after the move.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Callable
from typing import Any

_SPECIAL = ("$bytes", "$float", "$integer")
MAX_INT64 = 2**63 - 1


def _rewrite(value: str, ids: Callable[[str], str | None] | None) -> str:
    if ids is None:
        return value
    mapped = ids(value)
    return value if mapped is None else mapped


def to_export_json(wire: Any, ids: Callable[[str], str | None] | None = None) -> Any:
    """A stored (wire-encoded) value as Convex's export JSON."""
    if isinstance(wire, str):
        return _rewrite(wire, ids)
    if isinstance(wire, bool) or wire is None:
        return wire
    if isinstance(wire, int):
        return float(wire)  # a wire number without a point is still a float64
    if isinstance(wire, float):
        return wire
    if isinstance(wire, list):
        return [to_export_json(x, ids) for x in wire]
    if isinstance(wire, dict):
        if len(wire) == 1:
            key = next(iter(wire))
            if key == "$integer":
                return struct.unpack("<q", base64.b64decode(wire[key]))[0]
            if key in _SPECIAL:
                return wire
        return {k: to_export_json(x, ids) for k, x in wire.items()}
    raise TypeError(f"not a stored value: {type(wire).__name__}")


def from_export_json(
    value: Any, *, lossless: bool, ids: Callable[[str], str | None] | None = None
) -> Any:
    """Convex's export JSON (or plain JSON when not `lossless`) as a stored value."""
    if isinstance(value, str):
        return _rewrite(value, ids)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if not lossless:
            return float(value)
        if not -MAX_INT64 - 1 <= value <= MAX_INT64:
            raise ValueError(f"{value} does not fit in an int64")
        return {"$integer": base64.b64encode(struct.pack("<q", value)).decode()}
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError('a non-finite number must be written as {"$float": ...}')
        return value
    if isinstance(value, list):
        return [from_export_json(x, lossless=lossless, ids=ids) for x in value]
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in _SPECIAL:
            return value
        return {k: from_export_json(x, lossless=lossless, ids=ids) for k, x in value.items()}
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def csv_cell(text: str) -> Any:
    """A CSV cell as Convex reads it: a number when it parses as one, else the string."""
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


__all__ = ["csv_cell", "from_export_json", "to_export_json"]
