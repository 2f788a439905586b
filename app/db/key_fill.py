"""Key columns a deploy adds to existing tables: filled by a trigger, backfilled in batches.

Adding a generated column (`GENERATED ALWAYS AS (...) STORED`) to a table rewrites the
whole table under an ACCESS EXCLUSIVE lock: every read and write of it waits meanwhile.
So a key column that a deploy adds to a table that already exists is a plain nullable
`jsonb` column (a catalog-only change), with a `BEFORE INSERT OR UPDATE` trigger of the
column's name that sets it to the value the generated column would hold; both are added
in one short transaction. The rows written before that are then filled in id order, one
short transaction per batch, each from the row's current document (a row written
meanwhile never gets a stale key), and the last id filled is kept in
`_convect_key_backfills`, so a stopped backfill resumes there. A column is filled once
its row there is gone; a missing field's key is NULL either way, so "not filled yet" is
only ever read from that row.

Who backfills: the staged indexes' builder before it builds (`app.db.index_builds`), and
a deploy for the columns its non-staged indexes need. Tables created by a deploy or on
first insert get generated key columns (nothing to rewrite). A trigger-filled column stays
trigger-filled; dropping it drops its trigger and function.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from typing import Any

import asyncpg

from app.db.sql import KEY_PREFIX, key_column, key_fill_function, key_value_sql, table_ref

TABLE = "_convect_key_backfills"
BATCH = 1000  # rows per backfill transaction
LOCK_TIMEOUT_MS = 200  # an ALTER that waits longer for its lock gives way, then tries again

Statement = tuple[str, tuple[Any, ...]]


def add_sql(table: str, field: str) -> list[Statement]:
    """Add `field`'s key column to `table` as a trigger-filled column (no table rewrite)."""
    ref = table_ref(table)
    col = key_column(field)
    fn = key_fill_function(table, field)
    return [
        (f'ALTER TABLE {ref} ADD COLUMN IF NOT EXISTS "{col}" jsonb', ()),
        (
            f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS "
            f'$$BEGIN NEW."{col}" := {key_value_sql(field, "NEW.doc")}; RETURN NEW; END$$',
            (),
        ),
        (
            f'CREATE OR REPLACE TRIGGER "{col}" BEFORE INSERT OR UPDATE ON {ref} '
            f"FOR EACH ROW EXECUTE FUNCTION {fn}()",
            (),
        ),
        (
            f"INSERT INTO {TABLE} (table_name, column_name, field) VALUES ($1, $2, $3) "
            "ON CONFLICT (table_name, column_name) DO UPDATE SET field = EXCLUDED.field, "
            "after = NULL, filled = 0, requested_at = now()",
            (table, col, field),
        ),
    ]


async def alter(
    conn: asyncpg.Connection,
    table: str,
    statements: list[Statement],
    say: Callable[[str], Any] = lambda _: None,
) -> None:
    """Run `statements` in one transaction whose ACCESS EXCLUSIVE lock on `table` never
    makes its readers and writers wait long: it waits at most `LOCK_TIMEOUT_MS` for a
    transaction using the table, then gives way and tries again a little later."""
    said = False
    delay = 0.05
    while True:
        try:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
                for sql, args in statements:
                    await conn.execute(sql, *args)
            return
        except asyncpg.LockNotAvailableError:
            if not said:
                say(f"waiting for the transactions that use table {table} to end")
                said = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def add(
    conn: asyncpg.Connection,
    table: str,
    fields: Collection[str],
    say: Callable[[str], Any] = lambda _: None,
) -> None:
    """Add trigger-filled key columns for `fields` to `table`, each to be backfilled."""
    await alter(conn, table, [s for f in sorted(fields) for s in add_sql(table, f)], say)


async def trigger_filled(conn: asyncpg.Connection, table: str) -> set[str]:
    """The key columns of `table` that a trigger fills."""
    rows = await conn.fetch(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal "
        "AND starts_with(tgname, $2)",
        table_ref(table),
        KEY_PREFIX,
    )
    return {r["tgname"] for r in rows}


