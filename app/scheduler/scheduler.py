"""`ctx.scheduler`: `run_after`, `run_at` and `cancel`, in mutations and actions.

In a mutation the row is written in the mutation's own transaction, so it exists iff
the mutation commits, and the job is handed to arq after the commit. In an action
every call is a short transaction of its own.
"""

from __future__ import annotations

import math
import weakref
from datetime import datetime
from typing import TYPE_CHECKING, Any

from app.db import ids
from app.db.errors import LimitError
from app.engine import FunctionNotFound, check_args
from app.scheduler import documents as rows
from app.server.refs import ref_path
from app.values import encode_value, json_size

if TYPE_CHECKING:
    from app.engine import Call
    from app.scheduler.service import SchedulerService
    from app.server.functions import RegisteredFunction

MAX_SCHEDULED = 1000  # per mutation, as Convex
MAX_ARGS_BYTES = 8 * 1024 * 1024  # total argument size per mutation, as Convex


class SchedulerError(ValueError):
    """A scheduling call was refused (bad time, reference, id or arguments)."""


class _Budget:
    """What one mutation has scheduled so far (Convex's per-transaction limits)."""

    __slots__ = ("count", "size")

    def __init__(self) -> None:
        self.count = 0
        self.size = 0


_budgets: weakref.WeakKeyDictionary[Call, _Budget] = weakref.WeakKeyDictionary()


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchedulerError(f"`{what}` must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise SchedulerError(f"`{what}` must be a finite number")
    return float(value)


class Scheduler:
    """Schedule functions (mutations and actions, internal ones included) to run later."""

    def __init__(self, service: SchedulerService, call: Call) -> None:
        self._service = service
        self._call = call

    async def run_after(self, delay_ms: float, ref: Any, args: dict[str, Any] | None = None) -> str:
        """Run `ref(args)` `delay_ms` milliseconds from now; returns the scheduled id."""
        delay = _number(delay_ms, "delay_ms")
        if delay < 0:
            raise SchedulerError("`delay_ms` must be non-negative")
        return await self._schedule(rows.now_ms() + delay, ref, args)

    async def run_at(
        self, timestamp: float | datetime, ref: Any, args: dict[str, Any] | None = None
    ) -> str:
        """Run `ref(args)` at `timestamp` (ms since the epoch, or a datetime); returns the id."""
        if isinstance(timestamp, datetime):
            when = timestamp.timestamp() * 1000.0
        elif isinstance(timestamp, int | float) and not isinstance(timestamp, bool):
            when = _number(timestamp, "timestamp")
        else:
            raise SchedulerError(
                "run_at takes a datetime or a timestamp in milliseconds since the epoch, "
                f"got {type(timestamp).__name__}"
            )
        return await self._schedule(when, ref, args)

    async def cancel(self, scheduled_id: str) -> None:
        """Cancel a pending (or running) scheduled function; a finished one is left as it is."""
        if not ids.is_id_for(scheduled_id, rows.TABLE):
            raise SchedulerError(f"{scheduled_id!r} is not an id of a scheduled function")
        call = self._call
        if call.kind == "mutation" and call.tx is not None:
            await self._service.cancel_in(call, scheduled_id)
        else:
            await self._service.system_tx(lambda c: self._service.cancel_in(c, scheduled_id))

    # ------------------------------------------------------------- internals

    def _target(self, ref: Any) -> RegisteredFunction:
        try:
            path = ref_path(ref)
        except (TypeError, ValueError) as exc:
            raise SchedulerError(str(exc)) from None
        fn = self._call.engine.registry.get(path)
        if fn is None:
            raise FunctionNotFound(f"Could not find function for {path!r}")
        if fn.kind == "query":
            raise SchedulerError(f"{path} is a query; only mutations and actions can be scheduled")
        return fn

    async def _schedule(self, when: float, ref: Any, args: dict[str, Any] | None) -> str:
        fn = self._target(ref)
        checked = check_args(fn, {} if args is None else args)
        encoded = encode_value(checked)
        size = json_size(encoded)
        call = self._call
        if call.kind == "mutation" and call.tx is not None:
            budget = _budgets.setdefault(call, _Budget())
            if budget.count >= MAX_SCHEDULED:
                raise LimitError(
                    f"Too many functions scheduled by this mutation (limit: {MAX_SCHEDULED})"
                )
            if budget.size + size > MAX_ARGS_BYTES:
                raise LimitError(
                    "Too large total size of the arguments of scheduled functions from this "
                    f"mutation (limit: {MAX_ARGS_BYTES} bytes)"
                )
            budget.count += 1
            budget.size += size
            return await self._service.insert_in(call, fn, encoded, when)
        if size > MAX_ARGS_BYTES:
            raise LimitError(
                f"Arguments of a scheduled function are too large (limit: {MAX_ARGS_BYTES} bytes)"
            )
        result: str = await self._service.system_tx(
            lambda c: self._service.insert_in(c, fn, encoded, when)
        )
        return result
