"""Two workers, a thousand scheduled increments of one counter: exactly a thousand."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.scheduler.conftest import Deployment, sql
from tests.support.scheduling import (
    eventually,
    run,
)

N = 1000
CONCURRENCY = "8"  # one hot row: more concurrent attempts only add conflicts


async def test_two_workers_run_a_thousand_scheduled_increments_exactly_once_each(
    app: httpx.AsyncClient, deployment: Deployment
) -> None:
    deployment.start_workers("w1", "w2", CONVECT_WORKER_CONCURRENCY=CONCURRENCY)
    await run(app, "mutation", "create_counter", {"name": "n"})
    started = time.monotonic()
    await asyncio.gather(
        *(run(app, "mutation", "schedule_bumps", {"n": N // 10, "name": "n"}) for _ in range(10))
    )
    await eventually(
        lambda: run(app, "query", "counter", {"name": "n"}), lambda n: n >= N, timeout=90
    )
    elapsed = time.monotonic() - started
    await asyncio.sleep(1.5)  # any duplicate delivery would show up now
    assert await run(app, "query", "counter", {"name": "n"}) == N
    states = await sql(
        deployment.database_url,
        """SELECT doc->'state'->>'kind' AS kind, count(*) AS n
           FROM docs."_scheduled_functions" GROUP BY 1""",
    )
    assert {r["kind"]: r["n"] for r in states} == {"success": N}
    both = [deployment.worker_log(name) for name in ("w1", "w2")]
    print(f"{N} increments of one hot counter by two workers in {elapsed:.1f}s")
    assert all("Traceback" not in log or "ConflictError" in log for log in both)
