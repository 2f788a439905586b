"""Convex validators (`v.*`): checking, normalising and describing values."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import orjson

from app.values.encoding import (
    MAX_SAFE_INTEGER,
    UNSET,
    Int64,
    ValueEncodingError,
    decode_value,
    encode_value,
    field_name_problem,
)

__all__ = [
    "AnyValidator",
    "ArgumentValidationError",
    "ArrayValidator",
    "BooleanValidator",
    "BytesValidator",
    "Float64Validator",
    "IdTableLookup",
    "IdValidator",
    "Int64Validator",
    "LiteralValidator",
    "NullValidator",
    "ObjectValidator",
    "OptionalValidator",
    "RecordValidator",
    "StringValidator",
    "UnionValidator",
    "Validator",
    "as_validator",
    "format_value",
    "pagination_opts_validator",
    "v",
    "validator_from_json",
]

IdTableLookup = Callable[[str], "str | None"]

_MAX_DISPLAY = 1000


class ArgumentValidationError(ValueError):
    """A value does not match a validator; `.path` and `.message` as in Convex."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path


# ---------------------------------------------------------------- display


def _fmt_float(x: float) -> str:
    if x != x:
        return "NaN"
    if x == math.inf:
        return "Infinity"
    if x == -math.inf:
        return "-Infinity"
    return repr(x)


def _fmt(x: Any, out: list[str], budget: list[int]) -> None:
    if budget[0] <= 0:
        return
    if x is None:
        s = "null"
    elif isinstance(x, bool):
        s = "true" if x else "false"
    elif isinstance(x, Int64):
        s = f"{int(x)}n"
    elif isinstance(x, int):
        s = _fmt_float(float(x)) if abs(x) <= MAX_SAFE_INTEGER else str(int(x))
    elif isinstance(x, float):
        s = _fmt_float(x)
    elif isinstance(x, str):
        s = orjson.dumps(x).decode() if not _has_surrogates(x) else repr(x)
    elif isinstance(x, (bytes, bytearray, memoryview)):
        s = f"bytes({len(bytes(x))})"
    elif isinstance(x, Mapping):
        out.append("{")
        budget[0] -= 1
        for i, (k, val) in enumerate(x.items()):
            if i:
                out.append(", ")
            key = k if isinstance(k, str) and k.isidentifier() else repr(k)
            out.append(f"{key}: ")
            budget[0] -= len(key) + 4
            _fmt(val, out, budget)
            if budget[0] <= 0:
                return
        out.append("}")
        return
    elif isinstance(x, (list, tuple)):
        out.append("[")
        budget[0] -= 1
        for i, item in enumerate(x):
            if i:
                out.append(", ")
                budget[0] -= 2
            _fmt(item, out, budget)
            if budget[0] <= 0:
                return
        out.append("]")
        return
    elif x is UNSET:
        s = "undefined"
    else:
        s = repr(x)
    out.append(s)
    budget[0] -= len(s)


def _has_surrogates(s: str) -> bool:
    if s.isascii():
        return False
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def format_value(x: Any, limit: int = _MAX_DISPLAY) -> str:
    """Render a value for error messages (Convex-like notation, truncated)."""
    out: list[str] = []
    _fmt(x, out, [limit])
    s = "".join(out)
    return s if len(s) <= limit else s[:limit] + "..."


def _path_line(path: str) -> str:
    return f"Path: {path}\n" if path else ""


def _no_match(value: Any, validator: Validator, path: str) -> ArgumentValidationError:
    return ArgumentValidationError(
        "Value does not match validator.\n"
        f"{_path_line(path)}Value: {format_value(value)}\nValidator: {validator!r}",
        path,
    )


def _quote(s: str) -> str:
    return orjson.dumps(s).decode()


# ---------------------------------------------------------------- base


