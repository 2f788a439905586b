"""Fixtures for storage tests: upload helpers and a server with a small upload limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import DEMO
from tests.support.calls import mutation
from tests.support.servers import ServerProcess, convect_env, start_server

SMALL_LIMIT = 1024 * 1024


@pytest.fixture(scope="session")
def small_limit_server(
    demo_server: ServerProcess, services: dict[str, str], data_dir: Path
) -> Iterator[ServerProcess]:
    """A second (prod-mode) server on the demo database that accepts files up to 1 MiB."""
    env = convect_env(
        demo_server.env["DATABASE_URL"],
        services["redis_url"],
        DEMO,
        data_dir / "demo-small",
        CONVECT_MAX_UPLOAD_BYTES=str(SMALL_LIMIT),
        CONVECT_MODE="prod",
    )
    server = start_server(env, data_dir / "demo-small.log")
    yield server
    server.stop()


async def upload(
    client: httpx.AsyncClient, data: bytes, content_type: str | None = "application/octet-stream"
) -> str:
    """Upload `data` through an upload URL from `files:generate_upload_url`; the storage id."""
    url = await mutation(client, "files:generate_upload_url")
    headers = {"Content-Type": content_type} if content_type else {}
    r = await client.post(url, content=data, headers=headers)
    assert r.status_code == 200, r.text
    storage_id: str = r.json()["storageId"]
    return storage_id


async def blob_chunks(database_url: str, storage_id: str | None = None) -> int:
    """How many blob chunks exist (of one file, or in all)."""
    conn = await asyncpg.connect(database_url)
    try:
        if storage_id is None:
            return int(await conn.fetchval("SELECT count(*) FROM _convect_blobs"))
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM _convect_blobs WHERE storage_id = $1", storage_id
            )
        )
    finally:
        await conn.close()
