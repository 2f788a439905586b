"""What only the S3 backend has: a 1 GiB file, presigned redirects, the store going down,
the sweep of orphaned objects. (The rest of tests/storage runs against S3 as well.)"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from app.db import ids
from app.settings import Settings
from app.storage.backend import BlobMissing
from app.storage.postgres import PostgresBlobs
from app.storage.s3 import S3Blobs
from app.storage.streams import Meter
from app.storage.tiers import TieredBlobs
from tests.conftest import DEMO
from tests.storage.conftest import gone, s3_env, stored, upload
from tests.storage.test_large_files import MAX_GROWTH_S3, PeakRss
from tests.support.calls import mutation, query
from tests.support.npm import run_script
from tests.support.s3 import CREDENTIALS, S3Server, bucket_env, start_s3, uploads_in_progress
from tests.support.servers import ServerProcess, convect_env, emptied_client, start_server

MiB = 1024 * 1024
GiB = 1024 * MiB
PIECE = 1024 * 1024
MAX_GROWTH = MAX_GROWTH_S3  # parts of 8 MiB, one uploading while the next arrives


def _piece(i: int) -> bytes:
    """Incompressible, position-dependent 1 MiB, cheap to make again."""
    seed = hashlib.sha256(i.to_bytes(8, "big")).digest()
    return (seed * (PIECE // len(seed)))[: PIECE - 8] + i.to_bytes(8, "big")


@pytest.fixture
async def s3_demo(s3_demo_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the demo app on S3, on emptied tables."""
    async with emptied_client(s3_demo_server, timeout=600) as client:
        yield client


@pytest.mark.reliability  # 45 s: `make reliability` (200 MiB on S3: test_large_files.py)
@pytest.mark.timeout(900)
async def test_a_1_gib_file_goes_to_s3_and_back_with_flat_server_memory(
    s3_demo: httpx.AsyncClient, s3_demo_server: ServerProcess
) -> None:
    count = GiB // PIECE
    warm = await upload(s3_demo, b"w" * 20 * MiB)  # pools, clients and code paths exist
    (await s3_demo.get(f"/api/storage/{warm}")).raise_for_status()
    baseline = psutil.Process(s3_demo_server.proc.pid).memory_info().rss
    expected = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        for i in range(count):
            piece = _piece(i)
            expected.update(piece)
            yield piece

    url = await mutation(s3_demo, "files:generate_upload_url")
    with PeakRss(s3_demo_server.proc.pid).sampling() as up:
        r = await s3_demo.post(url, content=body())
    assert r.status_code == 200, r.text
    storage_id = r.json()["storageId"]
    meta = await query(s3_demo, "files:metadata", {"storageId": storage_id})
    assert (meta["size"], meta["sha256"]) == (GiB, expected.hexdigest())
    assert storage_id in await stored(s3_demo_server)

    got = hashlib.sha256()
    received = 0
    with PeakRss(s3_demo_server.proc.pid).sampling() as down:
        async with s3_demo.stream("GET", f"/api/storage/{storage_id}") as resp:
            assert resp.status_code == 200
            assert resp.headers["content-length"] == str(GiB)
            async for chunk in resp.aiter_raw():
                got.update(chunk)
                received += len(chunk)
    assert (received, got.hexdigest()) == (GiB, expected.hexdigest())
    assert up.peak - baseline < MAX_GROWTH, (
        f"upload grew RSS by {(up.peak - baseline) / MiB:.0f} MiB"
    )
    assert down.peak - baseline < MAX_GROWTH, (
        f"download grew RSS by {(down.peak - baseline) / MiB:.0f} MiB"
    )
    tail = await s3_demo.get(f"/api/storage/{storage_id}", headers={"Range": f"bytes={GiB - 10}-"})
    assert (tail.status_code, tail.content) == (206, _piece(count - 1)[-10:])
    await mutation(s3_demo, "files:save", {"name": "big", "storageId": storage_id})
    [doc] = await query(s3_demo, "files:list")
    await mutation(s3_demo, "files:remove", {"id": doc["_id"]})
    assert await gone(s3_demo_server, storage_id)


