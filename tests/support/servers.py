"""Start real Convect processes against real PostgreSQL and Redis for tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent.parent
ADMIN_KEY = "test-admin-key-0123456789"


def free_port() -> int:
    """A TCP port that is free right now on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database_url(base_url: str, name: str) -> str:
    """The URL of database `name` on the same server as `base_url`."""
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def create_database(base_url: str, name: str) -> str:
    """Create (or recreate) database `name` and migrate it; return its URL."""
    from app.db import migrate

    conn = await asyncpg.connect(base_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = database_url(base_url, name)
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
        for p in [self.proc, *self.extra]:
            if p.poll() is None:
                p.terminate()
        for p in [self.proc, *self.extra]:
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


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
