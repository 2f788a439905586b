"""A response's head and body leave the server in one send (one TCP segment), in order."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from app.http.coalesce import MAX_QUEUED, CoalescingWrites
from tests.support.servers import ServerProcess

REQUEST = (
    b"POST /api/query HTTP/1.1\r\nHost: t\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n%s"
)
TCPI_SEGS_IN = 140  # offset of tcpi_segs_in in Linux's struct tcp_info


def _segments_in(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int(struct.unpack_from("I", info, TCPI_SEGS_IN)[0])


def _request(body: bytes) -> bytes:
    return REQUEST % (len(body), body)


def _read_responses(sock: socket.socket, count: int) -> list[bytes]:
    """`count` whole responses (each has a content-length) from `sock`."""
    buf, out = b"", []
    while len(out) < count:
        while True:
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                break
            head = buf[:head_end].lower()
            length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
            end = head_end + 4 + length
            if len(buf) < end:
                break
            out.append(buf[:end])
            buf = buf[end:]
        if len(out) < count:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection"
            buf += chunk
    return out


def _connect(server: ServerProcess) -> socket.socket:
    url = urlsplit(server.url)
    sock = socket.create_connection((url.hostname, url.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def test_each_response_arrives_as_one_segment(demo_server: ServerProcess) -> None:
    body = b'{"path": "messages:list", "args": {}}'
    with _connect(demo_server) as sock:
        sock.sendall(_request(body))
        _read_responses(sock, 1)  # warm: the function is loaded, the result cached
        time.sleep(0.1)
        before = _segments_in(sock)
        n = 50
        for _ in range(n):
            sock.sendall(_request(body))
            [response] = _read_responses(sock, 1)
            assert response.startswith(b"HTTP/1.1 200")
        segments = _segments_in(sock) - before
    # Head and body in one segment each (the ACK of the request rides on it): two
    # sends per response gave 2 segments a response.
    assert segments <= 1.3 * n, f"{segments} segments for {n} responses"


def test_pipelined_requests_are_answered_in_order(demo_server: ServerProcess) -> None:
    bodies = [b'{"path": "messages:list", "args": {}}', b'{"path": "nope:none", "args": {}}'] * 5
    with _connect(demo_server) as sock:
        sock.sendall(b"".join(_request(b) for b in bodies))
        responses = _read_responses(sock, len(bodies))
    for body, response in zip(bodies, responses, strict=True):
        if b"nope" in body:
            assert b"Could not find" in response or b"not found" in response.lower(), response
        else:
            assert b'"status":"success"' in response, response


async def test_a_closing_response_is_sent_whole_before_the_close(
    demo_server: ServerProcess,
) -> None:
    url = urlsplit(demo_server.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    body = b'{"path": "messages:list", "args": {}}'
    writer.write(
        b"POST /api/query HTTP/1.1\r\nHost: t\r\nconnection: close\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    )
    data = await asyncio.wait_for(reader.read(), 10)  # until the server closes
    writer.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    assert head.startswith(b"HTTP/1.1 200") and len(rest) == length


Pair = tuple[CoalescingWrites, asyncio.Transport, socket.socket]


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    """A real transport on one end of a socket pair, wrapped; the other end to read."""
    ours, peer = socket.socketpair()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    peer.setblocking(False)
    try:
        yield CoalescingWrites(transport, loop), transport, peer
    finally:
        transport.close()
        peer.close()


async def _next_turns() -> None:
    """Let the queued flush run."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_small_writes_wait_for_the_end_of_the_turn_and_go_out_together(pair: Pair) -> None:
    writes, _, peer = pair
    writes.write(b"head ")
    writes.write(bytearray(b"body"))
    with pytest.raises(BlockingIOError):
        peer.recv(100)  # nothing sent within the turn
    await _next_turns()
    assert peer.recv(100) == b"head body"


async def test_a_large_write_goes_to_the_transport_at_once_behind_what_is_queued(
    pair: Pair,
) -> None:
    # So the transport's flow control sees it: a streamed response to a client that
    # does not read is paused, not queued here whole (each chunk within one turn).
    writes, transport, peer = pair
    writes.write(b"head")
    big = b"x" * (MAX_QUEUED + 1)
    writes.write(big)
    got = peer.recv(1 << 20)
    assert got.startswith(b"headx")
    for _ in range(40):  # a producer that never yields: the transport holds the rest
        writes.write(big)
    assert writes.get_write_buffer_size() == transport.get_write_buffer_size() > 0


async def test_a_mutable_buffer_is_copied_when_queued(pair: Pair) -> None:
    writes, _, peer = pair
    buffer = bytearray(b"abc")
    writes.write(buffer)
    buffer[:] = b"zzz"  # reused by its owner after the write returned
    await _next_turns()
    assert peer.recv(100) == b"abc"
