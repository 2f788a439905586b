"""Scheduler benchmark: 10,000 `run_after(0)` mutations scheduled by 100 mutations.

Two `convect worker` processes run the jobs; this process schedules through an in-process
engine. Each job records when it started next to when it became due, so lag is
due time → start. Cases: paced (100-job mutations sent at a given job rate, for each
rate in BENCH_SCHED_RATES) and burst (all 100 mutations at once: maximum throughput).
Also measured: Redis commands per job and per idle second (the cost of `poll_delay`).

Run alone with `python -m bench.scheduler_bench` (embedded services);
`run_scheduler_bench` returns report lines for bench.run. Knobs: BENCH_SCHED_JOBS
(10000), BENCH_SCHED_RATES (250,500,1000), BENCH_SCHED_WORKERS (2),
BENCH_SCHED_POLL (0.01 s), BENCH_SCHED_CONCURRENCY (32).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import psutil
from redis.asyncio import Redis

from bench.servers import run_alone
from tests.support.servers import convect_env, create_database, run_cli

ROOT = Path(__file__).resolve().parent.parent
APP = Path(__file__).resolve().parent / "scheduler_app"
PER_MUTATION = 100
TARGET_P99_MS = 100.0
_next_batch = 0  # batch numbers run on across cases (see `_case`)


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass
class CaseResult:
    """One case: offered and achieved job rates and the lag distribution."""

    name: str
    offered: float | None
    achieved: float
    p50: float
    p99: float
    max: float
    after_commit_p50: float
    after_commit_p99: float
    redis_per_job: float
    retries_per_job: float
    cpu_ms: dict[str, float]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _commands(redis: Redis) -> int:
    info = await redis.info("stats")
    return int(info["total_commands_processed"])


async def _count(db: asyncpg.Connection, first_batch: int) -> int:
    if await db.fetchval("SELECT to_regclass('docs.lag')") is None:
        return 0
    return int(
        await db.fetchval(
            """SELECT count(*) FROM docs."lag" WHERE (doc->>'batch')::float8 >= $1""",
            first_batch,
        )
    )


async def _wait_done(db: asyncpg.Connection, first_batch: int, total: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while await _count(db, first_batch) < total:
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not finish the scheduled jobs in time")
        await asyncio.sleep(0.1)


class CpuMeter:
    """CPU seconds used by the workers, PostgreSQL (all its processes), Redis and this process."""

    def __init__(self, workers: list[int], postmaster: int, redis: int) -> None:
        self.groups = {"workers": workers, "postgres": [postmaster], "redis": [redis]}

    def _group(self, name: str) -> float:
        total = 0.0
        for pid in self.groups[name]:
            try:
                proc = psutil.Process(pid)
                procs = [proc, *proc.children(recursive=True)] if name == "postgres" else [proc]
                for p in procs:
                    t = p.cpu_times()
                    total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def read(self) -> dict[str, float]:
        """Cumulative CPU seconds per group."""
        out = {name: self._group(name) for name in self.groups}
        t = os.times()
        out["scheduler"] = t.user + t.system
        return out


async def _rollbacks(db: asyncpg.Connection) -> int:
    return int(
        await db.fetchval(
            "SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        )
    )


async def _case(
    engine: object,
    db: asyncpg.Connection,
    redis: Redis,
    meter: CpuMeter,
    name: str,
    jobs: int,
    rate: float | None,
) -> CaseResult:
    """Send jobs/100 scheduling mutations (paced at `rate` jobs/s, or all at once)."""
    from app.auth import Principal

    # Each case numbers its batches after the previous ones' rather than emptying the
    # table: a TRUNCATE makes every worker connection rebuild its caches and re-prepare
    # its statements, which slowed the next case's first batches by ~30 ms.
    global _next_batch
    first = _next_batch
    mutations = max(1, jobs // PER_MUTATION)
    _next_batch += mutations
    before = await _commands(redis)
    rollbacks, cpu = await _rollbacks(db), meter.read()
    admin = Principal(None, True)

    committed: dict[int, float] = {}

    async def one(batch: int) -> None:
        outcome = await engine.call(  # type: ignore[attr-defined]
            "lag:schedule", {"n": PER_MUTATION, "batch": batch}, admin, "mutation"
        )
        if outcome.error is not None:
            raise RuntimeError(outcome.error.message)
        committed[batch] = time.time() * 1000

    if rate is None:
        sem = asyncio.Semaphore(16)

        async def limited(batch: int) -> None:
            async with sem:
                await one(batch)

        await asyncio.gather(*(limited(b) for b in range(first, first + mutations)))
    else:
        interval = PER_MUTATION / rate
        start = time.monotonic()
        tasks = []
        for b in range(first, first + mutations):
            delay = start + (b - first) * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(b)))
        await asyncio.gather(*tasks)
    total = mutations * PER_MUTATION
    await _wait_done(db, first, total, timeout=120 + total / 50)
    rows = await db.fetch(
        "SELECT (doc->>'due')::float8 AS due, (doc->>'started')::float8 AS started, "
        """(doc->>'batch')::float8::int AS batch FROM docs."lag" """
        "WHERE (doc->>'batch')::float8 >= $1",
        first,
    )
    lags = [r["started"] - r["due"] for r in rows]
    if os.environ.get("BENCH_SCHED_DEBUG"):
        _explain(rows, committed)
    after_commit = [r["started"] - committed[r["batch"]] for r in rows]
    span_ms = max(r["started"] for r in rows) - min(r["due"] for r in rows)
    used = await _commands(redis) - before
    retried = await _rollbacks(db) - rollbacks
    after = meter.read()
    cpu_ms = {k: (after[k] - cpu[k]) * 1000 / max(1, jobs) for k in after}
    return CaseResult(
        name,
        rate,
        total / (span_ms / 1000),
        statistics.median(lags),
        _percentile(lags, 0.99),
        max(lags),
        statistics.median(after_commit),
        _percentile(after_commit, 0.99),
        used / total,
        retried / total,
        cpu_ms,
    )


def _explain(rows: list[asyncpg.Record], committed: dict[int, float]) -> None:
    """Print where lag comes from (BENCH_SCHED_DEBUG=1): by batch, and first vs last job."""
    batches: dict[int, list[asyncpg.Record]] = {}
    for r in rows:
        batches.setdefault(r["batch"], []).append(r)
    worst = sorted(batches, key=lambda b: -max(r["started"] - r["due"] for r in batches[b]))
    for b in sorted(set(sorted(batches)[:: max(1, len(batches) // 6)] + worst[:6])):
        rs = sorted(batches[b], key=lambda r: r["started"])
        first_due = min(r["due"] for r in rs)
        print(
            f"batch {b}: commit +{committed[b] - first_due:.1f} ms, first start "
            f"+{rs[0]['started'] - first_due:.1f}, median +{rs[len(rs) // 2]['started'] - first_due:.1f}, "
            f"last +{rs[-1]['started'] - first_due:.1f}",
            file=sys.stderr,
        )


def _start_workers(
    env: dict[str, str], data_dir: Path, count: int
) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(count):
        log = open(data_dir / f"worker{i}.log", "ab")  # noqa: SIM115 - handed to the child
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "app", "worker"],
                env={**env, "CONVECT_DATA_DIR": str(data_dir / f"worker{i}")},
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    deadline = time.monotonic() + 60
    for i, proc in enumerate(procs):
        while "ready" not in (data_dir / f"worker{i}.log").read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((data_dir / f"worker{i}.log").read_text())
            time.sleep(0.05)
    return procs


async def _measure(url: str, redis_url: str, pids: list[int]) -> tuple[list[CaseResult], float]:
    from app.compose import build_engine
    from app.engine.registry import load_registry
    from app.settings import Settings

    settings = Settings(
        functions=str(APP), database_url=url, redis_url=redis_url, mode="prod", log_level="warning"
    )
    engine = build_engine(settings, load_registry(APP), "cli")
    await engine.start()
    db = await asyncpg.connect(url)
    redis = Redis.from_url(redis_url)
    backend = await db.fetchval("SELECT pg_backend_pid()")
    redis_pid = int((await redis.info("server"))["process_id"])
    meter = CpuMeter(pids, psutil.Process(backend).ppid(), redis_pid)
    jobs = int(_env("BENCH_SCHED_JOBS", "10000"))
    rates = [float(r) for r in _env("BENCH_SCHED_RATES", "250,500,1000").split(",") if r]
    try:
        await _case(engine, db, redis, meter, "warm-up", 1000, None)
        before, t0 = await _commands(redis), time.monotonic()
        await asyncio.sleep(5)
        idle = (await _commands(redis) - before) / (time.monotonic() - t0)
        results = [await _case(engine, db, redis, meter, f"paced {r:g}/s", jobs, r) for r in rates]
        results.append(await _case(engine, db, redis, meter, "burst", jobs, None))
    finally:
        await redis.aclose()
        await db.close()
        await engine.stop()
    return results, idle


def run_scheduler_bench(database_base_url: str, redis_url: str, data_dir: Path) -> list[str]:
    """Deploy the benchmark app, start workers, run every case; report lines."""
    workers = int(_env("BENCH_SCHED_WORKERS", "2"))
    poll = _env("BENCH_SCHED_POLL", "0.01")
    concurrency = _env("BENCH_SCHED_CONCURRENCY", "32")
    url = asyncio.run(create_database(database_base_url, "bench_scheduler"))
    data_dir = data_dir / "scheduler"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = convect_env(
        url,
        redis_url,
        APP,
        data_dir,
        CONVECT_MODE="prod",
        CONVECT_LOG_LEVEL="info",
        CONVECT_WORKER_POLL_DELAY=poll,
        CONVECT_WORKER_CONCURRENCY=concurrency,
    )
    deployed = run_cli(env, "deploy")
    if deployed.returncode != 0:
        raise RuntimeError(deployed.stderr)
    procs = _start_workers(env, data_dir, workers)
    try:
        results, idle = asyncio.run(_measure(url, redis_url, [p.pid for p in procs]))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)
    sustained = [
        r for r in results if r.offered and r.p99 <= TARGET_P99_MS and r.achieved >= 0.9 * r.offered
    ]
    best = max((r.offered or 0 for r in sustained), default=0)
    lines = [
        "",
        "## Scheduler",
        "",
        f"{int(_env('BENCH_SCHED_JOBS', '10000')):,} `run_after(0)` mutations per case, "
        f"scheduled by mutations of {PER_MUTATION} each; {workers} workers, "
        f"poll_delay {poll} s, concurrency {concurrency}; lag = due time → start.",
        "",
        "| case | jobs/s | lag p50 ms | lag p99 ms | lag max ms "
        "| commit → start p50 / p99 ms | Redis cmds/job "
        "| retries/job | CPU ms/job: workers / PostgreSQL / Redis / scheduling |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.achieved:,.0f} | {r.p50:.1f} | {r.p99:.1f} | {r.max:.0f} | "
            f"{r.after_commit_p50:.1f} / {r.after_commit_p99:.1f} | "
            f"{r.redis_per_job:.1f} | {r.retries_per_job:.2f} | "
            + " / ".join(
                f"{r.cpu_ms[k]:.2f}" for k in ("workers", "postgres", "redis", "scheduler")
            )
            + " |"
        )
    lines += [
        "",
        f"Highest paced rate with lag p99 ≤ {TARGET_P99_MS:.0f} ms: "
        + (f"{best:,.0f} jobs/s" if best else "none of the rates tried"),
        f"Idle Redis cost of polling: {idle:.0f} commands/s for {workers} workers "
        f"(≈ {idle / max(1, workers):.0f} per worker).",
    ]
    return lines


def main() -> None:
    """Stand-alone run with embedded services."""
    run_alone("scheduler", run_scheduler_bench)


if __name__ == "__main__":
    main()
