"""Run one scheduled function: mutations exactly once, actions at most once.

A scheduled mutation runs inside one SERIALIZABLE transaction (the runner's, with its
retries) that first locks its row and checks it is still pending, and last marks it
`success`: its writes and its state commit together, and a second delivery of the job
finds it done. A developer error rolls back and is recorded (`failed`) in a
transaction of its own; a transient error (conflicts that outlast the retries, a lost
connection) leaves the row pending and the job is delivered again later.

A scheduled action is marked `inProgress` (with this worker's id) and committed before
it starts, so it never starts twice; its outcome is recorded when it ends. If the
worker dies meanwhile, the sweeper marks it failed.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from arq.worker import Retry

from app.db.errors import is_connection_error, is_retryable
from app.scheduler import documents as rows
from app.values import ArgumentValidationError, ConvexError, decode_value

if TYPE_CHECKING:
    from app.scheduler.service import SchedulerService
    from app.server.functions import RegisteredFunction

log = logging.getLogger("convect.scheduler")
MAX_PREFETCHED = 10_000
INTERRUPTED = (
    "Transient error while executing action: it was interrupted "
    "(the worker shut down or the action ran past its time limit)"
)


def error_message(exc: BaseException) -> str:
    """How a scheduled function's error is recorded in its row."""
    if isinstance(exc, ConvexError):
        return f"Uncaught ConvexError: {exc}"
    if isinstance(exc, ArgumentValidationError):
        return f"ArgumentValidationError: {exc}"
    return f"Uncaught {type(exc).__name__}: {exc}"


def retry_delay(job_try: int) -> float:
    """Seconds before a transient failure is tried again (exponential, jittered, ≤ 30 s)."""
    return min(30.0, 0.05 * 2 ** min(job_try, 10)) * random.uniform(0.5, 1.0)


class _Attempt:
    """What happened in the last attempt of a scheduled mutation's handler."""

    __slots__ = ("doomed", "error", "skipped")

    def __init__(self) -> None:
        self.skipped = False
        self.error: BaseException | None = None
        self.doomed = False

    def reset(self) -> None:
        """Forget a previous (retried) attempt."""
        self.__init__()  # type: ignore[misc]


class Executor:
    """Runs the scheduled functions a worker's jobs name."""

    def __init__(self, service: SchedulerService, worker_id: str) -> None:
        self.service = service
        self.engine = service.engine
        self.worker_id = worker_id
        self._prefetched: dict[str, asyncio.Future[dict[str, rows.Pending]]] = {}

    def prefetch(self, scheduled_ids: list[str]) -> None:
        """Read the rows of jobs just claimed together, in one statement for all of them
        (`run` would otherwise read each one on its own before its transaction)."""
        if len(scheduled_ids) < 2:
            return
        if len(self._prefetched) > MAX_PREFETCHED:  # jobs arq dropped before they ran
            self._prefetched.clear()
        task = asyncio.ensure_future(rows.pending_many(self.engine.pool, scheduled_ids))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved
        for scheduled_id in scheduled_ids:
            self._prefetched[scheduled_id] = task

    async def _pending(self, scheduled_id: str) -> rows.Pending | None:
        batch = self._prefetched.pop(scheduled_id, None)
        if batch is not None:
            try:
                return (await batch).get(scheduled_id)
            except Exception as exc:  # read it alone, as without a prefetch
                log.debug("prefetching scheduled rows failed: %s", exc)
        return await rows.pending(self.engine.pool, scheduled_id)

    async def run(self, scheduled_id: str, job_try: int = 1) -> None:
        """Run the scheduled function `scheduled_id` if it is still pending."""
        pool = self.engine.pool
        found = await self._pending(scheduled_id)
        if found is None:  # never committed, or its table was emptied: drop what is left
            await pool.execute(f"DELETE FROM {rows.QUEUE} WHERE id = $1", scheduled_id)
            return
        doc = found.doc
        if rows.state_of(doc) != rows.PENDING or found.queue_tid is None:
            return  # done, running, or canceled: a repeated delivery
        path = str(doc.get("name"))
        fn = self.engine.registry.get(path)
        if fn is None or fn.kind == "query":
            message = f"Could not find function for {path!r}"
            await self.service.end(scheduled_id, rows.FAILED, worker=None, error=message, old=doc)
        elif fn.kind == "mutation":
            await self._mutation(fn, found, job_try)
        else:
            await self._action(fn, doc)

    async def _mutation(self, fn: RegisteredFunction, found: rows.Pending, job_try: int) -> None:
        engine = self.engine
        doc = found.doc
        scheduled_id = doc["_id"]
        attempt = _Attempt()

        async def handler(ctx: Any, _: Any) -> None:
            attempt.reset()
            tx = ctx._call.tx
            if not await rows.dequeue(tx, scheduled_id, None, found.queue_tid):
                attempt.skipped = True  # another delivery ran it, or it was canceled
                return
            try:
                args = engine.check_args(fn, decode_value(doc["args"][0]))
                engine.check_returns(fn, await fn.handler(ctx, args))
            except BaseException as exc:
                attempt.error, attempt.doomed = exc, tx.doomed is not None
                raise
            rows.write_later(tx, doc, rows.with_state(doc, rows.SUCCESS), found.doc_tid)

        guarded = replace(fn, handler=handler, args=None, returns=None)
        outcome = await engine.execute(guarded, {}, None)
        self._log_lines(fn, outcome.log_lines)
        if attempt.skipped or outcome.error is None:
            return
        exc = attempt.error
        if exc is None or attempt.doomed or is_retryable(exc) or is_connection_error(exc):
            delay = retry_delay(job_try)
            log.warning(
                "scheduled mutation %s (%s) hit a transient error; retrying in %.2fs: %s",
                fn.path,
                scheduled_id,
                delay,
                outcome.error.message,
            )
            raise Retry(defer=delay)
        message = error_message(exc)
        await self.service.end(scheduled_id, rows.FAILED, worker=None, error=message, old=doc)

    async def _action(self, fn: RegisteredFunction, doc: dict[str, Any]) -> None:
        scheduled_id = doc["_id"]
        if not await self.service.start_action(scheduled_id, self.worker_id, doc):
            return
        failure: list[BaseException] = []

        async def handler(ctx: Any, checked: Any) -> Any:
            try:
                return await fn.handler(ctx, checked)
            except BaseException as exc:
                failure.append(exc)
                raise

        args = decode_value(doc["args"][0])
        try:
            outcome = await self.engine.execute(replace(fn, handler=handler), args, None)
        except asyncio.CancelledError:
            await asyncio.shield(self._end_action(scheduled_id, INTERRUPTED))
            raise
        self._log_lines(fn, outcome.log_lines)
        if outcome.error is None:
            await self._end_action(scheduled_id, None)
        else:
            error = error_message(failure[-1]) if failure else outcome.error.message
            await self._end_action(scheduled_id, error)

    async def _end_action(self, scheduled_id: str, error: str | None) -> None:
        kind = rows.SUCCESS if error is None else rows.FAILED
        await self.service.end(scheduled_id, kind, worker=self.worker_id, error=error)

    @staticmethod
    def _log_lines(fn: RegisteredFunction, lines: list[str]) -> None:
        for line in lines:
            log.info("[%s] %s", fn.path, line)
