"""Stand-ins for asyncpg's pool and connection: just enough for the db layer's pure paths."""

from __future__ import annotations

from typing import Any, cast

from app.db import ids
from app.db.catalog import Catalog
from app.db.clock import CreationClock
from app.schema import SchemaDefinition


class FakePool:
    """A pool whose `_convect_tables` lists `tables` and that runs nothing else."""

    def __init__(self, tables: tuple[str, ...] = ()) -> None:
        self.tables = tables

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        assert "_convect_tables" in sql, sql
        return [{"name": t, "number": ids.table_number(t)} for t in self.tables]


class FakeConn:
    """A connection that records the statements it is sent and returns no rows."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    async def execute(self, sql: str, *args: Any) -> str:
        self.statements.append((sql, args))
        return "OK"

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        self.statements.append((sql, args))
        return []


def catalog(
    secret: str = "secret-a",
    *,
    tables: tuple[str, ...] = (),
    schema: SchemaDefinition | None = None,
    clock: CreationClock | None = None,
) -> Catalog:
    """A catalog over a fake pool (load() sees `tables`)."""
    pool = cast(Any, FakePool(tables))
    return Catalog(pool, schema, cursor_secret=secret, clock=clock)


def conn() -> Any:
    """A fake connection, typed loosely for `Tx(conn, ...)`."""
    return FakeConn()
