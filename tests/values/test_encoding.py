"""Tests for Convex value encoding (convex_encoded_json)."""

from __future__ import annotations

import copy
import math
import pickle
import struct
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.values import (
    UNSET,
    ConvexError,
    Int64,
    ValueEncodingError,
    check_document_fields,
    decode_value,
    dumps,
    encode_value,
    json_size,
    loads,
)

field_names = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=12
).filter(lambda s: not s.startswith("$"))

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(Int64),
    st.text(),
    st.binary(),
)

convex_values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(field_names, children, max_size=5),
    ),
    max_leaves=30,
)


def same(a: Any, b: Any) -> bool:
    """Exact equality: floats bitwise, types preserved."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def wire_round_trip(x: Any) -> Any:
    return decode_value(orjson.loads(orjson.dumps(encode_value(x))))


@settings(max_examples=300, deadline=None)
@given(convex_values)
def test_every_convex_value_round_trips_exactly_through_the_wire(x: Any) -> None:
    assert same(wire_round_trip(x), x)
    assert same(loads(dumps(x)), x)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_floats_round_trip_bitwise(f: float) -> None:
    out = loads(dumps(f))
    assert type(out) is float
    assert struct.pack("<d", out) == struct.pack("<d", f)


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_int64_type_and_value_are_preserved(n: int) -> None:
    out = loads(dumps(Int64(n)))
    assert type(out) is Int64
    assert out == n


@given(st.integers(min_value=-(2**53), max_value=2**53))
def test_plain_ints_encode_as_floats_and_come_back_as_floats(n: int) -> None:
    out = loads(dumps(n))
    assert type(out) is float
    assert out == n


def test_bare_json_numbers_decode_to_float() -> None:
    decoded = loads(b'{"a": 5, "b": [1, -2, 0], "c": 1e3}')
    assert same(decoded, {"a": 5.0, "b": [1.0, -2.0, 0.0], "c": 1000.0})
    assert all(type(x) is float for x in loads(b"[5, 0, -7, 12345678901234567890]"))


def test_protocol_examples() -> None:
    assert encode_value(Int64(1)) == {"$integer": "AQAAAAAAAAA="}
    assert encode_value(math.nan) == {"$float": "AAAAAAAA+H8="}
    assert encode_value(-0.0) == {"$float": "AAAAAAAAAIA="}
    assert encode_value(math.inf) == {"$float": "AAAAAAAA8H8="}
    assert encode_value(b"\x01\x02\x03") == {"$bytes": "AQID"}
    assert decode_value({"$integer": "AQAAAAAAAAA="}) == Int64(1)
    assert math.isnan(decode_value({"$float": "AAAAAAAA+H8="}))
    neg_zero = decode_value({"$float": "AAAAAAAAAIA="})
    assert neg_zero == 0.0 and math.copysign(1.0, neg_zero) < 0
    assert decode_value({"$float": "AAAAAAAA8H8="}) == math.inf
    assert decode_value({"$bytes": "AQID"}) == b"\x01\x02\x03"


def test_negative_int64_uses_twos_complement() -> None:
    assert encode_value(Int64(-1)) == {"$integer": "//////////8="}
    assert decode_value({"$integer": "//////////8="}) == -1


def test_float64_is_always_written_with_a_decimal_point() -> None:
    assert dumps(5) == b"5.0"
    assert dumps(5.0) == b"5.0"
    assert dumps({"likes": 0}) == b'{"likes":0.0}'
    assert dumps([1, 2.5]) == b"[1.0,2.5]"


def test_ordinary_python_types_encode_as_expected() -> None:
    assert encode_value(None) is None
    assert encode_value(True) is True
    assert encode_value("hé") == "hé"
    assert encode_value((1, "a")) == [1.0, "a"]
    assert encode_value(bytearray(b"\x00")) == {"$bytes": "AA=="}
    assert encode_value(memoryview(b"\x00")) == {"$bytes": "AA=="}


def test_unset_fields_are_dropped_from_objects() -> None:
    assert encode_value({"a": 1, "b": UNSET}) == {"a": 1.0}


def test_unset_outside_an_object_field_is_rejected() -> None:
    with pytest.raises(ValueEncodingError, match=r"at \[1\]"):
        encode_value([1, UNSET])
    with pytest.raises(ValueEncodingError):
        encode_value(UNSET)


def test_unsupported_types_are_rejected_naming_type_and_path() -> None:
    with pytest.raises(ValueEncodingError) as ei:
        encode_value({"a": [1, 2, {"s": {1, 2}}]})
    assert "set" in str(ei.value)
    assert ei.value.path == ".a[2].s"
    with pytest.raises(ValueEncodingError, match="object"):
        encode_value(object())


def test_dollar_field_names_are_rejected_with_the_path() -> None:
    with pytest.raises(ValueEncodingError) as ei:
        encode_value({"a": [0, 1, {"$x": 1}]})
    assert str(ei.value) == "Invalid value at .a[2].$x: field names must not start with '$'"


@pytest.mark.parametrize(
    "key",
    ["", "é", "a\tb", "a\x7f", "x" * 1025, 5, None],
)
def test_invalid_field_names_are_rejected(key: Any) -> None:
    with pytest.raises(ValueEncodingError):
        encode_value({key: 1})
    if isinstance(key, str):
        with pytest.raises(ValueEncodingError):
            decode_value({key: 1.0})


def test_long_printable_field_names_up_to_the_limit_are_accepted() -> None:
    assert encode_value({"x" * 1024: 1}) == {"x" * 1024: 1.0}
    assert encode_value({" ~!": 1}) == {" ~!": 1.0}


@pytest.mark.parametrize("n", [2**53 + 1, -(2**53) - 1, 2**64, 10**400])
def test_huge_plain_ints_are_rejected(n: int) -> None:
    with pytest.raises(ValueEncodingError, match="Int64"):
        encode_value(n)


def test_int64_rejects_out_of_range_values() -> None:
    with pytest.raises(ValueError):
        Int64(2**63)
    with pytest.raises(ValueError):
        Int64(-(2**63) - 1)
    with pytest.raises(ValueError):
        Int64(1.5)
    assert Int64(2**63 - 1) == 2**63 - 1
    assert repr(Int64(5)) == "Int64(5)"
    assert str(Int64(5)) == "5"
    assert f"{Int64(5)}" == "5"


def test_int64_pickles() -> None:
    x = pickle.loads(pickle.dumps(Int64(-7)))
    assert type(x) is Int64 and x == -7


def test_unset_is_a_falsy_singleton() -> None:
    assert not UNSET
    assert repr(UNSET) == "UNSET"
    assert type(UNSET)() is UNSET
    assert copy.deepcopy(UNSET) is UNSET
    assert pickle.loads(pickle.dumps(UNSET)) is UNSET


def nested(depth: int) -> Any:
    x: Any = 1.0
    for _ in range(depth):
        x = [x]
    return x


def nested_objects(depth: int) -> Any:
    x: Any = 1.0
    for _ in range(depth):
        x = {"a": x}
    return x


def test_nesting_up_to_64_levels_is_accepted() -> None:
    assert same(wire_round_trip(nested(64)), nested(64))
    assert same(wire_round_trip(nested_objects(64)), nested_objects(64))


def test_nesting_deeper_than_64_levels_is_rejected() -> None:
    for value in (nested(65), nested_objects(65)):
        with pytest.raises(ValueEncodingError, match="nesting depth exceeds 64"):
            encode_value(value)
        with pytest.raises(ValueEncodingError, match="nesting depth exceeds 64"):
            decode_value(orjson.loads(orjson.dumps(value)))


def test_very_deep_input_does_not_crash() -> None:
    with pytest.raises(ValueEncodingError):
        encode_value(nested(100_000))
    with pytest.raises(ValueError):  # orjson's own depth limit or ours
        loads(b"[" * 10_000 + b"]" * 10_000)
    with pytest.raises(ValueEncodingError):
        loads(b"[" * 100 + b"]" * 100)


@pytest.mark.parametrize(
    "wire",
    [
        {"$integer": "not base64!"},
        {"$integer": "AQID"},
        {"$integer": 5},
        {"$bytes": "AQI"},
        {"$bytes": "é"},
        {"$float": "AAAAAAAAAAA="},
        {"$float": "AAAAAAAA8D8="},
        {"$float": "AA=="},
        {"$set": []},
        {"$map": []},
        {"$other": 1},
        {"$integer": "AQAAAAAAAAA=", "x": 1},
        {"a": {"$bytes": "AQID", "$integer": "AQAAAAAAAAA="}},
    ],
)
def test_hostile_wire_input_is_rejected(wire: Any) -> None:
    with pytest.raises(ValueEncodingError):
        decode_value(wire)


def test_ordinary_float_inside_float_tag_names_the_problem() -> None:
    with pytest.raises(ValueEncodingError, match="should be encoded as a number"):
        decode_value({"x": {"$float": "AAAAAAAA8D8="}})


def test_decode_error_names_the_path() -> None:
    with pytest.raises(ValueEncodingError) as ei:
        decode_value({"a": [0, {"b": {"$bytes": "!"}}]})
    assert ei.value.path == ".a[1].b"


def test_lone_surrogates_are_rejected() -> None:
    with pytest.raises(ValueEncodingError):
        encode_value("\ud800")


def test_json_size_counts_bytes_of_the_encoded_form() -> None:
    assert json_size(encode_value({"a": "é"})) == len('{"a":"é"}'.encode())
    assert json_size(encode_value(1)) == 3


def test_system_fields_are_rejected_in_user_documents() -> None:
    check_document_fields({"a": 1, "b_": 2})
    with pytest.raises(ValueEncodingError, match="_id"):
        check_document_fields({"_id": "x"})
    with pytest.raises(ValueEncodingError, match=r"\._foo"):
        check_document_fields({"_foo": 1}, allow_system=True)
    check_document_fields({"_id": "x", "_creationTime": 1.0, "a": 1}, allow_system=True)


def test_convex_error_carries_data_and_renders_it() -> None:
    e = ConvexError("Not found")
    assert e.data == "Not found" and str(e) == "Not found"
    e2 = ConvexError({"code": 404, "n": Int64(1)})
    assert e2.data == {"code": 404, "n": Int64(1)}
    assert str(e2) == '{"code":404,"n":"1n"}'  # as Convex writes values into messages
    e3 = pickle.loads(pickle.dumps(e2))
    assert isinstance(e3, ConvexError) and e3.data == e2.data
    assert isinstance(e, Exception)
