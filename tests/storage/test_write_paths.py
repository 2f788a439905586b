"""Every way file bytes are written lands them in the configured backend (and only there):
upload URLs, `ctx.storage.store` in actions (bytes, a stream, a copy), HTTP actions, the
dashboard's upload. (Imports: test_import_export.py.)"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator

import httpx

from tests.storage.conftest import blob_chunks, stored, upload
from tests.support.calls import action, mutation, query
from tests.support.servers import ADMIN_KEY, ServerProcess

ADMIN = {"Authorization": f"Convex {ADMIN_KEY}"}
MiB = 1024 * 1024


async def assert_in_backend(server: ServerProcess, storage_id: str, data: bytes) -> None:
    """The file's bytes are in the server's backend, not in the other one, and served."""
    assert storage_id in await stored(server)
    chunks = await blob_chunks(server.env["DATABASE_URL"], storage_id)
    if server.env.get("CONVECT_STORAGE") == "s3":
        assert chunks == 0
    else:
        assert chunks == max(1, -(-len(data) // MiB))
    meta = await query_meta(server, storage_id)
    assert (meta["size"], meta["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        assert (await client.get(f"/api/storage/{storage_id}")).content == data


async def query_meta(server: ServerProcess, storage_id: str) -> dict[str, object]:
    """`files:metadata` of a stored file."""
    async with httpx.AsyncClient(base_url=server.url) as client:
        meta: dict[str, object] = await query(client, "files:metadata", {"storageId": storage_id})
    return meta


async def test_an_upload_url_writes_to_the_configured_backend(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    data = os.urandom(9 * MiB + 3)  # two S3 parts
    await assert_in_backend(demo_server, await upload(demo, data), data)


async def test_actions_store_bytes_and_copies_in_the_configured_backend(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    text = "stored by an action\n" * 50
    stored_id = await action(demo, "files:store_text", {"name": "t", "text": text})
    await assert_in_backend(demo_server, stored_id, text.encode())
    copy = await action(demo, "files:copy", {"storageId": stored_id})
    assert copy != stored_id
    await assert_in_backend(demo_server, copy, text.encode())


async def test_an_http_action_stores_its_streamed_body_in_the_configured_backend(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    piece = os.urandom(256 * 1024)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(40):  # 10 MiB, chunked
            yield piece

    async with httpx.AsyncClient(base_url=demo_server.site_url, timeout=60) as site:
        r = await site.post("/files", params={"name": "clip.bin"}, content=body())
    assert r.status_code == 201, r.text
    await assert_in_backend(demo_server, r.json()["storageId"], piece * 40)


async def test_the_dashboards_upload_writes_to_the_configured_backend(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    url = await mutation(demo, "_system/dashboard:upload_url", headers=ADMIN)
    data = b"dropped on the dashboard" * 1000
    r = await demo.post(url, content=data, headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, r.text
    storage_id = r.json()["storageId"]
    await assert_in_backend(demo_server, storage_id, data)
    [listed] = await query(demo, "_system/dashboard:files", headers=ADMIN)
    assert (listed["_id"], listed["size"]) == (storage_id, len(data))