async def unfilled(conn: asyncpg.Connection | asyncpg.Pool, table: str) -> dict[str, str]:
    """The key columns of `table` still to be backfilled, and their fields."""
    rows = await conn.fetch(f"SELECT column_name, field FROM {TABLE} WHERE table_name = $1", table)
    return {r["column_name"]: r["field"] for r in rows}


def _batch_sql(table: str, field: str) -> str:
    ref = table_ref(table)
    col = key_column(field)
    value = key_value_sql(field, "t.doc")
    return (
        f"WITH batch AS (SELECT id FROM {ref} WHERE id > $1 ORDER BY id LIMIT $2), "
        f'filled AS (UPDATE {ref} t SET "{col}" = {value} FROM batch '
        f'WHERE t.id = batch.id AND t."{col}" IS DISTINCT FROM {value} RETURNING 1) '
        "SELECT (SELECT max(id) FROM batch) AS last, (SELECT count(*) FROM filled) AS n"
    )


async def backfill(
    conn: asyncpg.Connection,
    table: str,
    columns: Collection[str] | None = None,
    *,
    batch: int = BATCH,
) -> int:
    """Fill the rows written before `table`'s trigger-filled key columns (those of
    `columns`, or all) were added, in id order from where the last backfill stopped, one
    transaction per batch. Returns how many rows it changed. The caller holds the
    table's build lock (`app.db.index_builds`): one backfill per table at a time."""
    changed = 0
    for col, field in sorted((await unfilled(conn, table)).items()):
        if columns is not None and col not in columns:
            continue
        after = await conn.fetchval(
            f"SELECT after FROM {TABLE} WHERE table_name = $1 AND column_name = $2", table, col
        )
        sql = _batch_sql(table, field)
        while True:
            async with conn.transaction():
                row = await conn.fetchrow(sql, after or "", batch)
                if row is None or row["last"] is None:
                    await conn.execute(
                        f"DELETE FROM {TABLE} WHERE table_name = $1 AND column_name = $2",
                        table,
                        col,
                    )
                    break
                after = row["last"]
                changed += row["n"]
                await conn.execute(
                    f"UPDATE {TABLE} SET after = $3, filled = filled + $4 "
                    "WHERE table_name = $1 AND column_name = $2",
                    table,
                    col,
                    after,
                    row["n"],
                )
    return changed


async def drop_columns_sql(
    conn: asyncpg.Connection, table: str, columns: Collection[str]
) -> list[Statement]:
    """Drop key columns of `table` (generated or trigger-filled: with their trigger and
    function) and forget their backfills."""
    cols = sorted(columns)
    if not cols:
        return []
    fns = await conn.fetch(
        "SELECT tgfoid::regprocedure::text AS fn FROM pg_trigger WHERE tgrelid = $1::regclass "
        "AND NOT tgisinternal AND tgname = ANY($2::text[]) ORDER BY tgname",
        table_ref(table),
        cols,
    )
    drops = ", ".join(f'DROP COLUMN IF EXISTS "{c}"' for c in cols)
    return [
        *((f"DROP FUNCTION IF EXISTS {r['fn']} CASCADE", ()) for r in fns),
        (f"ALTER TABLE {table_ref(table)} {drops}", ()),
        (
            f"DELETE FROM {TABLE} WHERE table_name = $1 AND column_name = ANY($2::text[])",
            (table, cols),
        ),
    ]


async def drop_table_sql(conn: asyncpg.Connection, table: str) -> list[Statement]:
    """Before dropping `table`: drop its key columns' trigger functions (a dropped table
    takes its triggers, not their functions) and forget its backfills."""
    fns = await conn.fetch(
        "SELECT tgfoid::regprocedure::text AS fn FROM pg_trigger WHERE tgrelid = to_regclass($1) "
        "AND NOT tgisinternal AND starts_with(tgname, $2) ORDER BY tgname",
        table_ref(table),
        KEY_PREFIX,
    )
    return [
        *((f"DROP FUNCTION IF EXISTS {r['fn']} CASCADE", ()) for r in fns),
        (f"DELETE FROM {TABLE} WHERE table_name = $1", (table,)),
    ]


__all__ = [
    "BATCH",
    "add",
    "add_sql",
    "alter",
    "backfill",
    "drop_columns_sql",
    "drop_table_sql",
    "trigger_filled",
    "unfilled",
]
