"""Deploying search and vector indexes: backfill, rebuild on change, refusal, first insert."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from app.db.catalog import Catalog
from app.db.deploy import SchemaRefused
from app.db.vector import vector_search
from app.schema import SchemaDefinition, define_schema, define_table
from app.values import v
from tests.search.conftest import CURSOR_SECRET, Store, deploy
from tests.support.servers import create_database


def schema_with(vector: dict[str, Any] | None, search: str | None) -> SchemaDefinition:
    """A `books` table, with or without a vector index and a search index."""
    table = define_table(
        {"title": v.string(), "blurb": v.string(), "shelf": v.string(), "emb": v.any()}
    )
    if vector is not None:
        table = table.vector_index("by_emb", vector_field="emb", filter_fields=["shelf"], **vector)
    if search is not None:
        table = table.search_index("by_text", search_field=search, filter_fields=["shelf"])
    return define_schema({"books": table})


@pytest.fixture
async def fresh(services: dict[str, str]) -> AsyncIterator[Store]:
    """An empty, migrated database with no schema pushed yet."""
    url = await create_database(services["database_url"], "search_deploy")
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    assert pool is not None
    try:
        yield Store(url, pool, Catalog(pool, None, cursor_secret=CURSOR_SECRET))
    finally:
        await pool.close()


async def use(store: Store, schema: SchemaDefinition, **kw: Any) -> Any:
    """Deploy `schema` and run the store with it."""
    report = await deploy(store.url, schema, **kw)
    store.catalog = Catalog(store.pool, schema, cursor_secret=CURSOR_SECRET)
    await store.catalog.load()
    return report


async def titles_near(store: Store, vec: list[float], **query: Any) -> list[str]:
    """Titles of the nearest books."""
    found = await vector_search(
        store.pool, store.catalog, "books", "by_emb", {"vector": vec, **query}
    )

    async def get(db: Any) -> list[str]:
        return [(await db.get(r["_id"]))["title"] for r in found]

    return await store.query(get)


async def search_titles(store: Store, text: str) -> list[str]:
    """Titles of the books a full-text search finds."""
    docs = await store.query(
        lambda db: (
            db.query("books")
            .with_search_index("by_text", lambda q: q.search("blurb", text))
            .collect()
        )
    )
    return [d["title"] for d in docs]


BOOKS = [
    {"title": "north", "blurb": "cold winds", "shelf": "a", "emb": [1.0, 0.0, 0.0]},
    {"title": "east", "blurb": "rising sun", "shelf": "b", "emb": [0.0, 1.0, 0.0]},
    {"title": "up", "blurb": "cold sky", "shelf": "a", "emb": [0.0, 0.0, 1.0]},
]


async def test_deploy_backfills_new_indexes_and_rebuilds_changed_ones(fresh: Store) -> None:
    await use(fresh, schema_with(None, None))

    async def add(db: Any) -> None:
        for b in BOOKS:
            await db.insert("books", b)

    await fresh.write(add)
    report = await use(fresh, schema_with({"dimensions": 3}, "blurb"))
    assert {"books.by_emb (vector)", "books.by_text (search)"} <= set(report.created_indexes)
    assert await titles_near(fresh, [0.9, 0.1, 0.0], limit=2) == ["north", "east"]
    assert await titles_near(fresh, [0.9, 0.1, 0.0], filter=lambda q: q.eq("shelf", "a")) == [
        "north",
        "up",
    ]
    assert sorted(await search_titles(fresh, "cold")) == ["north", "up"]
    # A new document is indexed on write; a second deploy changes nothing.
    await fresh.write(
        lambda db: db.insert(
            "books", {"title": "west", "blurb": "setting", "shelf": "b", "emb": [-1.0, 0, 0]}
        )
    )
    again = await use(fresh, schema_with({"dimensions": 3}, "blurb"))
    assert again.lines() == ["schema up to date"]
    assert (await titles_near(fresh, [-1.0, 0.0, 0.0], limit=1)) == ["west"]
    # The search field changes: the tsvector column is rebuilt from the new field.
    await use(fresh, schema_with({"dimensions": 3}, "title"))
    docs = await fresh.query(
        lambda db: (
            db.query("books")
            .with_search_index("by_text", lambda q: q.search("title", "nor"))
            .collect()
        )
    )
    assert [d["title"] for d in docs] == ["north"]
    # Dropping the indexes drops their columns and indexes.
    dropped = await use(fresh, schema_with(None, None))
    assert {"books.vec__by_emb", "books.ts__by_text"} <= set(dropped.dropped_indexes)


async def test_deploy_refuses_documents_whose_vectors_do_not_fit(fresh: Store) -> None:
    await use(fresh, schema_with(None, None))

    async def add(db: Any) -> None:
        for b in BOOKS:
            await db.insert("books", b)
        await db.insert("books", {"title": "bad", "blurb": "", "shelf": "a", "emb": [1.0, 2.0]})

    await fresh.write(add)
    with pytest.raises(SchemaRefused, match="must have 3 dimensions"):
        await use(fresh, schema_with({"dimensions": 3}, None))
    async with fresh.pool.acquire() as conn:
        columns = await conn.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'docs.books'::regclass "
            "AND attname LIKE 'vec%'"
        )
    assert columns == []
    await use(fresh, schema_with({"dimensions": 3}, None), force=True)
    assert sorted(await titles_near(fresh, [1.0, 1.0, 1.0])) == ["east", "north", "up"]


async def test_a_table_created_by_its_first_insert_gets_its_derived_columns(
    fresh: Store,
) -> None:
    schema = schema_with({"dimensions": 3}, "blurb")
    fresh.catalog = Catalog(fresh.pool, schema, cursor_secret=CURSOR_SECRET)
    await fresh.catalog.load()
    await fresh.write(lambda db: db.insert("books", BOOKS[0]))
    assert await titles_near(fresh, [1.0, 0.0, 0.0]) == ["north"]
    assert await search_titles(fresh, "wind") == ["north"]
