"""The scheduler of one engine: its queue, system transactions, and `ctx.scheduler` factory."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import asyncpg
from redis.asyncio import Redis

from app.db import ids
from app.scheduler import documents as rows
from app.scheduler.queue import JobQueue
from app.scheduler.scheduler import Scheduler

if TYPE_CHECKING:
    from app.db.transaction import Tx
    from app.engine import Call, Engine
    from app.server.functions import RegisteredFunction

log = logging.getLogger("convect.scheduler")
T = TypeVar("T")


class RunningMutation(Protocol):
    """A scheduled mutation running in a transaction (`executor._ScheduledRun`)."""

    @property
    def scheduled_id(self) -> str: ...
    def cancel(self, tx: Tx) -> None: ...


class SchedulerService:
    """Scheduling for one engine: rows in PostgreSQL, jobs handed to arq after commit."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queue: JobQueue | None = None
        self.last_cleanup_ms = 0.0  # when this process last deleted old finished functions
        # The scheduled mutation each open transaction runs (a run that cancels itself).
        self.running: weakref.WeakKeyDictionary[Tx, RunningMutation] = weakref.WeakKeyDictionary()

    @property
    def queue(self) -> JobQueue:
        """The deployment's arq queue (after start)."""
        if self._queue is None:
            raise RuntimeError("The scheduler has not started")
        return self._queue

    def for_call(self, call: Call) -> Scheduler:
        """`ctx.scheduler` for one call."""
        return Scheduler(self, call)

    async def start(self) -> None:
        """Read the deployment's namespace; prepare (not open) the Redis connection."""
        engine = self.engine
        try:
            namespace = await engine.pool.fetchval("SELECT namespace FROM _convect_scheduler")
        except asyncpg.UndefinedTableError:
            raise RuntimeError(
                "The scheduler's system tables are missing: run `convect deploy` (migrations)"
            ) from None
        url = engine.settings.redis_url
        if not url:
            raise RuntimeError("The scheduler needs REDIS_URL (see app.embedded.resolve)")
        self._queue = JobQueue(Redis.from_url(url), str(namespace))

    async def stop(self) -> None:
        """Send buffered jobs and close Redis."""
        if self._queue is not None:
            await self._queue.close()

    # ------------------------------------------------------------- transactions

    async def system_tx(self, body: Callable[[Call], Awaitable[T]]) -> T:
        """Run `body(call)` in a short transaction of its own (`Executor.system_tx`)."""
        return await self.engine.executor.system_tx(body)

    async def insert_in(
        self, call: Call, fn: RegisteredFunction, encoded_args: Any, when: float
    ) -> str:
        """Insert a pending row in `call`'s transaction; enqueue it after commit."""
        assert call.tx is not None and fn.path is not None
        doc_id = ids.new_id(rows.TABLE)
        created = call.engine.catalog.clock.next()
        doc = rows.new_document(doc_id, fn.path, encoded_args, when, creation_time=created)
        rows.insert_later(call.tx, doc)
        call.after_commit.append(self._after_commit_enqueue(doc_id, when))
        return doc_id

    def _after_commit_enqueue(self, doc_id: str, when: float) -> Callable[[], Awaitable[None]]:
        async def enqueue() -> None:
            self.queue.submit(doc_id, when)

        return enqueue

    async def cancel_in(self, call: Call, scheduled_id: str) -> None:
        """Cancel in `call`'s transaction (pending or running; anything else: a no-op)."""
        assert call.tx is not None
        running = self.running.get(call.tx)
        if running is not None and running.scheduled_id == scheduled_id:
            running.cancel(call.tx)  # it ends `canceled`, not `success`, as in Convex
            return
        new = await rows.end(call.tx, scheduled_id, rows.CANCELED, worker=rows.ANY_WORKER)
        if new is not None:

            async def dequeue() -> None:
                try:
                    await self.queue.remove(scheduled_id)
                except Exception as exc:  # a worker skips canceled functions anyway
                    log.debug("could not remove canceled job %s: %s", scheduled_id, exc)

            call.after_commit.append(dequeue)

    async def end(
        self,
        scheduled_id: str,
        kind: str,
        *,
        worker: str | None,
        error: str | None = None,
        old: dict[str, Any] | None = None,
    ) -> bool:
        """End a function in a transaction of its own (see `documents.end`); False if not ours."""

        async def body(call: Call) -> bool:
            assert call.tx is not None
            new = await rows.end(call.tx, scheduled_id, kind, worker=worker, error=error, old=old)
            return new is not None

        return await self.system_tx(body)

    async def start_action(self, scheduled_id: str, worker: str, old: dict[str, Any]) -> bool:
        """Commit that `worker` runs a pending action; False if it is no longer pending."""

        async def body(call: Call) -> bool:
            assert call.tx is not None
            return await rows.start_action(call.tx, scheduled_id, worker, old) is not None

        return await self.system_tx(body)
