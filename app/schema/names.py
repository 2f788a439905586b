"""Table names: what a schema may call a table, and Convex's system tables."""

from __future__ import annotations

import re

_TABLE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
SYSTEM_TABLES = frozenset({"_storage", "_scheduled_functions"})


def check_table_name(table: object, *, allow_system: bool = False) -> str:
    """Return `table` if it is a valid table name, else raise ValueError."""
    if allow_system and table in SYSTEM_TABLES:
        return str(table)
    if not isinstance(table, str) or not _TABLE_RE.match(table):
        raise ValueError(
            f"Invalid table name {table!r}: table names start with a letter and contain "
            "only letters, digits and underscores (at most 63 characters)."
        )
    return table


def is_system_table(table: str) -> bool:
    """True for Convex's system tables (`_storage`, `_scheduled_functions`)."""
    return table in SYSTEM_TABLES
