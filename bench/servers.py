"""Start the two servers under test (Convect's `serve` and the baseline) as subprocesses."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.servers import ADMIN_KEY, convect_env, create_database, free_port, run_cli

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Server:
    """A server subprocess, its URL and its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path
    site_url: str = ""  # Convect's HTTP actions listener

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _start(name: str, cmd: list[str], env: dict[str, str], port: int, log_path: Path) -> Server:
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    server = Server(name, proc, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} did not become healthy:\n{log_path.read_text()}")


def start_convect(
    database_url: str,
    redis_url: str,
    data_dir: Path,
    mode: str,
    *,
    live: bool = True,
    **extra: str,
) -> Server:
    """`python -m app serve` of the demo app (one process, its own uvicorn loop);
    `live=False` runs it without the live-query hub (CONVECT_LIVE_QUERIES=false);
    `extra` is added to its environment."""
    port, site_port = free_port(), free_port()
    env = convect_env(
        database_url,
        redis_url,
        ROOT / "functions",
        data_dir / "convect",
        CONVECT_MODE=mode,
        CONVECT_LOG_LEVEL="warning",
        CONVECT_POOL_SIZE="16",
        CONVECT_PORT=str(port),
        CONVECT_SITE_PORT=str(site_port),
        CONVECT_LIVE_QUERIES="true" if live else "false",
        **extra,
    )
    cmd = [sys.executable, "-m", "app", "serve"]
    name = "convect" if live else "nolive"
    server = _start(name, cmd, env, port, data_dir / f"{name}.log")
    server.site_url = f"http://127.0.0.1:{site_port}"
    return server


def start_deployed_convect(
    database_base_url: str, redis_url: str, data_dir: Path, db: str
) -> Server:
    """A fresh database `db`, the demo app deployed on it, and `convect serve` in prod."""
    url = asyncio.run(create_database(database_base_url, db))
    env = convect_env(url, redis_url, ROOT / "functions", data_dir / db)
    deployed = run_cli(env, "deploy")
    if deployed.returncode != 0:
        raise RuntimeError(deployed.stderr)
    return start_convect(url, redis_url, data_dir, "prod")


def start_baseline(database_url: str, data_dir: Path) -> Server:
    """The hand-written FastAPI + asyncpg app: one uvicorn worker, uvloop, httptools."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVECT_")}
    env["DATABASE_URL"] = database_url
    cmd = [
        sys.executable, "-m", "uvicorn", "bench.baseline:app", "--host", "127.0.0.1",
        "--port", str(port), "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    return _start("baseline", cmd, env, port, data_dir / "baseline.log")


def stop_embedded() -> None:
    """Stop the embedded PostgreSQL and Redis this process started (before removing them)."""
    from app import embedded

    for key, handle in list(embedded._keep.items()):
        try:
            if key.startswith("pg:"):
                handle.cleanup()
            else:
                handle.shutdown()
        except Exception as exc:  # best effort at exit
            print(f"bench: could not stop {key}: {exc}", file=sys.stderr)
        embedded._keep.pop(key, None)


__all__ = ["ADMIN_KEY", "Server", "start_baseline", "start_convect", "stop_embedded"]


def run_alone(name: str, bench: Callable[[str, str, Path], list[str]]) -> None:
    """Run `bench(database_url, redis_url, data_dir)` on embedded services of its own in a
    fresh folder, print its report lines, then stop the services and remove the folder."""
    from app import embedded
    from app.settings import Settings

    data_dir = Path(tempfile.mkdtemp(prefix=f"convect-bench-{name}-"))
    data_dir.chmod(0o755)
    try:
        settings = embedded.resolve(Settings(data_dir=str(data_dir)))
        assert settings.database_url and settings.redis_url
        for line in bench(settings.database_url, settings.redis_url, data_dir):
            print(line)
    finally:
        stop_embedded()
        shutil.rmtree(data_dir, ignore_errors=True)
