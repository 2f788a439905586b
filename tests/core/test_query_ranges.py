"""Index ranges, order and terminal methods of the query builder, over HTTP (kitchen app)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.calls import CallFailed, mutation, query


async def seed(kitchen: httpx.AsyncClient, docs: list[dict[str, Any]]) -> list[str]:
    """Insert documents into core_things in order; return their ids."""
    ids: list[str] = await mutation(
        kitchen, "core_db:insert_many", {"table": "core_things", "docs": docs}
    )
    return ids


async def select(kitchen: httpx.AsyncClient, **args: Any) -> Any:
    """Run core_db:select on core_things."""
    return await query(kitchen, "core_db:select", {"table": "core_things", **args})


def names(docs: list[dict[str, Any]]) -> list[str]:
    """The `name` of each document, in order."""
    return [d["name"] for d in docs]


async def test_index_range_operators_select_exactly_the_bounded_documents(
    kitchen: httpx.AsyncClient,
) -> None:
    await seed(kitchen, [{"name": f"d{i}", "n": i} for i in range(6)])
    cases = {
        (("eq", "n", 3),): ["d3"],
        (("gt", "n", 3),): ["d4", "d5"],
        (("gte", "n", 3),): ["d3", "d4", "d5"],
        (("lt", "n", 2),): ["d0", "d1"],
        (("lte", "n", 2),): ["d0", "d1", "d2"],
        (("gt", "n", 1), ("lt", "n", 4)): ["d2", "d3"],
        (("gte", "n", 1), ("lte", "n", 4)): ["d1", "d2", "d3", "d4"],
        (("eq", "n", 9),): [],
    }
    for rng, expected in cases.items():
        docs = await select(kitchen, index="by_n", range=[list(r) for r in rng])
        assert names(docs) == expected, rng


async def test_desc_order_reverses_the_index_and_breaks_ties_by_creation_time(
    kitchen: httpx.AsyncClient,
) -> None:
    await seed(
        kitchen,
        [{"name": "a", "n": 2}, {"name": "b", "n": 1}, {"name": "c", "n": 2}, {"name": "d"}],
    )
    asc = await select(kitchen, index="by_n")
    assert names(asc) == ["d", "b", "a", "c"]  # a missing field sorts first
    desc = await select(kitchen, index="by_n", order="desc")
    assert names(desc) == ["c", "a", "b", "d"]
    in_range = await select(kitchen, index="by_n", range=[["gte", "n", 1]], order="desc")
    assert names(in_range) == ["c", "a", "b"]


async def test_default_order_is_creation_time_and_desc_reverses_it(
    kitchen: httpx.AsyncClient,
) -> None:
    await seed(kitchen, [{"name": n} for n in "pqrs"])
    assert names(await select(kitchen)) == ["p", "q", "r", "s"]
    assert names(await select(kitchen, order="desc")) == ["s", "r", "q", "p"]
    assert names(await select(kitchen, order="desc", mode="take", n=2)) == ["s", "r"]


async def test_equality_prefix_then_range_on_the_next_field(kitchen: httpx.AsyncClient) -> None:
    await seed(
        kitchen,
        [{"name": f"{g}{i}", "group": g, "n": i} for g in ("a", "b") for i in range(4)],
    )
    docs = await select(kitchen, index="by_group_n", range=[["eq", "group", "b"], ["gt", "n", 1]])
    assert names(docs) == ["b2", "b3"]
    both = await select(kitchen, index="by_group_n", range=[["eq", "group", "a"], ["eq", "n", 0]])
    assert names(both) == ["a0"]
    whole = await select(kitchen, index="by_group_n", range=[["eq", "group", "a"]], order="desc")
    assert names(whole) == ["a3", "a2", "a1", "a0"]


async def test_creation_time_is_a_range_field_after_the_index_fields(
    kitchen: httpx.AsyncClient,
) -> None:
    ids = await seed(kitchen, [{"name": f"x{i}", "group": "g", "n": 7} for i in range(4)])
    docs = await select(kitchen, index="by_group_created", range=[["eq", "group", "g"]])
    times = [d["_creationTime"] for d in docs]
    assert [d["_id"] for d in docs] == ids
    after = await select(
        kitchen,
        index="by_group_created",
        range=[["eq", "group", "g"], ["gt", "_creationTime", times[1]]],
    )
    assert names(after) == ["x2", "x3"]
    # Every index ends with _creationTime, so it may follow the declared fields.
    implicit = await select(
        kitchen,
        index="by_n",
        range=[
            ["eq", "n", 7],
            ["gte", "_creationTime", times[1]],
            ["lt", "_creationTime", times[3]],
        ],
    )
    assert names(implicit) == ["x1", "x2"]
    builtin = await select(
        kitchen, index="by_creation_time", range=[["lte", "_creationTime", times[0]]]
    )
    assert names(builtin) == ["x0"]


async def test_nested_field_index_orders_by_the_nested_value(kitchen: httpx.AsyncClient) -> None:
    await seed(
        kitchen,
        [{"name": "lo", "meta": {"rank": 1}}, {"name": "hi", "meta": {"rank": 9}}, {"name": "no"}],
    )
    assert names(await select(kitchen, index="by_rank")) == ["no", "lo", "hi"]
    docs = await select(kitchen, index="by_rank", range=[["gt", "meta.rank", 2]])
    assert names(docs) == ["hi"]


async def test_take_first_and_unique(kitchen: httpx.AsyncClient) -> None:
    await seed(kitchen, [{"name": f"t{i}", "n": i % 3} for i in range(6)])
    assert names(await select(kitchen, index="by_n", mode="take", n=4)) == ["t0", "t3", "t1", "t4"]
    assert await select(kitchen, mode="take", n=0) == []
    assert len(await select(kitchen, mode="take", n=100)) == 6
    first = await select(kitchen, index="by_n", range=[["eq", "n", 2]], mode="first")
    assert first["name"] == "t2"
    assert await select(kitchen, index="by_n", range=[["eq", "n", 5]], mode="first") is None
    assert await select(kitchen, index="by_n", range=[["eq", "n", 5]], mode="unique") is None
    await seed(kitchen, [{"name": "solo", "n": 42}])
    only = await select(kitchen, index="by_n", range=[["eq", "n", 42]], mode="unique")
    assert only["name"] == "solo"
    with pytest.raises(CallFailed) as info:
        await select(kitchen, index="by_n", range=[["eq", "n", 1]], mode="unique")
    assert "unique() found more than one document" in info.value.body["errorMessage"]
    assert "errorData" not in info.value.body


async def test_take_rejects_negative_and_fractional_counts(kitchen: httpx.AsyncClient) -> None:
    for n in (-1, 1.5):
        with pytest.raises(CallFailed) as info:
            await select(kitchen, mode="take", n=n)
        assert "take() takes a non-negative integer" in info.value.body["errorMessage"]


async def test_async_iteration_yields_every_document_in_order(kitchen: httpx.AsyncClient) -> None:
    await seed(kitchen, [{"name": f"i{i}", "n": 5 - i} for i in range(5)])
    assert names(await select(kitchen, mode="iter")) == [f"i{i}" for i in range(5)]
    docs = await select(kitchen, index="by_n", range=[["lt", "n", 4]], mode="iter")
    assert names(docs) == ["i4", "i3", "i2"]


async def test_query_on_an_empty_table_returns_nothing(kitchen: httpx.AsyncClient) -> None:
    assert await select(kitchen) == []
    assert await select(kitchen, mode="first") is None
    assert await select(kitchen, index="by_group_n", range=[["eq", "group", "z"]]) == []


async def test_wrongly_built_ranges_are_clear_errors(kitchen: httpx.AsyncClient) -> None:
    bad = {
        "does not match the index's fields": [["eq", "n", 1], ["eq", "group", "a"]],
        "the next field is 'group'": [["gt", "n", 1]],
        "after a range": [["eq", "group", "a"], ["gt", "n", 1], ["eq", "n", 2]],
        "two lower bounds": [["eq", "group", "a"], ["gt", "n", 1], ["gte", "n", 2]],
    }
    for message, rng in bad.items():
        with pytest.raises(CallFailed) as info:
            await select(kitchen, index="by_group_n", range=rng)
        assert message in info.value.body["errorMessage"], rng
    with pytest.raises(CallFailed) as info:
        await select(kitchen, order="sideways")
    assert 'order must be "asc" or "desc"' in info.value.body["errorMessage"]


async def test_a_huge_take_is_bounded_by_the_read_limit_not_an_error(
    kitchen: httpx.AsyncClient,
) -> None:
    await seed(kitchen, [{"name": "only"}])
    assert names(await select(kitchen, mode="take", n=1e20)) == ["only"]
    assert names(await select(kitchen, mode="take", n=2**53)) == ["only"]
