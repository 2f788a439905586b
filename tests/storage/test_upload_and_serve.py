"""Upload URLs and file serving over real HTTP against the demo server."""

from __future__ import annotations

import base64
import hashlib
import os

import httpx

from tests.storage.conftest import gone, stored, upload
from tests.support.calls import action, mutation, query
from tests.support.servers import ServerProcess


async def test_an_uploaded_file_is_served_back_with_its_metadata(
    demo: httpx.AsyncClient,
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    storage_id = await upload(demo, data, "image/png")
    file_id = await mutation(demo, "files:save", {"name": "a.png", "storageId": storage_id})
    doc = await query(demo, "files:get", {"id": file_id})
    assert doc["url"] == f"{demo.base_url}/api/storage/{storage_id}"
    r = await demo.get(doc["url"])
    assert r.status_code == 200
    assert r.content == data
    sha = hashlib.sha256(data).hexdigest()
    sha_b64 = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-length"] == str(len(data))
    assert r.headers["etag"] == f'"{sha}"'
    assert (
        r.headers["digest"] == "sha-256=" + base64.b64encode(hashlib.sha256(data).digest()).decode()
    )
    assert r.headers["cache-control"] == "private, max-age=2592000"  # Convex's, no immutable
    assert r.headers["accept-ranges"] == "bytes"
    [system_doc] = await query(demo, "files:stored")
    assert system_doc["_id"] == storage_id
    assert system_doc["sha256"] == sha_b64  # base64 in _storage, as Convex
    assert system_doc["size"] == len(data)
    assert system_doc["contentType"] == "image/png"
    assert isinstance(system_doc["_creationTime"], float)
    meta = await query(demo, "files:metadata", {"storageId": storage_id})
    assert meta == {
        "storageId": storage_id,
        "sha256": sha,
        "size": len(data),
        "contentType": "image/png",
    }


async def test_a_file_uploaded_without_a_content_type_is_served_as_octet_stream(
    demo: httpx.AsyncClient,
) -> None:
    storage_id = await upload(demo, b"raw", content_type=None)
    meta = await query(demo, "files:metadata", {"storageId": storage_id})
    assert meta["contentType"] is None
    r = await demo.get(f"/api/storage/{storage_id}")
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.content == b"raw"


async def test_an_empty_file_can_be_stored_and_served(demo: httpx.AsyncClient) -> None:
    storage_id = await upload(demo, b"", "text/plain")
    r = await demo.get(f"/api/storage/{storage_id}")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["etag"] == f'"{hashlib.sha256(b"").hexdigest()}"'
    for header in ("bytes=0-0", "bytes=0-"):  # Convex: the whole (empty) file, 200
        ranged = await demo.get(f"/api/storage/{storage_id}", headers={"Range": header})
        assert (ranged.status_code, ranged.content) == (200, b""), header
        assert "content-range" not in ranged.headers


async def test_head_gives_the_headers_without_the_body(demo: httpx.AsyncClient) -> None:
    storage_id = await upload(demo, b"x" * 1000, "text/plain")
    r = await demo.head(f"/api/storage/{storage_id}")
    assert r.status_code == 200
    assert r.headers["content-length"] == "1000"
    assert r.headers["content-type"] == "text/plain"
    assert r.content == b""


async def test_range_requests_return_the_asked_bytes_with_206(demo: httpx.AsyncClient) -> None:
    data = os.urandom(2 * 1024 * 1024 + 500)  # three chunks; ranges cross chunk borders
    storage_id = await upload(demo, data)
    url = f"/api/storage/{storage_id}"
    size = len(data)
    cases = {
        "bytes=0-0": (0, 1),
        "bytes=10-19": (10, 20),
        "bytes=1048570-1048600": (1048570, 1048601),
        "bytes=1048576-": (1048576, size),
        "bytes=-100": (size - 100, size),
        f"bytes=100-{size * 10}": (100, size),
        "bytes=-99999999999": (0, size),
        "bytes=0-2097151": (0, 2097152),
    }
    for header, (start, stop) in cases.items():
        r = await demo.get(url, headers={"Range": header})
        assert r.status_code == 206, header
        assert r.content == data[start:stop], header
        assert r.headers["content-range"] == f"bytes {start}-{stop - 1}/{size}", header
        assert r.headers["content-length"] == str(stop - start), header
    head = await demo.head(url, headers={"Range": "bytes=5-9"})
    assert (head.status_code, head.headers["content-length"]) == (206, "5")


async def test_unsatisfiable_or_malformed_ranges_get_416(demo: httpx.AsyncClient) -> None:
    storage_id = await upload(demo, b"0123456789")
    url = f"/api/storage/{storage_id}"
    for header in [
        "bytes=10-",
        "bytes=10-20",
        "bytes=5-2",
        "bytes=-0",
        "bytes=a-b",
        "bytes=-",
        "bytes=1-2-3",
        "bytes=" + "9" * 100,
    ]:
        r = await demo.get(url, headers={"Range": header})
        assert r.status_code == 416, header
        assert r.headers["content-range"] == "bytes */10", header


async def test_ranges_the_server_does_not_serve_give_the_whole_file(
    demo: httpx.AsyncClient,
) -> None:
    storage_id = await upload(demo, b"0123456789")
    url = f"/api/storage/{storage_id}"
    for header in ["items=0-1", "bytes=0-1,3-4", "garbage"]:
        r = await demo.get(url, headers={"Range": header})
        assert (r.status_code, r.content) == (200, b"0123456789"), header
    stale = await demo.get(url, headers={"Range": "bytes=0-1", "If-Range": '"other"'})
    assert (stale.status_code, stale.content) == (200, b"0123456789")
    etag = stale.headers["etag"]
    fresh = await demo.get(url, headers={"Range": "bytes=0-1", "If-Range": etag})
    assert (fresh.status_code, fresh.content) == (206, b"01")


async def test_if_none_match_with_the_etag_gives_304(demo: httpx.AsyncClient) -> None:
    storage_id = await upload(demo, b"cache me")
    url = f"/api/storage/{storage_id}"
    etag = (await demo.get(url)).headers["etag"]
    r = await demo.get(url, headers={"If-None-Match": f'W/"nope", {etag}'})
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] == etag
    assert (await demo.get(url, headers={"If-None-Match": '"nope"'})).status_code == 200


