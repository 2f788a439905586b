"""A key column a deploy adds to a table that holds documents is filled by a trigger and
backfilled in batches (app.db.key_fill), never by rewriting the table: the table keeps
its file (`pg_class.relfilenode` changes on a rewrite), its readers and writers never
queue behind the deploy for long, and the index built on it is right for documents
written before, during and after the backfill.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest

from app.db import key_fill
from app.db.catalog import Catalog
from app.db.database import DatabaseWriter
from app.db.index_builder import IndexBuilder
from app.db.query import IndexStagedError
from app.schema import SchemaDefinition, define_schema, define_table
from app.values import v
from tests.search.conftest import CURSOR_SECRET, Store, deploy
from tests.search.test_staged_builds import state_of, until, use, validity
from tests.support.servers import create_database

BY_SHELF = "books__by_shelf"
COLUMN = "k:shelf"
ROWS = 3000
SHELF = v.optional(v.union(v.string(), v.number(), v.null()))


def schema(staged: bool | None, *, table: bool = True) -> SchemaDefinition:
    """`books` (`shelf` may be missing, null, a string or a number); with `staged` not
    None, an index on `shelf`, staged or enabled."""
    if not table:
        return define_schema({"other": define_table({"x": v.number()})})
    books = define_table({"title": v.string(), "shelf": SHELF})
    if staged is not None:
        books = books.index("by_shelf", {"fields": ["shelf"], "staged": staged})
    return define_schema({"books": books})


def shelf_of(i: int) -> dict[str, Any]:
    """A document's `shelf`: missing, null, a number or a string."""
    kind = i % 5
    if kind == 0:
        return {}
    if kind == 1:
        return {"shelf": None}
    if kind == 2:
        return {"shelf": float(i % 11)}
    return {"shelf": f"s{i % 7}"}


@pytest.fixture
async def books(services: dict[str, str]) -> AsyncIterator[Store]:
    """A migrated database with 3,000 books and no index (nor key column) on `shelf`."""
    url = await create_database(services["database_url"], "key_backfill")
    pool = await asyncpg.create_pool(url, min_size=1, max_size=8)
    assert pool is not None
    try:
        store = Store(url, pool, Catalog(pool, None, cursor_secret=CURSOR_SECRET))
        await use(store, schema(None))
        docs = [{"title": f"book {i}", **shelf_of(i)} for i in range(ROWS)]
        await store.bulk_insert("books", docs, 1_000.0)
        yield store
    finally:
        await pool.close()


async def filenode(store: Store) -> int:
    """The table's file: a rewrite gives it a new one."""
    node: int = await store.pool.fetchval(
        "SELECT relfilenode FROM pg_class WHERE oid = 'docs.books'::regclass"
    )
    return node


async def column_kind(store: Store) -> tuple[str, bool] | None:
    """(attgenerated, has its trigger) of the key column; None when it does not exist."""
    row = await store.pool.fetchrow(
        "SELECT a.attgenerated::text AS gen, EXISTS (SELECT 1 FROM pg_trigger t "
        "WHERE t.tgrelid = a.attrelid AND t.tgname = a.attname) AS trig FROM pg_attribute a "
        "WHERE a.attrelid = 'docs.books'::regclass AND a.attname = $1 AND NOT a.attisdropped",
        COLUMN,
    )
    return None if row is None else (row["gen"], row["trig"])


async def fill_functions(store: Store) -> int:
    """How many key-column trigger functions exist."""
    found: int = await store.pool.fetchval(
        "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'docs' AND p.proname LIKE '%k:%'"
    )
    return found


async def stale_keys(store: Store) -> int:
    """Rows whose key column differs from what a generated column would hold."""
    found: int = await store.pool.fetchval(
        f'SELECT count(*) FROM docs.books WHERE "{COLUMN}" IS DISTINCT FROM '
        "convect_sort_key(doc -> 'shelf')"
    )
    return found


async def in_index_order(store: Store) -> list[str]:
    """Every book's id as the enabled index lists them."""
    found: list[Any] = await store.query(
        lambda db: db.query("books").with_index("by_shelf").collect()
    )
    return [d["_id"] for d in found]


async def expected_order(store: Store) -> list[str]:
    """Every book's id in index order, computed from the documents themselves."""
    rows = await store.pool.fetch(
        "SELECT id FROM docs.books ORDER BY convect_sort_key(doc -> 'shelf') NULLS FIRST, "
        "creation_time, id"
    )
    return [r["id"] for r in rows]


