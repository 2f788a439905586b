"""The arq transport: puts scheduled ids on one deployment's arq queue in Redis.

Redis holds no durable fact: every job is a row of `_scheduled_functions` first, and a
lost job is put back by the sweeper. Jobs are written in arq's own format (job key +
sorted-set entry, `SET NX` so an existing job id is left alone, as `enqueue_job` does),
many per round trip: the ids scheduled by concurrent mutations share one pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from arq.constants import job_key_prefix
from arq.jobs import serialize_job
from redis.asyncio import Redis

log = logging.getLogger("convect.scheduler")

RUN_FUNCTION = "convect.run"
EXPIRES_EXTRA_MS = 86_400_000  # arq's default: a job key outlives its due time by a day
MAX_EXPIRES_MS = 30 * 86_400_000  # far-future jobs expire early; the sweeper re-adds them


class JobQueue:
    """One deployment's queue: `convect:{namespace}:queue` and arq's per-job keys."""

    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.namespace = namespace
        self.name = f"convect:{namespace}:queue"
        self._buffer: list[tuple[str, float]] = []
        self._flusher: asyncio.Task[None] | None = None

    def key(self, suffix: str) -> str:
        """A Redis key of this deployment."""
        return f"convect:{self.namespace}:{suffix}"

    async def enqueue(self, jobs: list[tuple[str, float]]) -> None:
        """Put `(scheduled id, due ms)` jobs on the queue in one round trip (existing ids kept)."""
        if not jobs:
            return
        now = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id, due in jobs:
                score = int(due)
                payload = serialize_job(RUN_FUNCTION, (job_id,), {}, None, now)
                expires = min(max(score - now, 0) + EXPIRES_EXTRA_MS, MAX_EXPIRES_MS)
                pipe.set(job_key_prefix + job_id, payload, px=expires, nx=True)
                pipe.zadd(self.name, {job_id: score}, nx=True)
            await pipe.execute()

    def submit(self, job_id: str, due: float) -> None:
        """Enqueue soon, batched with others (after a commit; errors are logged, not raised)."""
        self._buffer.append((job_id, due))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the rest of the committing mutation's jobs join
        while self._buffer:
            jobs, self._buffer = self._buffer, []
            try:
                await self.enqueue(jobs)
            except Exception as exc:
                log.warning(
                    "could not enqueue %d scheduled function(s) (%s); the sweeper will",
                    len(jobs),
                    exc,
                )

    async def drain(self) -> None:
        """Wait until submitted jobs have been sent."""
        task = self._flusher
        if task is not None:
            with contextlib.suppress(Exception):
                await task

    async def remove(self, job_id: str) -> None:
        """Drop a (canceled) job from the queue; a worker would skip it anyway."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.name, job_id)
            pipe.delete(job_key_prefix + job_id)
            await pipe.execute()

    async def close(self) -> None:
        """Send what is buffered, then close the connection pool."""
        await self.drain()
        await self.redis.aclose()
