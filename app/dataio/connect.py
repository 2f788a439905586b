"""Reaching the database from a command: one clear line when it cannot be reached."""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit, urlunsplit

import asyncpg

CONNECT_TIMEOUT_S = 10.0


class DatabaseUnreachable(Exception):
    """The database cannot be reached (or refuses us); the message says what to check."""


def redact_url(url: str) -> str:
    """`url` without its password, fit to print."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        creds, host = netloc.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in creds else f"{user}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def explain(exc: BaseException) -> str:
    """A short reason for a failed connection."""
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return "the password was rejected"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return "that database does not exist (create it, or fix the name)"
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return f"the user was refused: {exc}"
    if isinstance(exc, socket.gaierror):
        return "unknown host name"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is PostgreSQL running there?)"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT_S:.0f} s"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


async def connect(url: str) -> asyncpg.Connection:
    """Open a connection, or raise DatabaseUnreachable with an actionable message."""
    try:
        return await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)
    except (
        OSError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        TimeoutError,
        ValueError,
    ) as exc:
        raise DatabaseUnreachable(
            f"cannot reach the database at {redact_url(url)}: {explain(exc)}. "
            "Check DATABASE_URL (unset it to use the embedded PostgreSQL)."
        ) from None


async def check_database(url: str) -> None:
    """Raise DatabaseUnreachable unless a connection to `url` can be opened."""
    conn = await connect(url)
    await conn.close()


class NotMigrated(Exception):
    """The database is reachable but holds no Convect deployment."""


async def require_migrated(conn: asyncpg.Connection) -> None:
    """Raise NotMigrated unless the database holds Convect's system tables."""
    if await conn.fetchval("SELECT to_regclass('public._convect_tables') IS NULL"):
        raise NotMigrated(
            "this database has no Convect tables yet: run `convect deploy` (or `convect dev`) first"
        )
