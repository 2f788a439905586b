"""Snapshots held for consistent reads: Convex's `/api/query_ts` and `/api/query_at_ts`.

PostgreSQL cannot read the past, so a timestamp handed out by `/api/query_ts` names a
snapshot this process holds open: a `REPEATABLE READ READ ONLY` transaction on a
connection of its own (outside the pool) that exported it with `pg_export_snapshot()`.
A query at that timestamp runs in a transaction that imports it (`SET TRANSACTION
SNAPSHOT`), so it sees exactly what the snapshot saw, whatever committed since.

Bounded: at most `max_held` snapshots (one connection each; the oldest is let go first)
and each for `window_s` seconds (the official client documents reads "beyond 30 seconds
in the past" as unavailable). A timestamp no longer held is refused with
`SnapshotUnavailable`, never answered from the latest state. While held, a snapshot
holds back vacuum's horizon like any open transaction, for at most `window_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

log = logging.getLogger("convect.db")

# The newest commit a snapshot sees (the commit log keeps minutes of rows). Read on a
# pool connection that imports the snapshot, never in the holding transaction: a table
# lock held there for the window would stall DDL (and everything queued behind it).
VISIBLE_TS_SQL = "SELECT max(ts) FROM _convect_commits"
SNAPSHOT_ID = re.compile(r"^[0-9A-Fa-f]+-[0-9A-Fa-f]+(-[0-9]+)?$")


class SnapshotUnavailable(Exception):
    """A consistent read named a timestamp this process does not hold (too old, or never
    handed out here)."""


@dataclass
class HeldSnapshot:
    """One exported snapshot and the connection whose transaction keeps it alive."""

    ts: int
    snapshot_id: str
    conn: asyncpg.Connection
    taken: float  # loop time
    expiry: asyncio.TimerHandle | None = None


class HeldSnapshots:
    """The snapshots this process holds for `/api/query_at_ts`, by commit timestamp."""

    def __init__(self, pool: asyncpg.Pool, dsn: str, *, max_held: int, window_s: float) -> None:
        self._pool = pool
        self._dsn = dsn
        self.max_held = max_held
        self.window_s = window_s
        self._held: OrderedDict[int, HeldSnapshot] = OrderedDict()  # oldest first
        self._lock = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def held(self) -> int:
        """How many snapshots are held now."""
        return len(self._held)

    async def take(self, known_ts: int) -> int:
        """A timestamp whose snapshot is held from now for the window.

        `known_ts`: the newest commit this process knows of. When the newest held
        snapshot already includes it and has most of its window left, that one is handed
        out again (one snapshot per commit seen, not per request); otherwise a new one is
        exported (replacing a held one of the same timestamp).
        """
        if self.max_held <= 0:
            raise SnapshotUnavailable(
                "Consistent reads are turned off (CONVECT_CONSISTENT_READ_SNAPSHOTS=0)"
            )
        async with self._lock:
            loop = asyncio.get_running_loop()
            if self._held:
                newest = next(reversed(self._held.values()))
                if newest.ts >= known_ts and loop.time() - newest.taken < self.window_s / 2:
                    return newest.ts
            conn = await asyncpg.connect(
                self._dsn,
                server_settings={
                    "application_name": "convect-snapshot",
                    # If this process stalls, PostgreSQL ends the transaction itself.
                    "idle_in_transaction_session_timeout": str(int(self.window_s * 1000) + 10_000),
                },
            )
            try:
                # No table is read here: the transaction holds a snapshot and no locks.
                await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                snapshot_id = str(await conn.fetchval("SELECT pg_export_snapshot()"))
                async with self._pool.acquire() as reader, _imported(reader, snapshot_id):
                    visible = await reader.fetchval(VISIBLE_TS_SQL)
            except BaseException:
                await _close(conn)
                raise
            ts = max(int(visible or 0), known_ts)
            held = HeldSnapshot(ts, snapshot_id, conn, loop.time())
            held.expiry = loop.call_later(self.window_s, self._release, ts, held)
            old = self._held.pop(ts, None)  # the same commits, held for less time
            if old is not None:
                self._let_go(old)
            self._held[ts] = held
            while len(self._held) > self.max_held:
                _, oldest = self._held.popitem(last=False)
                self._let_go(oldest)
            return ts

    @contextlib.asynccontextmanager
    async def reading(self, conn: asyncpg.Connection, ts: int) -> AsyncIterator[None]:
        """A `REPEATABLE READ READ ONLY` transaction on `conn` that sees the snapshot of `ts`."""
        held = self._held.get(ts)
        if held is None:
            raise self.unavailable(ts)
        try:
            async with _imported(conn, held.snapshot_id):
                yield
        except _ImportFailed:  # let go of between the lookup and the import
            raise self.unavailable(ts) from None

    def unavailable(self, ts: int) -> SnapshotUnavailable:
        """The error for a timestamp not held here."""
        return SnapshotUnavailable(
            f"Timestamp {ts} is too early, retry with a higher timestamp: this server holds "
            f"consistent-read snapshots for {self.window_s:g} s, at most {self.max_held} at "
            "a time (CONVECT_CONSISTENT_READ_WINDOW, CONVECT_CONSISTENT_READ_SNAPSHOTS); "
            "get a new one from /api/query_ts (a new ConvexHttpClient)"
        )

    async def close(self) -> None:
        """Let go of every snapshot (the engine is stopping)."""
        held, self._held = list(self._held.values()), OrderedDict()
        for snapshot in held:
            self._let_go(snapshot)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def _release(self, ts: int, held: HeldSnapshot) -> None:
        if self._held.get(ts) is held:
            del self._held[ts]
            self._let_go(held)

    def _let_go(self, held: HeldSnapshot) -> None:
        if held.expiry is not None:
            held.expiry.cancel()
        task = asyncio.ensure_future(_close(held.conn))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


class _ImportFailed(Exception):
    """The snapshot could not be imported (its holding transaction has ended)."""


@contextlib.asynccontextmanager
async def _imported(conn: asyncpg.Connection, snapshot_id: str) -> AsyncIterator[None]:
    """A `REPEATABLE READ READ ONLY` transaction on `conn` that sees `snapshot_id`."""
    assert SNAPSHOT_ID.match(snapshot_id), snapshot_id
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        try:
            await conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot_id}'")
        except asyncpg.PostgresError as exc:
            raise _ImportFailed(str(exc)) from None
        yield


async def _close(conn: asyncpg.Connection) -> None:
    try:
        await asyncio.wait_for(conn.close(), 5)
    except Exception as exc:
        log.debug("closing a snapshot connection failed: %s", exc)
        conn.terminate()


__all__ = ["HeldSnapshot", "HeldSnapshots", "SnapshotUnavailable"]
