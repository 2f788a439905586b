"""The catalog's per-table field lists follow the schema it runs with (dev reloads replace it)."""

from __future__ import annotations

from app.db.catalog import Catalog, key_fields
from app.schema import define_schema, define_table
from app.values import v


def test_tracked_fields_follow_a_replaced_schema() -> None:
    first = define_schema({"notes": define_table({"a": v.string()}).index("by_a", ["a"])})
    second = define_schema(
        {"notes": define_table({"a": v.string(), "b": v.string()}).index("by_b", ["b", "a"])}
    )
    catalog = Catalog(None, first, cursor_secret="test")  # type: ignore[arg-type]
    assert catalog.tracked_fields("notes") == ("a",)
    catalog.schema = second
    assert catalog.tracked_fields("notes") == ("a", "b")
    assert catalog.tracked_fields("other") == ()


def test_key_fields_cover_index_and_filter_fields_but_not_system_fields() -> None:
    table = (
        define_table({"a": v.string(), "b": v.string(), "c": v.array(v.float64())})
        .index("by_a", ["a", "_creationTime"])
        .vector_index("by_c", vector_field="c", dimensions=2, filter_fields=["b"])
    )
    assert key_fields(table) == ("a", "b")
    assert key_fields(None) == ()
