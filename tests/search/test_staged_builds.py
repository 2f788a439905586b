"""Staged indexes are built in the background: deploy returns at once, a builder (any
process, once) builds them, their state is recorded, and enabling a built one is instant.

A build is made observably slow by holding an old snapshot open: CREATE INDEX
CONCURRENTLY waits for every transaction whose snapshot predates it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from app.compose import build_engine
from app.db import index_builds
from app.db.catalog import Catalog
from app.db.index_builder import IndexBuilder
from app.db.query import IndexStagedError
from app.db.vector import vector_search
from app.engine import Role
from app.engine.registry import load_registry
from app.schema import SchemaDefinition, define_schema, define_table
from app.settings import Settings
from app.values import v
from tests.search.conftest import CURSOR_SECRET, Store, deploy
from tests.support.apps import write_app
from tests.support.servers import create_database

BY_SHELF = "books__by_shelf"
SEARCH = "books__search_title"


def schema(staged: bool | None) -> SchemaDefinition:
    """`books`; with `staged` not None, an index and a search index staged or enabled."""
    table = define_table({"title": v.string(), "shelf": v.string()})
    if staged is not None:
        table = table.index("by_shelf", {"fields": ["shelf"], "staged": staged}).search_index(
            "search_title", {"searchField": "title", "staged": staged}
        )
    return define_schema({"books": table})


@pytest.fixture
async def books(services: dict[str, str]) -> AsyncIterator[Store]:
    """A migrated database with 2,000 books and no index on them yet."""
    url = await create_database(services["database_url"], "staged_builds")
    pool = await asyncpg.create_pool(url, min_size=1, max_size=6)
    assert pool is not None
    try:
        store = Store(url, pool, Catalog(pool, None, cursor_secret=CURSOR_SECRET))
        await use(store, schema(None))
        docs = [{"title": f"book {i}", "shelf": f"s{i % 7}"} for i in range(2000)]
        await store.bulk_insert("books", docs, 1_000.0)
        yield store
    finally:
        await pool.close()


async def use(store: Store, definition: SchemaDefinition) -> Any:
    """Deploy `definition` and run the store with it."""
    report = await deploy(store.url, definition)
    store.catalog = Catalog(store.pool, definition, cursor_secret=CURSOR_SECRET)
    await store.catalog.load()
    return report


class OldSnapshot:
    """An open REPEATABLE READ transaction: concurrent index builds wait for it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> OldSnapshot:
        self.conn = await asyncpg.connect(self.url)
        await self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        await self.conn.fetchval("SELECT 1")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()

    async def release(self) -> None:
        """End the transaction: waiting builds go on."""
        if self.conn is not None:
            await self.conn.close()
            self.conn = None


async def state_of(store: Store) -> dict[str, tuple[str, int]]:
    """(state, attempts) of every staged index by PostgreSQL name."""
    return {s.name: (s.state, s.attempts) for s in await index_builds.states(store.pool)}


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 60.0) -> None:
    """Wait until `check()` holds."""
    end = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > end:
            raise AssertionError("timed out")

        await asyncio.sleep(0.05)


async def validity(store: Store, name: str) -> bool | None:
    """Whether index `name` is valid; None when it does not exist."""
    found: bool | None = await store.pool.fetchval(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = $1",
        name,
    )
    return found


def builder(store: Store) -> IndexBuilder:
    """A background builder like the one every serve/dev/worker process runs."""
    return IndexBuilder(lambda: store.pool, lambda: store.url, poll_s=0.05)


async def by_shelf(store: Store) -> list[Any]:
    """Books of shelf s3 through the staged index."""
    result: list[Any] = await store.query(
        lambda db: db.query("books").with_index("by_shelf", lambda q: q.eq("shelf", "s3")).collect()
    )
    return result


