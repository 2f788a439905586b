"""The storage sweep: now and then, one process of the deployment removes leftovers.

Leftovers are objects whose `_storage` document is gone (a delete whose after-commit
removal failed, a process that died), multipart uploads never finished, and PostgreSQL
chunks of uploads that never committed. Every API process wakes a few times per
`CONVECT_STORAGE_SWEEP_INTERVAL` and tries to take the lease `storage-sweep` in
`_convect_leases`; only the one that gets it sweeps, and nobody sweeps again until the
lease runs out an interval later (it is renewed while a long sweep runs). Each sweep is
logged with what it removed and counted in `/metrics`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from app.storage.backend import BlobBackend
from app.storage.errors import StorageError

log = logging.getLogger("convect.storage")
LEASE = "storage-sweep"
MIN_WAKE_S = 0.25
_CLAIM = (
    "INSERT INTO _convect_leases (name, holder, until) "
    "VALUES ($1, $2, now() + make_interval(secs => $3)) "
    "ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until "
    "WHERE _convect_leases.until <= now() RETURNING holder"
)
_RENEW = (
    "UPDATE _convect_leases SET until = now() + make_interval(secs => $3) "
    "WHERE name = $1 AND holder = $2"
)


@dataclass
class SweepCounts:
    """What this process's sweeps did (read by `/metrics`)."""

    runs: int = 0  # sweeps this process ran (it held the lease)
    removed: int = 0  # leftovers they removed
    failures: int = 0  # sweeps that failed (the store or the database was down)


async def claim(pool: asyncpg.Pool, holder: str, seconds: float, name: str = LEASE) -> bool:
    """Take a lease (the sweep's) for `seconds` unless another holds it; True if taken."""
    return await pool.fetchval(_CLAIM, name, holder, float(seconds)) is not None


class Sweeper:
    """Runs the sweep of `backend` every `interval_s` seconds in at most one process."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        backend: Callable[[], BlobBackend],
        interval_s: float,
        min_age_s: float,
    ) -> None:
        self.pool = pool
        self.backend = backend
        self.interval_s = interval_s
        self.min_age_s = min_age_s
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.counts = SweepCounts()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the periodic sweep in the background (nothing when the interval is 0)."""
        if self.interval_s > 0 and self._task is None:
            self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        """Stop the periodic sweep (a sweep in progress is cancelled; the next one resumes)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _loop(self) -> None:
        wake = max(MIN_WAKE_S, self.interval_s / 4)
        while True:
            await self.attempt()
            await asyncio.sleep(wake * random.uniform(0.8, 1.2))

    async def attempt(self) -> bool:
        """Sweep now if this process gets the lease; True if it swept (even unsuccessfully)."""
        try:
            if not await claim(self.pool, self.holder, self.interval_s):
                return False
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("storage sweep: could not take the lease: %s", exc)
            return False
        renewing = asyncio.ensure_future(self._renew())
        started = time.monotonic()
        try:
            removed = await self.backend().sweep(self.min_age_s)
        except (StorageError, OSError, asyncpg.PostgresError) as exc:
            self.counts.failures += 1
            log.warning("storage sweep failed (the next one retries): %s", exc)
            return True
        except Exception:  # a bug: logged in full, and the next sweep still runs
            self.counts.failures += 1
            log.exception("storage sweep failed")
            return True
        finally:
            renewing.cancel()
            # gather, not `suppress(BaseException)`: a cancel of this task that lands
            # meanwhile must go on (swallowed, the loop slept on and `stop` never ended).
            await asyncio.gather(renewing, return_exceptions=True)
        self.counts.runs += 1
        self.counts.removed += removed
        log.info(
            "storage sweep: removed %d leftover(s) (objects of deleted files, unfinished "
            "uploads, chunks of uploads that never committed) older than %gs, in %.1f s",
            removed,
            self.min_age_s,
            time.monotonic() - started,
        )
        return True

    async def _renew(self) -> None:
        """Keep the lease while a sweep runs longer than a third of the interval."""
        while True:
            await asyncio.sleep(max(MIN_WAKE_S, self.interval_s / 3))
            try:
                await self.pool.execute(_RENEW, LEASE, self.holder, float(self.interval_s))
            except (asyncpg.PostgresError, OSError) as exc:
                log.warning("storage sweep: could not renew the lease: %s", exc)
