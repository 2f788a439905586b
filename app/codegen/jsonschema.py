"""JSON Schema (2020-12) of validators, describing values in Convex's JSON wire encoding."""

from __future__ import annotations

import math
from typing import Any

from app.values import (
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
    encode_value,
)
from app.values.encoding import MAX_FIELD_NAME_LENGTH

__all__ = [
    "ANY_VALUE",
    "FIELD_NAME_SCHEMA",
    "args_schema",
    "convex_value_schema",
    "returns_schema",
    "value_schema",
]

# 8 bytes of standard base64: 11 characters and one "=" (the last one carries 4 bits).
_B64_8_BYTES = r"^[A-Za-z0-9+/]{10}[AEIMQUYcgkosw048]=$"
_B64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
_SPECIAL_FLOATS = [encode_value(x)["$float"] for x in (math.nan, math.inf, -math.inf, -0.0)]

FIELD_NAME_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_FIELD_NAME_LENGTH,
    "pattern": "^[ -#%-~][ -~]*$",
    "description": "A Convex field name: printable ASCII, not starting with '$'",
}
ANY_VALUE: dict[str, Any] = {"description": "Any Convex value"}


def _tagged(tag: str, pattern: str, convex_type: str, description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {tag: {"type": "string", "contentEncoding": "base64", "pattern": pattern}},
        "required": [tag],
        "additionalProperties": False,
        "description": description,
        "x-convex-type": convex_type,
    }


def _int64() -> dict[str, Any]:
    return _tagged("$integer", _B64_8_BYTES, "int64", "int64: 8 bytes little-endian, base64")


def _bytes() -> dict[str, Any]:
    return _tagged("$bytes", _B64, "bytes", "bytes: standard base64")


def _special_float() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"$float": {"type": "string", "enum": list(_SPECIAL_FLOATS)}},
        "required": ["$float"],
        "additionalProperties": False,
        "description": "NaN, Infinity, -Infinity or -0 (8 bytes little-endian, base64)",
    }


def convex_value_schema(ref: str) -> dict[str, Any]:
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
                "propertyNames": dict(FIELD_NAME_SCHEMA),
                "additionalProperties": {"$ref": ref},
            },
        ],
    }


def value_schema(validator: Validator, any_value: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON Schema of values `validator` accepts, as they travel on the wire.

    `any_value` stands for `v.any()` (default: no constraint), e.g. a `$ref` to a
    `convex_value_schema(...)`.
    """
    return _Schemas(any_value if any_value is not None else ANY_VALUE).of(validator)


class _Schemas:
    def __init__(self, any_value: dict[str, Any]) -> None:
        self.any_value = any_value

    def of(self, validator: Validator) -> dict[str, Any]:
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
            keys = validator.keys
            return {
                "type": "object",
                "propertyNames": (
                    dict(FIELD_NAME_SCHEMA) if isinstance(keys, StringValidator) else self.of(keys)
                ),
                "additionalProperties": self.of(validator.values),
            }
        if isinstance(validator, UnionValidator):
            return {"anyOf": [self.of(m) for m in validator.members]}
        raise TypeError(f"No JSON Schema for validator {validator!r}")

    def object(self, validator: ObjectValidator) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {k: self.of(fv) for k, fv in validator.fields.items()},
        }
        required = [k for k, fv in validator.fields.items() if not fv.is_optional]
        if required:
            schema["required"] = required
        schema["additionalProperties"] = False
        return schema


def args_schema(
    validator: Validator | None, any_value: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The schema of a function's arguments object (`None`: any object)."""
    if validator is None or isinstance(validator, AnyValidator):
        schema: dict[str, Any] = {
            "type": "object",
            "propertyNames": dict(FIELD_NAME_SCHEMA),
            "description": "Any arguments (the function declares no args validator)",
        }
        if any_value is not None:
            schema["additionalProperties"] = any_value
        return schema
    return value_schema(validator, any_value)


def returns_schema(
    validator: Validator | None, any_value: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The schema of a function's return value (`None`: any Convex value)."""
    if validator is None:
        return {
            **(any_value if any_value is not None else ANY_VALUE),
            "description": "Any Convex value (the function declares no returns validator)",
        }
    if isinstance(validator, OptionalValidator):  # returning nothing reaches clients as null
        return {"anyOf": [value_schema(validator.inner, any_value), {"type": "null"}]}
    return value_schema(validator, any_value)
