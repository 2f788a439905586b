"""The site listener: routing, errors, CORS, identity and streamed bodies (kitchen app)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator

import httpx
import psutil
import pytest

from tests.core.dbcheck import table_docs
from tests.http_actions.conftest import make_token
from tests.support.servers import ADMIN_KEY, ServerProcess

MiB = 1024 * 1024


@pytest.fixture
async def site(kitchen_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=kitchen_server.site_url, timeout=60) as client:
        yield client


@pytest.fixture
async def prod_site(kitchen_prod_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=kitchen_prod_server.site_url, timeout=60) as client:
        yield client


async def test_an_unknown_path_is_404_and_a_wrong_method_405(site: httpx.AsyncClient) -> None:
    missing = await site.get("/kitchen/nowhere")
    assert (missing.status_code, missing.text) == (404, "Not Found")
    wrong = await site.get("/kitchen/only-post")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    assert (await site.delete("/kitchen/prefix/x")).headers["allow"] == "GET, HEAD"
    assert (await site.post("/kitchen/only-post")).text == "posted"


async def test_prefix_routes_match_the_longest_prefix(site: httpx.AsyncClient) -> None:
    assert (await site.get("/kitchen/prefix/a/b")).text == "short:/kitchen/prefix/a/b"
    deeper = await site.get("/kitchen/prefix/deeper/x", params={"q": "1"})
    assert deeper.text == "long:/kitchen/prefix/deeper/x?q=1"
    assert (await site.get("/kitchen/prefix")).status_code == 404


async def test_head_runs_the_get_route_without_a_body(site: httpx.AsyncClient) -> None:
    r = await site.head("/kitchen/prefix/x")
    assert r.status_code == 200
    assert r.content == b""


async def test_a_failing_handler_gives_500_with_a_request_id_and_detail_in_dev(
    site: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    r = await site.get("/kitchen/boom")
    assert r.status_code == 500
    match = re.match(r"Server Error \[Request ID: ([0-9a-f]+)\]: RuntimeError: kaboom", r.text)
    assert match, r.text
    assert match.group(1) in kitchen_server.log()
    bad = await site.get("/kitchen/not-a-response")
    assert bad.status_code == 500
    assert bad.text.startswith("Server Error [Request ID: ")


async def test_in_prod_a_failing_handler_shows_only_the_request_id(
    prod_site: httpx.AsyncClient, kitchen_prod_server: ServerProcess
) -> None:
    r = await prod_site.get("/kitchen/boom")
    assert r.status_code == 500
    assert re.fullmatch(r"Server Error \[Request ID: [0-9a-f]+\]", r.text), r.text
    assert "kaboom" not in r.text
    assert "kaboom: internal detail" in kitchen_prod_server.log()


async def test_cors_headers_follow_the_routers_allowed_origins(site: httpx.AsyncClient) -> None:
    allowed = await site.get("/kitchen/prefix/x", headers={"Origin": "https://app.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert allowed.headers["vary"] == "Origin"
    other = await site.get("/kitchen/prefix/x", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight = await site.options(
        "/kitchen/only-post",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert "POST" in preflight.headers["access-control-allow-methods"]
    failed = await site.get("/kitchen/boom", headers={"Origin": "https://app.example"})
    assert failed.headers["access-control-allow-origin"] == "https://app.example"
    refused = await site.options(
        "/kitchen/only-post",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert refused.status_code == 405


async def test_a_router_without_cors_sends_no_cors_headers(demo_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=demo_server.site_url) as client:
        r = await client.get("/api/users", headers={"Origin": "https://app.example"})
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers


async def test_a_valid_bearer_token_gives_the_handler_an_identity(
    prod_site: httpx.AsyncClient,
) -> None:
    assert (await prod_site.get("/kitchen/whoami")).json() is None
    token = make_token("user-7")
    r = await prod_site.get("/kitchen/whoami", headers={"Authorization": f"Bearer {token}"})
    assert r.json() == {"subject": "user-7", "issuer": "https://issuer.http-actions.test"}


async def test_a_bad_bearer_token_is_a_401_and_runs_nothing(
    prod_site: httpx.AsyncClient, kitchen_prod_server: ServerProcess
) -> None:
    marker = uuid.uuid4().hex
    bad_tokens = {
        "wrong signature": make_token("user-7", secret="x" * 40),
        "expired": make_token("user-7", expires_in=-60),
        "junk": "junk",
    }
    for why, bad in bad_tokens.items():
        r = await prod_site.post(
            "/kitchen/record",
            content=marker,
            headers={"Authorization": f"Bearer {bad}", "Origin": "https://app.example"},
        )
        assert r.status_code == 401, (why, r.text)
        body = r.json()
        assert set(body) == {"code", "message"} and body["code"] == "Unauthenticated", body
        assert body["message"] and bad not in body["message"], (why, body)
        assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert await _events_with(kitchen_prod_server, marker) == []
    # No header: anonymous, as before; a valid token: the caller.
    assert (await prod_site.post("/kitchen/record", content=marker)).json() == f"anonymous:{marker}"
    ok = await prod_site.post(
        "/kitchen/record",
        content=marker,
        headers={"Authorization": f"Bearer {make_token('user-7')}"},
    )
    assert ok.json() == f"user-7:{marker}"
    assert await _events_with(kitchen_prod_server, marker) == [
        f"anonymous:{marker}",
        f"user-7:{marker}",
    ]


async def test_the_admin_key_and_other_schemes_on_the_site(prod_site: httpx.AsyncClient) -> None:
    # The admin key runs the handler (anonymously, or as the identity it acts as).
    admin = await prod_site.get("/kitchen/whoami", headers={"Authorization": f"Convex {ADMIN_KEY}"})
    assert (admin.status_code, admin.json()) == (200, None)
    acting = base64.b64encode(json.dumps({"subject": "s", "issuer": "i"}).encode()).decode()
    r = await prod_site.get(
        "/kitchen/whoami", headers={"Authorization": f"Convex {ADMIN_KEY}:{acting}"}
    )
    assert r.json() == {"subject": "s", "issuer": "i"}
    # A wrong admin key is refused like a bad token.
    wrong = await prod_site.get("/kitchen/whoami", headers={"Authorization": "Convex wrong"})
    assert (wrong.status_code, wrong.json()["code"]) == (401, "Unauthenticated")
    # Other schemes are the handler's own business (webhooks use Basic and the like).
    basic = await prod_site.get("/kitchen/whoami", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert (basic.status_code, basic.json()) == (200, None)


async def _events_with(server: ServerProcess, marker: str) -> list[str]:
    docs = await table_docs(server.env["DATABASE_URL"], "core_events")
    return [d["event"] for d in docs if d["event"].endswith(marker)]


async def test_a_large_body_streams_through_a_handler_without_growing_memory(
    site: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    piece = hashlib.sha256(b"piece").digest() * 8192  # 256 KiB
    count = 256  # 64 MiB
    process = psutil.Process(kitchen_server.proc.pid)
    await site.post("/kitchen/digest", content=piece * 8)  # warm up
    before = process.memory_info().rss

    async def body() -> AsyncIterator[bytes]:
        for _ in range(count):
            yield piece

    r = await site.post("/kitchen/digest", content=body())
    after = process.memory_info().rss
    expected = hashlib.sha256()
    for _ in range(count):
        expected.update(piece)
    assert r.json() == {"size": count * len(piece), "sha256": expected.hexdigest()}
    assert after - before < 32 * MiB, f"RSS grew by {(after - before) / MiB:.0f} MiB"
