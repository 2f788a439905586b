"""insert, patch, replace, delete, normalize_id, system tables and schema validation on write."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from app.db import ids
from app.values import Int64
from tests.core.dbcheck import table_docs, table_names
from tests.support.calls import CallFailed, mutation, query
from tests.support.servers import ServerProcess


def db_url(server: ServerProcess) -> str:
    """The server's database."""
    return server.env["DATABASE_URL"]


async def insert(kitchen: httpx.AsyncClient, table: str, doc: dict[str, Any]) -> str:
    """Insert one document through core_db:insert."""
    doc_id: str = await mutation(kitchen, "core_db:insert", {"table": table, "doc": doc})
    return doc_id


async def failure(kitchen: httpx.AsyncClient, kind: str, path: str, args: dict[str, Any]) -> str:
    """Call a function that must fail; return its error message (never ConvexError data)."""
    call = mutation if kind == "mutation" else query
    with pytest.raises(CallFailed) as info:
        await call(kitchen, path, args)
    assert "errorData" not in info.value.body
    message: str = info.value.body["errorMessage"]
    return message


async def test_patch_with_unset_removes_a_field_and_none_stores_null(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    doc_id = await insert(kitchen, "core_strict", {"name": "p", "count": 1, "note": "hi"})
    doc = await mutation(kitchen, "core_db:patch", {"id": doc_id, "fields": {"note": None}})
    assert doc["note"] is None
    doc = await mutation(
        kitchen, "core_db:patch", {"id": doc_id, "fields": {"count": 2}, "unset": ["note"]}
    )
    assert "note" not in doc
    assert doc["count"] == 2.0
    stored = await table_docs(db_url(kitchen_server), "core_strict")
    assert [{k: v for k, v in d.items() if not k.startswith("_")} for d in stored] == [
        {"name": "p", "count": 2.0}
    ]
    assert stored[0]["_id"] == doc_id


async def test_patch_keeps_fields_it_does_not_name_and_may_add_new_ones(
    kitchen: httpx.AsyncClient,
) -> None:
    doc_id = await insert(kitchen, "core_things", {"a": 1, "b": {"c": 2}})
    doc = await mutation(kitchen, "core_db:patch", {"id": doc_id, "fields": {"d": [1]}})
    assert {k: doc[k] for k in ("a", "b", "d")} == {"a": 1.0, "b": {"c": 2.0}, "d": [1.0]}
    # Shallow merge: a nested object is replaced whole.
    doc = await mutation(kitchen, "core_db:patch", {"id": doc_id, "fields": {"b": {"e": 3}}})
    assert doc["b"] == {"e": 3.0}


async def test_replace_swaps_the_fields_but_keeps_id_and_creation_time(
    kitchen: httpx.AsyncClient,
) -> None:
    doc_id = await insert(kitchen, "core_things", {"a": 1, "b": 2})
    before = await query(kitchen, "core_db:get", {"id": doc_id})
    after = await mutation(kitchen, "core_db:replace", {"id": doc_id, "doc": {"c": 3}})
    assert after == {"_id": doc_id, "_creationTime": before["_creationTime"], "c": 3.0}
    same = await mutation(
        kitchen,
        "core_db:replace",
        {"id": doc_id, "doc": {"_id": doc_id, "_creationTime": before["_creationTime"], "z": 1}},
    )
    assert same["z"] == 1.0 and "c" not in same


async def test_system_fields_cannot_be_changed(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    doc_id = await insert(kitchen, "core_things", {"a": 1})
    other = await insert(kitchen, "core_things", {"a": 2})
    message = await failure(
        kitchen, "mutation", "core_db:patch", {"id": doc_id, "fields": {"_id": other}}
    )
    assert "Cannot change a document's _id" in message
    message = await failure(
        kitchen, "mutation", "core_db:replace", {"id": doc_id, "doc": {"_creationTime": 1.0}}
    )
    assert "Cannot change a document's _creationTime" in message
    message = await failure(
        kitchen, "mutation", "core_db:patch", {"id": doc_id, "fields": {"_secret": 1}}
    )
    assert "reserved for system fields" in message
    docs = await table_docs(db_url(kitchen_server), "core_things")
    assert [d["a"] for d in docs] == [1.0, 2.0]
    assert all(set(d) == {"_id", "_creationTime", "a"} for d in docs)


async def test_delete_removes_the_document_and_a_second_delete_is_an_error(
    kitchen: httpx.AsyncClient,
) -> None:
    doc_id = await insert(kitchen, "core_things", {"a": 1})
    await mutation(kitchen, "core_db:delete", {"id": doc_id})
    assert await query(kitchen, "core_db:get", {"id": doc_id}) is None
    message = await failure(kitchen, "mutation", "core_db:delete", {"id": doc_id})
    assert f"Delete on nonexistent document ID {doc_id}" in message
    message = await failure(kitchen, "mutation", "core_db:patch", {"id": doc_id, "fields": {}})
    assert f"Update on nonexistent document ID {doc_id}" in message
    message = await failure(kitchen, "mutation", "core_db:replace", {"id": doc_id, "doc": {}})
    assert f"Replace on nonexistent document ID {doc_id}" in message


async def test_normalize_id_accepts_only_ids_of_that_table(kitchen: httpx.AsyncClient) -> None:
    thing = await insert(kitchen, "core_things", {"a": 1})
    strict = await insert(kitchen, "core_strict", {"name": "s", "count": 0})
    assert await query(kitchen, "core_db:normalize", {"table": "core_things", "id": thing}) == thing
    for value in (strict, "not-an-id", thing[:-1] + ("0" if thing[-1] != "0" else "1"), 7, None):
        got = await query(kitchen, "core_db:normalize", {"table": "core_things", "id": value})
        assert got is None, value
    message = await failure(
        kitchen, "query", "core_db:normalize", {"table": "bad name!", "id": thing}
    )
    assert "Invalid table name" in message


async def test_get_reads_any_table_and_rejects_malformed_ids(kitchen: httpx.AsyncClient) -> None:
    strict = await insert(kitchen, "core_strict", {"name": "s", "count": 0})
    assert (await query(kitchen, "core_db:get", {"id": strict}))["name"] == "s"
    message = await failure(kitchen, "query", "core_db:get", {"id": "garbage"})
    assert "is not a valid document id" in message


async def test_system_tables_are_readable_only_through_db_system(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    # A file's metadata, put straight into _storage (as the storage service would).
    file_id = ids.new_id("_storage")
    doc = {"_id": file_id, "_creationTime": 1.5e12, "sha256": "00", "size": 3.0}
    conn = await asyncpg.connect(db_url(kitchen_server))
    try:
        await conn.execute(
            'INSERT INTO docs."_storage" (id, creation_time, doc) VALUES ($1, $2, $3::jsonb)',
            file_id,
            doc["_creationTime"],
            orjson.dumps(doc).decode(),
        )
    finally:
        await conn.close()
    assert await query(kitchen, "core_db:system_list", {"table": "_storage"}) == [doc]
    assert await query(kitchen, "core_db:system_get", {"id": file_id}) == doc
    message = await failure(kitchen, "query", "core_db:get", {"id": file_id})
    assert "Use ctx.db.system.get" in message
    thing = await insert(kitchen, "core_things", {"a": 1})
    message = await failure(kitchen, "query", "core_db:system_get", {"id": thing})
    assert "only reads ids of system tables" in message
    for table in ("_storage", "_scheduled_functions"):
        listed = await query(kitchen, "core_db:system_list", {"table": table})
        assert listed == await table_docs(db_url(kitchen_server), table)
    message = await failure(kitchen, "query", "core_db:user_reads_system", {"table": "_storage"})
    assert "Use ctx.db.system" in message
    message = await failure(kitchen, "query", "core_db:system_list", {"table": "core_things"})
    assert "only reads system tables" in message
    message = await failure(
        kitchen, "mutation", "core_db:insert", {"table": "_storage", "doc": {"a": 1}}
    )
    assert "Invalid table name" in message


async def test_schema_validation_rejects_bad_inserts_and_writes_nothing(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    bad_docs = {
        "missing field": {"name": "x"},
        "wrong type": {"name": "x", "count": "many"},
        "extra field": {"name": "x", "count": 1, "extra": True},
        "wrong id table": {"name": "x", "count": 1, "ref": "not-an-id"},
        "int64 for a number": {"name": "x", "count": Int64(1)},
    }
    for label, doc in bad_docs.items():
        message = await failure(
            kitchen, "mutation", "core_db:insert", {"table": "core_strict", "doc": doc}
        )
        assert "does not match the schema" in message, label
        assert "core_strict" in message, label
    assert await table_docs(db_url(kitchen_server), "core_strict") == []


async def test_schema_validation_applies_to_patch_and_replace(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    thing = await insert(kitchen, "core_things", {})
    doc_id = await insert(kitchen, "core_strict", {"name": "ok", "count": 1, "ref": thing})
    for fields, unset in (({"count": "x"}, []), ({}, ["name"]), ({"ref": doc_id}, [])):
        message = await failure(
            kitchen, "mutation", "core_db:patch", {"id": doc_id, "fields": fields, "unset": unset}
        )
        assert "does not match the schema" in message
    message = await failure(kitchen, "mutation", "core_db:replace", {"id": doc_id, "doc": {"a": 1}})
    assert "does not match the schema" in message
    stored = await table_docs(db_url(kitchen_server), "core_strict")
    assert [(d["name"], d["count"], d["ref"]) for d in stored] == [("ok", 1.0, thing)]


async def test_writing_a_table_the_schema_does_not_name_is_refused(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    message = await failure(
        kitchen, "mutation", "core_db:insert", {"table": "core_unknown", "doc": {"a": 1}}
    )
    assert "core_unknown" in message and "not in the schema" in message
    assert "core_unknown" not in await table_names(db_url(kitchen_server))
