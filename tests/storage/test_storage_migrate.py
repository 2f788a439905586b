"""`convect storage migrate --to s3|postgres` moves files while they stay readable, and
`convect export` takes files from the bucket; migration 0008 turns hex sha256 to base64."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from app.db import ids, migrate
from tests.conftest import DEMO
from tests.storage.conftest import blob_chunks, upload
from tests.support.s3 import S3Server, bucket_env, objects, uploads_in_progress
from tests.support.servers import (
    ROOT,
    ServerProcess,
    create_database,
    emptied_client,
    run_cli,
    served_app,
)


@pytest.fixture(scope="session")
def moving_server(
    s3_server: S3Server, services: dict[str, str], data_dir: Path
) -> Iterator[ServerProcess]:
    """The demo app storing files in PostgreSQL, with a bucket configured to move them to."""
    s3_server.create_bucket("moving")
    env = bucket_env(s3_server, "moving", CONVECT_STORAGE="postgres")
    with served_app(services, "demo_moving", DEMO, data_dir / "demo_moving", **env) as server:
        yield server


async def _read_all(client: httpx.AsyncClient, files: dict[str, bytes]) -> None:
    for storage_id, data in files.items():
        r = await client.get(f"/api/storage/{storage_id}")
        assert (r.status_code, r.content) == (200, data), storage_id


async def test_files_move_to_s3_and_back_while_they_are_served(
    moving_server: ServerProcess,
) -> None:
    env = moving_server.env
    async with emptied_client(moving_server) as client:
        files = {
            await upload(client, data): data
            for data in (b"", b"small", os.urandom(3 * 1024 * 1024 + 5))
        }
        stop = asyncio.Event()
        reads = 0

        async def reader() -> None:  # reads all along: never a 404, never a wrong byte
            nonlocal reads
            while not stop.is_set():
                await _read_all(client, files)
                reads += 1

        task = asyncio.create_task(reader())
        moved = await asyncio.to_thread(run_cli, env, "storage", "migrate", "--to", "s3")
        assert moved.returncode == 0, moved.stderr
        assert "moved 3 files" in moved.stderr
        assert await blob_chunks(env["DATABASE_URL"]) == 0
        assert set(await objects(env)) == set(files)
        again = await asyncio.to_thread(run_cli, env, "storage", "migrate", "--to", "s3")
        assert "moved 0 files" in again.stderr and "3 already there" in again.stderr

        # A run cut short on the way back: one file half copied into PostgreSQL.
        big = max(files, key=lambda k: len(files[k]))
        conn = await asyncpg.connect(env["DATABASE_URL"])
        try:
            await conn.execute(
                "INSERT INTO _convect_blobs (storage_id, seq, start, data) VALUES ($1, 0, 0, $2)",
                big,
                files[big][: 1024 * 1024],
            )
        finally:
            await conn.close()
        back = await asyncio.to_thread(run_cli, env, "storage", "migrate", "--to", "postgres")
        assert back.returncode == 0, back.stderr
        assert "moved 3 files" in back.stderr
        assert await objects(env) == []
        assert await blob_chunks(env["DATABASE_URL"]) == 5  # 1 + 4 chunks of 1 MiB
        stop.set()
        await task
        assert reads > 0
        await _read_all(client, files)


async def test_a_migration_killed_mid_upload_resumes_and_files_stay_readable(
    moving_server: ServerProcess,
) -> None:
    env = moving_server.env
    async with emptied_client(moving_server, timeout=120) as client:
        files = {
            await upload(client, data): data
            for data in (b"first", os.urandom(64 * 1024 * 1024 + 1), b"last")
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "storage", "migrate", "--to", "s3"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while not await uploads_in_progress(env):  # the big file is on its way
                assert proc.poll() is None, "the migration ended before it could be killed"
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
        finally:
            proc.kill()
            proc.wait()
        await _read_all(client, files)  # nothing lost, everything served
        assert await blob_chunks(env["DATABASE_URL"]) > 0  # the big file is still there
        again = await asyncio.to_thread(run_cli, env, "storage", "migrate", "--to", "s3")
        assert again.returncode == 0, again.stderr
        assert await blob_chunks(env["DATABASE_URL"]) == 0
        assert set(await objects(env)) == set(files)
        await _read_all(client, files)
        back = await asyncio.to_thread(run_cli, env, "storage", "migrate", "--to", "postgres")
        assert back.returncode == 0, back.stderr  # leave the bucket empty for the others
        assert await objects(env) == []


async def test_export_takes_the_files_from_the_bucket(
    s3_demo_server: ServerProcess, tmp_path: Path
) -> None:
    async with emptied_client(s3_demo_server) as client:
        data = os.urandom(2 * 1024 * 1024 + 3)
        storage_id = await upload(client, data, "image/png")
    dest = tmp_path / "export.zip"
    done = await asyncio.to_thread(run_cli, s3_demo_server.env, "export", str(dest))
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(dest) as zf:  # Convex's layout: _storage/<id> and its documents
        [entry] = [n for n in zf.namelist() if n.startswith("_storage/") and "." not in n]
        assert zf.read(entry) == data
        [line] = zf.read("_storage/documents.jsonl").splitlines()
    assert orjson.loads(line)["sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert storage_id


async def test_0008_turns_hex_sha256_into_base64_and_back(services: dict[str, str]) -> None:
    url = await create_database(services["database_url"], "storage_sha256")
    await asyncio.to_thread(migrate.downgrade, url, "0007")
    digest = hashlib.sha256(b"old").digest()
    storage_id = ids.new_id("_storage")
    doc = {"_id": storage_id, "_creationTime": 1.0, "sha256": digest.hex(), "size": 3.0}
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            'INSERT INTO docs."_storage" (id, creation_time, doc) VALUES ($1, 1.0, $2::jsonb)',
            storage_id,
            orjson.dumps(doc).decode(),
        )
        await asyncio.to_thread(migrate.upgrade, url, "0008")
        sha = await conn.fetchval("SELECT doc ->> 'sha256' FROM docs.\"_storage\"")
        assert sha == base64.b64encode(digest).decode()
        await asyncio.to_thread(migrate.downgrade, url, "0007")
        sha = await conn.fetchval("SELECT doc ->> 'sha256' FROM docs.\"_storage\"")
        assert sha == digest.hex()
    finally:
        await conn.close()