class Validator(ABC):
    """Base class of all validators."""

    is_optional: ClassVar[bool] = False
    kind: ClassVar[str] = ""

    @abstractmethod
    def validate(self, value: Any, path: str = "", *, id_table: IdTableLookup | None = None) -> Any:
        """Return the normalised value or raise ArgumentValidationError."""

    @abstractmethod
    def __repr__(self) -> str:
        """Convex notation, e.g. `v.string()`."""

    def to_json(self) -> dict[str, Any]:
        """Plain serialisable description (inverse: validator_from_json)."""
        return {"type": self.kind}

    def _key(self) -> bytes:
        return orjson.dumps(self.to_json(), option=orjson.OPT_SORT_KEYS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Validator):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def _require_validator(x: Any, what: str) -> Validator:
    if not isinstance(x, Validator):
        raise TypeError(f"{what} must be a validator (v.*), got {type(x).__name__}: {x!r}")
    if x.is_optional:
        raise TypeError(f"{what}: v.optional(...) is only allowed as an object field")
    return x


# ---------------------------------------------------------------- leaves


class StringValidator(Validator):
    """`v.string()`."""

    kind = "string"

    def validate(self, value: Any, path: str = "", *, id_table: IdTableLookup | None = None) -> Any:
        """Accept a str."""
        if isinstance(value, str):
            return value
        raise _no_match(value, self, path)

    def __repr__(self) -> str:
        return "v.string()"


class Float64Validator(Validator):
    """`v.float64()` / `v.number()`."""

    kind = "float64"

    def __init__(self, spelling: str = "float64") -> None:
        self._spelling = spelling

    def validate(self, value: Any, path: str = "", *, id_table: IdTableLookup | None = None) -> Any:
        """Accept a float or plain int (not bool/Int64); return a float."""
        if isinstance(value, float):
            return float(value)
        if (
            isinstance(value, int)
            and not isinstance(value, (bool, Int64))
            and abs(value) <= MAX_SAFE_INTEGER
        ):
            return float(value)
        raise _no_match(value, self, path)

    def __repr__(self) -> str:
        return f"v.{self._spelling}()"


class Int64Validator(Validator):
    """`v.int64()`."""

    kind = "int64"

    def validate(self, value: Any, path: str = "", *, id_table: IdTableLookup | None = None) -> Any:
        """Accept an Int64 only."""
        if isinstance(value, Int64):
            return value
        raise _no_match(value, self, path)

    def __repr__(self) -> str:
        return "v.int64()"


class BooleanValidator(Validator):
    """`v.boolean()`."""

    kind = "boolean"

    def validate(self, value: Any, path: str = "", *, id_table: IdTableLookup | None = None) -> Any:
        """Accept a bool."""
        if isinstance(value, bool):
            return bool(value)
        raise _no_match(value, self, path)

    def __repr__(self) -> str:
        return "v.boolean()"


class NullValidator(Validator):
    """`v.null()`."""

    kind = "null"

    def validate(self, value: Any, path: str = "", *, id_table: IdTableLookup | None = None) -> Any:
        """Accept None."""
        if value is None:
            return None
        raise _no_match(value, self, path)

    def __repr__(self) -> str:
        return "v.null()"


class BytesValidator(Validator):
    """`v.bytes()`."""

    kind = "bytes"

    def validate(self, value: Any, path: str = "", *, id_table: IdTableLookup | None = None) -> Any:
        """Accept bytes (or bytearray/memoryview); return bytes."""
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        raise _no_match(value, self, path)

    def __repr__(self) -> str:
        return "v.bytes()"


class AnyValidator(Validator):
    """`v.any()`."""

    kind = "any"

    def validate(self, value: Any, path: str = "", *, id_table: IdTableLookup | None = None) -> Any:
        """Accept any valid Convex value; return it normalised."""
        try:
            return decode_value(encode_value(value))
        except ValueEncodingError as e:
            full = path + e.path
            raise ArgumentValidationError(
                f"Value is not a valid Convex value: {e.reason}\n{_path_line(full)}"
                f"Value: {format_value(value)}\nValidator: v.any()",
                full,
            ) from None

    def __repr__(self) -> str:
        return "v.any()"


