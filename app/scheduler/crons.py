"""Cron ticks: each tick of each job in `crons.py` becomes one scheduled function.

A tick's row id is derived from the deployment, the job's name and the tick's time, so
every worker computes the same id and `INSERT .. ON CONFLICT DO NOTHING` lets exactly one
row exist per tick, however many workers see it. Ticks are written a little ahead of
time; a worker's later passes also look back to its previous pass, so a late pass runs a
tick late rather than never. A worker's first pass does not look back: ticks missed
while no worker ran are skipped. From there they run like any scheduled function,
recorded in `_scheduled_functions`. Interval jobs tick on multiples of their interval
since the epoch; cron expressions are read in UTC.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from croniter import croniter

from app.engine import check_args
from app.scheduler import documents as rows
from app.server.crons import CronJob
from app.server.refs import ref_path
from app.values import encode_value

if TYPE_CHECKING:
    from app.engine import Call
    from app.engine.registry import Registry
    from app.scheduler.service import SchedulerService

log = logging.getLogger("convect.scheduler")
LOOKBACK_MS = 5_000
HORIZON_MS = 2_000


@dataclass(frozen=True)
class Tick:
    """One run of a cron job: its row id, function path, encoded args and time."""

    id: str
    path: str
    args: Any
    at: float


def tick_times(job: CronJob, after: float, until: float) -> list[float]:
    """The job's tick times (ms) in `(after, until]`."""
    times: list[float] = []
    if job.interval_s is not None:
        step = job.interval_s * 1000.0
        t = (math.floor(after / step) + 1) * step
        while t <= until:
            times.append(t)
            t += step
        return times
    assert job.cron is not None
    it = croniter(job.cron, datetime.fromtimestamp(after / 1000.0, UTC))
    while True:
        t = it.get_next(datetime).timestamp() * 1000.0
        if t > until:
            return times
        times.append(t)


class CronTicker:
    """Writes the rows of upcoming cron ticks (one per tick across all workers)."""

    def __init__(self, service: SchedulerService) -> None:
        self.service = service
        self._registry: Registry | None = None
        self._jobs: list[tuple[CronJob, str, Any]] = []
        self._seen: dict[str, float] = {}  # tick id -> time, for ticks this process wrote
        self._last: float | None = None  # when this process's previous pass ran

    def jobs(self) -> list[tuple[CronJob, str, Any]]:
        """The app's valid cron jobs as (job, path, encoded args); invalid ones are logged."""
        registry = self.service.engine.registry
        if registry is not self._registry:
            self._registry = registry
            self._jobs = []
            crons = registry.crons
            for job in getattr(crons, "jobs", {}).values():
                try:
                    self._jobs.append((job, *self._check(job)))
                except Exception as exc:
                    log.error("cron job %r is skipped: %s", job.name, exc)
        return self._jobs

    def _check(self, job: CronJob) -> tuple[str, Any]:
        path = ref_path(job.ref)
        fn = self.service.engine.registry.get(path)
        if fn is None:
            raise LookupError(f"Could not find function for {path!r}")
        if fn.kind == "query":
            raise TypeError(f"{path} is a query; only mutations and actions can run as crons")
        return path, encode_value(check_args(fn, job.args))

    def due(self, now: float) -> list[Tick]:
        """Ticks since the previous pass (or now) and a little ahead, not yet written here."""
        namespace = self.service.queue.namespace
        start = now if self._last is None else max(min(self._last, now), now - LOOKBACK_MS)
        ticks = []
        for job, path, args in self.jobs():
            for t in tick_times(job, start, now + HORIZON_MS):
                tick_id = rows.derived_id("cron", namespace, job.name, str(round(t)))
                if tick_id not in self._seen:
                    ticks.append(Tick(tick_id, path, args, t))
        return ticks

    async def run(self, now: float) -> int:
        """Write the rows of due ticks (those another worker wrote are skipped); how many."""
        ticks = self.due(now)
        if ticks:

            async def body(call: Call) -> int:
                assert call.tx is not None
                written = 0
                for tick in ticks:
                    created = call.engine.catalog.clock.next()
                    doc = rows.new_document(
                        tick.id, tick.path, tick.args, tick.at, creation_time=created
                    )
                    if await rows.insert_if_absent(call.tx, doc):
                        written += 1
                        call.after_commit.append(self._enqueue(tick))
                return written

            written: int = await self.service.system_tx(body)
            self._seen.update((tick.id, tick.at) for tick in ticks)
        else:
            written = 0
        self._last = now
        for tick_id, at in list(self._seen.items()):
            if at < now - 2 * LOOKBACK_MS:
                del self._seen[tick_id]
        return written

    def _enqueue(self, tick: Tick) -> Any:
        async def enqueue() -> None:
            self.service.queue.submit(tick.id, tick.at)

        return enqueue
