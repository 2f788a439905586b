"""Bounds on what a client can make a listener hold: the request head and buffered bodies.

uvicorn's httptools protocol buffers a request line and headers of any size; this one
answers 431 once the head of a request passes `MAX_HEAD_BYTES`. HTTP actions get a
request whose buffered body (`body()`, `json()`) stops at `MAX_ACTION_BODY_BYTES`
(Convex's HTTP action limit); `stream()` stays unbounded for handlers that stream.
"""

from __future__ import annotations

from starlette.requests import Request
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bound on a request's line and headers."""

    _in_head = False
    _head_bytes = 0

    def on_message_begin(self) -> None:
        """A request starts: count its head."""
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0

    def on_headers_complete(self) -> None:
        """The head is complete: stop counting."""
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        """Feed the parser; refuse a head that is still incomplete past the bound."""
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._in_head = False
                self.transport.write(_431)
                self.transport.close()


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
