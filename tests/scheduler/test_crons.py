"""Crons: one run per tick across workers, recorded like scheduled functions."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from app.db import ids
from app.scheduler.crons import tick_times
from app.scheduler.documents import derived_id
from app.server.crons import CronJob, CronJobs
from tests.scheduler.conftest import Deployment, deploy, sql

CRON_APP = Path(__file__).parent / "cron_app"


@pytest.fixture(scope="module")
def cron_deployment(
    services: dict[str, str], sched_redis: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """The cron app on its own database (no API server: only workers)."""
    dep = deploy(
        services,
        sched_redis,
        tmp_path_factory.mktemp("sched-crons"),
        "sched_crons",
        CRON_APP,
        serve=False,
    )
    try:
        yield dep
    finally:
        dep.stop_workers()


async def test_a_one_second_interval_cron_ticks_once_per_second_with_two_workers(
    cron_deployment: Deployment,
) -> None:
    cron_deployment.start_workers("w1", "w2")
    await asyncio.sleep(5.5)
    cron_deployment.stop_workers()
    rows = await sql(
        cron_deployment.database_url,
        """SELECT doc FROM docs."_scheduled_functions" WHERE doc->>'name' = 'ticks:record'""",
    )
    docs = sorted((orjson.loads(r["doc"]) for r in rows), key=lambda d: d["scheduledTime"])
    done = [d for d in docs if d["state"]["kind"] != "pending"]
    assert {d["state"]["kind"] for d in done} == {"success"}
    times = [d["scheduledTime"] for d in done]
    assert len(times) >= 4
    assert all(t % 1000 == 0 for t in times)
    assert [b - a for a, b in itertools.pairwise(times)] == [1000.0] * (len(times) - 1)
    assert all(d["args"] == [{"source": "interval"}] for d in docs)
    runs = await sql(cron_deployment.database_url, 'SELECT doc FROM docs."ticks"')
    ran = sorted(orjson.loads(r["doc"])["at"] for r in runs)
    assert len(ran) == len(done)  # one run per tick, none twice
    for tick, at in zip(times, ran, strict=True):
        assert tick <= at < tick + 1000
    logs = cron_deployment.worker_log("w1") + cron_deployment.worker_log("w2")
    assert "cron job 'broken' is skipped: Could not find function for 'ticks:missing'" in logs


def test_interval_ticks_fall_on_multiples_of_the_interval() -> None:
    job = CronJob("j", "m:f", interval_s=60.0)
    assert tick_times(job, 59_000.0, 185_000.0) == [60_000.0, 120_000.0, 180_000.0]
    assert tick_times(job, 60_000.0, 60_000.0) == []


def test_cron_expression_ticks_are_read_in_utc() -> None:
    crons = CronJobs()
    crons.daily("d", {"hourUTC": 3, "minuteUTC": 30}, "m:f")
    crons.weekly("w", {"dayOfWeek": "monday", "hourUTC": 0, "minuteUTC": 0}, "m:f")
    start = datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000  # a Monday
    week = 7 * 24 * 3600 * 1000
    daily = tick_times(crons.jobs["d"], start, start + 3 * 24 * 3600 * 1000)
    assert [datetime.fromtimestamp(t / 1000, UTC).isoformat() for t in daily] == [
        "2024-01-01T03:30:00+00:00",
        "2024-01-02T03:30:00+00:00",
        "2024-01-03T03:30:00+00:00",
    ]
    assert tick_times(crons.jobs["w"], start - 1, start + week) == [start, start + week]


def test_tick_ids_are_valid_ids_that_every_worker_derives_alike() -> None:
    a = derived_id("cron", "ns", "job", "1000")
    assert a == derived_id("cron", "ns", "job", "1000")
    assert ids.is_id_for(a, "_scheduled_functions")
    assert (
        len(
            {a, derived_id("cron", "ns", "job", "2000"), derived_id("cron", "other", "job", "1000")}
        )
        == 3
    )
