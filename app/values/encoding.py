"""Convex values in Python and their `convex_encoded_json` wire form."""

from __future__ import annotations

import base64
import binascii
import math
import struct
from typing import Any, Final

import orjson

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_FIELD_NAME_LENGTH",
    "MAX_NESTING_DEPTH",
    "MAX_SAFE_INTEGER",
    "UNSET",
    "Int64",
    "ValueEncodingError",
    "check_document_fields",
    "check_field_name",
    "decode_value",
    "dumps",
    "encode_value",
    "field_name_problem",
    "json_size",
    "loads",
    "kept",
]

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
MAX_SAFE_INTEGER: Final = 2**53
MAX_NESTING_DEPTH: Final = 64
MAX_FIELD_NAME_LENGTH: Final = 1024
SYSTEM_FIELDS: Final = frozenset({"_id", "_creationTime"})


class Int64(int):
    """A Convex int64 (JS bigint); a plain Python int is a float64."""

    __slots__ = ()

    def __new__(cls, value: Any = 0) -> Int64:
        """Create an Int64, rejecting values outside the signed 64-bit range."""
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"Int64 needs an integral value, got {value!r}")
        n = int.__new__(cls, value)
        if not INT64_MIN <= n <= INT64_MAX:
            raise ValueError(f"Int64 value out of range [-2**63, 2**63-1]: {int(n)}")
        return n

    def __repr__(self) -> str:
        """Show as `Int64(n)`."""
        return f"Int64({int.__repr__(self)})"

    def __str__(self) -> str:
        """Show the bare number."""
        return int.__repr__(self)


class _Unset:
    """Convex `undefined`: a missing optional field, or a field to remove in patch."""

    __slots__ = ()
    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = object.__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "UNSET"

    def __reduce__(self) -> str:
        return "UNSET"

    def __copy__(self) -> _Unset:
        return self

    def __deepcopy__(self, memo: Any) -> _Unset:
        return self


UNSET: Final = _Unset()


class ValueEncodingError(ValueError):
    """A value is not a valid Convex value (message names the path)."""

    def __init__(self, reason: str, path: str = "") -> None:
        self.reason = reason
        self.path = path
        where = f" at {path}" if path else ""
        super().__init__(f"Invalid value{where}: {reason}")


