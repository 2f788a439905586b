"""Stopping the storage sweep: a cancel that lands while a sweep cleans up still stops it
(it once swallowed the cancel, so an engine's stop waited forever)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from app.storage.sweep import Sweeper
from tests.support.servers import create_database


class QuickStore:
    """A store with nothing to sweep (the lease, in PostgreSQL, is the real one)."""

    async def sweep(self, min_age_s: float) -> int:
        await asyncio.sleep(0.05)  # the lease renewal has started meanwhile
        return 0


async def test_a_cancel_during_the_sweeps_cleanup_is_not_swallowed(
    services: dict[str, str],
) -> None:
    url = await create_database(services["database_url"], "sweep_stop")
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        sweeper = Sweeper(pool, QuickStore, interval_s=60, min_age_s=1)  # type: ignore[arg-type]
        cleaning = asyncio.Event()

        async def slow_to_stop_renewal() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cleaning.set()
                await asyncio.sleep(0.5)  # the renewal takes a moment to end
                raise

        sweeper._renew = slow_to_stop_renewal  # type: ignore[method-assign]
        attempt = asyncio.create_task(sweeper.attempt())
        await asyncio.wait_for(cleaning.wait(), 10)
        attempt.cancel()  # lands while the sweep waits for its renewal to end
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(attempt, 10)
    finally:
        await pool.close()
