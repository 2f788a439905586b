"""`convect worker`: an arq worker that runs scheduled functions, the sweeper and crons,
and (CONVECT_RUN_ACTIONS=worker) client-called actions (`app.scheduler.remote`).

One arq function (`convect.run`, the scheduled id as its argument) and one arq cron
every second (`tick`: cron rows, then the sweeper; arq runs it once across workers).
A job that is delivered twice is harmless (the row says what is left to do), so arq's
"in progress" guard only needs to outlive a live worker's lease: after a crash, another
worker picks the job up within a lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arq import cron
from arq.connections import RedisSettings
from arq.worker import Worker, async_check_health, func
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.db import ids
from app.scheduler import documents as rows
from app.scheduler import sweeper
from app.scheduler.batching import BatchingWorker
from app.scheduler.crons import CronTicker
from app.scheduler.documents import now_ms
from app.scheduler.executor import Executor
from app.scheduler.queue import RUN_FUNCTION
from app.scheduler.remote import ActionJobs, is_action_job, wake_key
from app.scheduler.service import SchedulerService

if TYPE_CHECKING:
    from app.engine import Engine
    from app.settings import Settings

log = logging.getLogger("convect.worker")
HEALTH_FILE = "worker-health.json"
REDIS_RETRY_S = (0.5, 5.0)  # first and longest wait before resuming after a Redis error


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker runs (flags of `convect worker`)."""

    concurrency: int = 32
    poll_delay: float = 0.01
    lease_s: float = 15.0
    grace_s: float = 25.0
    action_timeout_s: float = 600.0
    health_interval_s: float = 1.0


