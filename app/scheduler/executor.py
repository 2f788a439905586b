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
from typing import TYPE_CHECKING, Any

from arq.worker import Retry

from app.db.transaction import Tx
from app.scheduler import documents as rows
from app.values import ValueEncodingError, decode_value

if TYPE_CHECKING:
    from app.scheduler.service import SchedulerService
    from app.server.functions import RegisteredFunction

log = logging.getLogger("convect.scheduler")
MAX_PREFETCHED = 10_000
INTERRUPTED = (
    "Transient error while executing action: it was interrupted "
    "(the worker shut down or the action ran past its time limit)"
)


def retry_delay(job_try: int) -> float:
    """Seconds before a transient failure is tried again (exponential, jittered, ≤ 30 s)."""
    return float(min(30.0, 0.05 * 2 ** min(job_try, 10)) * random.uniform(0.5, 1.0))


class _ScheduledRun:
    """A scheduled mutation's row, in its transaction (`TxGuard`): dequeued first (or the
    run is skipped: another delivery ran it, or it was canceled), `success` last — or
    `canceled` when the mutation canceled itself (`ctx.scheduler.cancel` of its own id)."""

    def __init__(self, found: rows.Pending, service: SchedulerService) -> None:
        self.found = found
        self.service = service
        self.skipped = False
        self.canceled = False

    @property
    def scheduled_id(self) -> str:
        """The id of the scheduled function this run is."""
        return str(self.found.doc["_id"])

    async def begin(self, tx: Tx) -> bool:
        self.canceled = False  # each attempt starts over
        self.skipped = not await rows.dequeue(tx, self.scheduled_id, None, self.found.queue_tid)
        if not self.skipped:
            self.service.running[tx] = self
        return not self.skipped

    def cancel(self, tx: Tx) -> None:
        """The mutation canceled itself: its row reads `canceled` from now on."""
        self.canceled = True
        self._write(tx, rows.CANCELED)

    def before_commit(self, tx: Tx) -> None:
        self.service.running.pop(tx, None)
        self._write(tx, rows.CANCELED if self.canceled else rows.SUCCESS)

    def _write(self, tx: Tx, kind: str) -> None:
        doc = self.found.doc
        rows.write_later(tx, doc, rows.with_state(doc, kind), self.found.doc_tid)


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
        doc = found.doc
        scheduled_id = doc["_id"]
        try:
            args = decode_value(doc["args"][0])
        except ValueEncodingError as exc:
            message = f"Uncaught ValueEncodingError: {exc}"
            await self.service.end(scheduled_id, rows.FAILED, worker=None, error=message, old=doc)
            return
        run = _ScheduledRun(found, self.service)
        outcome = await self.engine.execute(fn, args, None, guard=run)
        self._log_lines(fn, outcome.log_lines)
        failure = outcome.error
        if run.skipped or failure is None:
            return
        if failure.transient:
            delay = retry_delay(job_try)
            log.warning(
                "scheduled mutation %s (%s) hit a transient error; retrying in %.2fs: %s",
                fn.path,
                scheduled_id,
                delay,
                failure.message,
            )
            raise Retry(defer=delay)
        await self.service.end(scheduled_id, rows.FAILED, worker=None, error=failure.cause, old=doc)

    async def _action(self, fn: RegisteredFunction, doc: dict[str, Any]) -> None:
        scheduled_id = doc["_id"]
        if not await self.service.start_action(scheduled_id, self.worker_id, doc):
            return
        try:
            outcome = await self.engine.execute(fn, decode_value(doc["args"][0]), None)
        except asyncio.CancelledError:
            await asyncio.shield(self._end_action(scheduled_id, INTERRUPTED))
            raise
        except ValueEncodingError as exc:
            await self._end_action(scheduled_id, f"Uncaught ValueEncodingError: {exc}")
            return
        self._log_lines(fn, outcome.log_lines)
        await self._end_action(scheduled_id, outcome.error.cause if outcome.error else None)

    async def _end_action(self, scheduled_id: str, error: str | None) -> None:
        kind = rows.SUCCESS if error is None else rows.FAILED
        await self.service.end(scheduled_id, kind, worker=self.worker_id, error=error)

    @staticmethod
    def _log_lines(fn: RegisteredFunction, lines: list[str]) -> None:
        for line in lines:
            log.info("[%s] %s", fn.path, line)
