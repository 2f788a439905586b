"""Bounds on what a client can make a listener hold: the request head and buffered bodies.

uvicorn's httptools protocol buffers a request line and headers of any size, for as long
as the client takes; this one answers 431 once the head of a request passes
`MAX_HEAD_BYTES`, and 408 (closing the connection) when a connection has not sent a whole
head within the header timeout of opening it or of the read that began the request
(slowloris).
Idle keep-alive connections are closed by uvicorn's keep-alive timeout. HTTP actions get a
request whose buffered body (`body()`, `json()`) stops at `MAX_ACTION_BODY_BYTES`
(Convex's HTTP action limit); `stream()` stays unbounded for handlers that stream.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.http.coalesce import CoalescingWrites

__all__ = ["MAX_ACTION_BODY_BYTES", "MAX_HEAD_BYTES", "BodyTooLarge", "BoundedHttpToolsProtocol",
           "BoundedRequest"]  # fmt: skip

# Counted per read (asyncio reads up to 256 KiB at a time), so a head is refused between
# MAX_HEAD_BYTES and MAX_HEAD_BYTES + 256 KiB.
MAX_HEAD_BYTES = 1024 * 1024
MAX_ACTION_BODY_BYTES = 20 * 1024 * 1024
_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 31\r\nconnection: close\r\n\r\nRequest header fields too large"
)


HEADER_TIMEOUT_S = 10.0  # the default of CONVECT_HEADER_TIMEOUT
_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 15\r\nconnection: close\r\n\r\nRequest Timeout"
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounds on a request's head: its size and its time.

    The header timeout comes from `config.header_timeout` (set by app/serve.py). Its
    writes go through `CoalescingWrites` (a response's head and body in one send) until
    the connection becomes a WebSocket.
    """

    _in_head = False
    _upgraded = False  # the connection became a WebSocket: none of this applies any more
    _head_bytes = 0
    _head_timer: asyncio.TimerHandle | None = None

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._header_timeout = float(getattr(config, "header_timeout", HEADER_TIMEOUT_S))

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """A connection opens: its first request's head is due within the timeout."""
        super().connection_made(transport)
        self.transport = CoalescingWrites(transport, self.loop)  # type: ignore[assignment]
        self._arm_head_timer()

    def handle_websocket_upgrade(self) -> None:
        """Hand the WebSocket protocol the real transport (what was queued goes first)."""
        self._upgraded = True
        self._disarm_head_timer()
        writes = self.transport
        if isinstance(writes, CoalescingWrites):
            writes.flush()
            self.transport = writes.transport
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the head timer with the connection."""
        self._disarm_head_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        """A request starts: count its head (timed from the end of this read, if it is
        still incomplete then: most heads arrive whole in one read and need no timer)."""
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0

    def on_headers_complete(self) -> None:
        """The head is complete: stop counting and timing."""
        self._in_head = False
        self._disarm_head_timer()
        super().on_headers_complete()

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self._header_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _serving(self) -> bool:
        """A request's head is complete and its response is not."""
        return self.cycle is not None and not self.cycle.response_complete and not self._in_head

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._upgraded or self.transport.is_closing() or self._serving():
            return  # a request is being served (or the connection is going anyway)
        if self._in_head:
            self.transport.write(_408)
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        """Feed the parser; refuse a head that is still incomplete past the bound."""
        super().data_received(data)
        if self._upgraded:
            return
        if self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._in_head = False
                self.transport.write(_431)
                self.transport.close()
            elif self._head_timer is None:
                self._arm_head_timer()
        elif self._head_timer is None and not self._serving() and not self.transport.is_closing():
            # Bytes that begin no request (a bare CRLF between requests, which the parser
            # skips) still stopped uvicorn's keep-alive timer: time the connection again.
            self._arm_head_timer()


class BodyTooLarge(Exception):
    """An HTTP action read a buffered body past `MAX_ACTION_BODY_BYTES` (answered 413)."""

    status = 413


class BoundedRequest(Request):
    """A Starlette request whose buffered body is bounded; `stream()` is not."""

    async def body(self) -> bytes:
        """The whole body, or BodyTooLarge past the bound."""
        if not hasattr(self, "_body"):
            length = self.headers.get("content-length", "")
            if length.isdigit() and int(length) > MAX_ACTION_BODY_BYTES:
                raise BodyTooLarge(f"The request body exceeds {MAX_ACTION_BODY_BYTES} bytes")
            chunks, size = [], 0
            async for chunk in self.stream():
                size += len(chunk)
                if size > MAX_ACTION_BODY_BYTES:
                    raise BodyTooLarge(f"The request body exceeds {MAX_ACTION_BODY_BYTES} bytes")
                chunks.append(chunk)
            self._body = b"".join(chunks)
        return self._body