@pytest.fixture(scope="session")
def redirect_server(
    s3_demo_server: ServerProcess, services: dict[str, str], data_dir: Path
) -> Iterator[ServerProcess]:
    """A second server on the S3 demo deployment that redirects downloads to S3."""
    env = convect_env(
        s3_demo_server.env["DATABASE_URL"],
        services["redis_url"],
        DEMO,
        data_dir / "demo-redirect",
        CONVECT_S3_DOWNLOADS="redirect",
        CONVECT_S3_URL_TTL="60",
        **s3_env(s3_demo_server),
    )
    server = start_server(env, data_dir / "demo-redirect.log")
    yield server
    server.stop()


async def test_downloads_redirect_to_presigned_urls_that_npm_fetch_and_curl_follow(
    s3_demo: httpx.AsyncClient, redirect_server: ServerProcess, s3_server: S3Server, tmp_path: Path
) -> None:
    out = await asyncio.to_thread(
        run_script, "storage_redirect.mjs", env={"CONVEX_URL": redirect_server.url}
    )
    assert out["manual"]["status"] == 302
    location = out["manual"]["location"]
    assert location.startswith(f"{s3_server.url}/demo/files/")
    assert "X-Amz-Expires=60" in location and "X-Amz-Signature=" in location
    assert out["served"] == {
        "status": 200,
        "redirected": True,
        "finalUrl": out["served"]["finalUrl"],
        "contentType": "image/png",
        "same": True,
    }
    assert out["served"]["finalUrl"].startswith(s3_server.url)
    assert out["range"] == {"status": 206, "length": 100, "same": True}

    data = b"curl follows\n" * 1000
    storage_id = await upload(s3_demo, data, "text/plain")
    target = tmp_path / "got"
    curl = await asyncio.to_thread(
        subprocess.run,
        [
            "curl", "-sSL", "-o", str(target), "-w", "%{http_code} %{num_redirects}",
            f"{redirect_server.url}/api/storage/{storage_id}",
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert curl.stdout == "200 1", curl.stderr
    assert target.read_bytes() == data
    # HEAD, conditional requests and active content are still answered by Convect.
    head = await httpx.AsyncClient().head(f"{redirect_server.url}/api/storage/{storage_id}")
    assert (head.status_code, head.headers["content-length"]) == (200, str(len(data)))


async def test_a_store_killed_mid_upload_gives_503_and_loses_no_metadata(
    services: dict[str, str], s3_demo_server: ServerProcess, data_dir: Path
) -> None:
    store = start_s3(data_dir / "moto-killed.log")
    store.create_bucket("fragile")
    env = convect_env(
        s3_demo_server.env["DATABASE_URL"],
        services["redis_url"],
        DEMO,
        data_dir / "demo-fragile",
        **bucket_env(store, "fragile"),
    )
    server = start_server(env, data_dir / "demo-fragile.log")
    try:
        async with emptied_client(server) as client:
            kept = await upload(client, b"kept")
            await mutation(client, "files:save", {"name": "kept", "storageId": kept})
            url = await mutation(client, "files:generate_upload_url")

            async def body() -> AsyncIterator[bytes]:
                for i in range(64):
                    if i == 40:  # parts are on their way to the store: kill it
                        while not await uploads_in_progress(server.env):
                            await asyncio.sleep(0.05)
                        store.kill()
                    yield _piece(i)

            r = await client.post(url, content=body())
            assert r.status_code == 503, r.text
            assert r.json()["code"] == "StorageUnavailable"
            assert "try again" in r.json()["message"]
            [doc] = await query(client, "files:stored")  # no document for the failed upload
            assert doc["_id"] == kept
            [named] = await query(client, "files:list")
            assert named["storageId"] == kept
            down = await client.get(f"/api/storage/{kept}")
            assert (down.status_code, down.json()["code"]) == (503, "StorageUnavailable")

            # The store comes back (empty: moto keeps nothing): uploads work again.
            store = start_s3(data_dir / "moto-killed.log", port=store.port)
            store.create_bucket("fragile")
            again = await upload(client, b"after the outage")
            assert (await client.get(f"/api/storage/{again}")).content == b"after the outage"
            assert len(await query(client, "files:stored")) == 2
    finally:
        server.stop()
        store.stop()


async def test_the_sweep_removes_orphaned_objects_and_unfinished_uploads(
    s3_demo: httpx.AsyncClient,
    s3_demo_server: ServerProcess,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    kept = await upload(s3_demo, b"a file with its document")
    orphan = ids.new_id("_storage")
    foreign = "files/not-a-storage-id.txt"
    client = s3_server.client()
    await asyncio.to_thread(client.put_object, Bucket="demo", Key=f"files/{orphan}", Body=b"o")
    await asyncio.to_thread(client.put_object, Bucket="demo", Key=foreign, Body=b"theirs")
    started = await asyncio.to_thread(
        client.create_multipart_upload, Bucket="demo", Key=f"files/{ids.new_id('_storage')}"
    )
    env = s3_demo_server.env
    settings = Settings(
        storage="s3",
        s3_bucket=env["CONVECT_S3_BUCKET"],
        s3_prefix=env["CONVECT_S3_PREFIX"],
        s3_endpoint_url=env["CONVECT_S3_ENDPOINT_URL"],
    )
    pool = await asyncpg.create_pool(env["DATABASE_URL"], min_size=1, max_size=2)
    blobs = S3Blobs(settings, pool)
    try:
        await blobs.open()
        await blobs.sweep(3600)  # no object is old enough yet (moto dates every upload 2010)
        assert orphan in await stored(s3_demo_server)
        assert await blobs.sweep(0) >= 1
    finally:
        await blobs.close()
        await pool.close()
    left = await stored(s3_demo_server)
    assert kept in left
    assert orphan not in left
    assert "not-a-storage-id.txt" in left  # not ours: never touched
    uploads = await asyncio.to_thread(client.list_multipart_uploads, Bucket="demo")
    assert started["UploadId"] not in {u["UploadId"] for u in uploads.get("Uploads", [])}
    await asyncio.to_thread(client.delete_object, Bucket="demo", Key=foreign)


async def test_a_read_goes_on_in_the_other_backend_when_the_file_moves_mid_read(
    s3_demo_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    env = s3_demo_server.env
    settings = Settings(
        storage="s3",
        s3_bucket=env["CONVECT_S3_BUCKET"],
        s3_prefix=env["CONVECT_S3_PREFIX"],
        s3_endpoint_url=env["CONVECT_S3_ENDPOINT_URL"],
    )
    data = b"".join(_piece(i) for i in range(6))
    storage_id = ids.new_id("_storage")
    pool = await asyncpg.create_pool(env["DATABASE_URL"], min_size=1, max_size=4)
    postgres, s3 = PostgresBlobs(pool), S3Blobs(settings, pool)
    tiers = TieredBlobs(postgres, s3)
    try:
        await tiers.open()
        await postgres.put(storage_id, Meter(len(data), MiB).chunks(data))
        await s3.put(storage_id, Meter(len(data), s3.chunk_size).chunks(data))
        got = bytearray()
        async for piece in tiers.read(storage_id, 10, len(data) - 10):
            if not got:  # the migration deletes the source copy while the read goes on
                await postgres.discard(storage_id)
            got += piece
        assert bytes(got) == data[10:-10]
        await s3.discard(storage_id)
        with pytest.raises(BlobMissing):
            async for _ in tiers.read(storage_id, 0, 10):
                pass
    finally:
        await tiers.close()
        await pool.close()