class IdValidator(Validator):
    """`v.id(table)`."""

    kind = "id"

    def __init__(self, table_name: str) -> None:
        if not isinstance(table_name, str) or not table_name:
            raise TypeError(f"v.id(table) needs a non-empty table name string, got {table_name!r}")
        self.table_name = table_name

    def validate(self, value: Any, path: str = "", *, id_table: IdTableLookup | None = None) -> Any:
        """Accept a str id; with `id_table`, it must name this table."""
        if isinstance(value, str) and (id_table is None or id_table(value) == self.table_name):
            return value
        raise _no_match(value, self, path)

    def __repr__(self) -> str:
        return f"v.id({_quote(self.table_name)})"

    def to_json(self) -> dict[str, Any]:
        """{"type": "id", "tableName": ...}."""
        return {"type": "id", "tableName": self.table_name}


class LiteralValidator(Validator):
    """`v.literal(x)` for a str, number, bool or Int64."""

    kind = "literal"

    def __init__(self, value: Any) -> None:
        if isinstance(value, (str, bool, Int64)):
            self.value: Any = value
        elif isinstance(value, int):
            if abs(value) > MAX_SAFE_INTEGER:
                raise ValueError(
                    f"v.literal({value}): int is outside the float64 safe range; use Int64"
                )
            self.value = float(value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"v.literal({value!r}): the number must be finite")
            self.value = float(value)
        else:
            raise TypeError(
                "v.literal(x) needs a str, number, bool or Int64, "
                f"got {type(value).__name__}: {value!r}"
            )

    def _matches(self, value: Any) -> bool:
        lit = self.value
        if isinstance(lit, bool):
            return isinstance(value, bool) and value == lit
        if isinstance(lit, Int64):
            return isinstance(value, Int64) and int(value) == int(lit)
        if isinstance(lit, float):
            if isinstance(value, float):
                return value == lit
            return isinstance(value, int) and not isinstance(value, (bool, Int64)) and value == lit
        return isinstance(value, str) and value == lit

    def validate(self, value: Any, path: str = "", *, id_table: IdTableLookup | None = None) -> Any:
        """Accept an equal value of the same Convex type."""
        if self._matches(value):
            return self.value
        raise _no_match(value, self, path)

    def __repr__(self) -> str:
        lit = self.value
        if isinstance(lit, str):
            return f"v.literal({_quote(lit)})"
        return f"v.literal({lit!r})"

    def to_json(self) -> dict[str, Any]:
        """{"type": "literal", "value": encoded value}."""
        return {"type": "literal", "value": encode_value(self.value)}


# ---------------------------------------------------------------- containers


class ArrayValidator(Validator):
    """`v.array(item)`."""

    kind = "array"

    def __init__(self, item: Validator) -> None:
        self.item = _require_validator(item, "v.array(item)")

    def validate(self, value: Any, path: str = "", *, id_table: IdTableLookup | None = None) -> Any:
        """Accept a list/tuple whose items all match; return a list."""
        if not isinstance(value, (list, tuple)):
            raise _no_match(value, self, path)
        item = self.item
        return [item.validate(x, f"{path}[{i}]", id_table=id_table) for i, x in enumerate(value)]

    def __repr__(self) -> str:
        return f"v.array({self.item!r})"

    def to_json(self) -> dict[str, Any]:
        """{"type": "array", "value": item}."""
        return {"type": "array", "value": self.item.to_json()}


class OptionalValidator(Validator):
    """`v.optional(inner)`: the object field may be absent (UNSET)."""

    kind = "optional"
    is_optional = True

    def __init__(self, inner: Validator) -> None:
        self.inner = _require_validator(inner, "v.optional(inner)")

    def validate(self, value: Any, path: str = "", *, id_table: IdTableLookup | None = None) -> Any:
        """UNSET stays UNSET; anything else must match the inner validator."""
        if value is UNSET:
            return UNSET
        return self.inner.validate(value, path, id_table=id_table)

    def __repr__(self) -> str:
        return f"v.optional({self.inner!r})"

    def to_json(self) -> dict[str, Any]:
        """The inner description with "optional": true."""
        return {**self.inner.to_json(), "optional": True}


