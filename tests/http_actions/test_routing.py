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
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    body = r.json()
    match = re.fullmatch(
        r"\[Request ID: ([0-9a-f]{16})\] Server Error: Uncaught RuntimeError: kaboom: internal "
        r"detail",
        body["code"],
    )
    assert match, body
    assert body["trace"].startswith("Uncaught RuntimeError: kaboom: internal detail\n    at boom (")
    assert match.group(1) in kitchen_server.log()
    bad = await site.get("/kitchen/not-a-response")
    assert bad.status_code == 500
    assert bad.json()["code"].startswith("[Request ID: ")
    storage = await site.get("/kitchen/bad-storage-id")
    assert storage.status_code == 500
    assert "Uncaught Error: Invalid storage ID" in storage.json()["code"]


async def test_in_prod_a_failing_handler_shows_only_the_request_id(
    prod_site: httpx.AsyncClient, kitchen_prod_server: ServerProcess
) -> None:
    r = await prod_site.get("/kitchen/boom")
    assert r.status_code == 500
    assert re.fullmatch(r"\[Request ID: [0-9a-f]{16}\] Server Error", r.json()["code"]), r.text
    assert set(r.json()) == {"code"} and "kaboom" not in r.text
    custom = await prod_site.get("/kitchen/failer_custom")
    assert (custom.status_code, custom.json()["data"]) == (500, "Hello world!")
    assert set(custom.json()) == {"code", "data"}
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


async def test_a_bad_bearer_token_runs_the_handler_and_fails_only_when_it_asks_who_calls(
    prod_site: httpx.AsyncClient, kitchen_prod_server: ServerProcess
) -> None:
    # As Convex: the handler runs whatever the header holds; `get_user_identity()` raises.
    marker = uuid.uuid4().hex
    bad_tokens = {
        "wrong signature": make_token("user-7", secret="x" * 40),
        "expired": make_token("user-7", expires_in=-60),
        "junk": "junk",
    }
    for why, bad in bad_tokens.items():
        headers = {"Authorization": f"Bearer {bad}", "Origin": "https://app.example"}
        r = await prod_site.post("/kitchen/record", content=marker, headers=headers)
        assert r.status_code == 500, (why, r.text)
        assert r.headers["content-type"] == "application/json"
        assert re.fullmatch(r"\{\"code\":\"\[Request ID: [0-9a-f]{16}\] Server Error\"\}", r.text)
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        hook = await prod_site.post("/kitchen/webhook", headers=headers)
        assert hook.json() == {"authorization": f"Bearer {bad}"}, why
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


async def test_a_rejected_header_is_named_by_get_user_identity_in_dev(
    site: httpx.AsyncClient,
) -> None:
    # This server has no auth providers: a token is read, then no provider takes it.
    token = make_token("user-7")
    r = await site.get("/kitchen/whoami", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 500
    body = r.json()
    assert body["code"].endswith(
        "Server Error: Uncaught AuthenticationError: No auth provider found matching the "
        "given token (no providers configured). Check functions/auth_config.py."
    ), body
    junk = await site.get("/kitchen/whoami", headers={"Authorization": "Bearer junk"})
    assert "Uncaught AuthenticationError: Could not parse JWT payload." in junk.json()["code"]
    assert "    at whoami (kitchen/http.py:" in body["trace"]
    basic = await site.get("/kitchen/whoami", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert basic.json()["code"].endswith("Uncaught AuthenticationError: Invalid admin key")


async def test_the_admin_key_and_other_schemes_on_the_site(prod_site: httpx.AsyncClient) -> None:
    # The admin key runs the handler (anonymously, or as the identity it acts as).
    admin = await prod_site.get("/kitchen/whoami", headers={"Authorization": f"Convex {ADMIN_KEY}"})
    assert (admin.status_code, admin.json()) == (200, None)
    acting = base64.b64encode(json.dumps({"subject": "s", "issuer": "i"}).encode()).decode()
    r = await prod_site.get(
        "/kitchen/whoami", headers={"Authorization": f"Convex {ADMIN_KEY}:{acting}"}
    )
    assert r.json() == {"subject": "s", "issuer": "i"}
    # A wrong admin key, or another scheme, fails the handler that asks who calls ...
    for header in ("Convex wrong", "Basic dXNlcjpwdw==", "x"):
        wrong = await prod_site.get("/kitchen/whoami", headers={"Authorization": header})
        assert wrong.status_code == 500, header
    # ... and not a webhook that reads the header itself.
    basic = await prod_site.post(
        "/kitchen/webhook", headers={"Authorization": "Basic dXNlcjpwdw=="}
    )
    assert (basic.status_code, basic.json()) == (200, {"authorization": "Basic dXNlcjpwdw=="})


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
