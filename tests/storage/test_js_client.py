"""The official npm `convex` ConvexHttpClient plus fetch: Convex's upload flow end to end."""

from __future__ import annotations

import asyncio
import hashlib

import httpx

from tests.support.calls import query
from tests.support.npm import run_script
from tests.support.servers import ServerProcess


async def test_the_npm_client_uploads_saves_and_reads_back_a_file(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    out = await asyncio.to_thread(
        run_script, "storage_upload.mjs", env={"CONVEX_URL": demo_server.url}
    )
    assert out["uploadUrl"].startswith(f"{demo_server.url}/api/storage/upload?token=")
    assert out["uploadStatus"] == 200
    storage_id = out["storageId"]
    data = bytes((i * 7) % 251 for i in range(300 * 1024))
    assert out["doc"] == {
        "name": "pic.png",
        "storageId": storage_id,
        "size": len(data),
        "url": f"{demo_server.url}/api/storage/{storage_id}",
    }
    assert out["served"] == {
        "status": 200,
        "contentType": "image/png",
        "length": len(data),
        "same": True,
        "etag": f'"{hashlib.sha256(data).hexdigest()}"',
    }
    assert out["range"] == {"status": 206, "length": 100, "same": True}
    assert out["textMeta"]["contentType"] == "text/plain;charset=UTF-8"
    assert out["textMeta"]["size"] == len("plain text")
    assert out["reused"]["status"] == 401  # an upload URL takes one upload
    assert out["reused"]["body"]["code"] == "StorageTokenInvalid"
    assert "already used" in out["reused"]["body"]["message"]
    assert out["tampered"]["status"] == 401  # as Convex answers a bad token
    assert out["tampered"]["body"] == {
        "code": "StorageTokenInvalid",
        "message": "Couldn't decode the StoreFileAuthorization token",
    }
    stored = await query(demo, "files:stored")
    assert sorted(d["_id"] for d in stored) == sorted([storage_id, out["textMeta"]["storageId"]])
