"""`/readyz` (database, migrations current or ahead, Redis, not draining) and `/healthz`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from app.auth import Principal
from app.engine import Engine
from app.engine.registry import load_registry
from app.http.app import create_app
from app.http.health import known_revisions, migration_state
from app.settings import Settings
from tests.ops.conftest import OPSAPP
from tests.support.servers import ServerProcess, create_database, free_port

HEAD = known_revisions()[0]


async def test_a_served_deployment_is_ready_with_every_check_named(
    ops_server: ServerProcess,
) -> None:
    async with httpx.AsyncClient(base_url=ops_server.url) as client:
        r = await client.get("/readyz")
        assert r.status_code == 200, r.text
        assert r.json() == {
            "status": "ok",
            "checks": {"process": "ok", "database": "ok", "migrations": "ok", "redis": "ok"},
        }
        health = await client.get("/healthz")
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert (await client.post("/readyz")).status_code == 405


def test_migration_state_is_ok_at_head_or_ahead_and_behind_otherwise() -> None:
    assert migration_state([HEAD]) == "ok"
    ahead = migration_state(["9999_from_a_newer_release"])
    assert ahead.startswith("ok:") and "9999_from_a_newer_release" in ahead
    assert migration_state(["0001"]).startswith("behind: database at 0001")
    assert migration_state([]).startswith("behind: no migrations applied")


@pytest.fixture
async def engine(services: dict[str, str]) -> AsyncIterator[Engine]:
    """A started engine (no subsystems) on a database of its own, Redis reachable."""
    url = await create_database(services["database_url"], "ops_ready")
    settings = Settings(
        database_url=url, redis_url=services["redis_url"], pool_size=2, functions=str(OPSAPP)
    )
    eng = Engine(settings, load_registry(OPSAPP))
    await eng.start()
    try:
        yield eng
    finally:
        await eng.stop()


async def _readyz(engine: Engine) -> tuple[int, dict[str, Any]]:
    transport = httpx.ASGITransport(app=create_app(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.get("/readyz")
    return r.status_code, r.json()


async def _set_version(engine: Engine, version: str) -> None:
    assert engine.settings.database_url is not None
    conn = await asyncpg.connect(engine.settings.database_url)
    try:
        await conn.execute("UPDATE alembic_version SET version_num = $1", version)
    finally:
        await conn.close()


async def test_migrations_behind_make_a_pod_unready_and_ahead_keep_it_ready(
    engine: Engine,
) -> None:
    assert await _readyz(engine) == (
        200,
        {
            "status": "ok",
            "checks": {"process": "ok", "database": "ok", "migrations": "ok", "redis": "ok"},
        },
    )
    await _set_version(engine, "0001")
    status, body = await _readyz(engine)
    assert status == 503 and body["status"] == "unavailable"
    assert body["checks"]["migrations"] == f"behind: database at 0001, this release needs {HEAD}"
    # A newer release migrated first (rolling update): the old pods stay ready.
    await _set_version(engine, "9999")
    status, body = await _readyz(engine)
    assert status == 200, body
    assert body["checks"]["migrations"] == f"ok: database at 9999, ahead of this release's {HEAD}"
    await _set_version(engine, str(HEAD))


async def test_an_unreachable_redis_makes_a_pod_unready(engine: Engine) -> None:
    engine.settings = engine.settings.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"}
    )
    status, body = await _readyz(engine)
    assert status == 503
    assert body["checks"]["redis"].startswith("error: ")
    assert body["checks"]["database"] == "ok"
    engine.settings = engine.settings.model_copy(update={"redis_url": None})
    status, body = await _readyz(engine)
    assert status == 503 and body["checks"]["redis"] == "error: REDIS_URL is not set"


async def test_an_unreachable_database_makes_a_pod_unready_but_not_unhealthy(
    engine: Engine,
) -> None:
    settings = engine.settings
    engine.settings = settings.model_copy(  # as if PostgreSQL went away
        update={"database_url": f"postgresql://convect@127.0.0.1:{free_port()}/nothing"}
    )  # nothing listens there
    try:
        status, body = await _readyz(engine)
        assert status == 503 and body["checks"]["database"] == "error: ConnectionRefusedError"
        assert "migrations" not in body["checks"]
        transport = httpx.ASGITransport(app=create_app(engine))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.get("/healthz")).status_code == 200
    finally:
        engine.settings = settings


async def test_readiness_does_not_wait_behind_the_apps_calls(engine: Engine) -> None:
    # Every pool connection busy (a load spike): the probe still answers, from its own
    # connection, and a call that cannot get one fails as overloaded instead of queueing.
    held = [await engine.pool.acquire() for _ in range(engine.settings.pool_size)]
    engine.settings = engine.settings.model_copy(update={"pool_timeout": 0.2})
    try:
        started = time.monotonic()
        status, body = await _readyz(engine)
        assert status == 200, body
        assert time.monotonic() - started < 1.5
        outcome = await engine.call(
            "ledger:count_for", {"client": "x"}, Principal(None, False), "query"
        )
        assert outcome.error is not None and outcome.error.overloaded
        assert "no database connection came free within 0.2 s" in outcome.error.message
        transport = httpx.ASGITransport(app=create_app(engine))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.post(
                "/api/query", json={"path": "ledger:count_for", "args": {"client": "x"}}
            )
        assert r.status_code == 503 and r.json()["code"] == "Overloaded"
        assert r.headers["retry-after"] == "1"
    finally:
        for conn in held:
            await engine.pool.release(conn)


async def test_a_draining_process_is_unready_without_asking_anything(engine: Engine) -> None:
    engine.draining = True
    status, body = await _readyz(engine)
    assert (status, body) == (
        503,
        {"status": "unavailable", "checks": {"process": "draining for shutdown"}},
    )


async def test_a_hanging_check_fails_within_the_probe_timeout(engine: Engine) -> None:
    async def accept_and_say_nothing(reader: asyncio.StreamReader, writer: Any) -> None:
        await asyncio.sleep(60)

    silent = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    engine.settings = engine.settings.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{port}/0"}
    )
    try:
        started = time.monotonic()
        status, body = await _readyz(engine)
    finally:
        silent.close()
    assert time.monotonic() - started < 3  # kubelet gives up after 3 s
    assert status == 503 and body["checks"]["redis"] == "error: no answer within 2 s"
    assert body["checks"]["database"] == "ok"
