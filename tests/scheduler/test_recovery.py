"""Crashes and lost Redis data: every durable fact is in PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
import subprocess

import httpx
from redis.asyncio import Redis

from tests.scheduler.conftest import Deployment, kill, sql
from tests.support.scheduling import (
    eventually,
    run,
    schedule,
    state_of,
    wait_for_runs,
    wait_for_state,
)
from tests.support.servers import run_cli, worker_tag


async def running_worker(deployment: Deployment, scheduled_id: str) -> subprocess.Popen[bytes]:
    """The worker process that claimed an in-progress action."""
    (row,) = await sql(
        deployment.database_url,
        "SELECT worker FROM _convect_scheduled_queue WHERE id = $1",
        scheduled_id,
    )
    (proc,) = [
        p for p in deployment.workers.values() if row["worker"].startswith(worker_tag(p.pid))
    ]
    return proc


async def slow_action(app: httpx.AsyncClient, label: str, seconds: float) -> str:
    """Schedule `slow_action` now and wait until it has started."""
    scheduled_id: str = await schedule(
        app, "sched_funcs:slow_action", {"label": label, "seconds": seconds}
    )
    await wait_for_runs(app, f"{label}:start")
    return scheduled_id


async def test_a_worker_killed_during_an_action_leaves_it_failed_and_not_run_again(
    app: httpx.AsyncClient, deployment: Deployment
) -> None:
    deployment.ensure_workers("w1", "w2")
    scheduled_id = await slow_action(app, "k", 30)
    assert await state_of(app, scheduled_id) == "inProgress"
    kill(await running_worker(deployment, scheduled_id))
    await wait_for_state(app, scheduled_id, "failed", timeout=15)
    doc = await run(app, "query", "scheduled", {"id": scheduled_id})
    assert "the worker running it stopped" in doc["state"]["error"]
    # arq hands the job to the surviving worker once the dead one's claim expires: no re-run.
    await asyncio.sleep(4)
    assert len(await run(app, "query", "runs", {"label": "k:start"})) == 1
    assert await run(app, "query", "runs", {"label": "k:end"}) == []
    assert await state_of(app, scheduled_id) == "failed"


async def test_a_worker_killed_during_mutations_lets_another_run_each_exactly_once(
    app: httpx.AsyncClient, deployment: Deployment
) -> None:
    first, _ = deployment.ensure_workers("w1", "w2")
    await run(app, "mutation", "schedule_records", {"n": 1000, "label": "m"})
    await eventually(lambda: run(app, "query", "count_runs", {"label": "m"}), lambda n: n >= 50)
    kill(first)  # mid-stream: the mutations it was running roll back and are delivered again
    await eventually(
        lambda: run(app, "query", "count_runs", {"label": "m"}), lambda n: n >= 1000, timeout=60
    )
    await asyncio.sleep(1.5)
    assert await run(app, "query", "count_runs", {"label": "m"}) == 1000
    rows = await run(app, "query", "all_scheduled")
    assert [r["state"]["kind"] for r in rows] == ["success"] * 1000


async def test_redis_flushed_before_the_due_time_the_sweeper_runs_it_once(
    app: httpx.AsyncClient, deployment: Deployment, sched_redis: str
) -> None:
    deployment.ensure_workers("w1", "w2")
    scheduled_id = await schedule(app, "sched_funcs:bump", {"name": "f"}, delay=2500)
    redis = Redis.from_url(sched_redis)
    try:
        assert await redis.exists(f"arq:job:{scheduled_id}") == 1
        await redis.flushall()
        assert await redis.exists(f"arq:job:{scheduled_id}") == 0
        await eventually(lambda: redis.exists(f"arq:job:{scheduled_id}"), lambda n: n == 1)
    finally:
        await redis.aclose()
    await wait_for_state(app, scheduled_id, "success")
    doc = await run(app, "query", "scheduled", {"id": scheduled_id})
    assert doc["completedTime"] >= doc["scheduledTime"]
    await asyncio.sleep(1.5)
    assert await run(app, "query", "counter", {"name": "f"}) == 1


async def test_redis_flushed_after_the_due_time_the_sweeper_still_runs_it_once(
    app: httpx.AsyncClient, deployment: Deployment, sched_redis: str
) -> None:
    deployment.stop_workers()
    scheduled_id = await schedule(app, "sched_funcs:bump", {"name": "g"})
    redis = Redis.from_url(sched_redis)
    await redis.flushall()
    await redis.aclose()
    deployment.ensure_workers("w1")
    await wait_for_state(app, scheduled_id, "success")
    await asyncio.sleep(1.5)
    assert await run(app, "query", "counter", {"name": "g"}) == 1


async def test_sigterm_lets_a_running_action_finish_before_the_worker_exits(
    app: httpx.AsyncClient, deployment: Deployment
) -> None:
    deployment.ensure_workers("w1", "w2")
    scheduled_id = await slow_action(app, "t", 1.0)
    worker = await running_worker(deployment, scheduled_id)
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(worker.wait, 20) == 0
    assert await state_of(app, scheduled_id) == "success"
    assert len(await run(app, "query", "runs", {"label": "t:end"})) == 1
    leases = await sql(deployment.database_url, "SELECT id FROM _convect_workers")
    assert not [r for r in leases if r["id"].startswith(worker_tag(worker.pid))]


async def test_worker_check_exits_0_while_the_worker_reports_in_and_1_after(
    app: httpx.AsyncClient, deployment: Deployment
) -> None:
    nothing = {**deployment.env, "CONVECT_DATA_DIR": str(deployment.logs / "none")}
    missing = await asyncio.to_thread(run_cli, nothing, "worker", "--check")
    assert missing.returncode == 1
    env = {**deployment.env, "CONVECT_DATA_DIR": str(deployment.logs / "w1")}
    (worker,) = deployment.ensure_workers("w1")
    await asyncio.sleep(1.2)  # this test's Redis flush dropped the key until the next report
    alive = await asyncio.to_thread(run_cli, env, "worker", "--check")
    assert alive.returncode == 0, alive.stderr
    kill(worker)
    await asyncio.sleep(2.5)  # the key lives for the health interval plus a second
    dead = await asyncio.to_thread(run_cli, env, "worker", "--check")
    assert dead.returncode == 1


async def test_functions_finished_over_a_week_ago_are_deleted_and_recent_ones_kept(
    app: httpx.AsyncClient, deployment: Deployment
) -> None:
    deployment.ensure_workers("w1")
    old_id = await schedule(app, "sched_funcs:bump", {"name": "old"})
    new_id = await schedule(app, "sched_funcs:bump", {"name": "new"})
    pending_id = await schedule(app, "sched_funcs:bump", {"name": "later"}, delay=3_600_000)
    for scheduled_id in (old_id, new_id):
        await eventually(lambda sid=scheduled_id: state_of(app, sid), lambda s: s == "success")
    eight_days_ms = 8 * 86_400_000
    await sql(
        deployment.database_url,
        "UPDATE docs.\"_scheduled_functions\" SET doc = jsonb_set(doc, '{completedTime}', "
        "to_jsonb((doc ->> 'completedTime')::float8 - $2)) WHERE id = $1",
        old_id,
        float(eight_days_ms),
    )
    # A worker cleans up on its first tick, then hourly.
    deployment.stop_workers()
    deployment.ensure_workers("w2")
    await eventually(
        lambda: run(app, "query", "scheduled", {"id": old_id}), lambda doc: doc is None
    )
    assert (await run(app, "query", "scheduled", {"id": new_id}))["state"]["kind"] == "success"
    assert (await run(app, "query", "scheduled", {"id": pending_id}))["state"]["kind"] == "pending"
