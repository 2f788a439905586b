"""Request size limits on every listener: heads, bodies, arguments and frames.

The API listener, the site listener (HTTP actions) and the sync socket each bound what
one request can make the server hold, and a refused request writes nothing
(app/http/limits.py, app/http/api.py, app/sync/socket.py).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.reliability.hostile import Fingerprint
from tests.support.servers import ServerProcess
from tests.support.ws import SyncClient


def _send_head(port: int, header_bytes: int) -> bytes:
    """Send a request head with one huge header, 64 KiB at a time; what came back."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        sent = 0
        while sent < header_bytes:
            s.sendall(b"a" * 65536)
            sent += 65536
        s.sendall(b"\r\n\r\n")
        return s.recv(200)
    except (ConnectionResetError, BrokenPipeError):
        return b"<reset>"
    finally:
        s.close()


async def test_every_listener_bounds_request_heads_bodies_and_frames(
    kitchen_target: ServerProcess,
) -> None:
    server = kitchen_target
    fp = await Fingerprint.open(server.env["DATABASE_URL"])
    before = await fp.take()
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=60) as api,
        httpx.AsyncClient(base_url=server.site_url, timeout=60) as site,
    ):
        # Request heads: 1 MiB (plus at most one read) on both listeners.
        for port in (server.port, server.site_port):
            small = await asyncio.to_thread(_send_head, port, 64 * 1024)
            assert small.startswith(b"HTTP/1.1 ") and not small.startswith(b"HTTP/1.1 431")
            big = await asyncio.to_thread(_send_head, port, 4 * 1024 * 1024)
            assert big.startswith(b"HTTP/1.1 431") or big in (b"<reset>", b""), big
        # API: 8 MiB of arguments (every endpoint: tests/core/test_hostile_input.py).
        r = await api.post("/api/mutation", json={"path": "core_db:insert", "args": {
            "table": "core_things", "doc": {"a": "x" * (8 * 1024 * 1024)}}})  # fmt: skip
        assert r.status_code == 413 and r.json()["code"] == "ArgumentsTooLarge"
        # Site: a buffered body stops at 20 MiB; a streamed one is the handler's to bound.
        ok = await site.post("/kitchen/buffered", content=b"x" * (1024 * 1024))
        assert ok.json() == {"size": 1024 * 1024}
        r = await site.post("/kitchen/buffered", content=b"x" * (21 * 1024 * 1024))
        assert r.status_code == 413 and r.json()["code"] == "BodyTooLarge", r.text

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(21):
                yield b"x" * (1024 * 1024)

        r = await site.post("/kitchen/buffered", content=chunks())  # no Content-Length
        assert r.status_code == 413
        streamed = await site.post("/kitchen/digest", content=chunks())
        assert streamed.json()["size"] == 21 * 1024 * 1024
        # Sockets: arguments over 8 MiB fail the call; frames over 16 MiB close the socket.
        c = await SyncClient.open(server.url)
        big_args = {"table": "core_things", "doc": {"a": "x" * (9 * 1024 * 1024)}}
        await c.send({"type": "Mutation", "requestId": 0, "udfPath": "core_db:insert",
                      "args": [big_args]})  # fmt: skip
        r = await c.recv_type("MutationResponse", timeout=30)
        assert r["success"] is False and "Arguments exceed 8388608 bytes" in r["result"]
        qid = await c.add("core_tx:echo", {"value": "y" * (9 * 1024 * 1024)})
        await c.wait_query_set(timeout=30)
        assert "Arguments exceed" in c.results[qid]["errorMessage"]
        with pytest.raises(ConnectionClosed) as closed:
            await c.conn.send("z" * (17 * 1024 * 1024))
            await c.recv(timeout=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        assert await fp.take() == before  # nothing refused above wrote anything
        await fp.close()
        assert server.proc.poll() is None
