"""Hostile uploads: bad tokens, oversize bodies, bad headers. Each is refused, nothing stored."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator

import asyncpg
import httpx

from app.storage import tokens
from tests.storage.conftest import SMALL_LIMIT, blob_chunks, stored
from tests.support.calls import mutation, query
from tests.support.s3 import uploads_in_progress
from tests.support.servers import ServerProcess


async def _signing_key(database_url: str) -> bytes:
    conn = await asyncpg.connect(database_url)
    try:
        secret = await conn.fetchval("SELECT value FROM _convect_secrets WHERE name = 'storage'")
    finally:
        await conn.close()
    return tokens.derive_key(secret)


async def _nothing_stored(client: httpx.AsyncClient, server: ServerProcess, chunks: int) -> None:
    assert await query(client, "files:stored") == []
    assert len(await stored(server)) == chunks


async def test_tampered_missing_and_malformed_tokens_are_refused(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    before = len(await stored(demo_server))
    url = await mutation(demo, "files:generate_upload_url")
    base, token = url.split("?token=")
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    cases = {
        "tampered": f"{base}?token={flipped}",
        "truncated": f"{base}?token={token[:-4]}",
        "missing": base,
        "empty": f"{base}?token=",
        "not base64": f"{base}?token=%%%%",
        "huge": f"{base}?token={'A' * 10000}",
        "other deployment": f"{base}?token={tokens.sign(tokens.derive_key('elsewhere'))}",
    }
    for name, bad in cases.items():
        r = await demo.post(bad, content=os.urandom(2 * 1024 * 1024))
        assert r.status_code == 401, name  # Convex: unauthenticated
        assert r.json() == {
            "code": "StorageTokenInvalid",
            "message": "Couldn't decode the StoreFileAuthorization token",
        }, name
    await _nothing_stored(demo, demo_server, before)


async def test_an_expired_upload_url_is_refused(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    before = len(await stored(demo_server))
    key = await _signing_key(demo_server.env["DATABASE_URL"])
    expired = tokens.sign(key, expires_ms=time.time() * 1000 - 1)
    r = await demo.post(f"/api/storage/upload?token={expired}", content=b"late")
    assert r.status_code == 401
    assert r.json() == {
        "code": "StorageTokenExpired",
        "message": "Store File Authorization expired",
    }
    valid = tokens.sign(key, expires_ms=time.time() * 1000 + 60_000)
    ok = await demo.post(f"/api/storage/upload?token={valid}", content=b"in time")
    assert ok.status_code == 200
    assert len(await query(demo, "files:stored")) == 1
    assert len(await stored(demo_server)) == before + 1


async def test_an_oversize_upload_with_content_length_is_refused_before_reading(
    demo: httpx.AsyncClient, small_limit_server: ServerProcess
) -> None:
    before = len(await stored(small_limit_server))
    async with httpx.AsyncClient(base_url=small_limit_server.url, timeout=30) as client:
        url = await mutation(client, "files:generate_upload_url")
        r = await client.post(url, content=b"x" * (SMALL_LIMIT + 1))
        assert r.status_code == 413
        assert r.json()["code"] == "FileTooLarge"
        exact = await client.post(url, content=b"x" * SMALL_LIMIT)
        assert exact.status_code == 200
        assert (await query(client, "files:stored"))[0]["size"] == SMALL_LIMIT
    assert len(await stored(small_limit_server)) == before + 1


async def test_an_oversize_streamed_upload_is_refused_and_leaves_no_chunks(
    demo: httpx.AsyncClient, small_limit_server: ServerProcess
) -> None:
    before = len(await stored(small_limit_server))

    async def body() -> AsyncIterator[bytes]:
        for _ in range(40):  # 2.5 MiB in 64 KiB pieces, no Content-Length
            yield os.urandom(64 * 1024)

    async with httpx.AsyncClient(base_url=small_limit_server.url, timeout=30) as client:
        url = await mutation(client, "files:generate_upload_url")
        r = await client.post(url, content=body())
        assert r.status_code == 413
        assert "upload limit of 1048576 bytes" in r.json()["message"]
        await _nothing_stored(client, small_limit_server, before)


async def test_bad_content_types_and_lengths_are_refused(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    before = len(await stored(demo_server))
    url = await mutation(demo, "files:generate_upload_url")
    for headers in [
        {"Content-Type": "text/" + "x" * 300},
        {"Content-Type": "text/plain\x7f"},
    ]:
        r = await demo.post(url, content=b"data", headers=headers)
        assert r.status_code == 400, headers
    await _nothing_stored(demo, demo_server, before)


async def test_an_abandoned_upload_leaves_no_chunks(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    on_s3 = demo_server.env.get("CONVECT_STORAGE") == "s3"
    before = len(await stored(demo_server))
    chunks = await blob_chunks(demo_server.env["DATABASE_URL"])
    url = httpx.URL(await mutation(demo, "files:generate_upload_url"))
    _reader, writer = await asyncio.open_connection(url.host, url.port)
    head = (
        f"POST {url.raw_path.decode()} HTTP/1.1\r\nHost: {url.host}\r\n"
        f"Content-Length: {40 * 1024 * 1024}\r\n\r\n"
    )
    writer.write(head.encode() + os.urandom(20 * 1024 * 1024))
    await writer.drain()
    for _ in range(50):  # the first chunks (parts) are written while the rest is awaited
        if on_s3 and await uploads_in_progress(demo_server.env):
            break
        if not on_s3 and await blob_chunks(demo_server.env["DATABASE_URL"]) > chunks:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("nothing of the upload was written while it went on")
    writer.close()
    await writer.wait_closed()
    for _ in range(50):
        if not on_s3 and await blob_chunks(demo_server.env["DATABASE_URL"]) == chunks:
            break
        if on_s3 and not await uploads_in_progress(demo_server.env):
            break
        await asyncio.sleep(0.1)
    await _nothing_stored(demo, demo_server, before)
    assert await blob_chunks(demo_server.env["DATABASE_URL"]) == chunks
    if on_s3:
        assert await uploads_in_progress(demo_server.env) == 0  # the multipart upload aborted


async def test_an_oversize_body_an_http_action_stores_is_its_uncaught_error_and_stores_nothing(
    small_limit_server: ServerProcess,
) -> None:
    # As Convex: a storage error the handler does not catch is a 500 like any other.
    before = len(await stored(small_limit_server))
    async with httpx.AsyncClient(base_url=small_limit_server.site_url, timeout=60) as site:
        r = await site.post("/files", content=os.urandom(SMALL_LIMIT + 1))
    assert r.status_code == 500
    assert re.fullmatch(r"\[Request ID: [0-9a-f]{16}\] Server Error", r.json()["code"]), r.text
    assert len(await stored(small_limit_server)) == before


async def test_an_upload_url_from_one_process_works_on_another(
    demo: httpx.AsyncClient, demo_server: ServerProcess, small_limit_server: ServerProcess
) -> None:
    url = await mutation(demo, "files:generate_upload_url")
    other = url.replace(demo_server.url, small_limit_server.url)
    r = await demo.post(other, content=b"shared secret")
    assert r.status_code == 200
    stored = await query(demo, "files:stored")
    assert [d["_id"] for d in stored] == [r.json()["storageId"]]
