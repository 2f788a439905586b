"""Convex's newer validator forms: `v.nullable`, and `.extend/.pick/.omit/.partial` on
object validators; a `UserIdentity` as a value."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from app.auth import UserIdentity
from app.values import UNSET, ArgumentValidationError, encode_value, v
from app.values.jsonschema import args_schema, value_schema

TASK = v.object({"title": v.string(), "done": v.boolean(), "note": v.optional(v.string())})


def test_nullable_is_a_union_with_null_and_the_field_stays_required() -> None:
    n = v.nullable(v.number())
    assert repr(n) == "v.union(v.number(), v.null())"
    assert n.validate(None) is None and n.validate(2) == 2.0
    with pytest.raises(ArgumentValidationError):
        n.validate("x")
    obj = v.object({"at": v.nullable(v.number())})
    assert obj.validate({"at": None}) == {"at": None}
    with pytest.raises(ArgumentValidationError, match="missing the required field `at`"):
        obj.validate({})
    with pytest.raises(TypeError, match="only allowed as an object field"):
        v.nullable(v.optional(v.string()))


def test_extend_adds_and_replaces_fields_and_leaves_the_original_alone() -> None:
    extended = TASK.extend({"project": v.string(), "done": v.nullable(v.boolean())})
    assert list(extended.fields) == ["title", "done", "note", "project"]
    assert extended.validate({"title": "t", "done": None, "project": "p"}) == {
        "title": "t",
        "done": None,
        "project": "p",
    }
    assert list(TASK.fields) == ["title", "done", "note"]
    with pytest.raises(TypeError, match="must be a validator"):
        TASK.extend({"x": "string"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="needs a dict"):
        TASK.extend(["x"])  # type: ignore[arg-type]


def test_pick_and_omit_keep_or_drop_named_fields() -> None:
    assert list(TASK.pick("done", "title").fields) == ["done", "title"]
    assert list(TASK.omit("note").fields) == ["title", "done"]
    assert TASK.pick().fields == {}
    with pytest.raises(ValueError, match="'nope' is not a field of this object"):
        TASK.pick("title", "nope")
    with pytest.raises(ValueError, match="'nope' is not a field"):
        TASK.omit("nope")


def test_partial_makes_every_field_optional() -> None:
    partial = TASK.partial()
    assert partial.validate({}) == {}
    assert partial.validate({"done": True, "note": UNSET}) == {"done": True}
    assert repr(partial.fields["note"]) == "v.optional(v.string())"  # not wrapped twice
    with pytest.raises(ArgumentValidationError, match="extra field `x`"):
        partial.validate({"x": 1})


def test_derived_validators_have_json_schemas_that_agree_with_them() -> None:
    schema = args_schema(TASK.omit("note").partial().extend({"at": v.nullable(v.number())}))
    check = Draft202012Validator(schema)
    assert check.is_valid({"at": None})
    assert check.is_valid({"at": 3, "done": True})
    assert not check.is_valid({})  # `at` is required (nullable, not optional)
    assert not check.is_valid({"at": None, "note": "x"})
    assert Draft202012Validator(value_schema(v.nullable(v.string()))).is_valid(None)


def test_a_user_identity_is_a_plain_object_as_a_value() -> None:
    identity = UserIdentity.from_claims(
        {"sub": "u1", "iss": "https://issuer.example", "email": "a@b.c", "role": "admin"}
    )
    encoded = encode_value(identity)
    assert encoded == identity.to_dict()
    assert encoded["subject"] == "u1" and encoded["role"] == "admin"
    assert encoded["tokenIdentifier"] == "https://issuer.example|u1"
    assert v.any().validate({"me": identity})["me"]["email"] == "a@b.c"


def test_an_object_validator_checks_a_user_identity_as_the_plain_object_clients_get() -> None:
    identity = UserIdentity.from_claims(
        {"sub": "u1", "iss": "https://issuer.example", "email": "a@b.c", "role": "admin"}
    )
    shape = v.object(
        {
            "tokenIdentifier": v.string(),
            "subject": v.string(),
            "issuer": v.string(),
            "email": v.optional(v.string()),
            "role": v.string(),
        }
    )
    assert shape.validate(identity) == identity.to_dict()
    assert v.nullable(shape).validate(identity)["subject"] == "u1"
    assert v.object({"me": shape}).validate({"me": identity})["me"]["role"] == "admin"
    assert v.record(v.string(), v.any()).validate(identity)["email"] == "a@b.c"
    with pytest.raises(ArgumentValidationError, match="extra field `role`"):
        shape.omit("role").validate(identity)
    with pytest.raises(ArgumentValidationError):
        shape.validate(object())
