"""Staged indexes' background builds: their recorded state, claiming one, building it.

As in Convex, a staged index (`.index("by_x", {"fields": [...], "staged": True})`, and
staged search and vector indexes) is backfilled in the background: `convect deploy`
records it here and returns; an `IndexBuilder` (every `serve`, `dev` and `worker`
process runs one) claims it, backfills the key columns the deploy added to its table
(trigger-filled, in batches: `app.db.key_fill`) and builds it with `CREATE INDEX
CONCURRENTLY`. One row per
staged index (by its PostgreSQL name) in `_convect_index_builds`:

| state         | meaning                                                      |
|---------------|--------------------------------------------------------------|
| `backfilling` | wanted, not built yet (queued, or a builder is on it)        |
| `backfilled`  | built; queries still refused until the schema enables it     |
| `failed`      | the build failed (`error` says why); a deploy retries it     |

Whoever builds an index holds a session advisory lock on its table, so it is built once
across processes, and one index of a table at a time (two concurrent builds on one table,
or a build and a deploy's DDL on it, deadlock in PostgreSQL; a deploy takes the lock of
each table it alters, waiting for a build in progress there). A builder that died
mid-build releases the lock with its connection and leaves an INVALID index, which the
next claimer drops before building again.
Enabling an index (a deploy without `staged`) forgets its row: at once if it was built,
else after the deploy built it (or waited for the builder that holds it).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from app.db import key_fill

BUILD_LOCK = 0x69647862  # "idxb": first key of the per-table advisory lock
INDEX_BUILD_MEMORY = "512MB"
TABLE = "_convect_index_builds"


# A build these end is retried later, not recorded as failed.
_TRANSIENT = (
    asyncpg.QueryCanceledError,
    asyncpg.AdminShutdownError,
    asyncpg.DeadlockDetectedError,
    asyncpg.LockNotAvailableError,
)


class IndexBuildError(Exception):
    """A deploy had to build an index it enables, and the build failed."""


@dataclass(frozen=True)
class StagedBuild:
    """A staged index the schema wants: its PostgreSQL name and how to build it."""

    name: str  # the PostgreSQL index name
    table: str
    index: str
    kind: str  # "database", "search" or "vector"
    statement: str  # CREATE INDEX CONCURRENTLY IF NOT EXISTS ...
    note: str | None = None  # COMMENT ON INDEX body recorded once built

    @property
    def label(self) -> str:
        """`table.index` as users name it."""
        return f"{self.table}.{self.index}"


@dataclass(frozen=True)
class BuildState:
    """One staged index's recorded state."""

    name: str
    table: str
    index: str
    kind: str
    state: str
    error: str | None
    attempts: int
    builder: str | None

    def to_json(self) -> dict[str, Any]:
        """Plain data for the CLI, the admin API and the dashboard."""
        return {
            "table": self.table,
            "index": self.index,
            "kind": self.kind,
            "state": self.state,
            "error": self.error,
            "attempts": self.attempts,
            "builder": self.builder,
        }


def _me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def states(conn: asyncpg.Connection | asyncpg.Pool) -> list[BuildState]:
    """Every staged index's state, by table and index."""
    rows = await conn.fetch(
        f"SELECT name, table_name, index_name, kind, state, error, attempts, builder "
        f"FROM {TABLE} ORDER BY table_name, index_name"
    )
    return [
        BuildState(
            r["name"],
            r["table_name"],
            r["index_name"],
            r["kind"],
            r["state"],
            r["error"],
            r["attempts"],
            r["builder"],
        )
        for r in rows
    ]


