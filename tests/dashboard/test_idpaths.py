"""Where documents hold ids: from a schema's `v.id` validators, or from the values."""

from __future__ import annotations

from app.dashboard import idpaths
from app.values import v


def test_ids_anywhere_in_a_validator_are_found_with_their_table() -> None:
    validator = v.object(
        {
            "author": v.id("authors"),
            "title": v.string(),
            "refs": v.optional(v.array(v.id("books"))),
            "meta": v.object({"owner": v.union(v.id("users"), v.null()), "n": v.number()}),
            "pairs": v.array(v.object({"to": v.id("books"), "w": v.number()})),
            "byName": v.record(v.string(), v.id("users")),
        }
    )
    assert idpaths.from_validator(validator) == {
        "author": "authors",
        "refs[]": "books",
        "meta.owner": "users",
        "pairs[].to": "books",
        "byName{}": "users",
    }
    union = v.union(v.object({"a": v.id("x")}), v.object({"b": v.array(v.id("y"))}))
    assert idpaths.from_validator(union) == {"a": "x", "b[]": "y"}
    assert idpaths.from_validator(v.any()) == {}
    assert idpaths.top_level_fields(union) == ["a", "b"]
    assert idpaths.top_level_fields(v.any()) == []


def test_without_a_schema_the_ids_on_the_page_are_found() -> None:
    tables = {"ID1": "authors", "ID2": "books"}
    docs = [
        {"_id": "ID9", "refs": ["nope", "ID2"], "deep": {"x": [{"y": "ID1"}]}, "n": 1.0},
        {"_id": "ID8", "author": "ID1"},
    ]
    assert idpaths.from_documents(docs, tables.get) == {
        "refs[]": "books",
        "deep.x[].y": "authors",
        "author": "authors",
    }
