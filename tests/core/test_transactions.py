"""Savepoints for nested mutations, atomic failure, returns= validation and limits."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from app.db import ids
from app.db.transaction import MAX_READS, MAX_WRITES
from app.values import ArgumentValidationError, v
from tests.core.dbcheck import table_docs
from tests.support.calls import CallFailed, action, mutation, query
from tests.support.servers import ServerProcess


async def events(server: ServerProcess) -> list[str]:
    """The events in core_events, oldest first."""
    return [d["event"] for d in await table_docs(server.env["DATABASE_URL"], "core_events")]


@pytest.mark.parametrize(
    ("fail", "caught"),
    [("convex", {"code": "INNER", "event": "inner"}), ("crash", "inner crashed")],
)
async def test_a_caught_nested_mutation_failure_rolls_back_only_its_own_writes(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess, fail: str, caught: object
) -> None:
    assert await mutation(kitchen, "core_tx:savepoint", {"fail": fail}) == caught
    assert await events(kitchen_server) == ["outer-before", "inner-ok", "outer-after"]


async def test_an_outer_failure_rolls_back_nested_mutations_too(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    with pytest.raises(CallFailed) as info:
        await mutation(kitchen, "core_tx:savepoint_then_fail", {})
    assert info.value.data == "outer failed"
    assert await events(kitchen_server) == []


async def test_a_crashing_mutation_writes_nothing(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    with pytest.raises(CallFailed) as info:
        await mutation(kitchen, "core_tx:write_then_crash", {"event": "lost"})
    assert "Server Error" in info.value.body["errorMessage"]
    assert await events(kitchen_server) == []


async def test_returns_validation_failure_is_a_server_error(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    assert await query(kitchen, "core_tx:good_returns") == {"ok": True}
    with pytest.raises(CallFailed) as info:
        await query(kitchen, "core_tx:bad_returns")
    body = info.value.body
    assert "Server Error" in body["errorMessage"]
    assert "Return value of core_tx:bad_returns is invalid" in body["errorMessage"]
    assert "errorData" not in body
    with pytest.raises(CallFailed) as info:
        await mutation(kitchen, "core_tx:bad_returns_mutation")
    assert (
        "Return value of core_tx:bad_returns_mutation is invalid" in info.value.body["errorMessage"]
    )
    assert await events(kitchen_server) == []


async def test_returning_none_satisfies_an_optional_returns_validator(
    kitchen: httpx.AsyncClient,
) -> None:
    # Python has no `undefined`: None (or falling through) is JS's `return undefined`.
    assert await query(kitchen, "core_tx:maybe_text", {"value": "hi"}) == "hi"
    assert await query(kitchen, "core_tx:maybe_text") is None
    assert await mutation(kitchen, "core_tx:maybe_number") is None
    with pytest.raises(CallFailed) as info:
        await query(kitchen, "core_tx:maybe_text", {"value": 5})
    assert "Return value of core_tx:maybe_text is invalid" in info.value.body["errorMessage"]
    # Only the top-level return value: an optional object field is still absent-or-valid.
    with pytest.raises(ArgumentValidationError):
        v.object({"a": v.optional(v.string())}).validate({"a": None})


async def test_more_writes_than_the_limit_fail_and_write_nothing(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    with pytest.raises(CallFailed) as info:
        await mutation(kitchen, "core_tx:write_many", {"count": MAX_WRITES + 1})
    message = info.value.body["errorMessage"]
    assert f"Too many documents written in a single mutation (limit: {MAX_WRITES})" in message
    assert await table_docs(kitchen_server.env["DATABASE_URL"], "core_bulk") == []
    assert await mutation(kitchen, "core_tx:write_many", {"count": 100}) == 100.0


async def seed_bulk(server: ServerProcess, count: int) -> None:
    """Put `count` documents into core_bulk directly (fast, for the read limit)."""
    rows = []
    for i in range(count):
        doc_id = ids.new_id("core_bulk")
        created = 1_700_000_000_000.0 + i
        doc = f'{{"i": {float(i)}, "_id": "{doc_id}", "_creationTime": {created}}}'
        rows.append((doc_id, created, doc))
    conn = await asyncpg.connect(server.env["DATABASE_URL"])
    try:
        await conn.copy_records_to_table(
            "core_bulk", schema_name="docs", records=rows, columns=["id", "creation_time", "doc"]
        )
    finally:
        await conn.close()


async def test_reading_more_documents_than_the_limit_fails(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    await seed_bulk(kitchen_server, MAX_READS)
    assert await query(kitchen, "core_tx:count_bulk") == MAX_READS
    # The last one through a mutation: a commit, so no cached result can hide it.
    await mutation(kitchen, "core_db:insert", {"table": "core_bulk", "doc": {"i": -1}})
    with pytest.raises(CallFailed) as info:
        await query(kitchen, "core_tx:count_bulk")
    message = info.value.body["errorMessage"]
    assert f"Too many documents read in a single function execution (limit: {MAX_READS})" in message


async def test_a_rolled_back_savepoint_leaves_no_trace_in_the_commit_log(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    doc_id = await mutation(kitchen, "core_db:insert", {"table": "core_things", "doc": {"n": 0}})
    by_n = {"table": "core_things", "index": "by_n", "range": [["eq", "n", 1]]}
    assert await query(kitchen, "core_db:select", by_n) == []
    assert await mutation(kitchen, "core_tx:patch_around_savepoint", {"id": doc_id}) == 1.0
    # The commit records the committed value (n=1), so the result read above is not reused.
    assert [d["_id"] for d in await query(kitchen, "core_db:select", by_n)] == [doc_id]
    conn = await asyncpg.connect(kitchen_server.env["DATABASE_URL"])
    try:
        writes = await conn.fetchval(
            "SELECT writes::text FROM _convect_commits ORDER BY ts DESC LIMIT 1"
        )
    finally:
        await conn.close()
    assert '"n":2.0' not in writes.replace(" ", "")


async def test_each_run_from_an_action_is_its_own_transaction(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    with pytest.raises(CallFailed) as info:
        await action(kitchen, "core_tx:action_then_fail", {"mode": "convex"})
    assert info.value.data == "outer failed"
    assert await events(kitchen_server) == ["from-action"]
    with pytest.raises(CallFailed) as info:
        await action(kitchen, "core_tx:action_then_fail", {"mode": "crash"})
    assert "Server Error" in info.value.body["errorMessage"]
    assert "errorData" not in info.value.body
    assert await events(kitchen_server) == ["from-action", "from-action"]


async def test_a_query_that_moves_into_a_transaction_logs_each_line_once(
    kitchen: httpx.AsyncClient,
) -> None:
    for tag in ("first", "second"):
        r = await kitchen.post(
            "/api/query", json={"path": "core_tx:two_reads", "args": [{"tag": tag}]}
        )
        assert r.json()["value"] == [0.0, 0.0]
        assert r.json()["logLines"] == [f"[LOG] 'reading {tag}'"]


async def test_a_mutation_whose_result_is_not_a_convex_value_writes_nothing(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    with pytest.raises(CallFailed) as info:
        await mutation(kitchen, "core_tx:unencodable_result")
    assert "set is not a supported Convex type" in info.value.body["errorMessage"]
    assert await events(kitchen_server) == []
