"""Read tables straight from PostgreSQL, to check what a call did (or did not) write."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from app.values import decode_value


async def table_docs(database_url: str, table: str) -> list[dict[str, Any]]:
    """Every document of `table`, oldest first, read directly (not through Convect)."""
    conn = await asyncpg.connect(database_url)
    try:
        exists = await conn.fetchval("SELECT to_regclass($1)", f'docs."{table}"')
        if exists is None:
            return []
        rows = await conn.fetch(f'SELECT doc FROM docs."{table}" ORDER BY creation_time, id')
    finally:
        await conn.close()
    return [decode_value(orjson.loads(r["doc"])) for r in rows]


async def table_names(database_url: str) -> set[str]:
    """Names in the table catalog, and document tables that exist in PostgreSQL."""
    conn = await asyncpg.connect(database_url)
    try:
        catalog = {r["name"] for r in await conn.fetch("SELECT name FROM _convect_tables")}
        real = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'docs'")
        }
    finally:
        await conn.close()
    return catalog | real
