"""int64 and bytes values sort in their own order in indexes, ranges, filters and pages
(stored as base64 in Convex's wire encoding, they would otherwise sort by that text)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.values import Int64
from tests.conftest import _server
from tests.support.calls import mutation, query
from tests.support.servers import ROOT, ServerProcess, truncate_all

APP = ROOT / "tests" / "apps" / "sortkeys"
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@pytest.fixture(scope="module")
def sort_server(services: dict[str, str], data_dir: Path) -> Iterator[ServerProcess]:
    """`convect serve` of tests/apps/sortkeys."""
    yield from _server(services, data_dir, "sortkeys", APP, "sortkeys")


@pytest.fixture
async def client(sort_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    await truncate_all(sort_server.env["DATABASE_URL"], sort_server.url)
    async with httpx.AsyncClient(base_url=sort_server.url, timeout=30) as c:
        yield c


def wire(values: list[int]) -> list[Int64]:
    return [Int64(n) for n in values]


async def call_q(client: httpx.AsyncClient, path: str, args: dict) -> list[int]:
    result = await query(client, path, args)
    assert all(isinstance(x, Int64) for x in result)
    return [int(x) for x in result]


async def test_int64_values_come_back_in_numeric_order_both_ways(client: httpx.AsyncClient) -> None:
    values = [1, 2, 255, 256, -1, 1000, 3, 5, -(2**63), 2**63 - 1, 0, -256, 2**40]
    await mutation(client, "values:add_counters", {"ns": wire(values), "tag": "t"})
    assert await call_q(client, "values:by_n", {"order": "asc"}) == sorted(values)
    assert await call_q(client, "values:by_n", {"order": "desc"}) == sorted(values, reverse=True)
    got = await call_q(
        client, "values:in_range", {"tag": "t", "low": Int64(2), "high": Int64(1000)}
    )
    assert got == [3, 5, 255, 256, 1000]
    assert await call_q(client, "values:filtered", {"low": Int64(2)}) == sorted(
        n for n in values if n > 2
    )
    assert await call_q(client, "values:equal", {"n": Int64(256)}) == [256]


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(values=st.lists(INT64, min_size=1, max_size=25), low=INT64, high=INT64)
async def test_any_int64_range_returns_exactly_the_values_inside_it(
    sort_server: ServerProcess, values: list[int], low: int, high: int
) -> None:
    await truncate_all(sort_server.env["DATABASE_URL"], sort_server.url)
    async with httpx.AsyncClient(base_url=sort_server.url, timeout=30) as client:
        await mutation(client, "values:add_counters", {"ns": wire(values), "tag": "p"})
        got = await call_q(
            client, "values:in_range", {"tag": "p", "low": Int64(low), "high": Int64(high)}
        )
        assert got == sorted(n for n in values if low < n <= high)
        assert await call_q(client, "values:filtered", {"low": Int64(low)}) == sorted(
            n for n in values if n > low
        )


async def test_pages_of_an_int64_index_follow_numeric_order(client: httpx.AsyncClient) -> None:
    values = random.Random(7).sample(range(-5000, 5000), 40)
    await mutation(client, "values:add_counters", {"ns": wire(values), "tag": "pg"})
    seen: list[int] = []
    cursor = None
    while True:
        page = await query(client, "values:page", {"cursor": cursor, "size": 7})
        seen += [int(d["n"]) for d in page["page"]]
        if page["isDone"]:
            break
        cursor = page["continueCursor"]
    assert seen == sorted(values)


async def test_bytes_values_come_back_in_byte_order(client: httpx.AsyncClient) -> None:
    values = [b"\xf8", b"\x00", b"\x00\x01", b"\xff\xff", b"a", b"", b"\x7f"]
    await mutation(client, "values:add_blobs", {"bs": values})
    got = await query(client, "values:blobs", {})
    assert got == sorted(values)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    pairs=st.lists(
        st.one_of(
            st.tuples(INT64, INT64).map(lambda p: (Int64(p[0]), Int64(p[1]))),
            st.tuples(st.binary(max_size=5), st.binary(max_size=5)),
        ),
        min_size=10,
        max_size=10,
    )
)
async def test_live_query_matching_orders_int64_and_bytes_as_postgresql_does(
    sort_server: ServerProcess, pairs: list
) -> None:
    import asyncpg
    import orjson

    from app.sync.matching import compare
    from app.values import encode_value

    encoded = [(encode_value(a), encode_value(b)) for a, b in pairs]
    conn = await asyncpg.connect(sort_server.env["DATABASE_URL"])
    try:
        rows = await conn.fetch(
            "SELECT convect_sort_key(p->'a') < convect_sort_key(p->'b') AS lt, "
            "convect_sort_key(p->'a') = convect_sort_key(p->'b') AS eq "
            "FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(p, n) ORDER BY n",
            orjson.dumps([{"a": a, "b": b} for a, b in encoded]).decode(),
        )
    finally:
        await conn.close()
    for (a, b), (raw_a, raw_b), row in zip(encoded, pairs, rows, strict=True):
        c = compare(a, b, exact_strings=True)
        assert c is not None
        assert (c < 0) == row["lt"] == (raw_a < raw_b)
        assert (c == 0) == row["eq"] == (raw_a == raw_b)
