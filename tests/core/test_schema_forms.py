"""Schema forms ported from Convex: union-typed and `v.any()` tables, the object form of
index options, staged indexes; hostile shapes are refused when the schema is defined."""

from __future__ import annotations

from typing import Any

import pytest

from app.schema import define_schema, define_table
from app.values import ArgumentValidationError, v

A = v.object({"kind": v.literal("a"), "x": v.number()})
B = v.object({"kind": v.literal("b"), "y": v.string()})


def test_a_union_of_objects_is_a_table_validator() -> None:
    table = define_table(v.union(A, B)).index("by_kind", ["kind"])
    assert table.validator is not None
    assert table.validator.validate({"kind": "b", "y": "s"}) == {"kind": "b", "y": "s"}
    with pytest.raises(ArgumentValidationError):
        table.validator.validate({"kind": "a", "y": "s"})
    assert table.indexes == {"by_kind": ("kind",)}


def test_v_any_is_a_table_validator() -> None:
    table = define_table(v.any()).index("by_source", ["source"])
    assert table.validator is not None and table.validator.validate({"q": [1]}) == {"q": [1.0]}


@pytest.mark.parametrize(
    "validator",
    [v.string(), v.union(A, v.string()), v.array(A), v.nullable(A), v.record(v.string(), v.any())],
)
def test_other_table_validators_are_refused(validator: Any) -> None:
    with pytest.raises(TypeError, match="define_table takes"):
        define_table(validator)


def test_reserved_field_names_are_refused_in_every_variant() -> None:
    with pytest.raises(ValueError, match="'_secret'"):
        define_table(v.union(A, v.object({"_secret": v.string()})))


def test_the_object_form_of_index_options_is_convexs() -> None:
    table = define_table().index("by_x", {"fields": ["x", "y"]})
    assert table.indexes == {"by_x": ("x", "y")}  # not an index on a field named "fields"
    assert table.staged == set()
    table.index("by_z", {"fields": ["z"], "staged": True}).index(
        "by_w", {"fields": ["w"], "staged": False}
    )
    assert table.staged == {"by_z"}
    assert table.to_json()["staged"] == ["by_z"]
    table.search_index("s", {"searchField": "body", "filterFields": ["x"], "staged": True})
    table.vector_index("vec", {"vectorField": "e", "dimensions": 4, "filterFields": ["x"]})
    assert table.search_indexes["s"].filter_fields == ("x",)
    assert table.vector_indexes["vec"].dimensions == 4
    assert table.staged == {"by_z", "s"}
    table.search_index("kw", search_field="body", staged=True)
    assert "kw" in table.staged


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fields": ["x"], "unique": True}, "unknown option 'unique'"),
        ({"field": ["x"]}, "unknown option 'field'"),
        ({"fields": "x"}, "option 'fields' must be a list of field names"),
        ({"fields": ["x"], "staged": "yes"}, "option 'staged' must be True or False"),
        ({"staged": True}, "missing option 'fields'"),
        ({"fields": []}, "non-empty list"),
        ({"fields": ["bad name"]}, "Invalid field of index"),
        ("x", "fields must be a non-empty list"),
        (7, "fields must be a non-empty list"),
    ],
)
def test_hostile_index_options_are_refused_when_defined(options: Any, message: str) -> None:
    table = define_table()
    with pytest.raises(ValueError, match=message):
        table.index("by_x", options)
    assert table.indexes == {} and table.staged == set()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t.search_index("s", {"searchField": 1}), "'searchField' must be a string"),
        (lambda t: t.search_index("s", {"filterFields": ["a"]}), "missing option 'searchField'"),
        (lambda t: t.search_index("s", {"searchField": "a", "dims": 3}), "unknown option 'dims'"),
        (lambda t: t.search_index("s", ["a"]), "options must be a dict"),
        (lambda t: t.search_index("s", search_field="a", staged=1), "staged must be True or"),
        (
            lambda t: t.vector_index("v", {"vectorField": "e", "dimensions": True}),
            "'dimensions' must be an integer",
        ),
        (lambda t: t.vector_index("v", {"vectorField": "e"}), "missing option 'dimensions'"),
        (
            lambda t: t.vector_index("v", {"vectorField": "e", "dimensions": 1}),
            "between 2 and 4096",
        ),
    ],
)
def test_hostile_search_and_vector_options_are_refused(call: Any, message: str) -> None:
    table = define_table()
    with pytest.raises(ValueError, match=message):
        call(table)
    assert table.all_index_names() == set() and table.staged == set()


def test_keywords_and_a_dict_together_are_refused() -> None:
    with pytest.raises(TypeError, match="not both"):
        define_table().search_index("s", {"searchField": "a"}, search_field="a")


def test_a_schema_of_ported_tables_is_defined() -> None:
    schema = define_schema(
        {
            "events": define_table(v.union(A, B)).index("by_kind", {"fields": ["kind"]}),
            "payloads": define_table(v.any()),
        }
    )
    assert schema.to_json()["tables"]["payloads"]["validator"] == {"type": "any"}
