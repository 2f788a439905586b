"""The seed's two HTTP actions, over a real socket: a signed webhook and GET /api/users."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_HEADERS
from tests.support.calls import mutation, query
from tests.support.servers import ServerProcess

DEMO_SECRET = b"demo-webhook-secret"


def _signed(body: bytes, secret: bytes = DEMO_SECRET) -> dict[str, str]:
    return {
        "X-Signature": hmac.new(secret, body, hashlib.sha256).hexdigest(),
        "Content-Type": "application/json",
    }


@pytest.fixture
async def site(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=demo_server.site_url, timeout=30) as client:
        yield client


async def _events(demo: httpx.AsyncClient) -> list[dict]:
    events: list[dict] = await query(demo, "webhooks:recent", headers=ADMIN_HEADERS)
    return events


async def test_a_signed_webhook_runs_the_mutation(
    demo: httpx.AsyncClient, site: httpx.AsyncClient
) -> None:
    body = json.dumps({"type": "payment.succeeded", "data": {"amount": 42, "tags": ["a"]}}).encode()
    r = await site.post("/webhook", content=body, headers=_signed(body))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"success": True}
    [event] = await _events(demo)
    assert event["type"] == "payment.succeeded"
    assert event["data"] == {"amount": 42.0, "tags": ["a"]}
    prefixed = {**_signed(body), "X-Signature": "sha256=" + _signed(body)["X-Signature"]}
    assert (await site.post("/webhook", content=body, headers=prefixed)).status_code == 200
    assert len(await _events(demo)) == 2


async def test_unsigned_or_badly_signed_webhooks_are_refused_and_change_nothing(
    demo: httpx.AsyncClient, site: httpx.AsyncClient
) -> None:
    body = json.dumps({"type": "payment.succeeded"}).encode()
    good = _signed(body)["X-Signature"]
    cases: list[dict[str, Any]] = [
        {},
        {"X-Signature": ""},
        {"X-Signature": "0" * 64},
        {"X-Signature": good[:-1]},
        {"X-Signature": good.upper() + "00"},
        {"X-Signature": ("sha256=" + "é" * 64).encode("latin-1")},
        _signed(body, secret=b"another secret"),
        _signed(body + b" "),
    ]
    for headers in cases:
        r = await site.post("/webhook", content=body, headers=headers)
        assert r.status_code == 401, headers
        assert r.text == "Unauthorized"
    assert await _events(demo) == []
    # The mutation it calls is internal: a client cannot skip the signature check.
    r = await demo.post("/api/mutation", json={"path": "webhooks:process", "args": {"type": "x"}})
    assert r.json()["status"] == "error"
    assert await _events(demo) == []


async def test_signed_but_malformed_webhooks_get_400(
    demo: httpx.AsyncClient, site: httpx.AsyncClient
) -> None:
    for body in [b"not json", b"[1, 2]", b'{"data": 1}', b'{"type": 7}', b""]:
        r = await site.post("/webhook", content=body, headers=_signed(body))
        assert r.status_code == 400, body
    big = b"{" + b" " * (1024 * 1024) + b"}"
    assert (await site.post("/webhook", content=big, headers=_signed(big))).status_code == 413
    assert await _events(demo) == []


async def test_get_user_by_id_returns_the_user_as_json(
    demo: httpx.AsyncClient, site: httpx.AsyncClient
) -> None:
    user_id = await mutation(demo, "users:create", {"name": "Ada", "email": "ada@example.com"})
    r = await site.get("/api/users", params={"id": user_id})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    user = r.json()
    assert (user["_id"], user["name"], user["email"]) == (user_id, "Ada", "ada@example.com")
    assert isinstance(user["_creationTime"], float)


async def test_get_user_with_an_unknown_or_bad_id_gives_null_and_without_id_400(
    demo: httpx.AsyncClient, site: httpx.AsyncClient
) -> None:
    user_id = await mutation(demo, "users:create", {"name": "Ada"})
    message_id = await mutation(demo, "messages:create", {"author": "a", "body": "b"})
    for bad in ["nope", message_id, "x" * 3000, "'; DROP TABLE users; --"]:
        r = await site.get("/api/users", params={"id": bad})
        assert (r.status_code, r.json()) == (200, None), bad
    missing = await site.get("/api/users")
    assert missing.status_code == 400
    assert "id" in missing.json()["error"]
    assert (await site.get("/api/users", params={"id": user_id})).json()["name"] == "Ada"


async def test_user_routes_on_the_site_do_not_collide_with_the_function_api(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    async with httpx.AsyncClient(base_url=demo_server.url) as api:
        assert (await api.get("/api/users", params={"id": "x"})).status_code == 404
    async with httpx.AsyncClient(base_url=demo_server.site_url) as site:
        assert (await site.post("/api/query", json={"path": "users:get"})).status_code == 404