async def test_a_deleted_file_is_gone_everywhere(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    storage_id = await upload(demo, os.urandom(1024 * 1024 + 1))
    file_id = await mutation(demo, "files:save", {"name": "f", "storageId": storage_id})
    assert storage_id in await stored(demo_server)
    await mutation(demo, "files:remove", {"id": file_id})
    assert (await demo.get(f"/api/storage/{storage_id}")).status_code == 404
    assert await query(demo, "files:metadata", {"storageId": storage_id}) is None
    assert await query(demo, "files:stored") == []
    assert await gone(demo_server, storage_id)


async def test_unknown_and_malformed_ids_get_clear_errors(demo: httpx.AsyncClient) -> None:
    storage_id = await upload(demo, b"x")
    await action(demo, "files:delete_stored", {"storageId": storage_id})
    deleted = await demo.get(f"/api/storage/{storage_id}")
    assert deleted.status_code == 404
    assert deleted.json() == {"code": "FileNotFound", "message": f"File {storage_id} not found"}
    message_id = await mutation(demo, "messages:create", {"author": "a", "body": "b"})
    for bad in [message_id, "nope", "x" * 5000, "%00", "%FF%FE", storage_id.upper()]:
        r = await demo.get(f"/api/storage/{bad}")
        assert r.status_code == 400, bad
        assert r.json()["code"] == "InvalidStoragePath"
        assert r.json()["message"].startswith('Invalid storage path: "')
    traversal = await demo.get("/api/storage/..%2F..%2Fetc%2Fpasswd")
    assert traversal.status_code == 404


async def test_cors_lets_browsers_upload_and_fetch(demo: httpx.AsyncClient) -> None:
    url = await mutation(demo, "files:generate_upload_url")
    pre = await demo.options(
        url, headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "*"
    r = await demo.post(url, content=b"hi", headers={"Origin": "https://app.example"})
    assert r.headers["access-control-allow-origin"] == "*"
    got = await demo.get(f"/api/storage/{r.json()['storageId']}")
    assert got.headers["access-control-allow-origin"] == "*"


async def test_active_content_is_served_as_a_sandboxed_attachment_never_a_page(
    demo: httpx.AsyncClient,
) -> None:
    # An uploader's HTML or SVG would otherwise run script in the API's origin.
    page = b"<html><script>alert(document.cookie)</script></html>"
    for content_type in ("text/html; charset=utf-8", "image/svg+xml", "application/javascript"):
        storage_id = await upload(demo, page, content_type)
        r = await demo.get(f"/api/storage/{storage_id}")
        assert r.status_code == 200 and r.content == page
        assert r.headers["content-disposition"] == "attachment", content_type
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in r.headers["content-security-policy"]
    image = await upload(demo, b"\x89PNG\r\n\x1a\n", "image/png")
    r = await demo.get(f"/api/storage/{image}")
    assert "content-disposition" not in r.headers  # images stay inline
    assert "sandbox" in r.headers["content-security-policy"]


async def test_an_upload_url_takes_one_upload(demo: httpx.AsyncClient) -> None:
    url = await mutation(demo, "files:generate_upload_url")
    first = await demo.post(url, content=b"one", headers={"Content-Type": "text/plain"})
    assert first.status_code == 200
    again = await demo.post(url, content=b"two", headers={"Content-Type": "text/plain"})
    assert again.status_code == 401 and again.json()["code"] == "StorageTokenInvalid"
    assert "already used" in again.json()["message"]
    padded = await demo.post(url + "=", content=b"two", headers={"Content-Type": "text/plain"})
    assert padded.status_code == 401  # the same token written otherwise is the same token
    assert len(await query(demo, "files:stored")) == 1


async def test_an_upload_whose_digest_header_does_not_match_is_refused_and_not_stored(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    data = b"checked bytes"
    right = base64.b64encode(hashlib.sha256(data).digest()).decode()
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    before = await stored(demo_server)
    url = await mutation(demo, "files:generate_upload_url")
    r = await demo.post(url, content=data, headers={"Digest": f"sha-256={wrong}"})
    assert r.status_code == 400
    assert r.json() == {
        "code": "Sha256Mismatch",
        "message": f"Sha256 mismatch. Expected: {wrong} Actual: {right}",
    }
    assert await query(demo, "files:stored") == []
    assert await stored(demo_server) == before
    url = await mutation(demo, "files:generate_upload_url")
    bad = await demo.post(url, content=data, headers={"Digest": "md5=abc"})
    assert (bad.status_code, bad.json()["code"]) == (400, "BadHeader")
    url = await mutation(demo, "files:generate_upload_url")
    ok = await demo.post(url, content=data, headers={"Digest": f"sha-256={right}"})
    assert ok.status_code == 200
    [doc] = await query(demo, "files:stored")
    assert doc["sha256"] == right
