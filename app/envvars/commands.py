"""The bodies of `convect env list | get | set | remove`: straight to the database.

A change made here notifies every running process (`convect_env`), as a change through
`/api/update_environment_variables` (`npx convex env`) does: both see the same table.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from app import embedded
from app.envvars.store import EnvChange, EnvVarError, apply_changes, check_name, check_value
from app.envvars.store import read_all as read_all
from app.settings import Settings


class EnvCommandError(Exception):
    """`convect env` could not do what was asked; the message says why."""


async def _with_conn(settings: Settings, body: Any) -> Any:
    try:
        url = embedded.postgres_url(settings)
        conn = await asyncpg.connect(url)
    except Exception as exc:
        raise EnvCommandError(f"cannot reach the database: {exc}") from None
    try:
        exists = await conn.fetchval("SELECT to_regclass('_convect_env_vars') IS NOT NULL")
        if not exists:
            raise EnvCommandError(
                "this database has no environment-variable table yet: run `convect deploy`"
            )
        return await body(conn)
    except EnvVarError as exc:
        raise EnvCommandError(str(exc)) from None
    finally:
        await conn.close()


def env_list(settings: Settings) -> dict[str, str]:
    """Every stored variable."""
    return dict(asyncio.run(_with_conn(settings, read_all)))


def env_get(settings: Settings, name: str) -> str | None:
    """One stored variable, or None."""
    return env_list(settings).get(name)


def env_change(settings: Settings, name: str, value: str | None) -> None:
    """Set (or with None remove) one variable; every running process sees it in seconds."""
    try:
        check_name(name)
        if value is not None:
            check_value(name, value)
    except EnvVarError as exc:
        raise EnvCommandError(str(exc)) from None

    async def change(conn: asyncpg.Connection) -> None:
        await apply_changes(conn, [EnvChange(name, value)])

    asyncio.run(_with_conn(settings, change))


__all__ = ["EnvCommandError", "env_change", "env_get", "env_list"]