def _check_object_fields(fields: Any, what: str) -> dict[str, Validator]:
    if not isinstance(fields, Mapping):
        raise TypeError(f"{what} needs a dict of field validators, got {type(fields).__name__}")
    out: dict[str, Validator] = {}
    for name, val in fields.items():
        problem = field_name_problem(name)
        if problem is not None:
            raise ValueError(f"{what}: invalid field name {name!r}: {problem}")
        if not isinstance(val, Validator):
            raise TypeError(
                f"{what}: field {name!r} must be a validator (v.*), "
                f"got {type(val).__name__}: {val!r}"
            )
        out[name] = val
    return out


def _as_object(value: Any) -> dict[str, Any] | None:
    """The plain object a value stands for on the wire (a `UserIdentity` is sent as
    `to_dict()`, as in Convex), or None for anything else."""
    as_value = getattr(value, "__convex_value__", None)
    if as_value is None:
        return None
    plain = as_value()
    return plain if isinstance(plain, dict) else None


class ObjectValidator(Validator):
    """`v.object({...})`."""

    kind = "object"

    def __init__(self, fields: Mapping[str, Validator]) -> None:
        self.fields: dict[str, Validator] = _check_object_fields(fields, "v.object(fields)")

    def _object_error(self, head: str, value: Any, path: str) -> ArgumentValidationError:
        return ArgumentValidationError(
            f"{head}\n\n{_path_line(path)}Object: {format_value(value)}\nValidator: {self!r}",
            path,
        )

    def validate(self, value: Any, path: str = "", *, id_table: IdTableLookup | None = None) -> Any:
        """Accept a dict with exactly the declared fields (optional ones may be missing)."""
        if not isinstance(value, dict):
            plain = _as_object(value)
            if plain is None:
                raise _no_match(value, self, path)
            value = plain
        fields = self.fields
        for name, fv in fields.items():
            if not fv.is_optional and value.get(name, UNSET) is UNSET:
                raise self._object_error(
                    f"Object is missing the required field `{name}`. Consider wrapping the "
                    "field validator in `v.optional(...)` if this is expected.",
                    value,
                    path,
                )
        out: dict[str, Any] = {}
        for name, x in value.items():
            field_v = fields.get(name) if isinstance(name, str) else None
            if field_v is None:
                if x is UNSET:
                    continue
                raise self._object_error(
                    f"Object contains extra field `{name}` that is not in the validator.",
                    value,
                    path,
                )
            if x is UNSET:
                continue
            out[name] = field_v.validate(x, f"{path}.{name}", id_table=id_table)
        return out

    def _named(self, names: tuple[str, ...], method: str) -> list[str]:
        for name in names:
            if not isinstance(name, str) or name not in self.fields:
                raise ValueError(
                    f"{self!r}.{method}(...): {name!r} is not a field of this object "
                    f"(its fields: {', '.join(self.fields) or 'none'})"
                )
        return list(names)

    def extend(self, fields: Mapping[str, Validator]) -> ObjectValidator:
        """A new object validator with `fields` added (a field of the same name replaced)."""
        added = _check_object_fields(fields, "v.object(...).extend(fields)")
        return ObjectValidator({**self.fields, **added})

    def pick(self, *names: str) -> ObjectValidator:
        """A new object validator with only the named fields."""
        return ObjectValidator({n: self.fields[n] for n in self._named(names, "pick")})

    def omit(self, *names: str) -> ObjectValidator:
        """A new object validator without the named fields."""
        dropped = set(self._named(names, "omit"))
        return ObjectValidator({k: fv for k, fv in self.fields.items() if k not in dropped})

    def partial(self) -> ObjectValidator:
        """A new object validator whose fields are all optional."""
        return ObjectValidator(
            {k: fv if fv.is_optional else OptionalValidator(fv) for k, fv in self.fields.items()}
        )

    def __repr__(self) -> str:
        inner = ", ".join(f"{_quote(k)}: {fv!r}" for k, fv in self.fields.items())
        return f"v.object({{{inner}}})"

    def to_json(self) -> dict[str, Any]:
        """{"type": "object", "fields": {name: {..., "optional": bool}}}."""
        return {
            "type": "object",
            "fields": {
                k: fv.to_json() if fv.is_optional else {**fv.to_json(), "optional": False}
                for k, fv in self.fields.items()
            },
        }


