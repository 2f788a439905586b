"""Execution by real worker processes: once, on time, errors kept, identity dropped."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from tests.conftest import DEMO
from tests.scheduler.conftest import Deployment, deploy, sql
from tests.support.calls import call
from tests.support.scheduling import (
    eventually,
    run,
    schedule,
    state_of,
    wait_for_runs,
    wait_for_state,
)
from tests.support.servers import ADMIN_KEY, run_cli


async def test_a_scheduled_mutation_runs_once_at_its_time_and_is_marked_success(
    app: httpx.AsyncClient, deployment: Deployment
) -> None:
    deployment.ensure_workers("w1")
    before = time.time() * 1000
    scheduled_id = await schedule(app, "sched_funcs:record", {"label": "r"}, delay=700)
    await wait_for_state(app, scheduled_id, "success")
    doc = await run(app, "query", "scheduled", {"id": scheduled_id})
    (ran,) = await run(app, "query", "runs", {"label": "r"})
    assert doc["scheduledTime"] >= before + 700
    assert doc["scheduledTime"] <= ran["at"] <= doc["completedTime"]
    assert ran["at"] - doc["scheduledTime"] < 1000


async def test_the_callers_identity_is_not_passed_to_the_scheduled_function(
    app: httpx.AsyncClient, deployment: Deployment
) -> None:
    deployment.ensure_workers("w1")
    user = base64.b64encode(
        json.dumps({"subject": "u1", "issuer": "https://idp"}).encode()
    ).decode()
    caller_had_identity = await call(
        app,
        "mutation",
        "sched_funcs:schedule_record_as_caller",
        {"label": "who"},
        headers={"Authorization": f"Convex {ADMIN_KEY}:{user}"},
    )
    assert caller_had_identity is True
    runs = await wait_for_runs(app, "who")
    assert runs[0]["anonymous"] is True


async def test_a_failing_mutation_rolls_back_and_records_its_error(
    app: httpx.AsyncClient, deployment: Deployment
) -> None:
    deployment.ensure_workers("w1")
    failing = await schedule(app, "sched_funcs:record_then_fail", {"label": "f"})
    bad_return = await schedule(app, "sched_funcs:record_bad_return", {"label": "b"})
    await wait_for_state(app, failing, "failed")
    await wait_for_state(app, bad_return, "failed")
    doc = await run(app, "query", "scheduled", {"id": failing})
    assert doc["state"] == {"kind": "failed", "error": "Uncaught ValueError: boom f"}
    assert doc["completedTime"] >= doc["scheduledTime"]
    doc = await run(app, "query", "scheduled", {"id": bad_return})
    assert "Return value of sched_funcs:record_bad_return is invalid" in doc["state"]["error"]
    assert await run(app, "query", "runs", {"label": "f"}) == []
    assert await run(app, "query", "runs", {"label": "b"}) == []


async def test_a_scheduled_action_runs_and_a_failing_one_records_its_error(
    app: httpx.AsyncClient, deployment: Deployment
) -> None:
    deployment.ensure_workers("w1")
    ok = await schedule(
        app, "sched_funcs:slow_action", {"label": "a", "seconds": 0.1}, from_action=True
    )
    bad = await schedule(app, "sched_funcs:failing_action", {"message": "nope"})
    await wait_for_state(app, ok, "success")
    await wait_for_state(app, bad, "failed")
    assert [r["label"] for r in await run(app, "query", "runs", {"label": "a:start"})] == [
        "a:start"
    ]
    assert [r["label"] for r in await run(app, "query", "runs", {"label": "a:end"})] == ["a:end"]
    doc = await run(app, "query", "scheduled", {"id": bad})
    assert doc["state"] == {"kind": "failed", "error": "Uncaught RuntimeError: nope"}


async def test_an_action_is_in_progress_while_it_runs(
    app: httpx.AsyncClient, deployment: Deployment
) -> None:
    deployment.ensure_workers("w1")
    scheduled_id = await schedule(app, "sched_funcs:slow_action", {"label": "p", "seconds": 1.5})
    await wait_for_runs(app, "p:start")
    assert await state_of(app, scheduled_id) == "inProgress"
    await wait_for_state(app, scheduled_id, "success")


async def test_a_function_that_no_longer_exists_fails_with_a_clear_error(
    app: httpx.AsyncClient, deployment: Deployment
) -> None:
    deployment.ensure_workers("w1")
    scheduled_id = await schedule(app, "sched_funcs:record", {"label": "x"}, delay=1500)
    await sql(
        deployment.database_url,
        """UPDATE docs."_scheduled_functions" SET doc = jsonb_set(doc, '{name}', '"gone:fn"')""",
    )
    await wait_for_state(app, scheduled_id, "failed")
    doc = await run(app, "query", "scheduled", {"id": scheduled_id})
    assert doc["state"]["error"] == "Could not find function for 'gone:fn'"


async def test_cancel_before_the_due_time_means_it_never_runs(
    app: httpx.AsyncClient, deployment: Deployment
) -> None:
    deployment.ensure_workers("w1")
    scheduled_id = await schedule(app, "sched_funcs:record", {"label": "c"}, delay=800)
    await run(app, "mutation", "cancel", {"id": scheduled_id})
    await asyncio.sleep(2.0)
    assert await state_of(app, scheduled_id) == "canceled"
    assert await run(app, "query", "runs", {"label": "c"}) == []


async def test_cancel_of_a_finished_function_is_a_no_op(
    app: httpx.AsyncClient, deployment: Deployment
) -> None:
    deployment.ensure_workers("w1")
    done = await schedule(app, "sched_funcs:record", {"label": "d"})
    failed = await schedule(app, "sched_funcs:failing_action", {"message": "x"})
    await wait_for_state(app, done, "success")
    await wait_for_state(app, failed, "failed")
    before = [await run(app, "query", "scheduled", {"id": i}) for i in (done, failed)]
    await run(app, "mutation", "cancel", {"id": done})
    await run(app, "action", "cancel_from_action", {"id": failed})
    assert [await run(app, "query", "scheduled", {"id": i}) for i in (done, failed)] == before


async def test_cancel_of_a_running_action_keeps_it_canceled_when_it_ends(
    app: httpx.AsyncClient, deployment: Deployment
) -> None:
    deployment.ensure_workers("w1")
    scheduled_id = await schedule(app, "sched_funcs:slow_action", {"label": "k", "seconds": 1.0})
    await wait_for_runs(app, "k:start")
    await run(app, "mutation", "cancel", {"id": scheduled_id})
    await wait_for_runs(app, "k:end")
    await asyncio.sleep(0.3)
    assert await state_of(app, scheduled_id) == "canceled"


async def test_the_demo_schedule_cleanup_example_runs_the_internal_cleanup(
    services: dict[str, str], sched_redis: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("sched-demo")
    demo = await asyncio.to_thread(
        deploy, services, sched_redis, folder, "sched_demo", DEMO, serve=False
    )
    try:
        # `convect run` commits, hands the job to Redis and exits; a worker started later runs it.
        ran = await asyncio.to_thread(run_cli, demo.env, "run", "logs:schedule_cleanup")
        assert ran.returncode == 0, ran.stderr
        (row,) = await sql(demo.database_url, 'SELECT id, doc FROM docs."_scheduled_functions"')
        redis = Redis.from_url(sched_redis)
        try:
            assert await redis.exists(f"arq:job:{row['id']}") == 1
        finally:
            await redis.aclose()
        demo.start_worker("w1")

        async def state() -> str:
            (found,) = await sql(demo.database_url, 'SELECT doc FROM docs."_scheduled_functions"')
            return str(orjson.loads(found["doc"])["state"]["kind"])

        await eventually(state, lambda s: s == "success")
        assert orjson.loads(row["doc"])["name"] == "logs:_cleanup"
    finally:
        demo.stop_workers()
