"""Fixtures for storage tests: every test here runs against both blob backends.

`backend` is "postgres" or "s3"; the `demo_server` and `kitchen_server` of this folder
store their files there (S3: a bucket of moto's S3 server, started once per session).
`stored` and `gone` look at where the bytes are, whichever the backend.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import DEMO, KITCHEN
from tests.support.calls import mutation
from tests.support.s3 import S3Server, bucket_env, objects, start_s3
from tests.support.servers import ServerProcess, convect_env, served_app, start_server

SMALL_LIMIT = 1024 * 1024
S3_KEYS = ("CONVECT_STORAGE", "CONVECT_S3_", "AWS_")


@pytest.fixture(scope="session")
def s3_server(data_dir: Path) -> Iterator[S3Server]:
    """moto's S3 server, for the whole session."""
    server = start_s3(data_dir / "moto.log")
    yield server
    server.stop()


@pytest.fixture(scope="session", params=["postgres", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    """The blob backend the storage tests run against."""
    return str(request.param)


def backend_env(backend: str, request: pytest.FixtureRequest, bucket: str) -> dict[str, str]:
    """Settings that keep a deployment's files in `backend` (S3: in `bucket` of moto)."""
    if backend == "postgres":
        return {}
    s3: S3Server = request.getfixturevalue("s3_server")
    s3.create_bucket(bucket)
    return bucket_env(s3, bucket)


@pytest.fixture(scope="session")
def s3_demo_server(
    s3_server: S3Server, services: dict[str, str], data_dir: Path
) -> Iterator[ServerProcess]:
    """The demo app with its files in the bucket "demo" of moto's S3 server."""
    s3_server.create_bucket("demo")
    env = bucket_env(s3_server, "demo")
    with served_app(services, "demo_s3", DEMO, data_dir / "demo_s3", **env) as server:
        yield server


@pytest.fixture(scope="session")
def demo_server(
    backend: str, demo_server: ServerProcess, request: pytest.FixtureRequest
) -> ServerProcess:
    """The demo app with its files in `backend` (PostgreSQL: the session's demo server)."""
    if backend == "postgres":
        return demo_server
    server: ServerProcess = request.getfixturevalue("s3_demo_server")
    return server


@pytest.fixture(scope="session")
def kitchen_server(
    backend: str,
    kitchen_server: ServerProcess,
    services: dict[str, str],
    data_dir: Path,
    request: pytest.FixtureRequest,
) -> Iterator[ServerProcess]:
    """The kitchen app with its files in `backend` (PostgreSQL: the session's one)."""
    if backend == "postgres":
        yield kitchen_server
        return
    extra = backend_env(backend, request, "kitchen")
    with served_app(services, "kitchen_s3", KITCHEN, data_dir / "kitchen_s3", **extra) as server:
        yield server


def s3_env(server: ServerProcess) -> dict[str, str]:
    """The S3 settings of a server's environment (empty for the PostgreSQL backend)."""
    return {k: v for k, v in server.env.items() if k.startswith(S3_KEYS)}


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
        **s3_env(demo_server),
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
    """How many blob chunks exist in PostgreSQL (of one file, or in all)."""
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


async def stored(server: ServerProcess) -> set[str]:
    """The storage ids whose bytes exist in the server's backend."""
    return await stored_in(server.env)


async def stored_in(env: dict[str, str]) -> set[str]:
    """The storage ids whose bytes exist in the backend of a deployment's environment."""
    if env.get("CONVECT_STORAGE") == "s3":
        return set(await objects(env))
    conn = await asyncpg.connect(env["DATABASE_URL"])
    try:
        rows = await conn.fetch("SELECT DISTINCT storage_id FROM _convect_blobs")
    finally:
        await conn.close()
    return {r["storage_id"] for r in rows}


async def gone(server: ServerProcess, storage_id: str, within: float = 5.0) -> bool:
    """True once the file's bytes are gone (S3 objects go just after the commit)."""
    deadline = time.monotonic() + within
    while storage_id in await stored(server):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True
