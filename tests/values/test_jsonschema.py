"""Validators → JSON Schema (app.values.jsonschema): the one generator, used by /openapi.json.

Each validator kind's schema is spelled out exactly, and every schema accepts exactly the
wire values its validator accepts (checked with a 2020-12 validator).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from app.db.ids import new_id
from app.values import (
    ArgumentValidationError,
    Int64,
    Validator,
    ValueEncodingError,
    encode_value,
    pagination_opts_validator,
    v,
)
from app.values.jsonschema import (
    ANY_VALUE,
    FIELD_NAME_SCHEMA,
    JSONSchema,
    args_schema,
    convex_value_schema,
    returns_schema,
    value_schema,
)

MESSAGE_ID = new_id("messages")
REF = {"$ref": "#/$defs/V"}

INT64: JSONSchema = {
    "type": "object",
    "properties": {
        "$integer": {
            "type": "string",
            "contentEncoding": "base64",
            "pattern": r"^[A-Za-z0-9+/]{10}[AEIMQUYcgkosw048]=$",
        }
    },
    "required": ["$integer"],
    "additionalProperties": False,
    "description": "int64: 8 bytes little-endian, base64",
    "x-convex-type": "int64",
}
BYTES: JSONSchema = {
    "type": "object",
    "properties": {
        "$bytes": {
            "type": "string",
            "contentEncoding": "base64",
            "pattern": r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
        }
    },
    "required": ["$bytes"],
    "additionalProperties": False,
    "description": "bytes: standard base64",
    "x-convex-type": "bytes",
}
SPECIAL_FLOAT: JSONSchema = {
    "type": "object",
    "properties": {
        "$float": {
            "type": "string",
            "enum": ["AAAAAAAA+H8=", "AAAAAAAA8H8=", "AAAAAAAA8P8=", "AAAAAAAAAIA="],
        }
    },
    "required": ["$float"],
    "additionalProperties": False,
    "description": "NaN, Infinity, -Infinity or -0 (8 bytes little-endian, base64)",
}
FLOAT64: JSONSchema = {"anyOf": [{"type": "number"}, SPECIAL_FLOAT], "x-convex-type": "float64"}
FIELD_NAME: JSONSchema = {
    "type": "string",
    "minLength": 1,
    "maxLength": 1024,
    "pattern": "^[ -#%-~][ -~]*$",
    "description": "A Convex field name: printable ASCII, not starting with '$'",
}
MESSAGES_ID: JSONSchema = {
    "type": "string",
    "description": "Id of a document in table messages",
    "x-convex-table": "messages",
}

# One row per validator kind (and per shape of record keys): its exact schema.
EXACT: list[tuple[Validator, JSONSchema]] = [
    (v.string(), {"type": "string"}),
    (v.number(), FLOAT64),
    (v.float64(), FLOAT64),
    (v.int64(), INT64),
    (v.boolean(), {"type": "boolean"}),
    (v.null(), {"type": "null"}),
    (v.bytes(), BYTES),
    (v.any(), {"description": "Any Convex value"}),
    (v.id("messages"), MESSAGES_ID),
    (v.literal("fast"), {"const": "fast"}),
    (v.literal(3), {"const": 3.0}),
    (v.literal(False), {"const": False}),
    (v.literal(Int64(5)), {"const": {"$integer": "BQAAAAAAAAA="}}),
    (v.array(v.null()), {"type": "array", "items": {"type": "null"}}),
    (v.optional(v.string()), {"type": "string"}),
    (v.object({}), {"type": "object", "properties": {}, "additionalProperties": False}),
    (
        v.object({"a": v.string(), "b": v.optional(v.array(v.int64()))}),
        {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "array", "items": INT64}},
            "required": ["a"],
            "additionalProperties": False,
        },
    ),
    (
        v.object({"b": v.optional(v.null())}),
        {"type": "object", "properties": {"b": {"type": "null"}}, "additionalProperties": False},
    ),
    (
        v.record(v.string(), v.bytes()),
        {"type": "object", "propertyNames": FIELD_NAME, "additionalProperties": BYTES},
    ),
    (
        v.record(v.id("messages"), v.boolean()),
        {
            "type": "object",
            "propertyNames": {"allOf": [FIELD_NAME, MESSAGES_ID]},
            "additionalProperties": {"type": "boolean"},
        },
    ),
    (
        v.record(v.union(v.literal("a"), v.literal("$b"), v.string()), v.null()),
        {
            "type": "object",
            "propertyNames": {
                "anyOf": [{"const": "a"}, {"allOf": [FIELD_NAME, {"const": "$b"}]}, FIELD_NAME]
            },
            "additionalProperties": {"type": "null"},
        },
    ),
    (
        v.union(v.string(), v.int64(), v.null()),
        {"anyOf": [{"type": "string"}, INT64, {"type": "null"}]},
    ),
]


@pytest.mark.parametrize(("validator", "schema"), EXACT, ids=[repr(c[0]) for c in EXACT])
def test_each_validator_kind_has_its_exact_schema(validator: Validator, schema: JSONSchema) -> None:
    assert value_schema(validator) == schema
    Draft202012Validator.check_schema(schema)


def test_every_validator_class_has_an_exact_schema_case() -> None:
    def subclasses(cls: type) -> set[type]:
        direct: set[type] = set(cls.__subclasses__())
        return direct.union(*(subclasses(c) for c in direct))

    kinds = {c for c in subclasses(Validator) if c.__module__ == Validator.__module__}
    assert kinds == {type(validator) for validator, _ in EXACT}


def test_the_field_name_schema_matches_the_encoding_limits() -> None:
    assert FIELD_NAME_SCHEMA == FIELD_NAME
    assert ANY_VALUE == {"description": "Any Convex value"}


def test_any_stands_for_the_given_schema_at_every_depth() -> None:
    validator = v.object({"a": v.any(), "b": v.array(v.record(v.string(), v.any()))})
    schema = value_schema(validator, REF)
    assert schema["properties"]["a"] == REF
    assert schema["properties"]["b"]["items"]["additionalProperties"] == REF


def test_an_unknown_validator_has_no_schema() -> None:
    class Odd(Validator):
        def validate(self, value: Any, path: str = "", *, id_table: Any = None) -> Any:
            return value

        def __repr__(self) -> str:
            return "odd()"

    with pytest.raises(TypeError, match="odd"):
        value_schema(Odd())


CASES: list[tuple[Validator, list[Any], list[Any]]] = [
    (v.string(), ["", "hello"], [1.0, None, b"x"]),
    (v.number(), [0.0, -2.5, 7, math.inf, math.nan, -0.0], ["1", True, Int64(1), None]),
    (v.int64(), [Int64(0), Int64(-(2**63)), Int64(2**63 - 1)], [1.0, "1", None, b"\x00" * 8]),
    (v.boolean(), [True, False], [0.0, "true", None]),
    (v.null(), [None], [0.0, "", False]),
    (v.bytes(), [b"", b"\x00\xff", bytes(range(256))], ["", 1.0, [1.0]]),
    (v.any(), [None, 1.0, "s", [Int64(1)], {"a": b"x"}], []),
    (v.id("messages"), [MESSAGE_ID], [1.0, None, [MESSAGE_ID]]),
    (v.literal("a"), ["a"], ["b", 1.0, None]),
    (v.literal(3), [3.0, 3], [4.0, "3", Int64(3)]),
    (v.literal(True), [True], [False, 1.0]),
    (v.literal(Int64(5)), [Int64(5)], [5.0, Int64(6)]),
    (v.array(v.int64()), [[], [Int64(1), Int64(2)]], [[1.0], Int64(1), {"0": Int64(1)}]),
    (v.object({}), [{}], [{"a": 1.0}, [], None]),
    (
        v.object({"a": v.string(), "b": v.optional(v.bytes())}),
        [{"a": "x"}, {"a": "x", "b": b"\x01"}],
        [{}, {"b": b"\x01"}, {"a": "x", "c": 1.0}, {"a": 1.0}, ["a"]],
    ),
    (
        v.record(v.string(), v.number()),
        [{}, {"x": 1.0, "y z": 2.0}],
        [{"x": "1"}, {"$x": 1.0}, {"é": 1.0}, [1.0]],
    ),
    (
        v.record(v.union(v.literal("a"), v.literal("b")), v.boolean()),
        [{}, {"a": True, "b": False}],
        [{"c": True}, {"a": 1.0}],
    ),
    (
        v.record(v.id("messages"), v.null()),
        [{}, {MESSAGE_ID: None}],
        [{"$x": None}, {MESSAGE_ID: 1.0}],
    ),
    (v.record(v.literal("$a"), v.null()), [{}], [{"$a": None}]),
    (
        v.union(v.string(), v.int64(), v.null()),
        ["s", Int64(3), None],
        [1.0, True, b"x"],
    ),
    (
        v.array(v.object({"n": v.union(v.literal("x"), v.array(v.number()))})),
        [[{"n": "x"}, {"n": [1.0, math.nan]}]],
        [[{"n": "y"}], [{"n": ["1"]}], [{}]],
    ),
    (
        pagination_opts_validator,
        [{"numItems": 10.0, "cursor": None}, {"numItems": 1.0, "cursor": "c", "id": 2.0}],
        [{"numItems": 10.0}, {"cursor": None}, {"numItems": "10", "cursor": None}],
    ),
]


def wire(value: Any) -> Any:
    """The wire form of a value; JSON that is no Convex value stays as it is."""
    try:
        return encode_value(value)
    except ValueEncodingError:
        return value


def accepts(validator: Validator, value: Any) -> bool:
    try:
        validator.validate(value)
    except ArgumentValidationError:
        return False
    return True


@pytest.mark.parametrize(("validator", "good", "bad"), CASES, ids=[repr(c[0]) for c in CASES])
def test_schema_accepts_what_the_validator_accepts_and_rejects_the_rest(
    validator: Validator, good: list[Any], bad: list[Any]
) -> None:
    schema = value_schema(validator)
    Draft202012Validator.check_schema(schema)
    checker = Draft202012Validator(schema)
    for value in good:
        assert accepts(validator, value), value
        assert checker.is_valid(encode_value(value)), (value, encode_value(value))
    for value in bad:
        assert not accepts(validator, value), value
        assert not checker.is_valid(wire(value)), (value, wire(value))


def test_functions_without_validators_take_any_object_and_return_any_value() -> None:
    for validator in (None, v.any()):
        schema = args_schema(validator)
        assert schema == {
            "type": "object",
            "propertyNames": FIELD_NAME,
            "description": "Any arguments (the function declares no args validator)",
        }
        checker = Draft202012Validator(schema)
        assert checker.is_valid({"anything": [1, "x"]})
        assert not checker.is_valid([])
        assert not checker.is_valid({"$reserved": 1})
    assert args_schema(None, REF)["additionalProperties"] == REF
    assert returns_schema(None) == {
        "description": "Any Convex value (the function declares no returns validator)"
    }
    assert returns_schema(None, REF) == {
        **REF,
        "description": "Any Convex value (the function declares no returns validator)",
    }
    assert Draft202012Validator(returns_schema(None)).is_valid({"x": [None]})


def test_declared_validators_describe_args_and_returns_as_values() -> None:
    args = v.object({"id": v.id("messages")})
    assert args_schema(args) == value_schema(args)
    assert returns_schema(v.int64()) == INT64
    assert returns_schema(v.any(), REF) == REF


def test_an_optional_return_may_arrive_as_null() -> None:
    assert returns_schema(v.optional(v.int64())) == {"anyOf": [INT64, {"type": "null"}]}


def test_the_any_value_schema_takes_convex_values_and_refuses_reserved_field_names() -> None:
    schema = {"$defs": {"V": convex_value_schema("#/$defs/V")}, "$ref": "#/$defs/V"}
    Draft202012Validator.check_schema(schema)
    checker = Draft202012Validator(schema)
    good = [None, True, 1.5, "s", [1, [2]], {"a": {"b": [None]}}, encode_value(Int64(3))]
    for value in [*good, encode_value(b"xy"), encode_value(math.nan)]:
        assert checker.is_valid(value), value
    for value in [{"$x": 1}, {"a": {"$x": 1}}, [{"": 1}], {"é": 1}, {"$integer": "abc"}]:
        assert not checker.is_valid(value), value