class _Failure(Exception):
    """Internal: an encoding problem travelling up while the path is collected."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.segments: list[str] = []

    def error(self) -> ValueEncodingError:
        return ValueEncodingError(self.reason, "".join(reversed(self.segments)))


def _key_segment(key: Any) -> str:
    return f".{key}" if isinstance(key, str) else f"[{key!r}]"


def field_name_problem(name: Any) -> str | None:
    """Return why `name` is not a valid Convex field name, or None if it is."""
    if not isinstance(name, str):
        return f"field names must be strings, not {type(name).__name__}"
    if not name:
        return "field names must not be empty"
    if name[0] == "$":
        return "field names must not start with '$'"
    if len(name) > MAX_FIELD_NAME_LENGTH:
        return f"field names must be at most {MAX_FIELD_NAME_LENGTH} characters"
    if not (name.isascii() and name.isprintable()):
        return "field names must contain only printable ASCII characters (codes 32-126)"
    return None


# Field names already found valid, so the walks below skip re-checking them (documents
# repeat a small set of names). Bounded: past the cap names are simply checked each time.
_GOOD_NAMES: set[str] = set()
_MAX_GOOD_NAMES = 4096


def _good_name(name: str) -> None:
    if len(_GOOD_NAMES) < _MAX_GOOD_NAMES:
        _GOOD_NAMES.add(name)


def check_field_name(name: Any) -> None:
    """Raise ValueEncodingError if `name` is not a valid Convex field name."""
    problem = field_name_problem(name)
    if problem is not None:
        raise ValueEncodingError(problem, _key_segment(name))


def _check_str(s: str) -> None:
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise _Failure("strings must be valid Unicode (no lone surrogates)") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _encode_float(x: float) -> Any:
    if x != x or x in (math.inf, -math.inf) or (x == 0.0 and math.copysign(1.0, x) < 0):
        return {"$float": _b64(struct.pack("<d", x))}
    return x


def _encode(x: Any, depth: int) -> Any:
    t = type(x)
    if t is str:
        _check_str(x)
        return x
    if x is None or t is bool:
        return x
    if t is float:
        return _encode_float(x)
    if t is dict or t is list or t is tuple or isinstance(x, (dict, list, tuple)):
        if depth >= MAX_NESTING_DEPTH:
            raise _Failure(f"nesting depth exceeds {MAX_NESTING_DEPTH}")
        if isinstance(x, dict):
            out: dict[str, Any] = {}
            for k, val in x.items():
                try:
                    if k not in _GOOD_NAMES:
                        problem = field_name_problem(k)
                        if problem is not None:
                            raise _Failure(problem)
                        _good_name(k)
                    if val is UNSET:
                        continue
                    tv = type(val)
                    if (tv is str and val.isascii()) or val is None or tv is bool:
                        out[k] = val  # what _encode returns for them, without the call
                    else:
                        out[k] = _encode(val, depth + 1)
                except _Failure as e:
                    e.segments.append(_key_segment(k))
                    raise
            return out
        items: list[Any] = []
        for i, item in enumerate(x):
            try:
                if item is UNSET:
                    raise _Failure("UNSET (undefined) is only allowed as an object field value")
                items.append(_encode(item, depth + 1))
            except _Failure as e:
                e.segments.append(f"[{i}]")
                raise
        return items
    if isinstance(x, Int64):
        return {"$integer": _b64(struct.pack("<q", x))}
    if isinstance(x, bool):
        return bool(x)
    if isinstance(x, int):
        if abs(x) > MAX_SAFE_INTEGER:
            raise _Failure(
                f"int {int(x)} is outside the float64 safe range ±2**53; use Int64 for int64"
            )
        return float(x)
    if isinstance(x, float):
        return _encode_float(float(x))
    if isinstance(x, str):
        _check_str(x)
        return str(x)
    if isinstance(x, (bytes, bytearray, memoryview)):
        return {"$bytes": _b64(bytes(x))}
    if x is UNSET:
        raise _Failure("UNSET (undefined) is only allowed as an object field value")
    as_value = getattr(x, "__convex_value__", None)
    if as_value is not None:  # e.g. a UserIdentity: a plain object, as in Convex
        return _encode(as_value(), depth)
    raise _Failure(f"{type(x).__name__} is not a supported Convex type")


def encode_value(x: Any) -> Any:
    """Encode a Python Convex value into its JSON-able `convex_encoded_json` form."""
    try:
        return _encode(x, 0)
    except _Failure as e:
        raise e.error() from None


def _b64decode(s: Any, tag: str) -> bytes:
    if not isinstance(s, str):
        raise _Failure(f"{tag} must hold a base64 string")
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise _Failure(f"{tag} holds invalid base64") from None


def _decode_special(key: str, payload: Any) -> Any:
    if key == "$integer":
        raw = _b64decode(payload, key)
        if len(raw) != 8:
            raise _Failure(f"$integer must decode to 8 bytes, got {len(raw)}")
        return Int64(struct.unpack("<q", raw)[0])
    if key == "$float":
        raw = _b64decode(payload, key)
        if len(raw) != 8:
            raise _Failure(f"$float must decode to 8 bytes, got {len(raw)}")
        f: float = struct.unpack("<d", raw)[0]
        if math.isfinite(f) and not (f == 0.0 and math.copysign(1.0, f) < 0):
            raise _Failure(f"$float {f!r} should be encoded as a number")
        return f
    return _b64decode(payload, key)  # $bytes


_SPECIAL_KEYS: Final = frozenset({"$integer", "$float", "$bytes"})


def _decode(j: Any, depth: int) -> Any:
    t = type(j)
    if t is str:
        return j
    if t is float:
        return j
    if j is None or t is bool:
        return j
    if t is int:
        try:
            return float(j)
        except OverflowError:
            raise _Failure("number is too large for a float64") from None
    if t is dict:
        if depth >= MAX_NESTING_DEPTH:
            raise _Failure(f"nesting depth exceeds {MAX_NESTING_DEPTH}")
        if len(j) == 1:
            ((key, payload),) = j.items()
            if key in _SPECIAL_KEYS:
                return _decode_special(key, payload)
        out: dict[str, Any] = {}
        for k, val in j.items():
            try:
                if k not in _GOOD_NAMES:
                    if isinstance(k, str) and k[:1] == "$":
                        if k in _SPECIAL_KEYS:
                            raise _Failure(f"an object with {k} must have no other fields")
                        if k in ("$set", "$map"):
                            raise _Failure(f"{k} is a removed legacy Convex type")
                        raise _Failure("field names must not start with '$'")
                    problem = field_name_problem(k)
                    if problem is not None:
                        raise _Failure(problem)
                    _good_name(k)
                tv = type(val)
                if tv is str or tv is float or val is None or tv is bool:
                    out[k] = val  # what _decode returns for them, without the call
                else:
                    out[k] = _decode(val, depth + 1)
            except _Failure as e:
                e.segments.append(_key_segment(k))
                raise
        return out
    if t is list:
        if depth >= MAX_NESTING_DEPTH:
            raise _Failure(f"nesting depth exceeds {MAX_NESTING_DEPTH}")
        items: list[Any] = []
        for i, item in enumerate(j):
            try:
                items.append(_decode(item, depth + 1))
            except _Failure as e:
                e.segments.append(f"[{i}]")
                raise
        return items
    raise _Failure(f"{type(j).__name__} is not a JSON value")


def decode_value(j: Any) -> Any:
    """Decode parsed `convex_encoded_json` (every bare number becomes a float)."""
    try:
        return _decode(j, 0)
    except _Failure as e:
        raise e.error() from None


def dumps(x: Any) -> bytes:
    """Encode a Python Convex value to JSON bytes."""
    return orjson.dumps(encode_value(x))


def kept(data: bytes) -> bytes:
    """An exact-size copy of `orjson.dumps` output, for JSON text kept for long.

    orjson hands back its whole working buffer: about 4 KiB for a few bytes of text, and
    several times the text for large ones (tracemalloc: 10,000 small kept texts held
    39 MiB instead of under 1 MiB; a 500 KB text held about 3.6 MB). The copy is a
    memcpy of the text, far cheaper than the serialization that made it.
    """
    return bytes(memoryview(data))


def loads(b: bytes | str) -> Any:
    """Parse JSON bytes/str in `convex_encoded_json` into a Python Convex value."""
    return decode_value(orjson.loads(b))


def json_size(encoded: Any) -> int:
    """Size in bytes of the JSON text of an already-encoded value."""
    return len(orjson.dumps(encoded))


def check_document_fields(doc: dict[str, Any], *, allow_system: bool = False) -> None:
    """Reject top-level user document fields starting with '_' (system fields)."""
    if not isinstance(doc, dict):
        raise ValueEncodingError(f"a document must be an object, not {type(doc).__name__}")
    for key in doc:
        if not isinstance(key, str):
            raise ValueEncodingError(
                f"field names must be strings, not {type(key).__name__}", _key_segment(key)
            )
        if key[:1] == "_" and not (allow_system and key in SYSTEM_FIELDS):
            raise ValueEncodingError(
                "top-level field names starting with '_' are reserved for system fields "
                "(_id, _creationTime)",
                _key_segment(key),
            )