def _valid_record_keys(k: Validator) -> bool:
    if isinstance(k, (StringValidator, IdValidator)):
        return True
    if isinstance(k, LiteralValidator):
        return isinstance(k.value, str)
    if isinstance(k, UnionValidator):
        return all(_valid_record_keys(m) for m in k.members)
    return False


class RecordValidator(Validator):
    """`v.record(keys, values)`."""

    kind = "record"

    def __init__(self, keys: Validator, values: Validator) -> None:
        self.keys = _require_validator(keys, "v.record(keys, values): keys")
        self.values = _require_validator(values, "v.record(keys, values): values")
        if not _valid_record_keys(self.keys):
            raise TypeError(
                "v.record(keys, values): keys must be v.string(), v.id(...), string literals "
                f"or a union of those, got {self.keys!r}"
            )

    def validate(self, value: Any, path: str = "", *, id_table: IdTableLookup | None = None) -> Any:
        """Accept a dict whose keys and values match."""
        if not isinstance(value, dict):
            plain = _as_object(value)
            if plain is None:
                raise _no_match(value, self, path)
            value = plain
        out: dict[str, Any] = {}
        for k, x in value.items():
            sub = f"{path}.{k}" if isinstance(k, str) else f"{path}[{k!r}]"
            if x is UNSET:
                continue
            problem = field_name_problem(k)
            if problem is not None:
                raise ArgumentValidationError(
                    f"Invalid record key {format_value(k)}: {problem}\n{_path_line(sub)}"
                    f"Validator: {self!r}",
                    sub,
                )
            self.keys.validate(k, sub, id_table=id_table)
            out[k] = self.values.validate(x, sub, id_table=id_table)
        return out

    def __repr__(self) -> str:
        return f"v.record({self.keys!r}, {self.values!r})"

    def to_json(self) -> dict[str, Any]:
        """{"type": "record", "keys": ..., "values": ...}."""
        return {"type": "record", "keys": self.keys.to_json(), "values": self.values.to_json()}


class UnionValidator(Validator):
    """`v.union(*members)`: the first member that accepts wins."""

    kind = "union"

    def __init__(self, *members: Validator) -> None:
        if not members:
            raise TypeError("v.union(...) needs at least one member validator")
        self.members: tuple[Validator, ...] = tuple(
            _require_validator(m, f"v.union(...) member {i}") for i, m in enumerate(members)
        )

    def validate(self, value: Any, path: str = "", *, id_table: IdTableLookup | None = None) -> Any:
        """Return the result of the first member that accepts the value."""
        for m in self.members:
            try:
                return m.validate(value, path, id_table=id_table)
            except ArgumentValidationError:
                continue
        raise _no_match(value, self, path)

    def __repr__(self) -> str:
        return f"v.union({', '.join(repr(m) for m in self.members)})"

    def to_json(self) -> dict[str, Any]:
        """{"type": "union", "value": [...]}."""
        return {"type": "union", "value": [m.to_json() for m in self.members]}


# ---------------------------------------------------------------- v namespace


