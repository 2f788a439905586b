"""Tests for validators (`v`)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.values import (
    UNSET,
    ArgumentValidationError,
    Int64,
    Validator,
    as_validator,
    pagination_opts_validator,
    v,
    validator_from_json,
)


def error_of(validator: Validator, value: Any, **kw: Any) -> ArgumentValidationError:
    with pytest.raises(ArgumentValidationError) as ei:
        validator.validate(value, **kw)
    return ei.value


def test_mismatch_message_names_path_value_and_validator() -> None:
    validator = v.object(
        {"messages": v.array(v.object({"author": v.string(), "body": v.string()}))}
    )
    e = error_of(validator, {"messages": [{"author": 5, "body": "b"}]})
    assert e.message == (
        "Value does not match validator.\n"
        "Path: .messages[0].author\n"
        "Value: 5.0\n"
        "Validator: v.string()"
    )
    assert e.path == ".messages[0].author"
    assert str(e) == e.message
    assert isinstance(e, ValueError)


def test_top_level_mismatch_has_no_path_line() -> None:
    e = error_of(v.string(), None)
    assert e.message == "Value does not match validator.\nValue: null\nValidator: v.string()"


def test_missing_required_field_message() -> None:
    validator = v.object({"author": v.string(), "body": v.string()})
    e = error_of(validator, {"author": "a"})
    assert e.message == (
        "Object is missing the required field `body`. Consider wrapping the field validator "
        "in `v.optional(...)` if this is expected.\n\n"
        'Object: {author: "a"}\n'
        'Validator: v.object({"author": v.string(), "body": v.string()})'
    )


def test_unset_counts_as_missing_for_required_fields() -> None:
    e = error_of(v.object({"a": v.string()}), {"a": UNSET})
    assert "missing the required field `a`" in e.message


def test_extra_field_message_with_nested_path() -> None:
    validator = v.object({"inner": v.object({"a": v.string()})})
    e = error_of(validator, {"inner": {"a": "s", "x": 1}})
    assert e.message == (
        "Object contains extra field `x` that is not in the validator.\n\n"
        "Path: .inner\n"
        'Object: {a: "s", x: 1.0}\n'
        'Validator: v.object({"a": v.string()})'
    )
    assert e.path == ".inner"


def test_optional_fields_may_be_absent_or_unset_and_are_omitted() -> None:
    validator = v.object({"a": v.string(), "b": v.optional(v.number())})
    assert validator.validate({"a": "x"}) == {"a": "x"}
    assert validator.validate({"a": "x", "b": UNSET}) == {"a": "x"}
    assert validator.validate({"a": "x", "b": 2}) == {"a": "x", "b": 2.0}
    assert "Path: .b" in error_of(validator, {"a": "x", "b": None}).message
    assert v.optional(v.string()).validate(UNSET) is UNSET


def test_float64_normalizes_ints_and_rejects_bool_and_int64() -> None:
    for validator in (v.number(), v.float64()):
        out = validator.validate(3)
        assert out == 3.0 and type(out) is float
        assert validator.validate(2.5) == 2.5
        error_of(validator, True)
        error_of(validator, Int64(3))
        error_of(validator, "3")
        error_of(validator, 2**60)


def test_int64_accepts_only_int64() -> None:
    assert type(v.int64().validate(Int64(3))) is Int64
    error_of(v.int64(), 3)
    error_of(v.int64(), 3.0)


def test_simple_validators() -> None:
    assert v.string().validate("s") == "s"
    assert v.boolean().validate(False) is False
    error_of(v.boolean(), 0)
    assert v.null().validate(None) is None
    error_of(v.null(), UNSET)
    assert v.bytes().validate(bytearray(b"ab")) == b"ab"
    error_of(v.bytes(), "ab")


def test_any_accepts_convex_values_and_normalizes() -> None:
    out = v.any().validate({"a": [1, (2, Int64(3))], "b": UNSET, "c": b"x"})
    assert out == {"a": [1.0, [2.0, Int64(3)]], "c": b"x"}
    assert type(out["a"][0]) is float
    e = error_of(v.object({"x": v.any()}), {"x": {"k": {1, 2}}})
    assert e.path == ".x.k"
    assert "set" in e.message


def test_id_checks_table_when_a_lookup_is_given() -> None:
    def lookup(s: str) -> str | None:
        return {"m1": "messages", "u1": "users"}.get(s)

    validator = v.id("messages")
    assert validator.validate("m1", id_table=lookup) == "m1"
    assert validator.validate("anything") == "anything"
    e = error_of(validator, "abc", id_table=lookup)
    assert e.message == (
        'Value does not match validator.\nValue: "abc"\nValidator: v.id("messages")'
    )
    error_of(validator, "u1", id_table=lookup)
    error_of(validator, 5)
    nested = v.object({"ids": v.array(v.union(v.id("users"), v.null()))})
    assert nested.validate({"ids": ["u1", None]}, id_table=lookup) == {"ids": ["u1", None]}
    e = error_of(nested, {"ids": ["m1"]}, id_table=lookup)
    assert e.path == ".ids[0]"


def test_literals_compare_type_and_value() -> None:
    assert v.literal("a").validate("a") == "a"
    error_of(v.literal("a"), "b")
    assert v.literal(1).validate(1) == 1.0
    assert v.literal(1).validate(1.0) == 1.0
    error_of(v.literal(1), True)
    error_of(v.literal(True), 1)
    error_of(v.literal(1), Int64(1))
    assert v.literal(Int64(1)).validate(Int64(1)) == 1
    error_of(v.literal(Int64(1)), 1.0)
    assert v.literal(False).validate(False) is False


def test_union_uses_the_first_member_that_accepts() -> None:
    validator = v.union(v.literal("a"), v.null())
    assert validator.validate("a") == "a"
    assert validator.validate(None) is None
    e = error_of(validator, "b")
    assert e.message.endswith('Validator: v.union(v.literal("a"), v.null())')
    assert v.union(v.number(), v.string()).validate(1) == 1.0


def test_array_validates_each_item_and_returns_a_list() -> None:
    assert v.array(v.number()).validate((1, 2)) == [1.0, 2.0]
    assert error_of(v.array(v.number()), [1, "x"]).path == "[1]"
    error_of(v.array(v.number()), {"a": 1})


def test_record_validates_keys_and_values() -> None:
    validator = v.record(v.string(), v.number())
    assert validator.validate({"a": 1, "b": 2.5}) == {"a": 1.0, "b": 2.5}
    assert error_of(validator, {"a": "x"}).path == ".a"
    error_of(validator, {"$a": 1})
    error_of(validator, [1])
    keyed = v.record(v.union(v.literal("x"), v.literal("y")), v.boolean())
    assert keyed.validate({"x": True}) == {"x": True}
    error_of(keyed, {"z": True})


def test_reprs_use_convex_notation() -> None:
    assert repr(v.string()) == "v.string()"
    assert repr(v.number()) == "v.number()"
    assert repr(v.float64()) == "v.float64()"
    assert repr(v.id("messages")) == 'v.id("messages")'
    assert (
        repr(v.object({"a": v.string(), "b": v.optional(v.number())}))
        == 'v.object({"a": v.string(), "b": v.optional(v.number())})'
    )
    assert repr(v.union(v.literal("a"), v.null())) == 'v.union(v.literal("a"), v.null())'
    assert repr(v.record(v.string(), v.any())) == "v.record(v.string(), v.any())"
    assert repr(v.array(v.bytes())) == "v.array(v.bytes())"
    assert repr(v.literal(True)) == "v.literal(True)"
    assert repr(v.literal(Int64(2))) == "v.literal(Int64(2))"
    assert repr(v.object({})) == "v.object({})"


ALL_KINDS = [
    v.string(),
    v.number(),
    v.float64(),
    v.int64(),
    v.boolean(),
    v.null(),
    v.bytes(),
    v.any(),
    v.id("messages"),
    v.literal("a"),
    v.literal(2.5),
    v.literal(True),
    v.literal(Int64(-3)),
    v.array(v.union(v.string(), v.int64())),
    v.object({"a": v.string(), "b": v.optional(v.object({"c": v.literal(1)}))}),
    v.record(v.id("users"), v.array(v.any())),
    v.optional(v.string()),
    pagination_opts_validator,
]


@pytest.mark.parametrize("validator", ALL_KINDS, ids=repr)
def test_to_json_round_trips_through_validator_from_json(validator: Validator) -> None:
    d = validator.to_json()
    again = validator_from_json(orjson.loads(orjson.dumps(d)))
    assert again == validator
    assert again.to_json() == d
    assert again.is_optional == validator.is_optional
    assert hash(again) == hash(validator)


def test_to_json_shape_of_objects() -> None:
    assert v.object({"a": v.string(), "b": v.optional(v.number())}).to_json() == {
        "type": "object",
        "fields": {
            "a": {"type": "string", "optional": False},
            "b": {"type": "float64", "optional": True},
        },
    }


def test_equality_is_structural() -> None:
    assert v.number() == v.float64()
    assert v.object({"a": v.string(), "b": v.null()}) == v.object({"b": v.null(), "a": v.string()})
    assert v.literal(True) != v.literal(1)
    assert v.id("a") != v.id("b")
    assert v.union(v.string(), v.null()) != v.union(v.null(), v.string())
    assert v.string() != "v.string()"


def test_validator_from_json_rejects_garbage() -> None:
    for bad in [{}, {"type": "nope"}, {"type": "id"}, "string", None]:
        with pytest.raises(ValueError):
            validator_from_json(bad)


def test_only_optional_is_optional() -> None:
    assert v.optional(v.string()).is_optional
    assert not any(
        x.is_optional for x in ALL_KINDS if not isinstance(x, type(v.optional(v.null())))
    )


def test_as_validator() -> None:
    obj = as_validator({"a": v.string()})
    assert obj == v.object({"a": v.string()})
    assert obj.fields == {"a": v.string()}  # type: ignore[attr-defined]
    s = v.string()
    assert as_validator(s) is s
    with pytest.raises(TypeError, match="'author'"):
        as_validator({"author": str})
    with pytest.raises(TypeError, match="validator"):
        as_validator(5)
    with pytest.raises(TypeError):
        as_validator([v.string()])


@pytest.mark.parametrize(
    "make",
    [
        lambda: v.id(5),  # type: ignore[arg-type]
        lambda: v.id(""),
        lambda: v.array("x"),  # type: ignore[arg-type]
        lambda: v.object({"$a": v.string()}),
        lambda: v.object({"a": "string"}),  # type: ignore[dict-item]
        lambda: v.object(["a"]),  # type: ignore[arg-type]
        lambda: v.literal(set()),
        lambda: v.literal(None),
        lambda: v.literal(float("nan")),
        lambda: v.literal(2**60),
        lambda: v.union(),
        lambda: v.union(v.string(), "x"),  # type: ignore[arg-type]
        lambda: v.optional(v.optional(v.string())),
        lambda: v.array(v.optional(v.string())),
        lambda: v.record(v.number(), v.string()),
        lambda: v.record(v.string(), v.optional(v.string())),
    ],
)
def test_constructors_check_their_inputs(make: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        make()


def test_pagination_opts_validator() -> None:
    assert pagination_opts_validator.validate({"numItems": 10, "cursor": None}) == {
        "numItems": 10.0,
        "cursor": None,
    }
    full = {
        "numItems": 5.0,
        "cursor": "c",
        "endCursor": None,
        "id": 1.0,
        "maximumRowsRead": 10.0,
        "maximumBytesRead": 100.0,
    }
    assert pagination_opts_validator.validate(full) == full
    error_of(pagination_opts_validator, {"numItems": 10})
    error_of(pagination_opts_validator, {"numItems": 10, "cursor": None, "foo": 1})


def test_long_values_are_truncated_in_messages() -> None:
    e = error_of(v.string(), list(range(10_000)))
    assert len(e.message) < 1200
