"""Turn what a caller hands to `store` into metered, fixed-size chunks."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any

from app.storage.errors import FileTooLarge, StorageError

BYTES_LIKE = (bytes, bytearray, memoryview)


async def _pieces(source: Any) -> AsyncIterator[Any]:
    if isinstance(source, BYTES_LIKE):
        yield source
    elif isinstance(source, AsyncIterable):
        async for piece in source:
            yield piece
    elif isinstance(source, Iterable) and not isinstance(source, str | dict):
        for piece in source:
            yield piece
    else:
        raise StorageError(
            "store() takes bytes, a stored file, or an (async) iterable of bytes, "
            f"not {type(source).__name__}"
        )


class Meter:
    """Counts, hashes and re-chunks a stream, refusing more than `limit` bytes."""

    def __init__(self, limit: int, chunk_size: int) -> None:
        self.limit = limit
        self.chunk_size = chunk_size
        self.size = 0
        self._hash = hashlib.sha256()

    @property
    def sha256(self) -> str:
        """Hex sha256 of everything seen so far."""
        return self._hash.hexdigest()

    @property
    def digest(self) -> bytes:
        """The sha256 of everything seen so far."""
        return self._hash.digest()

    def _take(self, piece: Any) -> memoryview:
        if not isinstance(piece, BYTES_LIKE):
            raise StorageError(
                f"A file's stream must yield bytes, got a {type(piece).__name__} piece"
            )
        view = memoryview(piece).cast("B")
        self.size += len(view)
        if self.size > self.limit:
            raise FileTooLarge(f"The file exceeds the upload limit of {self.limit} bytes")
        self._hash.update(view)
        return view

    async def chunks(self, source: Any) -> AsyncIterator[bytes]:
        """The source's bytes in chunks of exactly `chunk_size` (the last one shorter)."""
        size = self.chunk_size
        buf = bytearray()
        async for piece in _pieces(source):
            view = self._take(piece)
            while len(view):
                room = size - len(buf)
                if not buf and len(view) >= size:
                    yield bytes(view[:size])
                    view = view[size:]
                    continue
                buf += view[:room]
                view = view[room:]
                if len(buf) == size:
                    yield bytes(buf)
                    buf = bytearray()
        if buf:
            yield bytes(buf)