async def check_index(store: Store) -> None:
    """The enabled index lists every book, in order, and finds a shelf's books."""
    assert await stale_keys(store) == 0
    assert await in_index_order(store) == await expected_order(store)
    on_s3: list[Any] = await store.query(
        lambda db: db.query("books").with_index("by_shelf", lambda q: q.eq("shelf", "s3")).collect()
    )
    want = await store.pool.fetchval(
        "SELECT count(*) FROM docs.books WHERE doc -> 'shelf' = '\"s3\"'::jsonb"
    )
    assert len(on_s3) == want > 0 and all(d["shelf"] == "s3" for d in on_s3)
    nulls: list[Any] = await store.query(
        lambda db: db.query("books").with_index("by_shelf", lambda q: q.eq("shelf", None)).collect()
    )
    assert nulls and all("shelf" in d and d["shelf"] is None for d in nulls)


async def write(store: Store, fn: Any) -> None:
    """Run a mutation, retrying it on a serialization failure as the executor does."""
    while True:
        try:
            await store.write(fn)
            return
        except asyncpg.TransactionRollbackError:
            await asyncio.sleep(0.001)


async def some_writes(store: Store, rng: random.Random, ids_: list[str], n: int) -> None:
    """`n` mutations: patches of the shelf (to every kind of value, or removed), inserts
    and deletes."""
    for _ in range(n):
        what = rng.random()
        if what < 0.6 and ids_:
            doc_id = rng.choice(ids_)
            value = shelf_of(rng.randrange(1000)).get("shelf", None)
            if rng.random() < 0.2:

                async def unset(db: DatabaseWriter, doc_id: str = doc_id) -> None:
                    doc = await db.get(doc_id)
                    if doc is not None:
                        rest = {k: x for k, x in doc.items() if k not in ("_id", "_creationTime")}
                        rest.pop("shelf", None)
                        await db.replace(doc_id, rest)

                await write(store, unset)
            else:

                async def patch(
                    db: DatabaseWriter, doc_id: str = doc_id, value: Any = value
                ) -> None:
                    if await db.get(doc_id) is not None:
                        await db.patch(doc_id, {"shelf": value})

                await write(store, patch)
        elif what < 0.9:
            doc = {"title": "new", **shelf_of(rng.randrange(1000))}

            async def insert(db: DatabaseWriter, doc: dict[str, Any] = doc) -> None:
                ids_.append(await db.insert("books", doc))

            await write(store, insert)
        elif ids_:
            doc_id = ids_.pop(rng.randrange(len(ids_)))

            async def delete(db: DatabaseWriter, doc_id: str = doc_id) -> None:
                if await db.get(doc_id) is not None:
                    await db.delete(doc_id)

            await write(store, delete)


async def backfill_row(store: Store) -> asyncpg.Record | None:
    """The key column's backfill progress, None once it is filled."""
    row: asyncpg.Record | None = await store.pool.fetchrow(
        f"SELECT after, filled FROM {key_fill.TABLE} WHERE table_name = 'books' "
        "AND column_name = $1",
        COLUMN,
    )
    return row


async def test_deploying_a_staged_index_on_a_new_field_does_not_rewrite_the_table(
    books: Store,
) -> None:
    before = await filenode(books)
    said: list[str] = []
    report = await deploy(books.url, schema(True), say=said.append)
    assert await filenode(books) == before  # no rewrite
    assert report.staged == ["staged index books.by_shelf: backfilling in the background"]
    assert "adding key columns shelf to books (filled by a trigger)" in said
    assert await column_kind(books) == ("", True)  # plain column, filled by its trigger
    row = await backfill_row(books)
    assert row is not None and row["after"] is None  # nothing filled by the deploy
    assert await validity(books, BY_SHELF) is None
    # Written after the deploy: filled by the trigger at once.
    new_id = (await books.bulk_insert("books", [{"title": "late", "shelf": "s3"}], 9e9))[0]
    key = await books.pool.fetchval(f'SELECT "{COLUMN}" FROM docs.books WHERE id = $1', new_id)
    assert orjson.loads(key) == "s3"


