"""Redis killed (SIGKILL) and restarted empty while mutations keep scheduling work.

Redis holds no durable fact (DESIGN §4): a scheduling mutation commits its
`_scheduled_functions` rows whether or not the job reaches Redis, and the sweeper puts
lost jobs back once Redis answers again. The kitchen app (tests/apps/kitchen/
sched_funcs.py) on its own database, with a private Redis and two real workers.
Workers killed with SIGKILL mid-load are tests/scheduler/test_recovery.py's subject.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_HEADERS
from tests.reliability.faults import PrivateRedis
from tests.scheduler.conftest import Deployment, deploy
from tests.support.calls import CallFailed
from tests.support.scheduling import (
    eventually,
    run,
)

LOAD_S = 7.0
KILL_AFTER_S = 1.5
DOWN_FOR_S = 2.5
PER_CALL = 5


@pytest.fixture(scope="module")
def redis_deployment(
    services: dict[str, str], data_dir: Path
) -> Iterator[tuple[PrivateRedis, Deployment]]:
    """A private Redis, the kitchen app served on its own database, two workers."""
    redis = PrivateRedis(data_dir / "rel-redis")
    dep = deploy(services, redis.url, data_dir / "rel-redis-app", "rel_redis")
    try:
        dep.start_workers("w1", "w2")
        yield redis, dep
    finally:
        dep.stop_workers()
        if dep.server is not None:
            dep.server.stop()
        redis.close()


@pytest.fixture
async def admin(
    redis_deployment: tuple[PrivateRedis, Deployment],
) -> AsyncIterator[httpx.AsyncClient]:
    _, dep = redis_deployment
    assert dep.server is not None
    async with httpx.AsyncClient(
        base_url=dep.server.url, timeout=60, headers=ADMIN_HEADERS
    ) as client:
        yield client


def _logs(dep: Deployment) -> str:
    parts = [
        f"--- {n} (exit {w.poll()})\n" + dep.worker_log(n)[-3000:] for n, w in dep.workers.items()
    ]
    return "\n".join(parts)


@pytest.mark.reliability
async def test_redis_killed_and_restarted_empty_loses_no_scheduled_function(
    redis_deployment: tuple[PrivateRedis, Deployment], admin: httpx.AsyncClient
) -> None:
    redis, dep = redis_deployment
    acked: list[float] = []
    failed: list[str] = []
    marks: dict[str, float] = {}

    async def scheduler(label: str) -> None:
        deadline = time.monotonic() + LOAD_S
        while time.monotonic() < deadline:
            try:
                await run(admin, "mutation", "schedule_records", {"n": PER_CALL, "label": label})
                acked.append(time.monotonic())
            except CallFailed as exc:
                failed.append(str(exc))
            await asyncio.sleep(0.02)

    async def outage() -> None:
        await asyncio.sleep(KILL_AFTER_S)
        redis.kill()
        marks["killed"] = time.monotonic()
        await asyncio.sleep(DOWN_FOR_S)
        await asyncio.to_thread(redis.start)
        marks["restarted"] = time.monotonic()

    await asyncio.gather(scheduler("a"), scheduler("b"), outage())
    # Scheduling kept committing while Redis was gone.
    assert failed == []
    during = [t for t in acked if marks["killed"] < t < marks["restarted"]]
    assert len(during) >= 5, (len(during), len(acked))
    # After the restart every scheduled function runs, exactly once.
    expected = {"a": 0, "b": 0}
    total = len(acked) * PER_CALL
    started = time.monotonic()

    async def runs() -> int:
        a = await run(admin, "query", "count_runs", {"label": "a"})
        b = await run(admin, "query", "count_runs", {"label": "b"})
        expected.update(a=a, b=b)
        return int(a + b)

    try:
        await eventually(runs, lambda n: n >= total, timeout=30)
    except AssertionError as exc:
        raise AssertionError(f"{exc} of {total}\n{_logs(dep)}") from None
    caught_up_s = time.monotonic() - started
    await asyncio.sleep(1.5)  # a duplicate delivery would show now
    assert await runs() == total
    rows = await run(admin, "query", "all_scheduled")
    assert len(rows) == total
    assert {r["state"]["kind"] for r in rows} == {"success"}
    assert all(w.poll() is None for w in dep.workers.values()), "a worker died with Redis"
    assert any("lost Redis" in dep.worker_log(n) for n in dep.workers)  # and waited for it
    assert dep.server is not None and dep.server.proc.poll() is None
    print(
        f"{len(acked)} scheduling mutations ({total} functions) in {LOAD_S:.0f}s, "
        f"{len(during)} of them while Redis was down for {DOWN_FOR_S}s; all ran once, "
        f"the last {caught_up_s:.1f}s after the load ended"
    )
