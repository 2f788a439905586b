"""The blob backend interface: where file contents live (metadata is always `_storage`).

PostgreSQL (`app.storage.postgres`) is the default. An S3-compatible backend implements
the same five methods (plus `open`/`close` where it connects): `put` streams an object, `read` issues ranged GETs, `delete`
returns a callback that removes the object after the deleting transaction commits.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable

from app.db.transaction import Tx

AfterCommit = Callable[[], Awaitable[None]]
CHUNK_SIZE = 1024 * 1024


class BlobBackend(ABC):
    """Stores, reads and deletes the bytes of files by storage id."""

    chunk_size: int = CHUNK_SIZE

    @abstractmethod
    async def put(self, storage_id: str, chunks: AsyncIterable[bytes]) -> None:
        """Store a blob from chunks of at most `chunk_size` bytes.

        On any error (including one raised by `chunks`) nothing of the blob remains
        and the error propagates.
        """

    @abstractmethod
    def read(self, storage_id: str, start: int, stop: int) -> AsyncIterator[bytes]:
        """Bytes `[start, stop)` of a stored blob, in pieces of bounded size."""

    @abstractmethod
    async def delete(self, tx: Tx, storage_id: str) -> AfterCommit | None:
        """Delete a blob as part of `tx`: inside it, or by returning an after-commit callback."""

    @abstractmethod
    async def discard(self, storage_id: str) -> None:
        """Remove whatever exists of a blob now (a store that failed before committing)."""

    @abstractmethod
    async def sweep(self, older_than_s: float) -> int:
        """Remove leftovers of stores that never committed (a crashed process); return a count."""

    async def open(self) -> None:
        """Connect to the store, if it needs connecting (default: nothing)."""
        return None

    async def close(self) -> None:
        """Release what `open` took (default: nothing)."""
        return None


class BlobMissing(RuntimeError):
    """A blob's bytes vanished while they were read (the file was deleted meanwhile)."""
