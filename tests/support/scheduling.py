"""Schedule functions through the kitchen app (tests/apps/kitchen/sched_funcs.py) and wait
for what the workers do with them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from tests.support.calls import call

T = TypeVar("T")


async def run(
    client: httpx.AsyncClient, kind: str, name: str, args: dict[str, Any] | None = None
) -> Any:
    """Call `sched_funcs:<name>` (as admin: internal functions too)."""
    return await call(client, kind, f"sched_funcs:{name}", args)


async def eventually(
    probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], timeout: float = 15
) -> T:
    """Poll `probe()` until `check` accepts its value; fail with the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last value: {value!r}")
        await asyncio.sleep(0.05)


async def schedule(
    client: httpx.AsyncClient,
    target: str,
    args: dict[str, Any],
    *,
    delay: float = 0,
    from_action: bool = False,
) -> str:
    """Schedule `target(args)` to run after `delay` ms, from a mutation (`sched_funcs:schedule`)
    or an action (`sched_funcs:schedule_from_action`); return its scheduled id."""
    kind, name = ("action", "schedule_from_action") if from_action else ("mutation", "schedule")
    scheduled_id: str = await run(
        client, kind, name, {"delay": delay, "target": target, "args": args}
    )
    return scheduled_id


async def state_of(client: httpx.AsyncClient, scheduled_id: str) -> str:
    """The state kind of a scheduled function."""
    doc = await run(client, "query", "scheduled", {"id": scheduled_id})
    return str(doc["state"]["kind"])


async def wait_for_state(
    client: httpx.AsyncClient, scheduled_id: str, kind: str, timeout: float = 15
) -> str:
    """Wait until the scheduled function's state is `kind`."""
    return await eventually(lambda: state_of(client, scheduled_id), lambda s: s == kind, timeout)


async def wait_for_runs(
    client: httpx.AsyncClient, label: str, count: int = 1, timeout: float = 15
) -> list[dict[str, Any]]:
    """Wait until `sched_funcs:runs` lists `count` runs labelled `label`; return them."""
    runs: list[dict[str, Any]] = await eventually(
        lambda: run(client, "query", "runs", {"label": label}), lambda r: len(r) == count, timeout
    )
    return runs
