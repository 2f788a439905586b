"""Filter expressions compiled to SQL: every operator, missing fields and UNSET (kitchen app)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.calls import CallFailed, mutation, query

F = {"field": "n"}
UNSET = {"unset": True}
DOCS = [
    {"name": "a", "n": 1, "m": 2, "flag": True, "tags": ["x", "y"]},
    {"name": "b", "n": 5, "m": None, "flag": False},
    {"name": "c"},
    {"name": "d", "n": None},
    {"name": "e", "n": 10, "meta": {"rank": 3}, "tags": ["y"]},
]


async def matching(kitchen: httpx.AsyncClient, expr: Any) -> list[str]:
    """Names of the documents the filter keeps, in creation order."""
    docs = await query(kitchen, "core_db:select", {"table": "core_things", "filter": expr})
    return [d["name"] for d in docs]


@pytest.fixture
async def seeded(kitchen: httpx.AsyncClient) -> httpx.AsyncClient:
    """The kitchen client with DOCS in core_things."""
    await mutation(kitchen, "core_db:insert_many", {"table": "core_things", "docs": DOCS})
    return kitchen


async def test_comparisons_follow_convex_semantics_for_missing_and_null(
    seeded: httpx.AsyncClient,
) -> None:
    cases = {
        "eq 5": (["eq", F, 5], ["b"]),
        "neq 5": (["neq", F, 5], ["a", "c", "d", "e"]),
        "eq unset (missing)": (["eq", F, UNSET], ["c"]),
        "neq unset (present, null included)": (["neq", F, UNSET], ["a", "b", "d", "e"]),
        "eq null (not missing)": (["eq", F, None], ["d"]),
        "m eq null": (["eq", {"field": "m"}, None], ["b"]),
        "lt 5 (missing and null sort first)": (["lt", F, 5], ["a", "c", "d"]),
        "lte 5": (["lte", F, 5], ["a", "b", "c", "d"]),
        "gt 1": (["gt", F, 1], ["b", "e"]),
        "gte 5": (["gte", F, 5], ["b", "e"]),
        "gt unset (every present value)": (["gt", F, UNSET], ["a", "b", "d", "e"]),
        "literal on the left": (["lt", 4, F], ["b", "e"]),
        "field vs field": (["lt", F, {"field": "m"}], ["a"]),
    }
    for label, (expr, expected) in cases.items():
        assert await matching(seeded, expr) == expected, label


async def test_logical_operators_combine_expressions(seeded: httpx.AsyncClient) -> None:
    cases = {
        "and": (["and", ["gt", F, 0], ["lt", F, 6]], ["a", "b"]),
        "or": (["or", ["eq", {"field": "name"}, "a"], ["eq", {"field": "name"}, "e"]], ["a", "e"]),
        "not": (["not", ["eq", {"field": "name"}, "a"]], ["b", "c", "d", "e"]),
        "not of missing comparison": (["not", ["gt", F, 1]], ["a", "c", "d"]),
        "empty and": (["and"], ["a", "b", "c", "d", "e"]),
        "empty or": (["or"], []),
        "nested": (
            ["or", ["and", ["eq", F, 1], ["eq", {"field": "m"}, 2]], ["eq", F, UNSET]],
            ["a", "c"],
        ),
        "boolean field alone": ({"field": "flag"}, ["a"]),
        "literal true": (True, ["a", "b", "c", "d", "e"]),
        "literal false": (False, []),
    }
    for label, (expr, expected) in cases.items():
        assert await matching(seeded, expr) == expected, label


async def test_arithmetic_operators_compute_in_the_database(seeded: httpx.AsyncClient) -> None:
    cases = {
        "add": (["eq", ["add", F, 1], 6], ["b"]),
        "sub": (["eq", ["sub", F, 1], 9], ["e"]),
        "mul": (["eq", ["mul", F, 2], 20], ["e"]),
        "div": (["eq", ["div", F, 2], 2.5], ["b"]),
        "mod": (["eq", ["mod", F, 2], 1], ["a", "b"]),
        "neg": (["eq", ["neg", F], -10], ["e"]),
        "nested arithmetic": (["gt", ["add", ["mul", F, 3], {"field": "m"}], 4], ["a"]),
        "division by zero matches nothing": (["eq", ["div", F, 0], 0], []),
    }
    for label, (expr, expected) in cases.items():
        assert await matching(seeded, expr) == expected, label


async def test_nested_fields_arrays_and_objects_compare_by_value(
    seeded: httpx.AsyncClient,
) -> None:
    assert await matching(seeded, ["eq", {"field": "meta.rank"}, 3]) == ["e"]
    assert await matching(seeded, ["eq", {"field": "meta.rank"}, UNSET]) == ["a", "b", "c", "d"]
    assert await matching(seeded, ["eq", {"field": "tags"}, {"lit": ["x", "y"]}]) == ["a"]
    assert await matching(seeded, ["eq", {"field": "meta"}, {"lit": {"rank": 3}}]) == ["e"]
    assert await matching(seeded, ["eq", {"field": "name"}, "b"]) == ["b"]
    assert await matching(seeded, ["gte", {"field": "name"}, "d"]) == ["d", "e"]


async def test_filters_on_system_fields(seeded: httpx.AsyncClient) -> None:
    docs = await query(seeded, "core_db:select", {"table": "core_things"})
    second = docs[1]
    by_id = await matching(seeded, ["eq", {"field": "_id"}, second["_id"]])
    assert by_id == ["b"]
    before = await matching(seeded, ["lt", {"field": "_creationTime"}, second["_creationTime"]])
    assert before == ["a"]


async def test_filter_combines_with_an_index_range_and_order(seeded: httpx.AsyncClient) -> None:
    docs = await query(
        seeded,
        "core_db:select",
        {
            "table": "core_things",
            "index": "by_n",
            "range": [["gte", "n", 1]],
            "filter": ["neq", F, 5],
            "order": "desc",
        },
    )
    assert [d["name"] for d in docs] == ["e", "a"]
    taken = await query(
        seeded,
        "core_db:select",
        {"table": "core_things", "filter": ["neq", F, UNSET], "mode": "take", "n": 2},
    )
    assert [d["name"] for d in taken] == ["a", "b"]


async def test_a_filter_with_a_bad_field_name_is_a_clear_error(seeded: httpx.AsyncClient) -> None:
    with pytest.raises(CallFailed) as info:
        await matching(seeded, ["eq", {"field": ""}, 1])
    assert "q.field() takes a field name" in info.value.body["errorMessage"]