async def valid_indexes(conn: asyncpg.Connection) -> set[str]:
    """Names of the indexes in `docs` that are built and usable."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'docs' AND i.indisvalid AND i.indisready"
    )
    return {r["relname"] for r in rows}


# ------------------------------------------------------------------ claiming


async def try_claim(conn: asyncpg.Connection, table: str) -> bool:
    """Take the build lock of `table` on `conn` if no other session holds it (a session
    may take it again: it counts)."""
    return bool(
        await conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", BUILD_LOCK, table)
    )


async def release(conn: asyncpg.Connection, table: str) -> None:
    """Give the build lock of `table` back (once)."""
    await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", BUILD_LOCK, table)


async def claim(
    conn: asyncpg.Connection, table: str, *, cancel: bool, say: Callable[[str], Any]
) -> None:
    """Take the build lock of `table`, waiting for (or, with `cancel`, cancelling) the
    build in progress there. Polls: a session blocked in `pg_advisory_lock` would hold a
    snapshot that the other side's CREATE INDEX CONCURRENTLY waits for."""
    said = False
    while not await try_claim(conn, table):
        if cancel:
            await conn.execute(
                "SELECT pg_cancel_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND classid = $1::int::oid AND objid = hashtext($2)::oid "
                "AND objsubid = 2 AND granted AND pid <> pg_backend_pid()",
                BUILD_LOCK,
                table,
            )
        elif not said:
            say(f"waiting for the background index build on table {table}")
            said = True
        await asyncio.sleep(0.05)


class TableLocks:
    """The build locks of the tables a deploy alters, taken as it comes to each (waiting
    for a background build in progress there) and held until `release_all`."""

    def __init__(self, conn: asyncpg.Connection, say: Callable[[str], Any]) -> None:
        self.conn = conn
        self.say = say
        self.held: list[str] = []

    async def hold(self, table: str) -> None:
        """Take `table`'s build lock unless this deploy holds it already."""
        if table not in self.held:
            await claim(self.conn, table, cancel=False, say=self.say)
            self.held.append(table)

    async def release_all(self) -> None:
        """Let background builds go on."""
        while self.held:
            await release(self.conn, self.held.pop())


# ------------------------------------------------------------------ building


async def build(conn: asyncpg.Connection, name: str, statement: str, note: str | None) -> None:
    """Drop what is left under `name` (an INVALID index, an outdated one), then build it
    concurrently and record its note. The caller holds its build lock."""
    await conn.execute(f"SET maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
    try:
        await conn.execute(f'DROP INDEX CONCURRENTLY IF EXISTS docs."{name}"')
        await conn.execute(statement)
        if note is not None:
            await conn.execute(f"COMMENT ON INDEX docs.\"{name}\" IS '{note}'")
    finally:
        await conn.execute("RESET maintenance_work_mem")


async def build_claimed(
    conn: asyncpg.Connection, name: str, *, batch: int = key_fill.BATCH
) -> str | None:
    """Build the staged index `name` if its row still asks for it (the caller holds its
    lock): backfill its table's new key columns (`batch` rows a transaction), then build
    it concurrently; record the outcome. Returns the new state, or None if there was
    nothing to do."""
    row = await conn.fetchrow(
        f"SELECT table_name, statement, note, state FROM {TABLE} WHERE name = $1", name
    )
    if row is None or row["state"] != "backfilling":
        return None
    await conn.execute(
        f"UPDATE {TABLE} SET attempts = attempts + 1, builder = $2, started_at = now(), "
        "error = NULL WHERE name = $1",
        name,
        _me(),
    )
    try:
        await key_fill.backfill(conn, row["table_name"], batch=batch)
        await build(conn, name, row["statement"], row["note"])
    except asyncpg.PostgresError as exc:
        if isinstance(exc, _TRANSIENT):
            raise  # stopped, not failed: the row stays `backfilling` for the next claimer
        await conn.execute(f'DROP INDEX CONCURRENTLY IF EXISTS docs."{name}"')
        await conn.execute(
            f"UPDATE {TABLE} SET state = 'failed', error = $3, builder = NULL, "
            "finished_at = now() WHERE name = $1 AND statement = $2",
            name,
            row["statement"],
            f"{type(exc).__name__}: {exc}",
        )
        return "failed"
    await conn.execute(
        f"UPDATE {TABLE} SET state = 'backfilled', builder = NULL, finished_at = now() "
        "WHERE name = $1 AND statement = $2",
        name,
        row["statement"],
    )
    return "backfilled"


async def pending(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, list[str]]:
    """The staged indexes waiting to be built, by table, oldest request first."""
    rows = await conn.fetch(
        f"SELECT name, table_name FROM {TABLE} WHERE state = 'backfilling' "
        "ORDER BY requested_at, name"
    )
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r["table_name"], []).append(r["name"])
    return out


