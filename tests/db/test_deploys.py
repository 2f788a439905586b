"""The deploy history: snapshots, what a deploy changed, and its table."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import orjson

from app.db import deploys
from app.schema import define_schema, define_table
from app.server import internal_mutation, query
from app.values import v
from tests.support.servers import create_database, empty_database


def _functions(**extra: Any) -> dict[str, Any]:
    @query(args={"author": v.string()})
    async def by_author(ctx: Any, args: Any) -> Any:
        """A query."""

    @internal_mutation(args={})
    async def tidy(ctx: Any, args: Any) -> None:
        """An internal mutation."""

    return {"messages:by_author": by_author, "messages:tidy": tidy, **extra}


def _schema(**tables: Any) -> Any:
    return define_schema(
        {
            "messages": define_table({"author": v.string(), "body": v.string()})
            .index("by_author", ["author"])
            .search_index("search_body", search_field="body", filter_fields=["author"]),
            **tables,
        }
    )


def test_a_first_deploy_adds_everything_it_has() -> None:
    changes = deploys.diff(None, deploys.snapshot(_schema(), _functions()))
    assert changes["tablesAdded"] == ["messages"]
    assert [(i["kind"], i["name"]) for i in changes["indexesAdded"]] == [
        ("index", "by_author"),
        ("search", "search_body"),
    ]
    assert [f["path"] for f in changes["functionsAdded"]] == ["messages:by_author", "messages:tidy"]
    assert changes["functionsAdded"][1] == {
        "path": "messages:tidy",
        "kind": "mutation",
        "visibility": "internal",
    }


def test_the_same_deployment_again_changes_nothing() -> None:
    snap = deploys.snapshot(_schema(), _functions())
    changes = deploys.diff(snap, deploys.snapshot(_schema(), _functions()))
    assert not deploys.changed(changes)
    assert deploys.lines(changes) == ["no changes to tables, indexes or function signatures"]


def test_tables_indexes_and_signatures_that_changed_are_named() -> None:
    before = deploys.snapshot(_schema(), _functions())
    docs = define_table({"text": v.string(), "embedding": v.array(v.float64())}).vector_index(
        "by_embedding", vector_field="embedding", dimensions=3
    )
    schema = define_schema(
        {
            "messages": define_table(
                {"author": v.string(), "body": v.string(), "likes": v.optional(v.number())}
            )
            .index("by_author", ["author", "likes"])
            .index("by_likes", ["likes"]),
            "documents": docs,
        }
    )

    @query(args={"author": v.string(), "limit": v.number()})
    async def by_author(ctx: Any, args: Any) -> Any:
        """A changed signature."""

    @query(args={}, returns=v.null())
    async def ping(ctx: Any, args: Any) -> None:
        """A new function."""

    after = deploys.snapshot(schema, {"messages:by_author": by_author, "messages:ping": ping})
    changes = deploys.diff(before, after)
    assert changes["tablesAdded"] == ["documents"]
    assert changes["tablesRemoved"] == []
    assert changes["tablesChanged"] == ["messages"]
    assert [(i["table"], i["kind"], i["name"]) for i in changes["indexesAdded"]] == [
        ("documents", "vector", "by_embedding"),
        ("messages", "index", "by_likes"),
    ]
    assert [(i["kind"], i["name"]) for i in changes["indexesRemoved"]] == [
        ("search", "search_body")
    ]
    assert changes["indexesChanged"] == [
        {
            "table": "messages",
            "kind": "index",
            "name": "by_author",
            "fields": ["author", "likes"],
            "before": {"fields": ["author"]},
        }
    ]
    assert changes["functionsAdded"] == [
        {"path": "messages:ping", "kind": "query", "visibility": "public"}
    ]
    assert changes["functionsRemoved"] == [
        {"path": "messages:tidy", "kind": "mutation", "visibility": "internal"}
    ]
    assert changes["functionsChanged"] == [{"path": "messages:by_author", "changed": ["args"]}]
    text = deploys.lines(changes)
    assert "added vector index documents.by_embedding (embedding)" in text
    assert "changed index messages.by_author (author, likes)" in text
    assert "changed args of messages:by_author" in text
    assert "removed search index messages.search_body (body)" in text


def test_a_removed_table_and_a_schema_dropped_altogether_are_named() -> None:
    before = deploys.snapshot(_schema(other=define_table({"x": v.number()})), {})
    assert deploys.diff(before, deploys.snapshot(_schema(), {}))["tablesRemoved"] == ["other"]
    gone = deploys.diff(before, deploys.snapshot(None, {}))
    assert gone["tablesRemoved"] == ["messages", "other"]
    assert len(gone["indexesRemoved"]) == 2


async def test_records_keep_each_deploy_and_what_it_changed(services: dict[str, str]) -> None:
    url = await create_database(services["database_url"], "deploy_history")
    conn = await asyncpg.connect(url)
    try:
        first = await deploys.record(conn, deploys.snapshot(_schema(), _functions()), "deploy")
        assert first is not None and first["first"] is True
        assert first["changes"]["tablesAdded"] == ["messages"]
        # dev records only what changed something; `convect deploy` records every run
        same = deploys.snapshot(_schema(), _functions())
        assert await deploys.record(conn, same, "dev", always=False) is None
        again = await deploys.record(conn, same, "deploy")
        assert again is not None and again["first"] is False
        assert not deploys.changed(again["changes"])
        grown = deploys.snapshot(_schema(extra=define_table({"n": v.number()})), _functions())
        dev = await deploys.record(conn, grown, "dev", always=False)
        assert dev is not None and dev["changes"]["tablesAdded"] == ["extra"]
        latest = await deploys.recent(conn, 2)
        assert [(r["id"], r["source"]) for r in latest] == [
            (dev["id"], "dev"),
            (again["id"], "deploy"),
        ]
        assert latest[0]["changes"] == dev["changes"]
        assert latest[0]["deployedAt"] >= first["deployedAt"]
    finally:
        await conn.close()


async def test_concurrent_records_each_diff_against_the_one_before(
    services: dict[str, str],
) -> None:
    url = await create_database(services["database_url"], "deploy_history_race")
    snaps = [
        deploys.snapshot(_schema(**{f"t{i}": define_table({"n": v.number()})}), {})
        for i in range(4)
    ]
    done = await asyncio.gather(*(deploys.record_at(url, s, "deploy") for s in snaps))
    assert sum(1 for d in done if d is not None and d["first"]) == 1
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT snapshot, changes FROM _convect_deploys ORDER BY id")
    finally:
        await conn.close()
    previous = None
    for row in rows:
        snap = orjson.loads(row["snapshot"])
        assert orjson.loads(row["changes"]) == deploys.diff(previous, snap)
        previous = snap


async def test_a_database_not_migrated_this_far_has_no_history_to_show(
    services: dict[str, str],
) -> None:
    from app.db import migrate

    url = await empty_database(services["database_url"], "deploy_history_old")
    await asyncio.to_thread(migrate.upgrade, url, "0008")
    conn = await asyncpg.connect(url)
    try:
        assert await deploys.recent(conn) == []
    finally:
        await conn.close()
