"""JSON Schema (2020-12) of validators: the values they accept, in Convex's JSON wire encoding.

The one JSON-schema generator: the OpenAPI document (`app/http/openapi.py`) and its tests
describe functions' arguments and results with it. A schema accepts exactly the wire values
its validator accepts, with two deliberate exceptions: an id is any string (the id format is
opaque to clients) and float64 takes any JSON number (the safe-integer bound is not spelled
out).
"""

from __future__ import annotations

import math
from typing import Any, Final

from app.values.encoding import MAX_FIELD_NAME_LENGTH, encode_value, field_name_problem
from app.values.validators import (
    AnyValidator,
    ArrayValidator,
    BooleanValidator,
    BytesValidator,
    Float64Validator,
    IdValidator,
    Int64Validator,
    LiteralValidator,
    NullValidator,
    ObjectValidator,
    OptionalValidator,
    RecordValidator,
    StringValidator,
    UnionValidator,
    Validator,
)

__all__ = [
    "ANY_VALUE",
    "FIELD_NAME_SCHEMA",
    "JSONSchema",
    "args_schema",
    "convex_value_schema",
    "returns_schema",
    "value_schema",
]

JSONSchema = dict[str, Any]
"""A JSON Schema document: a JSON object (its members are arbitrary JSON)."""

# 8 bytes of standard base64: 11 characters and one "=" (the last one carries 4 bits).
_B64_8_BYTES: Final = r"^[A-Za-z0-9+/]{10}[AEIMQUYcgkosw048]=$"
_B64: Final = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
_SPECIAL_FLOATS: Final[list[str]] = [
    encode_value(x)["$float"] for x in (math.nan, math.inf, -math.inf, -0.0)
]

FIELD_NAME_SCHEMA: Final[JSONSchema] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_FIELD_NAME_LENGTH,
    "pattern": "^[ -#%-~][ -~]*$",
    "description": "A Convex field name: printable ASCII, not starting with '$'",
}
ANY_VALUE: Final[JSONSchema] = {"description": "Any Convex value"}


def _tagged(tag: str, pattern: str, convex_type: str, description: str) -> JSONSchema:
    return {
        "type": "object",
        "properties": {tag: {"type": "string", "contentEncoding": "base64", "pattern": pattern}},
        "required": [tag],
        "additionalProperties": False,
        "description": description,
        "x-convex-type": convex_type,
    }


def _int64() -> JSONSchema:
    return _tagged("$integer", _B64_8_BYTES, "int64", "int64: 8 bytes little-endian, base64")


def _bytes() -> JSONSchema:
    return _tagged("$bytes", _B64, "bytes", "bytes: standard base64")


def _special_float() -> JSONSchema:
    return {
        "type": "object",
        "properties": {"$float": {"type": "string", "enum": list(_SPECIAL_FLOATS)}},
        "required": ["$float"],
        "additionalProperties": False,
        "description": "NaN, Infinity, -Infinity or -0 (8 bytes little-endian, base64)",
    }


def _field_name() -> JSONSchema:
    return dict(FIELD_NAME_SCHEMA)


def convex_value_schema(ref: str) -> JSONSchema:
    """A schema of any Convex value, recursing through `ref` (where this schema lives)."""
    return {
        "description": "Any Convex value in Convex's JSON encoding",
        "anyOf": [
            {"type": "null"},
            {"type": "boolean"},
            {"type": "number"},
            {"type": "string"},
            _int64(),
            _bytes(),
            _special_float(),
            {"type": "array", "items": {"$ref": ref}},
            {
                "type": "object",
                "propertyNames": _field_name(),
                "additionalProperties": {"$ref": ref},
            },
        ],
    }


