"""Call functions over the Convex HTTP API in tests."""

from __future__ import annotations

import re
from typing import Any

import httpx

from app.values import decode_value, encode_value


class CallFailed(Exception):
    """A function returned `{"status": "error"}`."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body.get("errorMessage"))
        self.body = body
        self.data = decode_value(body["errorData"]) if "errorData" in body else None


async def call(
    client: httpx.AsyncClient,
    kind: str,
    path: str,
    args: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """Run a function; return its decoded value or raise CallFailed."""
    r = await client.post(
        f"/api/{kind}",
        json={"path": path, "args": [encode_value(args or {})], "format": "convex_encoded_json"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    if body["status"] != "success":
        raise CallFailed(body)
    return decode_value(body["value"])


async def query(
    client: httpx.AsyncClient, path: str, args: dict[str, Any] | None = None, **kw: Any
) -> Any:
    """Run a query."""
    return await call(client, "query", path, args, **kw)


async def mutation(
    client: httpx.AsyncClient, path: str, args: dict[str, Any] | None = None, **kw: Any
) -> Any:
    """Run a mutation."""
    return await call(client, "mutation", path, args, **kw)


async def action(
    client: httpx.AsyncClient, path: str, args: dict[str, Any] | None = None, **kw: Any
) -> Any:
    """Run an action."""
    return await call(client, "action", path, args, **kw)


_SERVER_ERROR = re.compile(r"^\[Request ID: [0-9a-f]{16}\] Server Error\n")


def error_text(message: str) -> str:
    """A failure's `errorMessage` without Convex's framing: the `[Request ID: …] Server
    Error` line (asserted) and the final newline."""
    assert _SERVER_ERROR.match(message), message
    return _SERVER_ERROR.sub("", message).removesuffix("\n")
