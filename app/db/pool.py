"""The asyncpg connection pool."""

from __future__ import annotations

import asyncpg


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Transactions are always closed before release: skip the reset round trip."""


async def create_pool(url: str, *, size: int = 16) -> asyncpg.Pool:
    """Open a pool to `url` with settings tuned for short transactions."""
    pool = await asyncpg.create_pool(
        url,
        min_size=min(2, size),
        max_size=size,
        reset=_no_reset,
        server_settings={"application_name": "convect", "jit": "off"},
        command_timeout=60,
    )
    assert pool is not None
    return pool
