"""Search and pagination tests run the document layer in-process on a database of their own.

`store` gives a deployed schema (vector, search and plain indexes) on emptied tables, a
catalog, and helpers that run a reader or writer in a real transaction, as the runtime
does for queries and mutations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import orjson
import pytest

from app.db.catalog import Catalog
from app.db.database import DatabaseReader, DatabaseWriter
from app.db.deploy import push_schema
from app.db.transaction import Tx
from app.schema import SchemaDefinition, define_schema, define_table
from app.values import v
from tests.support.servers import create_database

T = TypeVar("T")
DIMS = 16
CURSOR_SECRET = "search-tests"  # the deployment secret pagination cursors are signed with

SCHEMA = define_schema(
    {
        "vecs": define_table(
            {
                "label": v.string(),
                "cat": v.string(),
                "emb": v.optional(v.array(v.float64())),
            }
        ).vector_index("by_emb", vector_field="emb", dimensions=DIMS, filter_fields=["cat"]),
        "notes": define_table(
            {"body": v.string(), "author": v.string(), "n": v.optional(v.number())}
        ).search_index("search_body", search_field="body", filter_fields=["author"]),
        "pages": define_table().index("by_n", ["n"]).index("by_group_n", ["group", "n"]),
    }
)


@dataclass
class Store:
    """A deployed database and ways to run readers and writers on it."""

    url: str
    pool: asyncpg.Pool
    catalog: Catalog

    async def write(self, fn: Callable[[DatabaseWriter], Awaitable[T]]) -> T:
        """Run `fn` in a SERIALIZABLE transaction, as a mutation."""
        async with self.pool.acquire() as conn, conn.transaction(isolation="serializable"):
            tx = Tx(conn, writable=True)
            value = await fn(DatabaseWriter(tx, self.catalog))
            await tx.flush()  # the held-back writes (the executor sends them with its log row)
            return value

    async def read(self, fn: Callable[[DatabaseReader], Awaitable[T]]) -> tuple[T, Tx]:
        """Run `fn` in a REPEATABLE READ read-only transaction, as a query; also its Tx."""
        async with (
            self.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            tx = Tx(conn, writable=False)
            return await fn(DatabaseReader(tx, self.catalog)), tx

    async def query(self, fn: Callable[[DatabaseReader], Awaitable[T]]) -> T:
        """Run `fn` as a query and return its value."""
        value, _ = await self.read(fn)
        return value

    async def bulk_insert(self, table: str, docs: list[dict[str, Any]], start: float) -> list[str]:
        """Insert plain documents straight into the table (fast); return their ids."""
        from app.db import ids

        await self.catalog.ensure(table)
        rows = []
        for i, doc in enumerate(docs):
            doc_id = ids.new_id(table)
            full = {**doc, "_id": doc_id, "_creationTime": start + i}
            rows.append((doc_id, start + i, orjson.dumps(full).decode()))
        async with self.pool.acquire() as conn:
            await conn.executemany(
                f'INSERT INTO docs."{table}" (id, creation_time, doc) VALUES ($1, $2, $3::jsonb)',
                rows,
            )
            await conn.execute(f'ANALYZE docs."{table}"')
        return [r[0] for r in rows]


async def deploy(url: str, schema: SchemaDefinition, **kw: Any) -> Any:
    """Push a schema as `convect deploy` does."""
    return await push_schema(url, schema, **kw)


@pytest.fixture(scope="session")
async def search_db(services: dict[str, str]) -> AsyncIterator[Store]:
    """The search tests' database, migrated and deployed, with a pool."""
    url = await create_database(services["database_url"], "search")
    await deploy(url, SCHEMA)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=8)
    assert pool is not None
    catalog = Catalog(pool, SCHEMA, cursor_secret=CURSOR_SECRET)
    await catalog.load()
    try:
        yield Store(url, pool, catalog)
    finally:
        await pool.close()


@pytest.fixture
async def store(search_db: Store) -> Store:
    """The search database with its document tables emptied."""
    await search_db.catalog.load()
    async with search_db.pool.acquire() as conn:
        for table in search_db.catalog.tables():
            await conn.execute(f'TRUNCATE docs."{table}"')
    return search_db
