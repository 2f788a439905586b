"""Start real Convect processes against real PostgreSQL and Redis for tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent.parent
ADMIN_KEY = "test-admin-key-0123456789abcdefghijkl"


def free_port() -> int:
    """A TCP port that is free right now on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database_url(base_url: str, name: str) -> str:
    """The URL of database `name` on the same server as `base_url`."""
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def empty_database(base_url: str, name: str) -> str:
    """Create (or recreate) database `name`, with no migrations applied; return its URL."""
    conn = await asyncpg.connect(base_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_url(base_url, name)


async def create_database(base_url: str, name: str) -> str:
    """Create (or recreate) database `name` and migrate it; return its URL."""
    from app.db import migrate

    url = await empty_database(base_url, name)
    migrate.upgrade(url)
    return url


@dataclass
class ServerProcess:
    """A `convect serve` (or other role) subprocess and how to reach it."""

    proc: subprocess.Popen[bytes]
    port: int
    site_port: int
    env: dict[str, str]
    log_path: Path
    extra: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The API listener's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def site_url(self) -> str:
        """The HTTP actions listener's base URL."""
        return f"http://127.0.0.1:{self.site_port}"

    def log(self) -> str:
        """What the process printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, then SIGKILL if it does not exit."""
        stop_processes([self.proc, *self.extra], timeout)


def convect_env(
    database_url: str, redis_url: str, functions: Path, data_dir: Path, **extra: str
) -> dict[str, str]:
    """Environment for a Convect subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVECT_")}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CONVECT_FUNCTIONS=str(functions),
        CONVECT_DATA_DIR=str(data_dir),
        CONVECT_ADMIN_KEY=ADMIN_KEY,
        CONVECT_MODE="dev",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def run_cli(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `python -m app ARGS` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def deploy_app(
    services: dict[str, str], db: str, functions: Path, data_dir: Path, **extra: str
) -> dict[str, str]:
    """Create database `db` on the PostgreSQL at `services["database_url"]` and `convect
    deploy` the app in `functions` on it; return the environment that serves it (with the
    Redis at `services["redis_url"]`, data in `data_dir`)."""
    url = asyncio.run(create_database(services["database_url"], db))
    env = convect_env(url, services["redis_url"], functions, data_dir, **extra)
    deployed = run_cli(env, "deploy")
    assert deployed.returncode == 0, deployed.stderr + deployed.stdout
    return env


@contextlib.contextmanager
def served_app(
    services: dict[str, str],
    db: str,
    functions: Path,
    data_dir: Path,
    log_path: Path | None = None,
    **extra: str,
) -> Iterator[ServerProcess]:
    """`deploy_app`, then `convect serve` it (logging to `log_path`, by default `data_dir`
    with `.log` added) until the block ends."""
    env = deploy_app(services, db, functions, data_dir, **extra)
    server = start_server(env, log_path or data_dir.with_name(data_dir.name + ".log"))
    try:
        yield server
    finally:
        server.stop()


def stop_processes(procs: list[subprocess.Popen[bytes]], timeout: float = 15) -> None:
    """SIGTERM every process at once, then wait for each (SIGKILL what does not exit)."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def worker_tag(pid: int) -> str:
    """How the id of the worker with process id `pid` starts (host and pid)."""
    return f"{socket.gethostname()}-{pid}-"


def spawn_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start `python -m app worker`, appending its output to `log_path` (not waited for)."""
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "app", "worker"],
            env=env,
            cwd=ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def wait_worker_ready(proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 60) -> None:
    """Wait until worker `proc` logged that it is ready (SIGKILL it if it never does)."""
    tag = f"convect worker {worker_tag(proc.pid)}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if any(tag in line and "ready" in line for line in text.splitlines()):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode}:\n{text}")
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"worker did not become ready:\n{log_path.read_text()}")


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start `python -m app worker` and wait until it reports ready."""
    proc = spawn_worker(env, log_path)
    wait_worker_ready(proc, log_path)
    return proc


def start_server(
    env: dict[str, str],
    log_path: Path,
    *,
    role: str = "serve",
    port: int | None = None,
    site_port: int | None = None,
) -> ServerProcess:
    """Start `python -m app <role>` and wait until /healthz answers; ports picked here
    are picked again if another process took one between the pick and the bind."""
    for attempt in range(3):
        try:
            return _start_server(env, log_path, role, port, site_port)
        except PortTaken:
            if (port is not None and site_port is not None) or attempt == 2:
                raise
    raise AssertionError("unreachable")


class PortTaken(RuntimeError):
    """The server could not bind a port another process took meanwhile."""


def _start_server(
    env: dict[str, str], log_path: Path, role: str, port: int | None, site_port: int | None
) -> ServerProcess:
    port = port or free_port()
    site_port = site_port or free_port()
    env = {**env, "CONVECT_PORT": str(port), "CONVECT_SITE_PORT": str(site_port)}
    offset = log_path.stat().st_size if log_path.exists() else 0
    log_file = open(log_path, "ab")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", role],
        env=env,
        cwd=ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    server = ServerProcess(proc, port, site_port, env, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = server.log()
            kind = PortTaken if "address already in use" in text[offset:] else RuntimeError
            raise kind(f"server exited with {proc.returncode}:\n{text}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not become healthy:\n{server.log()}")


async def truncate_all(database_url: str, server_url: str | None = None) -> None:
    """Empty every document table, log the change so servers drop what they cached, and wait
    until the server at `server_url` has seen it."""
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

    # The live-query hub's ts when the server runs one: /api/query_ts would hold a
    # snapshot for consistent reads (up to a 30 s window, which a later concurrent index
    # build in a test would wait for).
    deadline = time.monotonic() + 10
    admin = {"Authorization": f"Convex {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=server_url, headers=admin) as client:
        while time.monotonic() < deadline:
            r = await client.get("/api/debug/sync_stats")
            if r.status_code == 200:
                seen = int(r.json()["ts"])
            else:
                seen = decode_ts((await client.post("/api/query_ts")).json()["ts"])
            if seen >= ts:
                return
            await asyncio.sleep(0.005)
    raise RuntimeError("the server did not see the truncation within 10 s")


@contextlib.asynccontextmanager
async def emptied_client(
    server: ServerProcess, timeout: float = 30, **kw: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """Empty the server's tables (`truncate_all`), then an HTTP client for it."""
    await truncate_all(server.env["DATABASE_URL"], server.url)
    async with httpx.AsyncClient(base_url=server.url, timeout=timeout, **kw) as client:
        yield client