async def test_deploy_returns_before_a_slow_staged_build_and_enabling_it_is_instant(
    books: Store,
) -> None:
    async with OldSnapshot(books.url) as held:
        started = time.monotonic()
        report = await use(books, schema(True))
        assert time.monotonic() - started < 10
        assert report.created_indexes == []
        assert report.staged == [
            "staged index books.by_shelf: backfilling in the background",
            "staged index books.search_title: backfilling in the background",
        ]
        assert await state_of(books) == {BY_SHELF: ("backfilling", 0), SEARCH: ("backfilling", 0)}
        with pytest.raises(IndexStagedError, match="is currently staged and not available"):
            await by_shelf(books)

        part = builder(books)
        await part.start()
        try:

            async def claimed() -> bool:
                return (await state_of(books))[BY_SHELF][1] == 1

            await until(claimed)
            await asyncio.sleep(0.5)  # the build waits for the old snapshot
            assert (await state_of(books))[BY_SHELF] == ("backfilling", 1)
            assert await validity(books, BY_SHELF) is False
            again = await use(books, schema(True))  # a redeploy leaves the build alone
            assert again.changes() == []
            await held.release()

            async def both_built() -> bool:
                return {s for s, _ in (await state_of(books)).values()} == {"backfilled"}

            await until(both_built)
        finally:
            await part.stop()
    assert await state_of(books) == {BY_SHELF: ("backfilled", 1), SEARCH: ("backfilled", 1)}
    assert await validity(books, BY_SHELF) is True and await validity(books, SEARCH) is True
    with pytest.raises(IndexStagedError):  # built, still staged
        await by_shelf(books)
    shown = await use(books, schema(True))
    assert shown.staged[0].startswith("staged index books.by_shelf: built;")

    started = time.monotonic()
    enabled = await use(books, schema(False))
    assert time.monotonic() - started < 5
    assert enabled.enabled_indexes == ["books.by_shelf", "books.search_title"]
    assert enabled.created_indexes == [] and enabled.dropped_indexes == []
    assert await state_of(books) == {}
    assert len(await by_shelf(books)) == 2000 // 7 + 1


async def test_a_build_stopped_by_a_restart_is_dropped_and_built_again(books: Store) -> None:
    async with OldSnapshot(books.url) as held:
        await use(books, schema(True))
        first = builder(books)
        await first.start()

        async def building() -> bool:  # the key column is filled; the index build waits
            return await validity(books, BY_SHELF) is False

        await until(building)
        await first.stop()  # the process stops mid-build
        assert (await state_of(books))[BY_SHELF] == ("backfilling", 1)
        assert await validity(books, BY_SHELF) is False  # the half-built index is left
        await held.release()
    second = builder(books)
    await second.start()
    try:

        async def built() -> bool:
            return (await state_of(books)).get(BY_SHELF, ("", 0))[0] == "backfilled"

        await until(built)
    finally:
        await second.stop()
    assert (await state_of(books))[BY_SHELF] == ("backfilled", 2)
    assert await validity(books, BY_SHELF) is True


async def test_a_build_whose_session_dies_is_built_again(books: Store) -> None:
    # As when the builder's process is killed: PostgreSQL ends its session, lock and all.
    part = builder(books)
    async with OldSnapshot(books.url) as held:
        await use(books, schema(True))
        await part.start()
        try:

            async def claimed() -> bool:
                return (await state_of(books))[BY_SHELF][1] == 1

            await until(claimed)
            killed = await books.pool.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                "WHERE locktype = 'advisory' AND classid = $1::int::oid AND granted",
                index_builds.BUILD_LOCK,
            )
            assert killed == 1
            await held.release()

            async def built() -> bool:
                return {s for s, _ in (await state_of(books)).values()} == {"backfilled"}

            await until(built)
        finally:
            await part.stop()
    assert (await state_of(books))[BY_SHELF] == ("backfilled", 2)
    assert await validity(books, BY_SHELF) is True


async def test_two_processes_build_a_staged_index_once(books: Store) -> None:
    parts = [builder(books), builder(books)]
    async with OldSnapshot(books.url) as held:
        await use(books, schema(True))
        for part in parts:
            await part.start()

        async def claimed() -> bool:
            return (await state_of(books))[BY_SHELF][1] == 1

        try:
            await until(claimed)
            await asyncio.sleep(0.5)
            # One build per table at a time (two would deadlock in PostgreSQL): the other
            # process leaves the table alone.
            assert await state_of(books) == {
                BY_SHELF: ("backfilling", 1),
                SEARCH: ("backfilling", 0),
            }
            await held.release()

            async def built() -> bool:
                return {s for s, _ in (await state_of(books)).values()} == {"backfilled"}

            await until(built)
        finally:
            for part in parts:
                await part.stop()
    assert await state_of(books) == {BY_SHELF: ("backfilled", 1), SEARCH: ("backfilled", 1)}
    assert sum(part.built for part in parts) == 2


async def test_enabling_an_index_being_built_waits_for_the_builder(books: Store) -> None:
    async with OldSnapshot(books.url) as held:
        await use(books, schema(True))
        part = builder(books)
        await part.start()
        try:

            async def claimed() -> bool:
                return (await state_of(books))[BY_SHELF][1] == 1

            await until(claimed)
            enabling = asyncio.create_task(use(books, schema(False)))
            await asyncio.sleep(0.5)
            assert not enabling.done()  # waits for the background build
            await held.release()
            report = await asyncio.wait_for(enabling, 60)
        finally:
            await part.stop()
    assert report.enabled_indexes == ["books.by_shelf", "books.search_title"]
    assert await state_of(books) == {}
    assert len(await by_shelf(books)) == 2000 // 7 + 1