async def test_a_deploy_never_queues_the_tables_writers_behind_its_lock(books: Store) -> None:
    # A long transaction that read the table: the deploy's ALTER must wait for it. It
    # gives way rather than queue every later read and write of the table behind it.
    reader = await asyncpg.connect(books.url)
    try:
        await reader.execute("BEGIN")
        await reader.fetchval("SELECT count(*) FROM docs.books")
        said: list[str] = []
        deploying = asyncio.create_task(deploy(books.url, schema(True), say=said.append))

        async def waiting() -> bool:  # the deploy's ALTER waits (or waited) for the lock
            queued = await books.pool.fetchval(
                "SELECT count(*) FROM pg_locks WHERE relation = 'docs.books'::regclass "
                "AND mode = 'AccessExclusiveLock' AND NOT granted"
            )
            return queued > 0 or any(
                line.startswith("waiting for the transactions") for line in said
            )

        await until(waiting)
        started = time.monotonic()

        async def insert(db: DatabaseWriter) -> str:
            return await db.insert("books", {"title": "meanwhile", "shelf": "s1"})

        for _ in range(5):
            await asyncio.wait_for(books.write(insert), 3)
            await asyncio.sleep(0.1)
        assert time.monotonic() - started < 5
        assert not deploying.done()
        await reader.execute("COMMIT")
        report = await asyncio.wait_for(deploying, 30)
    finally:
        await reader.close()
    assert report.staged == ["staged index books.by_shelf: backfilling in the background"]
    assert await column_kind(books) == ("", True)


async def test_rows_written_before_during_and_after_the_backfill_are_indexed_in_order(
    books: Store,
) -> None:
    existing = [r["id"] for r in await books.pool.fetch("SELECT id FROM docs.books")]
    rng = random.Random(19)
    await use(books, schema(True))
    await some_writes(books, rng, existing, 30)  # before the backfill starts
    part = IndexBuilder(lambda: books.pool, lambda: books.url, poll_s=0.05, batch=10)
    during = 0
    await part.start()
    try:
        while True:
            row = await backfill_row(books)
            if row is None:
                break
            await some_writes(books, rng, existing, 1)
            after = await backfill_row(books)
            if row["after"] is not None and after is not None:
                during += 1  # began after the backfill started, ended before it ended

        async def built() -> bool:
            return await state_of(books) == {BY_SHELF: ("backfilled", 1)}

        await until(built)
    finally:
        await part.stop()
    assert during >= 10, during
    assert await validity(books, BY_SHELF) is True
    assert await stale_keys(books) == 0
    with pytest.raises(IndexStagedError):  # built, still staged
        await in_index_order(books)
    await some_writes(books, rng, existing, 30)  # after the build, before enabling
    report = await use(books, schema(False))
    assert report.enabled_indexes == ["books.by_shelf"] and report.created_indexes == []
    await some_writes(books, rng, existing, 30)  # after enabling
    await check_index(books)
    missing = await books.pool.fetchval("SELECT count(*) FROM docs.books WHERE NOT doc ? 'shelf'")
    assert missing > 0  # missing fields sort first, apart from null
    first = (await in_index_order(books))[:missing]
    assert await books.pool.fetchval(
        "SELECT bool_and(NOT doc ? 'shelf') FROM docs.books WHERE id = ANY($1::text[])", first
    )


async def test_a_stopped_backfill_resumes_where_it_stopped(books: Store) -> None:
    await use(books, schema(True))
    first = IndexBuilder(lambda: books.pool, lambda: books.url, poll_s=0.05, batch=5)
    await first.start()

    async def going() -> bool:
        row = await backfill_row(books)
        return row is not None and row["after"] is not None and row["filled"] >= 50

    await until(going)
    await first.stop()
    row = await backfill_row(books)
    assert row is not None and row["after"] is not None
    stopped_at, filled = row["after"], row["filled"]
    assert filled < ROWS
    assert (await state_of(books))[BY_SHELF] == ("backfilling", 1)
    # The rows up to the cursor are filled; the next claimer starts after them.
    async with books.pool.acquire() as conn:
        assert (
            await conn.fetchval(
                f'SELECT count(*) FROM docs.books WHERE id <= $1 AND "{COLUMN}" IS DISTINCT FROM '
                "convect_sort_key(doc -> 'shelf')",
                stopped_at,
            )
            == 0
        )
        changed = await key_fill.backfill(conn, "books")
    assert changed == await books.pool.fetchval(
        "SELECT count(*) FROM docs.books WHERE id > $1 AND doc ? 'shelf'", stopped_at
    )
    assert await backfill_row(books) is None and await stale_keys(books) == 0
    assert await IndexBuilder(lambda: books.pool, lambda: books.url).run_once() == 1
    await use(books, schema(False))
    await check_index(books)