class SchedulerWorker:
    """Runs jobs of one engine's deployment until stopped."""

    def __init__(self, engine: Engine, options: WorkerOptions | None = None) -> None:
        self.engine = engine
        self.options = options or WorkerOptions()
        service = engine.scheduler
        if not isinstance(service, SchedulerService):
            raise RuntimeError("This engine has no scheduler (build it with a worker role)")
        self.service = service
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.executor = Executor(self.service, self.id)
        self.actions = ActionJobs(self.service, self.id)
        self.ticker = CronTicker(self.service)
        self.arq: Worker | None = None

    @staticmethod
    def _is_scheduled_id(job_id: str) -> bool:
        return ids.is_id_for(job_id, rows.TABLE)

    @classmethod
    def _is_direct(cls, job_id: str) -> bool:
        return is_action_job(job_id) or cls._is_scheduled_id(job_id)

    async def _run_direct(self, job_id: str, job_try: int) -> None:
        """A scheduled function, or a client-called action (CONVECT_RUN_ACTIONS=worker)."""
        if is_action_job(job_id):
            await self.actions.run(job_id, job_try)
        else:
            await self.executor.run(job_id, job_try)

    def _claimed(self, job_ids: list[str]) -> None:
        self.executor.prefetch([j for j in job_ids if not is_action_job(j)])

    async def _job(self, ctx: dict[str, Any], scheduled_id: str) -> None:
        await self.executor.run(scheduled_id, int(ctx.get("job_try") or 1))

    async def _tick(self, ctx: dict[str, Any]) -> None:
        await self.tick()

    async def tick(self) -> None:
        """Write due cron rows, then sweep (errors are logged: the next tick tries again)."""
        now = now_ms()
        try:
            await self.ticker.run(now)
        except Exception:
            log.exception("writing cron ticks failed")
        try:
            await sweeper.sweep(self.service, now)
        except Exception:
            log.exception("the sweeper failed")

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.options.lease_s / 3)
            try:
                await sweeper.renew_lease(self.engine.pool, self.id, self.options.lease_s)
            except Exception as exc:
                log.warning("could not renew the worker lease: %s", exc)

    def _make_arq(self) -> BatchingWorker:
        opts = self.options
        queue = self.service.queue
        settings = self.engine.settings
        assert settings.redis_url is not None
        worker = BatchingWorker(
            functions=[
                func(
                    self._job,
                    name=RUN_FUNCTION,
                    timeout=opts.action_timeout_s,
                    max_tries=2**31,
                    keep_result=0,
                )
            ],
            cron_jobs=[
                cron(
                    self._tick,
                    name=queue.key("tick"),
                    second=None,
                    microsecond=0,
                    unique=True,
                    timeout=60,
                    keep_result=0,
                    max_tries=1,
                )
            ],
            queue_name=queue.name,
            redis_settings=RedisSettings.from_dsn(settings.redis_url),
            handle_signals=False,
            max_jobs=opts.concurrency,
            poll_delay=opts.poll_delay,
            keep_result=0,
            health_check_interval=opts.health_interval_s,
            health_check_key=queue.key(f"health:{self.id}"),
            log_results=False,
        )
        # A redelivery is harmless; let another worker take a crashed worker's jobs soon.
        worker.in_progress_timeout_s = opts.lease_s
        worker.on_claimed = self._claimed
        worker.direct = self._is_direct
        worker.run_direct = self._run_direct
        worker.direct_timeout_s = opts.action_timeout_s
        return worker

    def _write_health_file(self, key: str) -> None:
        settings = self.engine.settings
        data: dict[str, str] = {"key": key}
        if settings.redis_url and settings.redis_url.startswith("unix://"):
            data["redis_url"] = settings.redis_url  # embedded Redis: no secret in it
        path = settings.data_path / HEALTH_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))

    async def run(self, stop: asyncio.Event) -> None:
        """Register, sweep once, run arq until `stop` is set; then drain and retire."""
        await sweeper.renew_lease(self.engine.pool, self.id, self.options.lease_s)
        heartbeat = asyncio.create_task(self._heartbeat(), name="convect-worker-lease")
        self.arq = worker = self._make_arq()
        self._write_health_file(worker.health_check_key)
        self.actions.start_heartbeat()
        await self.tick()
        main = asyncio.create_task(self._run_arq(worker), name="convect-worker")
        waker = asyncio.create_task(self._wake_on_actions(worker), name="convect-action-wake")
        stopping = asyncio.create_task(stop.wait())
        log.info(
            "convect worker %s ready (queue %s, concurrency %d, poll %.3fs)",
            self.id,
            self.service.queue.name,
            self.options.concurrency,
            self.options.poll_delay,
        )
        try:
            await asyncio.wait({main, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            waker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await waker
            await self._shutdown(worker, main)
            await asyncio.to_thread(self.actions.stop_heartbeat)
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await self._retire()
        failed = main.exception() if main.done() and not main.cancelled() else None
        if failed is not None:
            raise failed

    async def _run_arq(self, worker: Worker) -> None:
        """arq's job loop, resumed (same worker, same running jobs) after Redis comes back.

        arq's loop ends with the first Redis error; Redis holds no durable fact, so the
        worker waits for it instead of exiting, and the sweeper re-adds what it lost.
        """
        delay = REDIS_RETRY_S[0]
        while True:
            started = asyncio.get_running_loop().time()
            try:
                await worker.async_run()
                return
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                if asyncio.get_running_loop().time() - started > REDIS_RETRY_S[1]:
                    delay = REDIS_RETRY_S[0]
                log.warning("lost Redis (%s); resuming the job loop in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, REDIS_RETRY_S[1])

    async def _wake_on_actions(self, worker: BatchingWorker) -> None:
        """Claim client-called actions as their callers announce them (one blocking
        connection), instead of at the next poll: the poll's wait is most of what an
        action on a worker would add to the call otherwise. A job this worker has no
        slot for stays on the queue for the polls of every worker."""
        settings = self.engine.settings
        assert settings.redis_url is not None
        redis: Any = Redis.from_url(settings.redis_url)
        key = wake_key(self.service.queue.namespace)
        delay = REDIS_RETRY_S[0]
        try:
            while True:
                try:
                    item = await redis.blpop([key], timeout=1)
                    if item is not None and worker.allow_pick_jobs and worker.ready:
                        await worker.start_jobs([item[1]])
                    delay = REDIS_RETRY_S[0]
                except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                    log.warning("action wake-ups paused (%s); again in %.1f s", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, REDIS_RETRY_S[1])
        finally:
            await redis.aclose()

    async def _shutdown(self, worker: Worker, main: asyncio.Task[None]) -> None:
        """Stop taking jobs, let running ones finish for the grace period, then cancel them."""
        worker.allow_pick_jobs = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.grace_s
        while any(not t.done() for t in worker.tasks.values()) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        main.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await main
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await worker.close()

    async def _retire(self) -> None:
        """Leave: fail this worker's interrupted actions now rather than after its lease."""
        try:
            await sweeper.end_lease(self.engine.pool, self.id)
            await sweeper.fail_orphans(self.service)
        except Exception as exc:
            log.warning("could not retire worker %s cleanly: %s", self.id, exc)


async def run_worker(
    engine: Engine, stop: asyncio.Event, options: WorkerOptions | None = None
) -> None:
    """Run a scheduler worker on a started engine until `stop` is set."""
    await SchedulerWorker(engine, options).run(stop)


def check_health(settings: Settings) -> int:
    """Exit code of `convect worker --check`: 0 while this host's worker reports in."""
    path = settings.data_path / HEALTH_FILE
    try:
        data = json.loads(path.read_text())
        url = settings.redis_url or data.get("redis_url")
        if not url:
            return 1
        return asyncio.run(async_check_health(RedisSettings.from_dsn(url), data["key"]))
    except Exception as exc:
        log.warning("worker health check failed: %s", exc)
        return 1