class _V:
    """The `v` namespace of validator constructors."""

    @staticmethod
    def string() -> StringValidator:
        """A string."""
        return StringValidator()

    @staticmethod
    def number() -> Float64Validator:
        """A float64 (same as v.float64())."""
        return Float64Validator("number")

    @staticmethod
    def float64() -> Float64Validator:
        """A float64."""
        return Float64Validator("float64")

    @staticmethod
    def int64() -> Int64Validator:
        """An Int64."""
        return Int64Validator()

    @staticmethod
    def boolean() -> BooleanValidator:
        """A bool."""
        return BooleanValidator()

    @staticmethod
    def null() -> NullValidator:
        """None."""
        return NullValidator()

    @staticmethod
    def bytes() -> BytesValidator:
        """Bytes."""
        return BytesValidator()

    @staticmethod
    def any() -> AnyValidator:
        """Any Convex value."""
        return AnyValidator()

    @staticmethod
    def id(table_name: str) -> IdValidator:
        """An id of a document in `table_name`."""
        return IdValidator(table_name)

    @staticmethod
    def literal(value: Any) -> LiteralValidator:
        """Exactly `value`."""
        return LiteralValidator(value)

    @staticmethod
    def array(item: Validator) -> ArrayValidator:
        """A list of `item`."""
        return ArrayValidator(item)

    @staticmethod
    def object(fields: Mapping[str, Validator]) -> ObjectValidator:
        """A dict with the given fields."""
        return ObjectValidator(fields)

    @staticmethod
    def record(keys: Validator, values: Validator) -> RecordValidator:
        """A dict mapping keys to values."""
        return RecordValidator(keys, values)

    @staticmethod
    def union(*members: Validator) -> UnionValidator:
        """Any of the members."""
        return UnionValidator(*members)

    @staticmethod
    def optional(inner: Validator) -> OptionalValidator:
        """An object field that may be missing."""
        return OptionalValidator(inner)

    @staticmethod
    def nullable(inner: Validator) -> UnionValidator:
        """`inner` or None (Convex's `v.nullable(x)`: `v.union(x, v.null())`)."""
        return UnionValidator(inner, NullValidator())

    def __repr__(self) -> str:
        return "v"


v = _V()


def as_validator(x: Any) -> Validator:
    """Turn a dict of validators into v.object(...); return a Validator unchanged."""
    if isinstance(x, Validator):
        return x
    if isinstance(x, Mapping):
        for key, val in x.items():
            if not isinstance(val, Validator):
                raise TypeError(
                    f"args field {key!r} must be a validator (v.*), "
                    f"got {type(val).__name__}: {val!r}"
                )
        return ObjectValidator(x)
    raise TypeError(
        f"expected a validator (v.*) or a dict of field validators, got {type(x).__name__}: {x!r}"
    )


_SIMPLE: dict[str, Callable[[], Validator]] = {
    "string": StringValidator,
    "float64": Float64Validator,
    "number": Float64Validator,
    "int64": Int64Validator,
    "boolean": BooleanValidator,
    "null": NullValidator,
    "bytes": BytesValidator,
    "any": AnyValidator,
}


def validator_from_json(d: Any) -> Validator:
    """Rebuild a validator from its to_json() description."""
    if not isinstance(d, Mapping) or not isinstance(d.get("type"), str):
        raise ValueError(f"not a validator description: {d!r}")
    if d.get("optional") is True:
        return OptionalValidator(
            validator_from_json({k: x for k, x in d.items() if k != "optional"})
        )
    t = d["type"]
    try:
        if t in _SIMPLE:
            return _SIMPLE[t]()
        if t == "id":
            return IdValidator(d["tableName"])
        if t == "literal":
            return LiteralValidator(decode_value(d["value"]))
        if t == "array":
            return ArrayValidator(validator_from_json(d["value"]))
        if t == "object":
            return ObjectValidator({k: validator_from_json(fd) for k, fd in d["fields"].items()})
        if t == "record":
            return RecordValidator(validator_from_json(d["keys"]), validator_from_json(d["values"]))
        if t == "union":
            return UnionValidator(*(validator_from_json(m) for m in d["value"]))
    except KeyError as e:
        raise ValueError(f"validator description {d!r} lacks {e}") from None
    raise ValueError(f"unknown validator type {t!r}")


pagination_opts_validator = v.object(
    {
        "numItems": v.number(),
        "cursor": v.union(v.string(), v.null()),
        "endCursor": v.optional(v.union(v.string(), v.null())),
        "id": v.optional(v.number()),
        "maximumRowsRead": v.optional(v.number()),
        "maximumBytesRead": v.optional(v.number()),
    }
)
