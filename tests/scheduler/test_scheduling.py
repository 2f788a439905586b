"""Scheduling: rows exist iff the mutation commits, are readable, and bad input changes nothing."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from app.db import ids
from tests.scheduler.conftest import Deployment, sql
from tests.support.calls import CallFailed, call
from tests.support.scheduling import (
    run,
    schedule,
)


async def scheduled_rows(app: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every `_scheduled_functions` document."""
    rows: list[dict[str, Any]] = await run(app, "query", "all_scheduled")
    return rows


async def test_a_mutation_that_schedules_and_then_raises_schedules_nothing(
    app: httpx.AsyncClient, deployment: Deployment
) -> None:
    with pytest.raises(CallFailed) as info:
        await run(app, "mutation", "schedule_then_raise", {"name": "c"})
    assert info.value.data == "changed my mind"
    assert await scheduled_rows(app) == []
    table = await sql(
        deployment.database_url, 'SELECT count(*) AS n FROM docs."_scheduled_functions"'
    )
    assert table[0]["n"] == 0


async def test_a_failed_nested_mutation_unschedules_only_its_own_functions(
    app: httpx.AsyncClient,
) -> None:
    kept = await run(app, "mutation", "schedule_around_failed_nested", {"name": "c"})
    rows = await scheduled_rows(app)
    assert [r["_id"] for r in rows] == [kept]
    assert rows[0]["args"] == [{"name": "c"}]


async def test_a_mutation_reads_and_cancels_what_it_scheduled_itself(
    app: httpx.AsyncClient, deployment: Deployment
) -> None:
    # Scheduled rows are inserted in one statement before the mutation's next one: its
    # own queries, a nested mutation's savepoint and a cancel all see them.
    seen = await run(app, "mutation", "schedule_list_cancel", {"name": "x"})
    first, second, third = seen["ids"]
    assert seen["listed"] == [first, second, third]
    assert seen["states"] == {first: "pending", second: "canceled", third: "pending"}
    queue = await sql(deployment.database_url, "SELECT id FROM _convect_scheduled_queue")
    assert sorted(r["id"] for r in queue) == sorted([first, third])
    assert {r["_id"]: r["state"]["kind"] for r in await scheduled_rows(app)} == seen["states"]


async def test_a_scheduled_row_has_convex_fields_and_is_visible_in_its_own_mutation(
    app: httpx.AsyncClient,
) -> None:
    before = time.time() * 1000
    doc = await run(app, "mutation", "schedule_record_by_object", {"label": "x", "delay": 5000})
    after = time.time() * 1000
    assert set(doc) == {"_id", "_creationTime", "name", "args", "scheduledTime", "state"}
    assert ids.is_id_for(doc["_id"], "_scheduled_functions")
    assert doc["name"] == "sched_funcs:record"
    assert doc["args"] == [{"label": "x"}]
    assert doc["state"] == {"kind": "pending"}
    assert before + 5000 <= doc["scheduledTime"] <= after + 5000
    assert await run(app, "query", "scheduled", {"id": doc["_id"]}) == doc


async def test_run_at_accepts_a_past_timestamp_and_schedules_it_at_that_time(
    app: httpx.AsyncClient,
) -> None:
    scheduled_id = await run(
        app,
        "mutation",
        "schedule_at",
        {"at": 1_000.0, "target": "sched_funcs:record", "args": {"label": "past"}},
    )
    doc = await run(app, "query", "scheduled", {"id": scheduled_id})
    assert doc["scheduledTime"] == 1_000.0
    assert doc["state"]["kind"] == "pending"


async def test_an_action_schedules_in_its_own_transaction(app: httpx.AsyncClient) -> None:
    scheduled_id = await schedule(
        app, "sched_funcs:record", {"label": "a"}, delay=60_000, from_action=True
    )
    doc = await run(app, "query", "scheduled", {"id": scheduled_id})
    assert doc["name"] == "sched_funcs:record"
    assert doc["state"] == {"kind": "pending"}


async def test_cancel_of_a_pending_function_marks_it_canceled(app: httpx.AsyncClient) -> None:
    first = await schedule(app, "sched_funcs:record", {"label": "a"}, delay=60_000)
    second = await schedule(app, "sched_funcs:record", {"label": "b"}, delay=60_000)
    await run(app, "mutation", "cancel", {"id": first})
    await run(app, "action", "cancel_from_action", {"id": second})
    for scheduled_id in (first, second):
        doc = await run(app, "query", "scheduled", {"id": scheduled_id})
        assert doc["state"] == {"kind": "canceled"}
        assert doc["completedTime"] >= doc["_creationTime"]


