"""Time limits for calls, kept by one watchdog task instead of a timer per call.

`asyncio.timeout` schedules, reschedules and cancels a timer handle and tracks the
task's cancel count for every call: a few percent of a cached-path or get-by-id call's
time. Here a call only enters and leaves a dict; one watchdog task, running only while
some call is, wakes every `PERIOD_S` and cancels the calls past their deadline. A call
therefore stops within `PERIOD_S` after its limit, which is far below the limits
themselves (seconds to minutes).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

PERIOD_S = 0.1


@dataclass(eq=False)
class Deadline:
    """One running call: when it must stop, its task, and whether the watchdog stopped it."""

    at: float
    task: asyncio.Task[object]
    expired: bool = False


@dataclass
class Deadlines:
    """The running calls of one process and the watchdog that stops the late ones."""

    _running: set[Deadline] = field(default_factory=set)
    _watchdog: asyncio.Task[None] | None = None

    def enter(self, limit: float) -> Deadline | None:
        """Start timing the current task's call; None outside a task (nothing to cancel)."""
        task = asyncio.current_task()
        if task is None:
            return None
        loop = task.get_loop()
        deadline = Deadline(loop.time() + limit, task)
        self._running.add(deadline)
        watchdog = self._watchdog
        if watchdog is None or watchdog.done() or watchdog.get_loop() is not loop:
            self._watchdog = loop.create_task(self._watch(loop), name="convect-deadlines")
        return deadline

    def leave(self, deadline: Deadline | None) -> None:
        """The call ended (returned, failed or was stopped)."""
        if deadline is not None:
            self._running.discard(deadline)

    def stopped(self, deadline: Deadline | None) -> bool:
        """True when the watchdog cancelled this call; takes that cancel back from its task
        so the task goes on (the caller turns it into a timeout error)."""
        if deadline is None or not deadline.expired:
            return False
        deadline.task.uncancel()
        return True

    async def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Cancel the calls past their deadline while any call runs; then end."""
        try:
            while self._running:
                await asyncio.sleep(PERIOD_S)
                now = loop.time()
                for deadline in [d for d in self._running if d.at <= now and not d.expired]:
                    deadline.expired = True
                    deadline.task.cancel()
        finally:
            if self._watchdog is asyncio.current_task():
                self._watchdog = None
