"""`EnvVars`: keeps this process's `os.environ` in step with the stored variables.

Every role runs one. At start it loads the stored variables into `os.environ`; then it
LISTENs on `convect_env` (sent by every change, from any process or `convect env`) and
re-reads the table on each notification, and every few seconds in case one was missed.
A stored variable wins over the process's start-up value of the same name; removing it
brings the start-up value back. A change forgets the live-query hub's results (cached
HTTP results and subscriptions are re-run), since any query may have read a variable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import TYPE_CHECKING

import asyncpg

from app.envvars.store import CHANNEL, EnvChange, apply_changes, read_all

if TYPE_CHECKING:
    from app.engine import Engine

log = logging.getLogger("convect.envvars")
SAFETY_REFRESH_S = 5.0


class EnvVars:
    """The deployment's environment variables in this process (an engine part)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.values: dict[str, str] = {}
        self._startup: dict[str, str | None] = {}  # what os.environ held before we set it
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._warned = False

    async def start(self) -> None:
        """Load the stored variables into `os.environ`; follow their changes."""
        await self.refresh()
        self._task = asyncio.create_task(self._follow(), name="convect-env")

    async def stop(self) -> None:
        """Stop following changes (`os.environ` keeps what it has)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def update(self, changes: list[EnvChange]) -> None:
        """Make `changes` (all or none; EnvVarError says why not), here at once and
        in every other process on their notification."""
        async with self.engine.connection() as conn:
            await apply_changes(conn, changes)
        await self.refresh()

    async def refresh(self) -> None:
        """Re-read the stored variables and apply what changed."""
        async with self._lock:
            try:
                async with self.engine.connection() as conn:
                    stored = await read_all(conn)
            except asyncpg.UndefinedTableError:
                if not self._warned:
                    self._warned = True
                    log.warning("no environment-variable table yet: run `convect deploy`")
                return
            self._apply(stored)

    def _apply(self, stored: dict[str, str]) -> None:
        changed = False
        for name in set(self.values) | set(stored):
            new = stored.get(name)
            if self.values.get(name) == new:
                continue
            changed = True
            if name not in self._startup:
                self._startup[name] = os.environ.get(name)
            if new is not None:
                os.environ[name] = new
            else:
                before = self._startup.pop(name)
                if before is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = before
        self.values = dict(stored)
        if changed and self.engine.hub is not None:
            self.engine.hub.reload()  # any cached or live result may have read a variable

    def _on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        self._wake.set()

    async def _follow(self) -> None:
        url = self.engine.settings.database_url
        assert url
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    url, server_settings={"application_name": "convect-env"}
                )
                await conn.add_listener(CHANNEL, self._on_notify)
                await self.refresh()  # anything missed while not listening
                while not conn.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), SAFETY_REFRESH_S)
                    self._wake.clear()
                    await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("environment variables: lost the listening connection: %s", exc)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(1.0)


__all__ = ["EnvVars"]
