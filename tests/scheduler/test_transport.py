"""The arq transport on the worker's short path: what a run leaves in Redis, and retries."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis

from app.db import ids
from app.settings import Settings
from tests.scheduler.conftest import Deployment, sql
from tests.support.scheduling import (
    eventually,
    run,
    schedule,
    wait_for_runs,
    wait_for_state,
)


async def _namespace(deployment: Deployment) -> str:
    (row,) = await sql(deployment.database_url, "SELECT namespace FROM _convect_scheduler")
    return str(row["namespace"])


async def test_jobs_that_ran_leave_nothing_of_theirs_in_redis(
    app: httpx.AsyncClient, deployment: Deployment, sched_redis: str
) -> None:
    # Ends are sent in batches after the runs; a job whose end were lost would stay on
    # the queue (and be delivered again after its lease).
    deployment.ensure_workers("w1", "w2")
    await run(app, "mutation", "schedule_records", {"n": 40, "label": "t"})
    await wait_for_runs(app, "t", 40)
    queue = f"convect:{await _namespace(deployment)}:queue"
    redis = Redis.from_url(sched_redis)
    try:

        def ours(name: bytes) -> bool:  # a scheduled function's, not an arq cron tick's
            return ids.is_id_for(name.decode().rsplit(":", 1)[-1], "_scheduled_functions")

        async def leftovers() -> list[bytes]:
            members = await redis.zrange(queue, 0, -1)
            keys = [k async for k in redis.scan_iter(match="arq:*")]
            return [m for m in members + keys if ours(m)]

        assert await eventually(leftovers, lambda left: left == []) == []
    finally:
        await redis.aclose()
    states = await sql(
        deployment.database_url,
        """SELECT doc->'state'->>'kind' AS kind, count(*) AS n FROM docs."_scheduled_functions"
           GROUP BY 1""",
    )
    assert [(r["kind"], r["n"]) for r in states] == [("success", 40)]


async def test_a_transient_error_past_the_in_process_retries_is_run_again_later(
    app: httpx.AsyncClient, deployment: Deployment
) -> None:
    deployment.ensure_workers("w1")
    deployment.stop_worker("w2")  # one process, so the flaky function counts its calls once
    failures = Settings().mutation_retries + 1  # the first run gives up; the job is retried
    scheduled_id = await schedule(
        app, "sched_funcs:flaky_record", {"label": "flaky", "failures": failures}
    )
    await wait_for_state(app, scheduled_id, "success", timeout=30)
    assert len(await run(app, "query", "runs", {"label": "flaky"})) == 1
    assert "hit a transient error; retrying" in deployment.worker_log("w1")
