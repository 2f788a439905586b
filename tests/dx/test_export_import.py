"""`convect export` / `convect import`: an exact round trip, and refusals that change nothing."""

from __future__ import annotations

import hashlib
import time
import zipfile
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from app.db import ids
from app.values import Int64, encode_value
from tests.conftest import DEMO
from tests.support.calls import mutation, query
from tests.support.servers import ServerProcess, convect_env, create_database, run_cli, truncate_all
from tests.support.ws import SyncClient

GENERATED = 100_000


async def upload(client: httpx.AsyncClient, data: bytes) -> str:
    """Store a file through the demo app's upload URL; return its storage id."""
    url = await mutation(client, "files:generate_upload_url")
    r = await client.post(url, content=data, headers={"Content-Type": "application/pdf"})
    assert r.status_code == 200, r.text
    storage_id: str = r.json()["storageId"]
    return storage_id


async def demo_data(client: httpx.AsyncClient) -> bytes:
    """Documents in several tables (through the app), a vector and a 2.5 MiB file."""
    for i in range(3):
        await mutation(client, "messages:create", {"author": f"demo{i}", "body": f"hello {i}"})
    await mutation(client, "accounts:open", {"owner": "ada", "balance": 12.5})
    embedding = [((i * 37) % 101) / 101 - 0.5 for i in range(384)]
    await mutation(
        client, "documents:add", {"text": "vec", "category": "a", "embedding": embedding}
    )
    blob = hashlib.sha256(b"seed").digest() * (2_621_440 // 32)
    storage_id = await upload(client, blob)
    await mutation(client, "files:save", {"name": "big.pdf", "storageId": storage_id})
    return blob


async def generate(url: str) -> None:
    """100,000 log entries and some hard values (int64, bytes, NaN, -0, 1e300), straight in SQL."""
    now = time.time() * 1000
    rows = []
    for i in range(GENERATED):
        doc_id = ids.new_id("logs")
        created = now + i * 0.001 + 1
        doc = {"_id": doc_id, "_creationTime": created, "event": f"generated event {i}"}
        if i % 3:
            doc["to"] = f"user{i % 100}"
        rows.append((doc_id, created, orjson.dumps(doc).decode()))
    odd: list[Any] = [
        Int64(2**63 - 1),
        b"\x00\xffbytes",
        float("nan"),
        -0.0,
        1e300,
        5e-324,
        "unicode \u2713 and a\nnewline",
        {"nested": [[1.5, {"deep": None}], True]},
    ]
    events = []
    for i, value in enumerate(odd):
        doc_id = ids.new_id("webhook_events")
        created = now + i + 0.25
        doc = encode_value(
            {"_id": doc_id, "_creationTime": created, "type": f"odd{i}", "data": value}
        )
        events.append((doc_id, created, orjson.dumps(doc).decode()))
    conn = await asyncpg.connect(url)
    try:
        for table, records in (("logs", rows), ("webhook_events", events)):
            await conn.copy_records_to_table(
                table, schema_name="docs", columns=["id", "creation_time", "doc"], records=records
            )
    finally:
        await conn.close()


async def snapshot(url: str) -> dict[str, Any]:
    """Everything an import must reproduce: every row of every table, derived vector
    columns, the schema, file contents, and the tables' columns and indexes."""
    conn = await asyncpg.connect(url)
    try:
        out: dict[str, Any] = {
            ".tables": [
                tuple(r)
                for r in await conn.fetch("SELECT name, number FROM _convect_tables ORDER BY name")
            ],
            ".schema": await conn.fetchval("SELECT schema FROM _convect_schema"),
            ".blobs": [
                tuple(r)
                for r in await conn.fetch(
                    "SELECT storage_id, sha256(string_agg(data, ''::bytea ORDER BY seq)) "
                    "FROM _convect_blobs GROUP BY storage_id ORDER BY storage_id"
                )
            ],
            ".indexes": [
                tuple(r)
                for r in await conn.fetch(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'docs' "
                    "ORDER BY indexname"
                )
            ],
            ".columns": [
                tuple(r)
                for r in await conn.fetch(
                    "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), "
                    "a.attgenerated, pg_get_expr(d.adbin, d.adrelid), "
                    "col_description(a.attrelid, a.attnum) FROM pg_attribute a "
                    "JOIN pg_class c ON c.oid = a.attrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'docs' "
                    "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
                    "WHERE c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped "
                    "ORDER BY c.relname, a.attname"
                )
            ],
        }
        for name, _ in out[".tables"]:
            vec = [
                r["attname"]
                for r in await conn.fetch(
                    "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
                    "AND NOT attisdropped AND attname LIKE 'vec%' ORDER BY attname",
                    f'docs."{name}"',
                )
            ]
            cols = "".join(f', "{c}"::text' for c in vec)
            out[name] = [
                tuple(r)
                for r in await conn.fetch(
                    f'SELECT id, creation_time, doc::text{cols} FROM docs."{name}" ORDER BY id'
                )
            ]
        return out
    finally:
        await conn.close()


async def test_an_export_imported_into_an_empty_deployment_reproduces_every_row(
    demo_server: ServerProcess, demo: httpx.AsyncClient, services: dict[str, str], data_dir: Path
) -> None:
    source = demo_server.env["DATABASE_URL"]
    try:
        blob = await demo_data(demo)
        await generate(source)
        zip_path = data_dir / "dx-roundtrip.zip"
        exported = run_cli(demo_server.env, "export", str(zip_path))
        assert exported.returncode == 0, exported.stderr
        assert f"{GENERATED + 15:,} documents and 1 file " in exported.stderr
        with zipfile.ZipFile(zip_path) as zf:  # Convex's snapshot layout
            manifest = orjson.loads(zf.read("_convect/manifest.json"))
            assert manifest["tables"]["logs"]["documents"] == GENERATED
            assert len(zf.read("logs/documents.jsonl").splitlines()) == GENERATED
            assert zf.read("logs/generated_schema.jsonl") == b'"uniform"\n'
            [stored] = [
                n for n in zf.namelist() if n.startswith("_storage/") and "." not in n
            ]
            assert zf.read(stored) == blob

        target = await create_database(services["database_url"], "dx_import")
        env = convect_env(target, services["redis_url"], DEMO, data_dir / "dx_import")
        imported = run_cli(env, "import", str(zip_path))
        assert imported.returncode == 0, imported.stderr
        assert "imported" in imported.stderr

        before, after = await snapshot(source), await snapshot(target)
        assert before.keys() == after.keys()
        assert len(after["logs"]) == GENERATED and len(after["messages"]) == 3
        assert after[".blobs"][0][1] == hashlib.sha256(blob).digest()
        assert after["documents"][0][3] is not None  # the vector column was filled
        for key in before:
            assert before[key] == after[key], f"{key} differs after the round trip"
    finally:
        await truncate_all(source, demo_server.url)


async def test_an_import_into_a_running_deployment_reaches_its_subscribers_and_cache(
    demo_server: ServerProcess, demo: httpx.AsyncClient, data_dir: Path
) -> None:
    await mutation(demo, "messages:create", {"author": "kept", "body": "one"})
    zip_path = data_dir / "dx-live.zip"
    assert run_cli(demo_server.env, "export", str(zip_path)).returncode == 0
    await mutation(demo, "messages:create", {"author": "dropped", "body": "two"})
    assert len(await query(demo, "messages:list")) == 2
    assert len(await query(demo, "messages:list")) == 2  # now a cached result
    socket = await SyncClient.open(demo_server.url)
    try:
        qid = await socket.add("messages:list")
        await socket.wait_query_set()
        assert len(socket.value(qid)) == 2

        refused = run_cli(demo_server.env, "import", str(zip_path))
        assert refused.returncode == 1
        assert "table messages already holds 2 documents" in refused.stderr
        assert "--replace" in refused.stderr and "Traceback" not in refused.stderr

        replaced = run_cli(demo_server.env, "import", str(zip_path), "--replace")
        assert replaced.returncode == 0, replaced.stderr
        while len(socket.value(qid)) != 1:
            await socket.recv_type("Transition")
        assert [m["author"] for m in socket.value(qid)] == ["kept"]
        assert [m["author"] for m in await query(demo, "messages:list")] == ["kept"]

        conflict = run_cli(demo_server.env, "import", str(zip_path), "--append")
        assert conflict.returncode == 1
        assert "already taken" in conflict.stderr and "nothing was imported" in conflict.stderr
    finally:
        await socket.close()
