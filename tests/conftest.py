"""Test session: embedded PostgreSQL (pgvector) and Redis, migrated databases, servers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.servers import (
    ADMIN_KEY,
    ROOT,
    ServerProcess,
    convect_env,
    create_database,
    run_cli,
    start_server,
)

DEMO = ROOT / "functions"
KITCHEN = ROOT / "tests" / "apps" / "kitchen"


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    """The session's data folder (embedded servers live here).

    Not under pytest's tmp root: that is mode 0700, and the embedded PostgreSQL runs as
    its own user when the tests run as root.
    """
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="convect-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def services(data_dir: Path) -> Iterator[dict[str, str]]:
    """Real PostgreSQL and Redis: from DATABASE_URL/REDIS_URL, else embedded ones."""
    from app import embedded
    from app.settings import Settings

    settings = embedded.resolve(Settings(data_dir=str(data_dir)))
    assert settings.database_url and settings.redis_url
    yield {"database_url": settings.database_url, "redis_url": settings.redis_url}
    embedded.shutdown_redis()


def _make_db(services: dict[str, str], name: str) -> str:
    return asyncio.run(create_database(services["database_url"], name))


def _server(
    services: dict[str, str], data_dir: Path, db: str, functions: Path, name: str, **extra: str
) -> Iterator[ServerProcess]:
    url = _make_db(services, db)
    env = convect_env(url, services["redis_url"], functions, data_dir / name, **extra)
    deployed = run_cli(env, "deploy")
    assert deployed.returncode == 0, deployed.stderr + deployed.stdout
    server = start_server(env, data_dir / f"{name}.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def demo_server(services: dict[str, str], data_dir: Path) -> Iterator[ServerProcess]:
    """`convect serve` of the demo app (functions/) on its own database."""
    yield from _server(services, data_dir, "demo", DEMO, "demo")


@pytest.fixture(scope="session")
def kitchen_server(services: dict[str, str], data_dir: Path) -> Iterator[ServerProcess]:
    """`convect serve` of the test app (tests/apps/kitchen) on its own database."""
    yield from _server(services, data_dir, "kitchen", KITCHEN, "kitchen")


async def truncate_all(database_url: str, server_url: str | None = None) -> None:
    """Empty every document table, log the change so servers drop what they cached, and wait
    until the server at `server_url` has seen it."""
    import time

    import orjson

    conn = await asyncpg.connect(database_url)
    try:
        names = [r["name"] for r in await conn.fetch("SELECT name FROM _convect_tables")]
        tables = ", ".join(f'docs."{n}"' for n in names)
        async with conn.transaction():
            extra = [
                r["t"]
                for r in await conn.fetch(
                    "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' "
                    "AND table_name IN ('_convect_blobs', '_convect_scheduled_queue')"
                )
            ]
            await conn.execute(
                f"TRUNCATE {', '.join([tables, '_convect_commits', '_convect_mutation_requests', *extra])}"
            )
            ts = await conn.fetchval(
                "INSERT INTO _convect_commits (ts, writes) VALUES (nextval('_convect_ts'), $1::jsonb) "
                "RETURNING ts",
                orjson.dumps([[n, None, None, None] for n in names]).decode(),
            )
        await conn.execute("NOTIFY convect_commits")
    finally:
        await conn.close()
    if server_url is None:
        return
    from app.sync.protocol import decode_ts

    deadline = time.monotonic() + 10
    async with httpx.AsyncClient(base_url=server_url) as client:
        while time.monotonic() < deadline:
            r = await client.post("/api/query_ts")
            if decode_ts(r.json()["ts"]) >= ts:
                return
            await asyncio.sleep(0.005)
    raise RuntimeError("the server did not see the truncation within 10 s")


@pytest.fixture
async def demo(demo_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the demo server, on emptied tables."""
    await truncate_all(demo_server.env["DATABASE_URL"], demo_server.url)
    async with httpx.AsyncClient(base_url=demo_server.url, timeout=30) as client:
        yield client


@pytest.fixture
async def kitchen(kitchen_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the kitchen test app, on emptied tables."""
    await truncate_all(kitchen_server.env["DATABASE_URL"], kitchen_server.url)
    async with httpx.AsyncClient(base_url=kitchen_server.url, timeout=30) as client:
        yield client


ADMIN_HEADERS = {"Authorization": f"Convex {ADMIN_KEY}"}
os.environ.setdefault("CONVECT_TESTING", "1")
