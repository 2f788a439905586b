"""One send per response: a response's head and body, written in one loop turn, go out together.

uvicorn writes a response's status line and headers, then its body, as two
`transport.write` calls, and uvloop sends each at once: two `send` system calls and two
TCP segments per response. On loopback each send also runs the receiver's TCP stack in
the sender's time, so the second one costs the server as much again as the first.
`CoalescingWrites` stands in for the transport of each request's response cycle: small
writes made during one turn of the event loop are joined and sent at the end of that
turn. A write that would queue more than `MAX_QUEUED` bytes goes to the transport at
once (after what is queued), so its flow control still pauses a streamed response for
a client that does not read, and a big body is not copied to be joined.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

__all__ = ["MAX_QUEUED", "CoalescingWrites"]

MAX_QUEUED = 64 * 1024


class CoalescingWrites:
    """A transport's writes within one event-loop turn, sent as one (see module doc)."""

    __slots__ = ("_loop", "_pending", "_queued", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None
        self._queued = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue `data` (a copy, if mutable); the turn's writes are sent together when it
        ends. Past `MAX_QUEUED` bytes, what is queued and then `data` are sent now."""
        if type(data) is not bytes:
            data = bytes(data)
        if self._queued + len(data) > MAX_QUEUED:
            self.flush()
            self.transport.write(data)
            return
        if self._pending is None:
            self._pending = [data]
            self._loop.call_soon(self.flush)
        else:
            self._pending.append(data)
        self._queued += len(data)

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        """`write` each chunk."""
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        """Send what is queued now."""
        pending, self._pending = self._pending, None
        self._queued = 0
        if pending and not self.transport.is_closing():
            self.transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def write_eof(self) -> None:
        """Send what is queued, then end the stream."""
        self.flush()
        self.transport.write_eof()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Send what is queued, then hand the transport to `protocol`."""
        self.flush()
        self.transport.set_protocol(protocol)

    def is_closing(self) -> bool:
        """Whether the connection is closing."""
        return self.transport.is_closing()

    def close(self) -> None:
        """Send what is queued, then close."""
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        """Close at once, dropping what is queued."""
        self._pending = None
        self.transport.abort()

    def get_write_buffer_size(self) -> int:
        """Bytes not yet sent, queued here included."""
        queued = sum(len(chunk) for chunk in self._pending or ())
        return queued + self.transport.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)
