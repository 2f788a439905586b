"""Convex's snapshot zip: id mapping, value encoding, and a zip built by hand from
Convex's documented export format imported into a fresh deployment."""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from pathlib import Path

import asyncpg
import orjson
import pytest

from app.dataio.convex_ids import IdMap, decode_convex_id, encode_convex_id
from app.dataio.convex_values import from_export_json, to_export_json
from app.dataio.format import ExportFormatError
from app.dataio.importer import import_deployment
from app.db import ids
from app.values import Int64, encode_value
from tests.support.servers import create_database


def test_convex_ids_round_trip_and_reject_what_is_not_one() -> None:
    for number in (1, 127, 128, 10001, 2**21, 2**31 - 1):
        internal = os.urandom(16)
        encoded = encode_convex_id(number, internal)
        assert decode_convex_id(encoded) == (number, internal)
    good = encode_convex_id(10001, bytes(range(16)))
    assert len(good) == 32  # Convex's user-table ids are 32 characters
    broken = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert decode_convex_id(broken) is None  # footer
    assert decode_convex_id(good.upper()) is None
    assert decode_convex_id(ids.new_id("posts")) is None  # a Convect id is not a Convex id


def test_the_id_map_keeps_the_sixteen_bytes_both_ways() -> None:
    id_map = IdMap.for_tables(["posts", "authors", "_storage", "_scheduled_functions"])
    assert id_map.numbers == {"_storage": 10000, "authors": 10001, "posts": 10002}
    convect = ids.new_id("posts")
    convex = id_map.to_convex(convect)
    assert convex is not None and decode_convex_id(convex) == (10002, ids.id_internal(convect))
    assert id_map.to_convect(convex) == convect
    assert id_map.to_convex("hello") is None and id_map.to_convect("hello") is None
    assert id_map.to_convex(ids.new_id("elsewhere")) is None  # not an exported table


def test_values_convert_losslessly() -> None:
    wire = encode_value(
        {"i": Int64(-5), "f": 5.0, "b": b"\x00\xff", "n": float("-inf"), "a": [1.5, None, True]}
    )
    exported = orjson.loads(orjson.dumps(to_export_json(wire)))
    assert exported["i"] == -5 and exported["f"] == 5.0 and exported["b"] == {"$bytes": "AP8="}
    assert from_export_json(exported, lossless=True) == wire
    # plain JSON (no "uniform" marker): a number is a float64, as Convex reads it
    assert from_export_json({"x": 3}, lossless=False) == {"x": 3.0}
    with pytest.raises(ValueError, match="int64"):
        from_export_json({"x": 2**64}, lossless=True)


def convex_snapshot(path: Path) -> dict[str, object]:
    """A zip as Convex's documentation describes its snapshot export."""
    author = encode_convex_id(10001, os.urandom(16))
    post = encode_convex_id(10002, os.urandom(16))
    storage = encode_convex_id(7, os.urandom(16))
    data = b"hello from convex"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("README.md", "# Welcome to your Convex snapshot export!\n")
        zf.writestr(
            "_tables/documents.jsonl",
            b'{"name":"authors","id":10001}\n{"name":"posts","id":10002}\n',
        )
        zf.writestr(
            "authors/documents.jsonl",
            orjson.dumps({"_id": author, "_creationTime": 1700000000000.5, "name": "ann"}) + b"\n",
        )
        zf.writestr("authors/generated_schema.jsonl", b'"uniform"\n')
        zf.writestr(
            "posts/documents.jsonl",
            orjson.dumps(
                {
                    "_id": post,
                    "_creationTime": 1700000001000.25,
                    "author": author,
                    "title": "hi",
                    "tags": ["a", author],
                    "file": storage,
                    "count": 42,
                    "blob": {"$bytes": "AQI="},
                    "ratio": 0.5,
                }
            )
            + b"\n",
        )
        zf.writestr("posts/generated_schema.jsonl", b'"uniform"\n')
        zf.writestr(
            "_storage/documents.jsonl",
            orjson.dumps(
                {
                    "_id": storage,
                    "_creationTime": 1699999999999.0,
                    "sha256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
                    "size": len(data),
                    "contentType": "text/plain",
                    "internalId": "abc",
                }
            )
            + b"\n",
        )
        zf.writestr(f"_storage/{storage}.txt", data)
    return {"author": author, "post": post, "storage": storage, "data": data}


async def test_a_hand_built_convex_snapshot_imports_with_references(
    services: dict[str, str], tmp_path: Path
) -> None:
    made = convex_snapshot(tmp_path / "convex.zip")
    url = await create_database(services["database_url"], "convex_snapshot")
    summary = await import_deployment(url, tmp_path / "convex.zip")
    assert summary.tables == {"_storage": 1, "authors": 1, "posts": 1} and summary.files == 1
    id_map = IdMap({"authors": 10001, "posts": 10002, "_storage": 7})
    conn = await asyncpg.connect(url)
    try:
        author = await conn.fetchrow('SELECT id, creation_time, doc::text FROM docs."authors"')
        post = orjson.loads(await conn.fetchval('SELECT doc::text FROM docs."posts"'))
        stored = orjson.loads(await conn.fetchval('SELECT doc::text FROM docs."_storage"'))
        blob = await conn.fetchval("SELECT string_agg(data, ''::bytea) FROM _convect_blobs")
    finally:
        await conn.close()
    assert author["id"] == id_map.to_convect(str(made["author"]))
    assert author["creation_time"] == 1700000000000.5
    assert post["_id"] == id_map.to_convect(str(made["post"]))
    assert post["author"] == author["id"] and post["tags"] == ["a", author["id"]]
    assert post["file"] == stored["_id"] == id_map.to_convect(str(made["storage"]))
    assert post["count"] == encode_value(Int64(42)) and post["ratio"] == 0.5
    assert post["blob"] == {"$bytes": "AQI="}
    assert stored["sha256"] == hashlib.sha256(made["data"]).hexdigest()  # type: ignore[arg-type]
    assert stored["contentType"] == "text/plain" and blob == made["data"]


async def test_a_file_without_its_storage_document_is_refused(
    services: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "orphan.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("notes/documents.jsonl", b'{"text": "x"}\n')
        zf.writestr("_storage/documents.jsonl", b"")
        zf.writestr(f"_storage/{encode_convex_id(7, bytes(16))}", b"stray")
    url = await create_database(services["database_url"], "convex_orphan")
    with pytest.raises(ExportFormatError, match="belongs to no document"):
        await import_deployment(url, path)
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM _convect_tables WHERE name = 'notes'") == 0
    finally:
        await conn.close()
