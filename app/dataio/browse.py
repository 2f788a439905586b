"""`convect data`: the deployment's tables with document counts, or a table's documents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

import orjson

from app.dataio.connect import connect, require_migrated
from app.dataio.format import parse_line
from app.db.sql import table_ref


class UnknownTable(LookupError):
    """`convect data TABLE` named a table the deployment does not have."""


async def table_counts(url: str) -> list[tuple[str, int]]:
    """Every table (system tables included) and its number of documents, by name."""
    conn = await connect(url)
    try:
        await require_migrated(conn)
        names = [r["name"] for r in await conn.fetch("SELECT name FROM _convect_tables")]
        out = []
        for name in sorted(names):
            out.append((name, int(await conn.fetchval(f"SELECT count(*) FROM {table_ref(name)}"))))
        return out
    finally:
        await conn.close()


async def documents(
    url: str, table: str, *, limit: int, order: Literal["asc", "desc"] = "desc"
) -> AsyncIterator[bytes]:
    """Up to `limit` documents of `table` by creation time (newest first by default),
    each as one line of Convex JSON."""
    conn = await connect(url)
    try:
        await require_migrated(conn)
        names = sorted(r["name"] for r in await conn.fetch("SELECT name FROM _convect_tables"))
        if table not in names:
            raise UnknownTable(
                f"there is no table {table!r}; tables: {', '.join(names) or '(none)'}"
            )
        direction = "DESC" if order == "desc" else "ASC"
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            cursor = await conn.cursor(
                f"SELECT doc::text FROM {table_ref(table)} "
                f"ORDER BY creation_time {direction}, id {direction} LIMIT $1",
                limit,
            )
            while rows := await cursor.fetch(500):
                for row in rows:
                    yield orjson.dumps(parse_line(row[0]))
    finally:
        await conn.close()
