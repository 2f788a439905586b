"""The stored environment variables: validation, reads, and changes that notify every process.

Convex's rules: at most 100 variables, a name of at most 40 characters that starts with
a letter and holds letters, digits and underscores, a value of at most 8 KiB. Names
Convect reads for itself at start-up (`CONVECT_*`, `DATABASE_URL`, `REDIS_URL`) are
refused: a deployment variable could not change them anyway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import asyncpg

CHANNEL = "convect_env"
MAX_VARS = 100
MAX_NAME_CHARS = 40
MAX_VALUE_BYTES = 8 * 1024
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RESERVED = ("DATABASE_URL", "REDIS_URL")


class EnvVarError(ValueError):
    """A change that may not be made (bad name or value, too many variables)."""


@dataclass(frozen=True)
class EnvChange:
    """Set `name` to `value`, or remove it when `value` is None."""

    name: str
    value: str | None


def check_name(name: object) -> str:
    """`name` if it may name a deployment variable, else EnvVarError saying why."""
    if not isinstance(name, str) or not name:
        raise EnvVarError("An environment variable name must be a non-empty string")
    if len(name) > MAX_NAME_CHARS:
        raise EnvVarError(
            f"Environment variable name {name[:60]!r} is longer than {MAX_NAME_CHARS} characters"
        )
    if not _NAME_RE.match(name):
        raise EnvVarError(
            f"Environment variable name {name!r} must start with a letter and contain only "
            "letters, digits and underscores"
        )
    if name.startswith("CONVECT_") or name in _RESERVED:
        raise EnvVarError(
            f"{name} is a setting Convect reads at start-up; set it in the process "
            "environment instead"
        )
    return name


def check_value(name: str, value: object) -> str:
    """`value` if it may be stored for `name`, else EnvVarError."""
    if not isinstance(value, str):
        raise EnvVarError(f"The value of {name} must be a string")
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise EnvVarError(f"The value of {name} is larger than {MAX_VALUE_BYTES} bytes")
    if "\x00" in value:
        raise EnvVarError(f"The value of {name} contains a NUL character")
    return value


def parse_changes(body: Any) -> list[EnvChange]:
    """Convex's `{"changes": [{"name", "value": string | null}]}`, checked."""
    if not isinstance(body, dict) or not isinstance(body.get("changes"), list):
        raise EnvVarError('Expected {"changes": [{"name": ..., "value": ...}, ...]}')
    out: list[EnvChange] = []
    seen: set[str] = set()
    for item in body["changes"]:
        if not isinstance(item, dict) or set(item) - {"name", "value"}:
            raise EnvVarError('Each change is {"name": string, "value": string | null}')
        name = check_name(item.get("name"))
        if name in seen:
            raise EnvVarError(f"{name} appears twice in one update")
        seen.add(name)
        value = item.get("value")
        out.append(EnvChange(name, None if value is None else check_value(name, value)))
    return out


async def read_all(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, str]:
    """Every stored variable, by name."""
    rows = await conn.fetch("SELECT name, value FROM _convect_env_vars ORDER BY name")
    return {row["name"]: row["value"] for row in rows}


async def apply_changes(conn: asyncpg.Connection, changes: list[EnvChange]) -> None:
    """Make all `changes` in one transaction (or none) and notify every process."""
    async with conn.transaction():
        await conn.execute("LOCK TABLE _convect_env_vars IN SHARE ROW EXCLUSIVE MODE")
        for change in changes:
            if change.value is None:
                await conn.execute("DELETE FROM _convect_env_vars WHERE name = $1", change.name)
            else:
                await conn.execute(
                    "INSERT INTO _convect_env_vars (name, value) VALUES ($1, $2) "
                    "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
                    change.name,
                    change.value,
                )
        count = int(await conn.fetchval("SELECT count(*) FROM _convect_env_vars"))
        if count > MAX_VARS:
            raise EnvVarError(
                f"A deployment holds at most {MAX_VARS} environment variables "
                f"(this update would make {count})"
            )
        await conn.execute(f"NOTIFY {CHANNEL}")  # delivered at commit, to every listener


__all__ = [
    "CHANNEL",
    "EnvChange",
    "EnvVarError",
    "apply_changes",
    "check_name",
    "check_value",
    "parse_changes",
    "read_all",
]