def value_schema(validator: Validator, any_value: JSONSchema | None = None) -> JSONSchema:
    """The JSON Schema of values `validator` accepts, as they travel on the wire.

    `any_value` stands for `v.any()` (default: `ANY_VALUE`, no constraint), e.g. a `$ref`
    to a `convex_value_schema(...)`. `v.optional(x)` describes as `x`: optionality lives in
    the enclosing object's `required`.
    """
    return _Schemas(any_value if any_value is not None else ANY_VALUE).of(validator)


class _Schemas:
    def __init__(self, any_value: JSONSchema) -> None:
        self.any_value = any_value

    def of(self, validator: Validator) -> JSONSchema:
        if isinstance(validator, OptionalValidator):
            return self.of(validator.inner)
        if isinstance(validator, StringValidator):
            return {"type": "string"}
        if isinstance(validator, Float64Validator):
            return {"anyOf": [{"type": "number"}, _special_float()], "x-convex-type": "float64"}
        if isinstance(validator, Int64Validator):
            return _int64()
        if isinstance(validator, BooleanValidator):
            return {"type": "boolean"}
        if isinstance(validator, NullValidator):
            return {"type": "null"}
        if isinstance(validator, BytesValidator):
            return _bytes()
        if isinstance(validator, AnyValidator):
            return dict(self.any_value)
        if isinstance(validator, IdValidator):
            return {
                "type": "string",
                "description": f"Id of a document in table {validator.table_name}",
                "x-convex-table": validator.table_name,
            }
        if isinstance(validator, LiteralValidator):
            return {"const": encode_value(validator.value)}
        if isinstance(validator, ArrayValidator):
            return {"type": "array", "items": self.of(validator.item)}
        if isinstance(validator, ObjectValidator):
            return self.object(validator)
        if isinstance(validator, RecordValidator):
            return self.record(validator)
        if isinstance(validator, UnionValidator):
            return {"anyOf": [self.of(m) for m in validator.members]}
        raise TypeError(f"No JSON Schema for validator {validator!r}")

    def object(self, validator: ObjectValidator) -> JSONSchema:
        schema: JSONSchema = {
            "type": "object",
            "properties": {k: self.of(fv) for k, fv in validator.fields.items()},
        }
        required = [k for k, fv in validator.fields.items() if not fv.is_optional]
        if required:
            schema["required"] = required
        schema["additionalProperties"] = False
        return schema

    def record(self, validator: RecordValidator) -> JSONSchema:
        return {
            "type": "object",
            "propertyNames": self.key(validator.keys),
            "additionalProperties": self.of(validator.values),
        }

    def key(self, keys: Validator) -> JSONSchema:
        """A record key: a field name (checked before the keys validator) that `keys` takes."""
        if isinstance(keys, StringValidator):
            return _field_name()
        if isinstance(keys, UnionValidator):
            return {"anyOf": [self.key(m) for m in keys.members]}
        if isinstance(keys, LiteralValidator) and field_name_problem(keys.value) is None:
            return self.of(keys)
        return {"allOf": [_field_name(), self.of(keys)]}


def args_schema(validator: Validator | None, any_value: JSONSchema | None = None) -> JSONSchema:
    """The schema of a function's arguments object (`None` or `v.any()`: any object)."""
    if validator is None or isinstance(validator, AnyValidator):
        schema: JSONSchema = {
            "type": "object",
            "propertyNames": _field_name(),
            "description": "Any arguments (the function declares no args validator)",
        }
        if any_value is not None:
            schema["additionalProperties"] = any_value
        return schema
    return value_schema(validator, any_value)


def returns_schema(validator: Validator | None, any_value: JSONSchema | None = None) -> JSONSchema:
    """The schema of a function's return value (`None`: any Convex value)."""
    if validator is None:
        return {
            **(any_value if any_value is not None else ANY_VALUE),
            "description": "Any Convex value (the function declares no returns validator)",
        }
    if isinstance(validator, OptionalValidator):  # returning nothing reaches clients as null
        return {"anyOf": [value_schema(validator.inner, any_value), {"type": "null"}]}
    return value_schema(validator, any_value)
