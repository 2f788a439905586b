"""Which tables exist, their indexes, and creating a table on first insert."""

from __future__ import annotations

import asyncio
import functools

import asyncpg

from app.db import ids
from app.db.clock import CreationClock
from app.db.cursor import cursor_key
from app.db.query import BUILTIN_INDEXES, IndexStagedError, QueryDefinitionError
from app.db.search_schema import table_ddl
from app.db.sql import key_column_sql, table_ref
from app.schema import SchemaDefinition, TableDefinition


def key_fields(definition: TableDefinition | None, *, staged: bool = True) -> tuple[str, ...]:
    """Document fields a table keeps a key column for: every field of its indexes, and
    the filter fields of its search and vector indexes (without `staged`: of its enabled
    indexes only)."""
    fields: set[str] = set()
    if definition is not None:
        skip = set() if staged else definition.staged
        for name, index_fields in definition.indexes.items():
            if name not in skip:
                fields.update(index_fields)
        for name, s in definition.search_indexes.items():
            if name not in skip:
                fields.update(s.filter_fields)
        for name, vec in definition.vector_indexes.items():
            if name not in skip:
                fields.update(vec.filter_fields)
    fields.difference_update(("_creationTime", "_id"))
    return tuple(sorted(fields))


def create_table_sql(table: str, definition: TableDefinition | None = None) -> list[str]:
    """Statements that create a document table with its key columns and built-in index,
    and the derived columns and indexes of the definition's search and vector indexes."""
    ref = table_ref(table)
    keys = "".join(f", {key_column_sql(f)}" for f in key_fields(definition))
    return [
        f"CREATE TABLE IF NOT EXISTS {ref} ("
        "id text PRIMARY KEY, creation_time double precision NOT NULL, doc jsonb NOT NULL"
        f"{keys}) WITH (fillfactor = 80)",
        f'CREATE INDEX IF NOT EXISTS "{table}__by_creation_time" ON {ref} (creation_time, id)',
        *table_ddl(table, definition),
    ]


@functools.lru_cache(maxsize=1024)
def _ending_in_creation_time(fields: tuple[str, ...]) -> tuple[str, ...]:
    """An index's fields with the `_creationTime` tiebreak (one shared tuple per index:
    every read of the index keeps it in its read set)."""
    return fields if fields[-1] == "_creationTime" else (*fields, "_creationTime")


class Catalog:
    """The deployment's database state in this process: its tables, the schema the
    process runs with, the key pagination cursors are signed with (from the deployment's
    `cursor_secret`, the same in every process) and the clock of document creation times.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: SchemaDefinition | None,
        url: str | None = None,
        *,
        cursor_secret: str,
        clock: CreationClock | None = None,
    ) -> None:
        self.pool = pool
        self._schema = schema
        self.url = url  # for a connection of its own when creating tables
        self.cursor_key: bytes = cursor_key(cursor_secret)
        self.clock: CreationClock = clock if clock is not None else CreationClock()
        self._by_number: dict[int, str] = {}
        self._lock = asyncio.Lock()
        self._tracked: dict[str, tuple[str, ...]] = {}  # per table, for this schema

    @property
    def schema(self) -> SchemaDefinition | None:
        """The app's schema (replaced when dev mode reloads the code)."""
        return self._schema

    @schema.setter
    def schema(self, schema: SchemaDefinition | None) -> None:
        self._schema = schema
        self._tracked = {}

    async def load(self) -> None:
        """Read the list of existing tables."""
        rows = await self.pool.fetch("SELECT name, number FROM _convect_tables")
        self._by_number = {r["number"]: r["name"] for r in rows}

    def exists(self, table: str) -> bool:
        """True when the table has been created."""
        return self._by_number.get(ids.table_number(table)) == table

    def tables(self) -> list[str]:
        """Names of all existing tables (system tables included)."""
        return sorted(self._by_number.values())

    def table_of_id(self, value: object) -> str | None:
        """The existing table an id belongs to, from the cache only."""
        number = ids.id_number(value)
        if number is None:
            return None
        return self._by_number.get(number)

    async def resolve_id(self, value: object) -> str | None:
        """The table an id belongs to; reloads the table list once on a miss."""
        number = ids.id_number(value)
        if number is None:
            return None
        if number not in self._by_number:
            await self.load()
        return self._by_number.get(number)

    async def ensure(self, table: str) -> None:
        """Create `table` if it does not exist yet (in its own committed transaction)."""
        if self.exists(table):
            return
        async with self._lock:
            # The caller (a mutation) holds a pool connection already: with as many first
            # inserts at once as the pool has connections, taking another from the pool
            # would wait forever. Table creation is rare; it gets a connection of its own.
            conn = await asyncpg.connect(self.url) if self.url else await self.pool.acquire()
            try:
                rows = await conn.fetch("SELECT name, number FROM _convect_tables")
                self._by_number = {r["number"]: r["name"] for r in rows}
                if self.exists(table):
                    return
                number = ids.table_number(table)
                clash = self._by_number.get(number)
                if clash is not None and clash != table:
                    raise ValueError(f"Table name {table!r} clashes with {clash!r}; rename it")
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", number)
                    for stmt in create_table_sql(table, self.definition(table)):
                        await conn.execute(stmt)
                    await conn.execute(
                        "INSERT INTO _convect_tables (name, number) VALUES ($1, $2) "
                        "ON CONFLICT (name) DO NOTHING",
                        table,
                        number,
                    )
                self._by_number[number] = table
            finally:
                if self.url:
                    await conn.close()
                else:
                    await self.pool.release(conn)

    def definition(self, table: str) -> TableDefinition | None:
        """The schema's definition of `table`, if the app has a schema that names it."""
        if self.schema is None:
            return None
        return self.schema.tables.get(table)

    def index_fields(self, table: str, index: str) -> tuple[str, ...]:
        """The fields of an index (built-in or from the schema), or a clear error."""
        if index in BUILTIN_INDEXES:
            return BUILTIN_INDEXES[index]
        table_def = self.definition(table)
        if table_def is not None and index in table_def.indexes:
            if index in table_def.staged:
                raise IndexStagedError(table, index)
            return _ending_in_creation_time(table_def.indexes[index])
        raise QueryDefinitionError(f"Index {table}.{index} not found.")

    def tracked_fields(self, table: str) -> tuple[str, ...]:
        """Fields whose old and new values the commit log keeps (all indexed fields)."""
        found = self._tracked.get(table)
        if found is None:
            table_def = self.definition(table)
            fields = set(key_fields(table_def))
            if table_def is not None and any("_id" in f for f in table_def.indexes.values()):
                fields.add("_id")
            found = self._tracked[table] = tuple(sorted(fields))
        return found