async def test_enabling_with_no_builder_running_builds_in_the_deploy(books: Store) -> None:
    await use(books, schema(True))
    assert await validity(books, BY_SHELF) is None  # nobody built it
    said: list[str] = []
    report = await deploy(books.url, schema(False), say=said.append)
    books.catalog = Catalog(books.pool, schema(False), cursor_secret=CURSOR_SECRET)
    assert "building index books.by_shelf before enabling it (concurrently)" in said
    assert report.enabled_indexes == ["books.by_shelf", "books.search_title"]
    assert await state_of(books) == {} and await validity(books, BY_SHELF) is True
    assert len(await by_shelf(books)) == 2000 // 7 + 1


async def test_a_failed_build_is_recorded_and_a_redeploy_retries_it(books: Store) -> None:
    await use(books, schema(True))
    await books.pool.execute(  # a build that cannot succeed
        "UPDATE _convect_index_builds SET statement = "
        "'CREATE INDEX CONCURRENTLY \"books__by_shelf\" ON docs.books (no_such_column)' "
        "WHERE name = $1",
        BY_SHELF,
    )
    assert await builder(books).run_once() == 2
    failed = {s.name: s for s in await index_builds.states(books.pool)}[BY_SHELF]
    assert failed.state == "failed" and failed.error is not None
    assert "no_such_column" in failed.error
    assert await validity(books, BY_SHELF) is None
    report = await use(books, schema(True))
    assert "staged index books.by_shelf: backfilling in the background" in report.staged
    assert (await state_of(books))[BY_SHELF] == ("backfilling", 1)
    assert await builder(books).run_once() == 1
    assert (await state_of(books))[BY_SHELF] == ("backfilled", 2)


async def test_a_staged_index_dropped_from_the_schema_stops_its_build(books: Store) -> None:
    async with OldSnapshot(books.url):
        await use(books, schema(True))
        part = builder(books)
        await part.start()
        try:

            async def claimed() -> bool:
                return (await state_of(books))[BY_SHELF][1] == 1

            await until(claimed)
            report = await asyncio.wait_for(use(books, schema(None)), 30)  # cancels the build
        finally:
            await part.stop()
    assert await state_of(books) == {}
    assert await validity(books, BY_SHELF) is None
    assert BY_SHELF in report.dropped_indexes or await validity(books, BY_SHELF) is None


SCHEMA_PY = """
from app.schema import define_schema, define_table
from app.values import v

schema = define_schema({
    "books": define_table({"title": v.string(), "shelf": v.string()})
    .index("by_shelf", {"fields": ["shelf"], "staged": True}),
})
"""


@pytest.mark.parametrize("role", ["serve", "dev", "worker", "cli"])
async def test_serve_dev_and_worker_engines_build_staged_indexes_and_cli_does_not(
    books: Store, services: dict[str, str], tmp_path: Path, role: Role
) -> None:
    folder = write_app(tmp_path / "app", {"schema.py": SCHEMA_PY})
    registry = load_registry(folder)
    await deploy(books.url, registry.schema)
    settings = Settings(
        database_url=books.url,
        redis_url=services["redis_url"],
        functions=str(folder),
        data_dir=str(tmp_path / "data"),
        index_build_poll=0.05,
        live_queries=False,
    )
    async with build_engine(settings, registry, role):
        if role == "cli":
            await asyncio.sleep(0.5)
            assert await state_of(books) == {BY_SHELF: ("backfilling", 0)}
            return

        async def built() -> bool:
            return await state_of(books) == {BY_SHELF: ("backfilled", 1)}

        await until(built)


async def test_a_staged_vector_index_is_built_in_the_background_then_enabled(
    books: Store,
) -> None:
    def with_vectors(staged: bool) -> SchemaDefinition:
        table = define_table({"title": v.string(), "shelf": v.string(), "emb": v.any()})
        return define_schema(
            {
                "books": table.vector_index(
                    "by_emb", {"vectorField": "emb", "dimensions": 2, "staged": staged}
                )
            }
        )

    await books.pool.execute(
        "UPDATE docs.books SET doc = doc || jsonb_build_object('emb', "
        "jsonb_build_array(cos(creation_time), sin(creation_time)))"
    )
    report = await use(books, with_vectors(True))
    assert report.staged == ["staged index books.by_emb: backfilling in the background"]
    with pytest.raises(IndexStagedError, match=r"Index books\.by_emb is currently staged"):
        await vector_search(books.pool, books.catalog, "books", "by_emb", {"vector": [1.0, 0.0]})
    assert await builder(books).run_once() == 1
    assert await state_of(books) == {"books__by_emb": ("backfilled", 1)}
    enabled = await use(books, with_vectors(False))
    assert enabled.enabled_indexes == ["books.by_emb"] and enabled.created_indexes == []
    found = await vector_search(
        books.pool, books.catalog, "books", "by_emb", {"vector": [1.0, 0.0], "limit": 3}
    )
    assert len(found) == 3
