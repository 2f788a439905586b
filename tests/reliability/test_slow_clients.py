"""Slow and idle clients: a request head must arrive in time, and idle connections close.

Each listener closes a connection that has not sent a whole request head within
CONVECT_HEADER_TIMEOUT of opening (or of starting the request): 408 if a head had begun.
Here the timeout is 1 s, so the slowloris connections are gone within about 2 s while
ordinary calls keep answering.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import DEMO
from tests.support.servers import ServerProcess, served_app

SLOW = 150  # connections per listener (the reliability note has the 2,000-connection run)


@pytest.fixture(scope="module")
def quick_timeouts(services: dict[str, str], data_dir: Path) -> Iterator[ServerProcess]:
    """The demo app with a 1 s header timeout and a 1 s keep-alive timeout."""
    with served_app(
        services,
        "rel_slow",
        DEMO,
        data_dir / "rel-slow",
        CONVECT_HEADER_TIMEOUT="1",
        CONVECT_KEEP_ALIVE_TIMEOUT="1",
    ) as server:
        yield server


async def _slow(port: int, head: bytes) -> tuple[bytes, float]:
    """Open a connection, send `head` (never finished), read until the server closes."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    return answer, time.monotonic() - started


async def test_slowloris_connections_are_closed_while_calls_keep_answering(
    quick_timeouts: ServerProcess,
) -> None:
    server = quick_timeouts
    partial = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
    attacks = [
        asyncio.ensure_future(_slow(port, head))
        for port in (server.port, server.site_port)
        for head in (partial, b"")  # a head begun and never ended; nothing at all
        for _ in range(SLOW // 2)
    ]
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
        for _ in range(5):  # ordinary calls meanwhile, in their usual time
            started = time.monotonic()
            r = await client.post("/api/query", json={"path": "messages:list", "args": {}})
            assert r.status_code == 200 and time.monotonic() - started < 1.0
            await asyncio.sleep(0.1)
    results = await asyncio.gather(*attacks)
    for answer, took in results:
        assert took < 3.0  # closed by the server, within the 1 s timeout (and scheduling)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408 ")
    begun = [a for a, _ in results if a]
    assert len(begun) == SLOW  # every begun head was told why


async def test_an_idle_keep_alive_connection_is_closed(quick_timeouts: ServerProcess) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", quick_timeouts.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.read(), 10)  # the response, then EOF
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert time.monotonic() - started < 3.0
    finally:
        writer.close()


async def test_bytes_that_begin_no_request_do_not_keep_a_connection_open(
    quick_timeouts: ServerProcess,
) -> None:
    # A bare CRLF after a response stops the keep-alive timer and begins no request
    # head (the parser skips it): the connection must still be closed in time.
    reader, writer = await asyncio.open_connection("127.0.0.1", quick_timeouts.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        started = time.monotonic()
        writer.write(b"\r\n")
        await writer.drain()
        rest = await asyncio.wait_for(reader.read(), 10)  # EOF when the server closes
        assert rest == b""
        assert time.monotonic() - started < 3.0
    finally:
        writer.close()
