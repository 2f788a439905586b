"""ConvexError: an application error whose data reaches the client."""

from __future__ import annotations

import math
from typing import Any

import orjson

from app.values.encoding import UNSET, Int64

__all__ = ["ConvexError", "stringify_for_error"]

MAX_VALUE_FOR_ERROR_LEN = 16384
_TRUNCATED = "[...truncated]"


def _js_number(x: float) -> str:
    """A float as JavaScript's `String(number)` writes it (`21`, `0.5`, `1e+21`, `1e-7`)."""
    if x != x or x in (math.inf, -math.inf):
        return "null"  # JSON.stringify writes NaN and the infinities as null
    if x.is_integer() and abs(x) < 1e21:
        return str(int(x))
    text = repr(x)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        text = f"{mantissa}e{sign}{int(exponent.lstrip('+-'))}"
    return text


def _for_json(value: Any, depth: int = 0) -> Any:
    """`value` with what JSON.stringify's replacer in Convex changes made plain JSON."""
    if depth > 64:
        return "..."
    if value is UNSET:
        return "undefined"
    if isinstance(value, Int64):
        return f"{int(value)}n"
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return orjson.Fragment(_js_number(float(value)).encode())
    if isinstance(value, bytes | bytearray | memoryview):
        return {}  # JSON.stringify of an ArrayBuffer
    if isinstance(value, dict):
        return {str(k): _for_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_for_json(v, depth + 1) for v in value]
    return repr(value)


def stringify_for_error(value: Any) -> str:
    """A Convex value as Convex writes it into an error message (`stringifyValueForError`):
    compact JSON, an int64 as `"123n"`, a whole float as `21`, at most 16 KiB."""
    text = orjson.dumps(_for_json(value)).decode()
    if len(text) > MAX_VALUE_FOR_ERROR_LEN:
        text = text[: MAX_VALUE_FOR_ERROR_LEN - len(_TRUNCATED)] + _TRUNCATED
    return text


class ConvexError(Exception):
    """An error thrown on purpose; `data` (any Convex value) reaches the client."""

    def __init__(self, data: Any) -> None:
        super().__init__(data)
        self.data = data

    def __str__(self) -> str:
        """The data itself if a string, else as Convex writes a value into a message."""
        if isinstance(self.data, str):
            return self.data
        return stringify_for_error(self.data)