async def test_enabling_a_staged_index_nobody_built_fills_its_column_in_the_deploy(
    books: Store,
) -> None:
    node = await filenode(books)
    await use(books, schema(True))
    said: list[str] = []
    report = await deploy(books.url, schema(False), say=said.append)
    books.catalog = Catalog(books.pool, schema(False), cursor_secret=CURSOR_SECRET)
    assert "filling key columns shelf of books (in batches; writes go on)" in said
    assert report.enabled_indexes == ["books.by_shelf"]
    assert await backfill_row(books) is None and await filenode(books) == node
    await check_index(books)


async def test_a_new_enabled_index_on_a_table_with_documents_fills_its_column_without_rewrite(
    books: Store,
) -> None:
    node = await filenode(books)
    report = await use(books, schema(False))
    assert report.created_indexes == ["books.by_shelf"]
    assert await filenode(books) == node
    assert await column_kind(books) == ("", True)
    assert await backfill_row(books) is None
    await check_index(books)


async def test_a_second_deploy_changes_nothing_and_dropping_the_index_drops_column_and_trigger(
    books: Store,
) -> None:
    await use(books, schema(True))
    node = await filenode(books)
    said: list[str] = []
    again = await deploy(books.url, schema(True), say=said.append)
    assert again.changes() == [] and not any("key column" in line for line in said)
    assert await column_kind(books) == ("", True) and await backfill_row(books) is not None
    assert await IndexBuilder(lambda: books.pool, lambda: books.url).run_once() == 1
    await use(books, schema(False))
    said.clear()
    again = await deploy(books.url, schema(False), say=said.append)
    assert again.unchanged and not any("key column" in line for line in said)
    assert await column_kind(books) == ("", True) and await filenode(books) == node
    assert await fill_functions(books) == 1

    dropped = await use(books, schema(None))
    assert dropped.dropped_indexes == [BY_SHELF]
    assert await column_kind(books) is None and await fill_functions(books) == 0
    assert (
        await books.pool.fetchval(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'docs.books'::regclass "
            "AND NOT tgisinternal"
        )
        == 0
    )
    await books.bulk_insert("books", [{"title": "after", "shelf": "s1"}], 9e9)  # writes work


async def test_dropping_a_table_drops_its_key_columns_functions(books: Store) -> None:
    await use(books, schema(True))
    assert await fill_functions(books) == 1 and await backfill_row(books) is not None
    report = await deploy(books.url, schema(None, table=False), force=True)
    assert report.dropped_tables == ["books"]
    assert await fill_functions(books) == 0 and await backfill_row(books) is None


async def test_an_update_that_keeps_a_trigger_filled_key_is_hot(books: Store) -> None:
    await use(books, schema(False))
    doc_id = await books.pool.fetchval(
        "SELECT id FROM docs.books WHERE doc -> 'shelf' = '\"s3\"'::jsonb LIMIT 1"
    )
    before = await books.pool.fetchval(
        "SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = 'docs.books'::regclass"
    )
    for n in range(20):

        async def retitle(db: DatabaseWriter, n: int = n) -> None:
            await db.patch(doc_id, {"title": f"retitled {n}"})

        await write(books, retitle)
    async with books.pool.acquire() as conn:
        await conn.execute("SELECT pg_stat_force_next_flush()")
        hot = await conn.fetchval(
            "SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = 'docs.books'::regclass"
        )
    assert hot - before >= 15  # the trigger sets the same key: no new index entries


async def test_downgrading_the_migration_drops_trigger_filled_columns(books: Store) -> None:
    from app.db import migrate

    await use(books, schema(True))
    await asyncio.to_thread(migrate.upgrade, books.url, "head")
    await asyncio.to_thread(migrate.downgrade, books.url, "0012")
    assert await column_kind(books) is None and await fill_functions(books) == 0
    await books.bulk_insert("books", [{"title": "meanwhile", "shelf": "s1"}], 9e9)
    await asyncio.to_thread(migrate.upgrade, books.url, "head")
    await use(books, schema(True))  # the deploy adds it back
    assert await column_kind(books) == ("", True) and await backfill_row(books) is not None


async def test_a_staged_index_dropped_before_its_column_is_filled_takes_the_column_along(
    books: Store,
) -> None:
    await use(books, schema(True))
    assert await backfill_row(books) is not None
    report = await use(books, schema(None))
    assert report.dropped_indexes == []  # never built
    assert await column_kind(books) is None and await fill_functions(books) == 0
    assert await backfill_row(books) is None and await state_of(books) == {}
