"""Prometheus metrics of one engine: calls, latency, OCC retries, live queries, scheduler queue.

Every engine has its own `CollectorRegistry` (never the global one), so several engines
in one process (tests) do not collide. Counters that other subsystems already keep
(the hub's `HubStats`, open sockets) and the scheduler's queue are read at scrape time;
only the per-call counters are updated on the hot path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from app.engine import Engine, Outcome
    from app.engine.parts import LiveQueryCounts, SweepCounts
    from app.server.functions import RegisteredFunction

log = logging.getLogger("convect.metrics")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # what generate_latest writes
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip
SCHEDULER_TIMEOUT_S = 2.0
COUNT_CAP = 100_000  # queue-depth counts stop here, so a huge backlog never makes scrapes slow
# (HubStats field, metric, help): what the live-query hub counts, read at scrape time.
HUB_COUNTERS = (
    ("refreshes", "convect_sync_refreshes", "Live-query refresh cycles"),
    ("commits_seen", "convect_sync_commits_seen", "Commit-log entries read by refreshes"),
    (
        "commits_matched",
        "convect_sync_commits_matched",
        "Of those, parsed and matched (other processes' commits; own ones are matched when made)",
    ),
    ("reruns", "convect_sync_reruns", "Query runs in refreshes (new subscriptions and re-runs)"),
    ("cache_hits", "convect_query_cache_hits", "HTTP queries answered from the live-query cache"),
    ("cache_misses", "convect_query_cache_misses", "HTTP queries the cache could not answer"),
)


def outcome_label(outcome: Outcome) -> str:
    """`success`, `convex_error` (the app's ConvexError) or `error` (anything else)."""
    if outcome.error is None:
        return "success"
    return "convex_error" if outcome.error.is_convex_error else "error"


@dataclass
class SchedulerSnapshot:
    """The scheduler's queue as last read (deployment-wide: every API pod reports the same)."""

    ok: bool = False
    due: int = 0
    in_progress: int = 0
    lag_s: float = 0.0


class Metrics:
    """The metrics of one engine (`engine.metrics`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.registry = CollectorRegistry()
        self.calls = Counter(
            "convect_function_calls",
            "Function executions by function, kind and outcome",
            ["function", "kind", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "convect_function_duration_seconds",
            "Function execution time (arguments to result, retries included)",
            ["function", "kind"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.retries = Counter(
            "convect_mutation_retries",
            "Mutation attempts re-run after a serialization failure or deadlock (OCC retries)",
            ["function"],
            registry=self.registry,
        )
        self.scheduler = SchedulerSnapshot()
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self.registry.register(_LiveCollector(self))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    # ------------------------------------------------------------- hot path

    def observe(self, fn: RegisteredFunction, outcome: Outcome) -> None:
        """Count one finished top-level call (an engine observer)."""
        key = (fn.path or "?", fn.kind, outcome_label(outcome))
        children = self._children.get(key)
        if children is None:
            children = (self.calls.labels(*key), self.duration.labels(key[0], key[1]))
            self._children[key] = children
        children[0].inc()
        children[1].observe(outcome.duration_ms / 1000.0)

    def retry(self, fn: RegisteredFunction) -> None:
        """Count one OCC retry of a mutation."""
        self.retries.labels(fn.path or "?").inc()

    # ------------------------------------------------------------- scrape

    async def scrape(self) -> bytes:
        """The exposition text: reads the scheduler's queue first (one cheap query)."""
        await self.refresh_scheduler()
        return generate_latest(self.registry)

    async def refresh_scheduler(self) -> None:
        """Read queue depth, in-progress count and lag of `_scheduled_functions`."""
        if not self.engine.started:
            self.scheduler.ok = False
            return
        pool = self.engine.pool
        try:
            row = await asyncio.wait_for(
                pool.fetchrow(SCHEDULER_SQL, time.time() * 1000.0, COUNT_CAP),
                SCHEDULER_TIMEOUT_S,
            )
        except Exception as exc:  # a scrape must answer even when the database does not
            log.warning("could not read the scheduler queue for metrics: %s", exc)
            self.scheduler.ok = False
            return
        assert row is not None
        oldest = row["oldest"]
        self.scheduler = SchedulerSnapshot(
            ok=True,
            due=int(row["due"]),
            in_progress=int(row["in_progress"]),
            lag_s=max(0.0, (time.time() * 1000.0 - oldest) / 1000.0) if oldest is not None else 0.0,
        )


# For metrics: $1 = now (ms), $2 = a cap on counts. Columns: due (pending functions due by
# now, capped), oldest (the earliest due time among them), in_progress (running actions).
SCHEDULER_SQL = (
    "SELECT (SELECT count(*) FROM (SELECT 1 FROM _convect_scheduled_queue "
    "WHERE due <= $1 AND worker IS NULL LIMIT $2) d) AS due, "
    "(SELECT min(due) FROM _convect_scheduled_queue WHERE due <= $1 AND worker IS NULL) AS oldest, "
    "(SELECT count(*) FROM (SELECT 1 FROM _convect_scheduled_queue WHERE worker IS NOT NULL LIMIT $2) p) "
    "AS in_progress"
)


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


class _LiveCollector(Collector):
    """Gauges and counters read from the engine's subsystems at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        engine = self.metrics.engine
        yield _gauge(
            "convect_draining",
            "1 while this process drains for shutdown (its /readyz answers 503)",
            1.0 if engine.draining else 0.0,
        )
        hub = engine.hub
        if hub is not None:
            yield from _hub_metrics(hub.snapshot())
        pool = engine.pool_if_open
        if pool is not None:
            size = pool.get_size()
            yield _gauge("convect_pool_size", "PostgreSQL connections open in the pool", size)
            yield _gauge(
                "convect_pool_in_use", "Pool connections lent out now", size - pool.get_idle_size()
            )
        if engine.storage is not None:
            yield from _sweep_metrics(engine.storage.sweeps)
        sched = self.metrics.scheduler
        yield _gauge(
            "convect_scheduler_stats_ok",
            "1 if the last read of the scheduler queue succeeded",
            1.0 if sched.ok else 0.0,
        )
        if sched.ok:
            yield _gauge(
                "convect_scheduler_queue_depth",
                f"Scheduled functions due now and still pending, deployment-wide (capped at "
                f"{COUNT_CAP})",
                sched.due,
            )
            yield _gauge(
                "convect_scheduler_in_progress",
                "Scheduled actions running now, deployment-wide",
                sched.in_progress,
            )
            yield _gauge(
                "convect_scheduler_lag_seconds",
                "How late the oldest pending due scheduled function is (0 when none is due)",
                sched.lag_s,
            )


def _sweep_metrics(sweeps: SweepCounts) -> Iterator[Metric]:
    yield CounterMetricFamily(
        "convect_storage_sweeps",
        "Storage sweeps this process ran (one process of the deployment sweeps per interval)",
        value=sweeps.runs,
    )
    yield CounterMetricFamily(
        "convect_storage_swept",
        "Leftovers the storage sweeps removed: objects of deleted files, unfinished uploads",
        value=sweeps.removed,
    )
    yield CounterMetricFamily(
        "convect_storage_sweep_failures",
        "Storage sweeps that failed (the object store or the database was down)",
        value=sweeps.failures,
    )


def _hub_metrics(hub: LiveQueryCounts) -> Iterator[Metric]:
    yield _gauge("convect_sync_sockets", "Open sync WebSockets", hub.sessions)
    yield _gauge(
        "convect_sync_subscriptions",
        "Query subscriptions of open sockets (one per socket and query id)",
        hub.subscriptions,
    )
    yield _gauge(
        "convect_sync_live_queries",
        "Distinct live queries (function, args, identity) with at least one subscriber",
        hub.live_queries,
    )
    yield _gauge(
        "convect_sync_entries",
        "Query results the hub holds (live queries plus cached HTTP results)",
        hub.entries,
    )
    yield _gauge(
        "convect_sync_healthy", "1 unless the last live-query refresh failed", float(hub.healthy)
    )
    for field_name, name, help_text in HUB_COUNTERS:
        yield CounterMetricFamily(name, help_text, value=getattr(hub, field_name))
    inval = CounterMetricFamily(
        "convect_sync_invalidations",
        "Query results a commit invalidated: subscribed ones are re-run, cached ones dropped",
        labels=["target"],
    )
    inval.add_metric(["subscribed"], hub.affected)
    inval.add_metric(["cached"], hub.invalidations)
    yield inval


__all__ = ["CONTENT_TYPE", "Metrics", "outcome_label"]