# ------------------------------------------------------------------ deploying


async def settle(
    conn: asyncpg.Connection,
    staged: set[str],
    wanted: dict[str, str],
    say: Callable[[str], Any],
) -> list[str]:
    """Before a deploy builds indexes: forget the rows of indexes no longer staged.

    `staged` are the names the new schema stages; `wanted` maps every other index it
    wants to its CREATE statement. An index being enabled with the definition it was
    staged with is ready at once when built, else built here (waiting for a builder
    that holds it). Rows of indexes dropped or redefined are forgotten (a build in
    progress is cancelled) and the rest of the deploy handles them as any index.
    Returns the labels of the indexes enabled.
    """
    enabled: list[str] = []
    rows = await conn.fetch(
        f"SELECT name, table_name, index_name, statement FROM {TABLE} ORDER BY name"
    )
    for r in rows:
        name = r["name"]
        if name in staged:
            continue
        label = f"{r['table_name']}.{r['index_name']}"
        keep = wanted.get(name) == r["statement"]
        table = r["table_name"]
        await claim(conn, table, cancel=not keep, say=say)
        try:
            if keep:
                state = await conn.fetchval(f"SELECT state FROM {TABLE} WHERE name = $1", name)
                if state != "backfilled" or name not in await valid_indexes(conn):
                    say(f"building index {label} before enabling it (concurrently)")
                    note = await conn.fetchval(f"SELECT note FROM {TABLE} WHERE name = $1", name)
                    try:
                        await build(conn, name, r["statement"], note)
                    except asyncpg.PostgresError as exc:
                        raise IndexBuildError(f"building index {label} failed: {exc}") from exc
                enabled.append(label)
            await conn.execute(f"DELETE FROM {TABLE} WHERE name = $1", name)
        finally:
            await release(conn, table)
    return enabled


async def record(conn: asyncpg.Connection, builds: list[StagedBuild], built: set[str]) -> list[str]:
    """After a deploy: record each staged index the schema wants (`built`: those already
    built as wanted). Returns a status line per staged index."""
    rows = {
        r["name"]: r for r in await conn.fetch(f"SELECT name, statement, state, error FROM {TABLE}")
    }
    lines: list[str] = []
    for b in builds:
        old = rows.get(b.name)
        same = old is not None and old["statement"] == b.statement
        if b.name in built:
            state = "backfilled"
        elif same and old is not None and old["state"] == "backfilling":
            lines.append(f"staged index {b.label}: backfilling in the background")
            continue
        else:
            state = "backfilling"
        if not (same and old is not None and old["state"] == state):
            # Redefined while a builder may be on it: stop that build, then replace the row.
            if old is not None and not same:
                await claim(conn, b.table, cancel=True, say=lambda _: None)
            try:
                await conn.execute(
                    f"INSERT INTO {TABLE} (name, table_name, index_name, kind, statement, "
                    "note, state) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO "
                    "UPDATE SET statement = EXCLUDED.statement, note = EXCLUDED.note, "
                    "state = EXCLUDED.state, kind = EXCLUDED.kind, error = NULL, "
                    "builder = NULL, requested_at = now(), started_at = NULL, "
                    "finished_at = CASE WHEN EXCLUDED.state = 'backfilled' THEN now() END",
                    b.name,
                    b.table,
                    b.index,
                    b.kind,
                    b.statement,
                    b.note,
                    state,
                )
            finally:
                if old is not None and not same:
                    await release(conn, b.table)
        if state == "backfilled":
            lines.append(f"staged index {b.label}: built; deploy without `staged` to enable it")
        else:
            failed = same and old is not None and old["state"] == "failed"
            retry = " (retrying a failed build)" if failed else ""
            lines.append(f"staged index {b.label}: backfilling in the background{retry}")
    return lines


__all__ = [
    "BuildState",
    "IndexBuildError",
    "StagedBuild",
    "TableLocks",
    "build_claimed",
    "claim",
    "pending",
    "record",
    "release",
    "settle",
    "states",
    "try_claim",
    "valid_indexes",
]
