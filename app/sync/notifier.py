"""Commit notifications: NOTIFY after commit (coalesced), one LISTEN connection per process.

A NOTIFY inside the committing transaction serializes commits on one lock; sent after
the commit it costs far less (shared/PERF_NOTES.md). Listeners read every commit-log
row they have not seen, so a later notification also delivers a lost one, and a
periodic refresh closes the gap when a process dies between its commit and NOTIFY.

A process whose listener sees no other process listening sends no NOTIFY at all (a
deployment of one API process: up to 200 statements a second for nobody). It learns
of others from its listener's once-a-second health check, which counts the listening
sessions, and at once from the `hello` a new listener sends when it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from app.engine import Engine
    from app.sync.hub import Hub

log = logging.getLogger("convect.sync")
CHANNEL = "convect_commits"
COALESCE_S = 0.005
SAFETY_REFRESH_S = 1.0
TRIM_EVERY_S = 60.0
KEEP_COMMITS = "10 minutes"
KEEP_REQUESTS = "1 hour"
LISTEN_APP = "convect-listen"  # the application_name of every process's listening session
HELLO = "hello"  # a new listener's first NOTIFY: someone else listens now
LISTENERS_SQL = (
    "SELECT count(*)::int FROM pg_stat_activity "
    f"WHERE application_name = '{LISTEN_APP}' AND datname = current_database()"
)


class Notifier:
    """Sends coalesced NOTIFYs after commits; listens and drives the hub when there is one."""

    def __init__(self, engine: Engine, hub: Hub | None) -> None:
        self.engine = engine
        self.hub = hub
        self._pending = False
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._conn: asyncpg.Connection | None = None
        self.reconnects = 0
        # The payload of this process's NOTIFYs: its own commits already asked its hub
        # for a refresh (`Hub.local_commit`), so hearing them back would only repeat it.
        self.token = os.urandom(8).hex()
        self._conn_lock = asyncio.Lock()  # one statement at a time on the listening connection
        # Whether another process listens for commits (False only while this process's
        # listener is connected and counted no other): NOTIFY only when one may.
        self.others_listen = True
        self._hellos = 0

    async def start(self) -> None:
        """Start listening (if there is a hub) and trimming (the engine calls `notify_soon`
        after each local commit)."""
        if self.hub is not None:
            self._tasks.append(asyncio.create_task(self._listen(), name="convect-listen"))
        self._tasks.append(asyncio.create_task(self._trim(), name="convect-trim"))

    async def stop(self) -> None:
        """Send a pending NOTIFY, stop background tasks and close the listening connection."""
        if self._pending:
            if self._timer is not None:
                self._timer.cancel()
            await self._send()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()

    def notify_soon(self) -> None:
        """Send one NOTIFY shortly (many commits in a few ms share it), unless no other
        process listens."""
        if self._pending or not self.others_listen:
            return
        self._pending = True
        self._timer = asyncio.get_running_loop().call_later(
            COALESCE_S, lambda: asyncio.ensure_future(self._send())
        )

    async def _send(self) -> None:
        """NOTIFY on the listening connection when there is one (it idles between health
        checks), so that commits do not also queue behind requests for the pool."""
        self._pending = False
        statement = f"NOTIFY {CHANNEL}, '{self.token}'"
        conn = self._conn
        if conn is not None and not conn.is_closed() and not self._conn_lock.locked():
            try:
                async with self._conn_lock:
                    await asyncio.wait_for(conn.execute(statement), 5)
                return
            except Exception as exc:  # the listener's check will reconnect; use the pool
                log.debug("NOTIFY on the listening connection failed: %s", exc)
        try:
            await self.engine.pool.execute(statement)
        except Exception:
            log.warning("NOTIFY failed; listeners will catch up on their periodic refresh")

    def _on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        if payload == HELLO:
            self.others_listen = True
            self._hellos += 1
        if self.hub is not None and payload != self.token:
            self.hub.request_refresh()

    async def _listen(self) -> None:
        assert self.hub is not None and self.engine.settings.database_url
        first = True
        while True:
            try:
                conn = await asyncpg.connect(
                    self.engine.settings.database_url,
                    server_settings={"application_name": LISTEN_APP},
                )
                self._conn = conn
                await conn.add_listener(CHANNEL, self._on_notify)
                await conn.execute(f"NOTIFY {CHANNEL}, '{HELLO}'")  # others: notify me too
                # Notifications may have been missed while disconnected: re-run everything.
                self.hub.request_refresh(rerun_all=not first)
                if not first:
                    self.reconnects += 1
                    log.info("live-query listener reconnected")
                first = False
                while not conn.is_closed():
                    await asyncio.sleep(SAFETY_REFRESH_S)
                    if self.hub.has_entries:
                        self.hub.request_refresh()
                    hellos = self._hellos
                    try:  # the health check also counts who else listens
                        async with self._conn_lock:
                            listening = await asyncio.wait_for(conn.fetchval(LISTENERS_SQL), 5)
                    except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError, TimeoutError):
                        break
                    # (a hello heard meanwhile wins: the count may predate its sender)
                    self.others_listen = listening != 1 or self._hellos != hellos
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live-query listener lost its connection: %s", exc)
            finally:
                self.others_listen = True  # not known without a listener: notify
                if self._conn is not None and not self._conn.is_closed():
                    with contextlib.suppress(Exception):
                        await self._conn.close()
            await asyncio.sleep(0.2)

    async def _trim(self) -> None:
        while True:
            await asyncio.sleep(TRIM_EVERY_S)
            try:
                await self.engine.pool.execute(
                    f"DELETE FROM _convect_commits WHERE created_at < now() - interval '{KEEP_COMMITS}'"
                )
                await self.engine.pool.execute(
                    "DELETE FROM _convect_mutation_requests "
                    f"WHERE created_at < now() - interval '{KEEP_REQUESTS}'"
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.debug("commit-log trim failed", exc_info=True)
