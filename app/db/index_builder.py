"""`IndexBuilder`: builds staged indexes in the background (an engine part).

`serve`, `dev` and `worker` processes each run one. Every `poll_s` seconds it looks for
staged indexes waiting to be built (`app.db.index_builds`), claims their table's
advisory lock (so each is built by one process, one per table at a time), backfills the
key columns a deploy added to the table for them (`app.db.key_fill`) and builds them
on a connection of its own: a build can take minutes and must not hold a pool connection. Stopping the process
cancels a build in progress; the row stays `backfilling` and the next claimer (this
process after a restart, or any other) resumes the backfill where it stopped, drops the
INVALID leftover and builds it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from app.db import index_builds, key_fill

log = logging.getLogger("convect.indexes")
POLL_S = 2.0


class IndexBuilder:
    """Builds the deployment's staged indexes, one at a time (an engine part)."""

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        url: Callable[[], str | None],
        *,
        poll_s: float = POLL_S,
        batch: int = key_fill.BATCH,
    ) -> None:
        self._pool = pool
        self._url = url
        self.poll_s = poll_s
        self.batch = batch  # rows per transaction when backfilling a new key column
        self.built = 0  # builds this process finished (either way)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def start(self) -> None:
        """Start looking for staged indexes to build."""
        self._task = asyncio.create_task(self._run(), name="convect-index-builder")

    async def stop(self) -> None:
        """Stop; a build in progress is cancelled and left for the next claimer."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def wake(self) -> None:
        """Look for work now rather than at the next poll."""
        self._wake.set()

    async def _run(self) -> None:
        warned = False  # one warning per streak of failures (a database outage)
        while True:
            try:
                await self.run_once()
                warned = False
            except asyncpg.UndefinedTableError:
                if not warned:
                    log.warning("no index-build table yet: run `convect deploy`")
                    warned = True
            except Exception as exc:  # the database went away, a build was cancelled...
                if not warned:
                    log.warning("staged index builder: %s (retrying)", exc)
                    warned = True
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)

    async def run_once(self) -> int:
        """Build every staged index waiting now that no other process is building;
        returns how many this call built."""
        tables = await index_builds.pending(self._pool())
        if not tables:
            return 0
        url = self._url()
        if url is None:
            return 0
        conn = await asyncpg.connect(url)
        done = 0
        try:
            for table, names in tables.items():
                if not await index_builds.try_claim(conn, table):
                    continue  # another process is building there, or a deploy alters it
                try:
                    for name in names:
                        log.info("building staged index %s in the background", name)
                        state = await index_builds.build_claimed(conn, name, batch=self.batch)
                        if state is not None:
                            done += 1
                            self.built += 1
                            log.info("staged index %s: %s", name, state)
                finally:
                    with contextlib.suppress(Exception):
                        await index_builds.release(conn, table)
        except asyncio.CancelledError:
            conn.terminate()  # stopping: the build's session ends, its lock with it
            raise
        finally:
            if not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.close()
        return done


__all__ = ["IndexBuilder"]
