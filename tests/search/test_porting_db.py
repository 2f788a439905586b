"""The document layer's ported forms, in-process on a database of their own:
`get/patch/replace/delete(table, id, ...)`, `count()` and its read set, `maximumBytesRead`
pages, union-typed tables and staged indexes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from app.db import index_builds
from app.db.catalog import Catalog
from app.db.database import DatabaseReader, DatabaseWriter
from app.db.errors import DocumentError
from app.db.paginate import PaginationError
from app.db.query import IndexStagedError, QueryDefinitionError
from app.db.vector import vector_search
from app.schema import define_schema, define_table
from app.sync.matching import doc_in_range
from app.values import v
from tests.search.conftest import CURSOR_SECRET, Store, deploy
from tests.support.servers import create_database

TASK = v.object(
    {
        "project": v.string(),
        "done": v.boolean(),
        "title": v.string(),
        "assignee": v.nullable(v.string()),
        "emb": v.optional(v.array(v.float64())),
    }
)
SCHEMA = define_schema(
    {
        "tasks": define_table(TASK)
        .index("by_project_done", {"fields": ["project", "done"]})
        .index("by_assignee", {"fields": ["assignee"], "staged": True})
        .search_index("search_title", {"searchField": "title", "staged": True})
        .vector_index("by_emb", {"vectorField": "emb", "dimensions": 2, "staged": True}),
        "events": define_table(
            v.union(
                v.object({"kind": v.literal("comment"), "body": v.string()}),
                v.object({"kind": v.literal("status"), "done": v.boolean()}),
            )
        ).index("by_kind", ["kind"]),
    }
)


@pytest.fixture(scope="module")
async def porting_db(services: dict[str, str]) -> AsyncIterator[Store]:
    url = await create_database(services["database_url"], "porting_db")
    await deploy(url, SCHEMA)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    assert pool is not None
    catalog = Catalog(pool, SCHEMA, cursor_secret=CURSOR_SECRET)
    await catalog.load()
    try:
        yield Store(url, pool, catalog)
    finally:
        await pool.close()


@pytest.fixture
async def db(porting_db: Store) -> Store:
    async with porting_db.pool.acquire() as conn:
        for table in porting_db.catalog.tables():
            await conn.execute(f'TRUNCATE docs."{table}"')
    return porting_db


def task(title: str, project: str = "p", done: bool = False, **more: Any) -> dict[str, Any]:
    return {"project": project, "done": done, "title": title, "assignee": None, **more}


async def test_the_table_first_forms_read_and_write(db: Store) -> None:
    async def run(w: DatabaseWriter) -> dict[str, Any]:
        a = await w.insert("tasks", task("a"))
        got = await w.get("tasks", a)
        assert got is not None and got["title"] == "a"
        await w.patch("tasks", a, {"title": "a2", "assignee": "ana"})
        patched = await w.get(a)
        await w.replace("tasks", a, task("a3"))
        replaced = await w.get("tasks", a)
        b = await w.insert("tasks", task("b"))
        await w.delete("tasks", b)
        return {"patched": patched, "replaced": replaced, "gone": await w.get("tasks", b)}

    out = await db.write(run)
    assert (out["patched"]["title"], out["patched"]["assignee"]) == ("a2", "ana")
    assert (out["replaced"]["title"], out["replaced"]["assignee"]) == ("a3", None)
    assert out["gone"] is None


@pytest.mark.parametrize("op", ["get", "patch", "replace", "delete"])
async def test_an_id_of_another_table_is_refused_and_changes_nothing(db: Store, op: str) -> None:
    event = await db.write(lambda w: w.insert("events", {"kind": "comment", "body": "x"}))

    async def run(w: DatabaseWriter) -> None:
        if op in ("patch", "replace"):
            await getattr(w, op)("tasks", event, {"kind": "comment", "body": "changed"})
        else:
            await getattr(w, op)("tasks", event)

    with pytest.raises(DocumentError) as info:
        await db.write(run)
    assert str(info.value) == (
        f"Invalid argument `id` for `db.{op}`: the id {event} belongs to table 'events', "
        "not to table 'tasks'"
    )
    assert await db.query(lambda r: r.get("events", event)) == {
        "_id": event,
        "_creationTime": pytest.approx(0, abs=1e15),
        "kind": "comment",
        "body": "x",
    }


async def test_bad_arguments_to_the_two_forms_are_clear_errors(db: Store) -> None:
    a = await db.write(lambda w: w.insert("tasks", task("a")))
    with pytest.raises(TypeError, match=r"db.get takes \(id\) or \(table, id\), got 3"):
        await db.query(lambda r: r.get("tasks", a, "x"))
    with pytest.raises(TypeError, match=r"db.patch takes \(id, value\) or \(table, id, value\)"):
        await db.write(lambda w: w.patch(a))
    with pytest.raises(DocumentError, match="'nope' is not a valid document id"):
        await db.query(lambda r: r.get("tasks", "nope"))
    with pytest.raises(DocumentError, match=r"Use ctx\.db\.system"):
        await db.query(lambda r: r.get("_storage", a))
    with pytest.raises(ValueError, match="Invalid table name"):
        await db.query(lambda r: r.get("no such", a))


async def test_count_is_one_sql_count_with_the_whole_range_as_its_read_set(db: Store) -> None:
    async def seed(w: DatabaseWriter) -> None:
        for i in range(5):
            await w.insert("tasks", task(f"t{i}", done=i % 2 == 1, assignee="ana" if i else None))
        await w.insert("tasks", task("other", project="q"))

    await db.write(seed)

    def open_tasks(r: DatabaseReader) -> Any:
        return r.query("tasks").with_index(
            "by_project_done", lambda q: q.eq("project", "p").eq("done", False)
        )

    count, tx = await db.read(lambda r: open_tasks(r).count())
    assert count == 3
    [read] = tx.read_set.ranges
    assert read.last_key is None and read.range.eq == ("p", False)
    assert tx.reads == 0  # no document was fetched
    inside = {"_id": "x", "_creationTime": 1e15, "project": "p", "done": False}
    assert doc_in_range(inside, read, True)
    assert not doc_in_range({**inside, "done": True}, read, True)

    unassigned = await db.query(
        lambda r: open_tasks(r).filter(lambda q: q.eq(q.field("assignee"), None)).count()
    )
    assert unassigned == 1
    assert await db.query(lambda r: r.query("tasks").count()) == 6
    assert await db.query(lambda r: r.query("never_created").count()) == 0


async def test_maximum_bytes_read_ends_pages_early_as_convex_does(db: Store) -> None:
    async def seed(w: DatabaseWriter) -> None:
        for i in range(6):
            await w.insert("tasks", task(f"t{i}"))

    await db.write(seed)

    def page(opts: dict[str, Any]) -> Any:
        return db.read(
            lambda r: (
                r.query("tasks")
                .with_index("by_project_done", lambda q: q.eq("project", "p"))
                .paginate({"numItems": 100, "cursor": None, **opts})
            )
        )

    one_doc = len(b'{"_id": "x"}')  # less than any document: two documents a page
    first, tx = await page({"maximumBytesRead": 200})
    assert 1 <= len(first["page"]) < 6
    assert first["pageStatus"] == "SplitRequired" and first["isDone"] is False
    [read] = tx.read_set.ranges
    assert read.last_key is not None  # the page's range ends at its last document
    rest, _ = await page({"maximumBytesRead": 10**6, "cursor": first["continueCursor"]})
    assert [d["title"] for d in first["page"] + rest["page"]] == [f"t{i}" for i in range(6)]
    assert rest["isDone"] is True and rest["pageStatus"] is None
    # With an end cursor the page runs to it whatever the limit (as in Convex).
    whole, _ = await page({"endCursor": rest["continueCursor"], "maximumBytesRead": one_doc})
    assert len(whole["page"]) == 6 and whole["pageStatus"] is None
    for bad in (0, -1, "10", True, float("inf")):
        with pytest.raises(PaginationError, match="maximumBytesRead"):
            await page({"maximumBytesRead": bad})


async def test_a_union_typed_table_takes_either_variant_and_nothing_else(db: Store) -> None:
    await db.write(lambda w: w.insert("events", {"kind": "comment", "body": "b"}))
    await db.write(lambda w: w.insert("events", {"kind": "status", "done": True}))
    with pytest.raises(DocumentError, match="does not match the schema"):
        await db.write(lambda w: w.insert("events", {"kind": "status", "body": "b"}))
    statuses = await db.query(
        lambda r: (
            r.query("events").with_index("by_kind", lambda q: q.eq("kind", "status")).collect()
        )
    )
    assert [e["done"] for e in statuses] == [True]


async def test_staged_indexes_refuse_queries(db: Store) -> None:
    message = "is currently staged and not available to query until it is enabled."
    with pytest.raises(IndexStagedError, match=f"Index tasks.by_assignee {message}"):
        await db.query(
            lambda r: (
                r.query("tasks")
                .with_index("by_assignee", lambda q: q.eq("assignee", "a"))
                .collect()
            )
        )
    with pytest.raises(IndexStagedError, match=r"Index tasks\.search_title"):
        await db.query(
            lambda r: (
                r.query("tasks")
                .with_search_index("search_title", lambda q: q.search("title", "x"))
                .collect()
            )
        )
    with pytest.raises(IndexStagedError, match=r"Index tasks\.by_emb"):
        await vector_search(db.pool, db.catalog, "tasks", "by_emb", {"vector": [1.0, 0.0]})
    with pytest.raises(QueryDefinitionError, match=r"Index tasks\.nope not found"):
        await db.query(lambda r: r.query("tasks").with_index("nope").collect())
    # The deploy left the build to a background builder (tests/search/test_staged_builds.py).
    states = {(s.table, s.index): s.state for s in await index_builds.states(db.pool)}
    assert states[("tasks", "by_assignee")] == "backfilling"
