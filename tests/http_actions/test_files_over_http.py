"""The demo's file routes on the site listener: ctx.storage inside HTTP actions."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import AsyncIterator

import httpx

from tests.support.calls import query
from tests.support.servers import ServerProcess


async def test_an_http_action_stores_a_streamed_body_and_serves_it_back(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    piece = os.urandom(64 * 1024)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(80):  # 5 MiB, chunked
            yield piece

    async with httpx.AsyncClient(base_url=demo_server.site_url, timeout=60) as site:
        r = await site.post(
            "/files",
            params={"name": "clip.bin"},
            content=body(),
            headers={"Content-Type": "video/mp4"},
        )
        assert r.status_code == 201, r.text
        storage_id = r.json()["storageId"]
        back = await site.get(f"/files/{storage_id}")
        assert back.status_code == 200
        assert back.headers["content-type"] == "video/mp4"
        assert back.content == piece * 80
        [doc] = await query(demo, "files:list")
        assert (doc["name"], doc["storageId"], doc["size"]) == (
            "clip.bin",
            storage_id,
            80 * len(piece),
        )
        meta = await query(demo, "files:metadata", {"storageId": storage_id})
        assert meta["sha256"] == hashlib.sha256(piece * 80).hexdigest()


async def test_a_bad_id_in_an_http_action_is_an_uncaught_error_and_an_unknown_one_none(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    # As Convex: a storage error the handler does not catch is a 500 like any other.
    async with httpx.AsyncClient(base_url=demo_server.site_url, timeout=60) as site:
        bad = await site.get("/files/not-an-id")
        assert bad.status_code == 500
        assert re.fullmatch(
            r"\[Request ID: [0-9a-f]{16}\] Server Error: Uncaught Error: Invalid storage ID(.|\n)+",
            bad.json()["code"],
        ), bad.text
        r = await site.post("/files", content=b"x")
        storage_id = r.json()["storageId"]
        await demo.post(
            "/api/action", json={"path": "files:delete_stored", "args": {"storageId": storage_id}}
        )
        assert (await site.get(f"/files/{storage_id}")).status_code == 404
