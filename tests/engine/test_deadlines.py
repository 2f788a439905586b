"""The deadlines watchdog: late calls are cancelled and told apart from other cancels."""

from __future__ import annotations

import asyncio

import pytest

from app.engine.deadlines import PERIOD_S, Deadlines


async def timed(deadlines: Deadlines, limit: float, work: float) -> str:
    """Run `work` seconds under `limit`; 'timeout' when the watchdog stopped it."""
    deadline = deadlines.enter(limit)
    try:
        await asyncio.sleep(work)
        return "done"
    except asyncio.CancelledError:
        if deadlines.stopped(deadline):
            return "timeout"
        raise
    finally:
        deadlines.leave(deadline)


async def test_a_call_past_its_limit_is_stopped_within_a_period() -> None:
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await timed(deadlines, 0.2, 30) == "timeout"
    assert 0.2 <= loop.time() - started < 0.2 + 3 * PERIOD_S + 0.5
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # the cancel was taken back


async def test_a_quick_call_is_not_stopped_and_the_watchdog_ends_after_it() -> None:
    deadlines = Deadlines()
    assert await timed(deadlines, 5, 0.01) == "done"
    await asyncio.sleep(3 * PERIOD_S)
    assert deadlines._watchdog is None  # nothing runs: no task wakes up


async def test_many_calls_only_the_late_ones_stop() -> None:
    deadlines = Deadlines()
    results = await asyncio.gather(
        *(timed(deadlines, 0.3 if i % 2 else 10, 0.6 if i % 2 else 0.05) for i in range(20))
    )
    assert results == ["timeout" if i % 2 else "done" for i in range(20)]


async def test_an_outside_cancel_is_not_a_timeout() -> None:
    deadlines = Deadlines()
    task = asyncio.create_task(timed(deadlines, 10, 30))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not deadlines._running


async def test_nested_calls_stop_at_the_limit_that_passed() -> None:
    deadlines = Deadlines()

    async def outer(outer_limit: float, inner_limit: float) -> tuple[str, str]:
        deadline = deadlines.enter(outer_limit)
        try:
            inner = await timed(deadlines, inner_limit, 30)
            await asyncio.sleep(30)
            return inner, "done"
        except asyncio.CancelledError:
            if deadlines.stopped(deadline):
                return inner, "timeout"
            raise
        finally:
            deadlines.leave(deadline)

    # the inner limit passes first: the inner call times out, the outer goes on to its own
    assert await outer(0.6, 0.2) == ("timeout", "timeout")
    # the outer limit passes first: the inner call sees a plain cancel and lets it through
    with pytest.raises(asyncio.CancelledError):
        await timed_inner_under_outer(deadlines)


async def timed_inner_under_outer(deadlines: Deadlines) -> None:
    """An inner call (long limit) inside an outer one whose short limit passes: the inner
    call must not report a timeout of its own."""
    outer = deadlines.enter(0.2)
    try:
        assert await timed(deadlines, 10, 30) == "never"
    finally:
        assert deadlines.stopped(outer)
        deadlines.leave(outer)
