"""Validators → JSON Schema: the schema accepts exactly the wire values the validator accepts."""

from __future__ import annotations

import math
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from app.codegen.jsonschema import args_schema, convex_value_schema, returns_schema, value_schema
from app.db.ids import new_id
from app.values import (
    ArgumentValidationError,
    Int64,
    Validator,
    ValueEncodingError,
    encode_value,
    v,
)

MESSAGE_ID = new_id("messages")

CASES: list[tuple[Validator, list[Any], list[Any]]] = [
    (v.string(), ["", "hello"], [1.0, None, b"x"]),
    (v.number(), [0.0, -2.5, 7, math.inf, math.nan, -0.0], ["1", True, Int64(1), None]),
    (v.int64(), [Int64(0), Int64(-(2**63)), Int64(2**63 - 1)], [1.0, "1", None, b"\x00" * 8]),
    (v.boolean(), [True, False], [0.0, "true", None]),
    (v.null(), [None], [0.0, "", False]),
    (v.bytes(), [b"", b"\x00\xff", bytes(range(256))], ["", 1.0, [1.0]]),
    (v.id("messages"), [MESSAGE_ID], [1.0, None, [MESSAGE_ID]]),
    (v.literal("a"), ["a"], ["b", 1.0, None]),
    (v.literal(3), [3.0, 3], [4.0, "3", Int64(3)]),
    (v.literal(True), [True], [False, 1.0]),
    (v.literal(Int64(5)), [Int64(5)], [5.0, Int64(6)]),
    (v.array(v.int64()), [[], [Int64(1), Int64(2)]], [[1.0], Int64(1), {"0": Int64(1)}]),
    (
        v.object({"a": v.string(), "b": v.optional(v.bytes())}),
        [{"a": "x"}, {"a": "x", "b": b"\x01"}],
        [{}, {"b": b"\x01"}, {"a": "x", "c": 1.0}, {"a": 1.0}, ["a"]],
    ),
    (
        v.record(v.string(), v.number()),
        [{}, {"x": 1.0, "y z": 2.0}],
        [{"x": "1"}, {"$x": 1.0}, [1.0]],
    ),
    (
        v.record(v.union(v.literal("a"), v.literal("b")), v.boolean()),
        [{}, {"a": True, "b": False}],
        [{"c": True}, {"a": 1.0}],
    ),
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


def test_id_schema_is_a_string_naming_its_table() -> None:
    assert value_schema(v.id("_storage")) == {
        "type": "string",
        "description": "Id of a document in table _storage",
        "x-convex-table": "_storage",
    }


def test_int64_and_bytes_schemas_name_their_convex_type() -> None:
    assert value_schema(v.int64())["x-convex-type"] == "int64"
    assert value_schema(v.int64())["required"] == ["$integer"]
    assert value_schema(v.bytes())["x-convex-type"] == "bytes"
    assert value_schema(v.bytes())["properties"]["$bytes"]["contentEncoding"] == "base64"


def test_optional_fields_are_left_out_of_required() -> None:
    schema = value_schema(v.object({"a": v.string(), "b": v.optional(v.string())}))
    assert schema["required"] == ["a"]
    assert set(schema["properties"]) == {"a", "b"}
    assert value_schema(v.object({"b": v.optional(v.null())})).get("required") is None


def test_literal_schemas_are_consts_of_the_encoded_value() -> None:
    assert value_schema(v.literal("fast")) == {"const": "fast"}
    assert value_schema(v.literal(Int64(2))) == {"const": encode_value(Int64(2))}
    union = value_schema(v.union(v.literal("a"), v.literal(False)))
    assert union == {"anyOf": [{"const": "a"}, {"const": False}]}


def test_functions_without_validators_take_any_object_and_return_any_value() -> None:
    schema = args_schema(None)
    checker = Draft202012Validator(schema)
    assert checker.is_valid({"anything": [1, "x"]})
    assert not checker.is_valid([])
    assert not checker.is_valid({"$reserved": 1})
    assert Draft202012Validator(returns_schema(None)).is_valid({"x": [None]})


def test_the_any_value_schema_takes_convex_values_and_refuses_reserved_field_names() -> None:
    schema = {"$defs": {"V": convex_value_schema("#/$defs/V")}, "$ref": "#/$defs/V"}
    Draft202012Validator.check_schema(schema)
    checker = Draft202012Validator(schema)
    good = [None, True, 1.5, "s", [1, [2]], {"a": {"b": [None]}}, encode_value(Int64(3))]
    for value in [*good, encode_value(b"xy"), encode_value(math.nan)]:
        assert checker.is_valid(value), value
    for value in [{"$x": 1}, {"a": {"$x": 1}}, [{"": 1}], {"é": 1}, {"$integer": "abc"}]:
        assert not checker.is_valid(value), value
