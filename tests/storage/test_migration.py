"""Migration 0002 (blob chunks, storage secret) goes up and down cleanly."""

from __future__ import annotations

import asyncio

import asyncpg

from app.db import migrate
from tests.support.servers import create_database


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE tablename IN ('_convect_blobs', '_convect_secrets')"
        )
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def _secret(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        value: str = await conn.fetchval(
            "SELECT value FROM _convect_secrets WHERE name = 'storage'"
        )
        return value
    finally:
        await conn.close()


async def test_0002_creates_and_drops_the_storage_tables(services: dict[str, str]) -> None:
    url = await create_database(services["database_url"], "storage_migration")
    assert await _tables(url) == {"_convect_blobs", "_convect_secrets"}
    first = await _secret(url)
    assert len(first) == 64 and int(first, 16) >= 0
    await asyncio.to_thread(migrate.downgrade, url, "0001")
    assert await _tables(url) == set()
    await asyncio.to_thread(migrate.upgrade, url, "0002")
    assert await _tables(url) == {"_convect_blobs", "_convect_secrets"}
    assert await _secret(url) != first  # a new secret each time
