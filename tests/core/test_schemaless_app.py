"""An app without schema.py: tables appear on first insert and hold any document."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.core.dbcheck import table_docs, table_names
from tests.support.apps import write_app
from tests.support.calls import CallFailed, mutation, query
from tests.support.servers import (
    ServerProcess,
    convect_env,
    create_database,
    served_app,
    start_server,
)

FREE = """
from app.server import mutation, query
from app.values import ConvexError, v


@mutation(args={"table": v.string(), "doc": v.any()})
async def insert(ctx, args):
    return await ctx.db.insert(args["table"], args["doc"])


@mutation(args={"table": v.string(), "doc": v.any()})
async def insert_then_fail(ctx, args):
    await ctx.db.insert(args["table"], args["doc"])
    raise ConvexError("rolled back")


@query(args={"table": v.string(), "index": v.optional(v.string())})
async def scan(ctx, args):
    q = ctx.db.query(args["table"])
    if "index" in args:
        q = q.with_index(args["index"])
    return await q.collect()
"""


@pytest.fixture(scope="module")
def free_server(
    services: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """`convect serve` of a schema-less app on its own database."""
    root = tmp_path_factory.mktemp("schemaless")
    folder = write_app(root / "functions", {"free.py": FREE})
    with served_app(services, "core_schemaless", folder, root / "data") as server:
        yield server


@pytest.fixture
async def free(free_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the schema-less app."""
    async with httpx.AsyncClient(base_url=free_server.url, timeout=30) as client:
        yield client


async def test_a_table_is_created_by_its_first_insert_and_holds_any_document(
    free: httpx.AsyncClient, free_server: ServerProcess
) -> None:
    db = free_server.env["DATABASE_URL"]
    assert "widgets" not in await table_names(db)
    assert await query(free, "free:scan", {"table": "widgets"}) == []
    assert "widgets" not in await table_names(db), "reading must not create a table"
    docs = [{"a": 1}, {"b": ["x", {"c": None}]}, {}]
    created = [await mutation(free, "free:insert", {"table": "widgets", "doc": d}) for d in docs]
    assert "widgets" in await table_names(db)
    stored = await query(free, "free:scan", {"table": "widgets"})
    assert [d["_id"] for d in stored] == created
    assert [{k: v for k, v in d.items() if not k.startswith("_")} for d in stored] == [
        {"a": 1.0},
        {"b": ["x", {"c": None}]},
        {},
    ]
    by_time = await query(free, "free:scan", {"table": "widgets", "index": "by_creation_time"})
    assert by_time == stored
    with pytest.raises(CallFailed) as info:
        await query(free, "free:scan", {"table": "widgets", "index": "by_a"})
    assert "Index widgets.by_a not found" in info.value.body["errorMessage"]


async def test_concurrent_first_inserts_create_one_table_and_keep_every_document(
    free: httpx.AsyncClient, free_server: ServerProcess
) -> None:
    ids = await asyncio.gather(
        *(mutation(free, "free:insert", {"table": "gadgets", "doc": {"i": i}}) for i in range(12))
    )
    docs = await table_docs(free_server.env["DATABASE_URL"], "gadgets")
    assert sorted(d["_id"] for d in docs) == sorted(ids)
    assert sorted(d["i"] for d in docs) == [float(i) for i in range(12)]


async def test_a_failed_first_insert_leaves_no_document(
    free: httpx.AsyncClient, free_server: ServerProcess
) -> None:
    with pytest.raises(CallFailed) as info:
        await mutation(free, "free:insert_then_fail", {"table": "gizmos", "doc": {"x": 1}})
    assert info.value.data == "rolled back"
    assert await table_docs(free_server.env["DATABASE_URL"], "gizmos") == []
    assert await query(free, "free:scan", {"table": "gizmos"}) == []


async def test_more_first_inserts_at_once_than_pool_connections_do_not_deadlock(
    services: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("tinypool")
    folder = write_app(root / "functions", {"free.py": FREE})
    url = await create_database(services["database_url"], "core_tinypool")
    env = convect_env(url, services["redis_url"], folder, root / "data", CONVECT_POOL_SIZE="2")
    server = await asyncio.to_thread(start_server, env, Path(root / "server.log"))
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
            replies = await asyncio.gather(
                *(
                    client.post(
                        "/api/mutation",
                        json={"path": "free:insert", "args": {"table": f"t{i}", "doc": {"i": i}}},
                    )
                    for i in range(8)
                )
            )
        assert [r.json()["status"] for r in replies] == ["success"] * 8
    finally:
        server.stop()