async def test_cancel_twice_and_cancel_of_an_unknown_id_are_no_ops(app: httpx.AsyncClient) -> None:
    scheduled_id = await schedule(app, "sched_funcs:record", {"label": "a"}, delay=60_000)
    await run(app, "mutation", "cancel", {"id": scheduled_id})
    canceled = await run(app, "query", "scheduled", {"id": scheduled_id})
    await run(app, "mutation", "cancel", {"id": scheduled_id})
    assert await run(app, "query", "scheduled", {"id": scheduled_id}) == canceled
    await run(app, "mutation", "cancel", {"id": ids.new_id("_scheduled_functions")})


async def test_an_anonymous_caller_can_schedule_a_public_function_only_through_a_public_one(
    deployment: Deployment, app: httpx.AsyncClient
) -> None:
    assert deployment.server is not None
    async with httpx.AsyncClient(base_url=deployment.server.url, timeout=30) as anonymous:
        with pytest.raises(CallFailed) as info:
            await call(anonymous, "mutation", "sched_funcs:bump", {"name": "x"})
        assert "Could not find public function" in str(info.value)
        scheduled_id = await call(
            anonymous,
            "mutation",
            "sched_funcs:schedule",
            {"delay": 0, "target": "sched_funcs:bump", "args": {"name": "x"}},
        )
    assert (await run(app, "query", "scheduled", {"id": scheduled_id}))[
        "name"
    ] == "sched_funcs:bump"


BAD_SCHEDULES = [
    ({"delay": -1}, "`delay_ms` must be non-negative"),
    ({"delay": "5"}, "`delay_ms` must be a number, got str"),
    ({"delay": True}, "`delay_ms` must be a number, got bool"),
    ({"delay": float("nan")}, "`delay_ms` must be a finite number"),
    ({"delay": float("inf")}, "`delay_ms` must be a finite number"),
    ({"target": "nope:missing"}, "Could not find function for 'nope:missing'"),
    ({"target": "sched_funcs:counter"}, "is a query; only mutations and actions"),
    ({"target": 42}, "Expected a function reference"),
    ({"target": None}, "Expected a function reference"),
    ({"args": [1, 2]}, "must be an object, got list"),
    ({"args": "label"}, "must be an object, got str"),
    ({"args": {}}, "ArgumentValidationError"),
    ({"args": {"label": 5}}, "ArgumentValidationError"),
    ({"args": {"label": "x", "extra": 1}}, "ArgumentValidationError"),
]


@pytest.mark.parametrize(("change", "message"), BAD_SCHEDULES)
async def test_a_bad_schedule_is_a_clear_error_and_schedules_nothing(
    app: httpx.AsyncClient, change: dict[str, Any], message: str
) -> None:
    args = {"delay": 0, "target": "sched_funcs:record", "args": {"label": "x"}, **change}
    with pytest.raises(CallFailed) as info:
        await run(app, "mutation", "schedule", args)
    assert message in str(info.value)
    with pytest.raises(CallFailed) as info:
        await run(app, "action", "schedule_from_action", args)
    assert message in str(info.value)
    assert await scheduled_rows(app) == []


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("2030-01-01", "run_at takes a datetime or a timestamp"),
        (None, "run_at takes a datetime or a timestamp"),
        (float("nan"), "`timestamp` must be a finite number"),
    ],
)
async def test_a_bad_run_at_time_is_a_clear_error(
    app: httpx.AsyncClient, at: Any, message: str
) -> None:
    with pytest.raises(CallFailed) as info:
        await run(
            app,
            "mutation",
            "schedule_at",
            {"at": at, "target": "sched_funcs:record", "args": {"label": "x"}},
        )
    assert message in str(info.value)
    assert await scheduled_rows(app) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not-an-id", "is not an id of a scheduled function"),
        (42, "is not an id of a scheduled function"),
        (ids.new_id("sched_runs"), "is not an id of a scheduled function"),
    ],
)
async def test_cancel_of_something_that_is_not_a_scheduled_id_is_a_clear_error(
    app: httpx.AsyncClient, value: Any, message: str
) -> None:
    with pytest.raises(CallFailed) as info:
        await run(app, "mutation", "cancel", {"id": value})
    assert message in str(info.value)
    with pytest.raises(CallFailed) as info:
        await run(app, "action", "cancel_from_action", {"id": value})
    assert message in str(info.value)


async def test_more_than_a_thousand_functions_from_one_mutation_is_refused_whole(
    app: httpx.AsyncClient,
) -> None:
    with pytest.raises(CallFailed) as info:
        await run(app, "mutation", "schedule_bumps", {"n": 1001, "name": "c"})
    assert "Too many functions scheduled by this mutation (limit: 1000)" in str(info.value)
    assert await scheduled_rows(app) == []


async def test_more_than_8_mib_of_arguments_from_one_mutation_is_refused_whole(
    app: httpx.AsyncClient,
) -> None:
    with pytest.raises(CallFailed) as info:
        await run(app, "mutation", "schedule_big", {"n": 3, "size": 3 * 1024 * 1024})
    assert "Too large total size of the arguments of scheduled functions" in str(info.value)
    assert await scheduled_rows(app) == []
