"""The default blob backend: 1 MiB chunks in `_convect_blobs`, streamed both ways.

Chunks are written by short statements of their own, never one long transaction: an
upload as slow as its client then holds no pool connection and no transaction (which
would hold back the commit log's horizon). The `_storage` document that makes the file
exist is inserted afterwards in one short transaction; a failed store deletes its chunks,
and `sweep` removes chunks of processes that died mid-upload.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import asyncpg

from app.db.transaction import Tx
from app.storage.backend import AfterCommit, BlobBackend, BlobMissing

_INSERT = "INSERT INTO _convect_blobs (storage_id, seq, start, data) VALUES ($1, $2, $3, $4)"
_LAYOUT = (
    "SELECT seq, start, octet_length(data) AS n FROM _convect_blobs "
    "WHERE storage_id = $1 AND start < $2 ORDER BY seq"
)
_WHOLE = "SELECT data FROM _convect_blobs WHERE storage_id = $1 AND seq = $2"
_SLICE = (
    "SELECT substring(data FROM $3::int FOR $4::int) AS data FROM _convect_blobs "
    "WHERE storage_id = $1 AND seq = $2"
)


class PostgresBlobs(BlobBackend):
    """Blob chunks as `bytea` rows, stored out of line without compression."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def _insert(self, storage_id: str, seq: int, start: int, chunk: bytes) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(_INSERT, storage_id, seq, start, chunk)

    async def put(self, storage_id: str, chunks: AsyncIterable[bytes]) -> None:
        """Insert chunk after chunk; the next chunk is received while the last is written."""
        pending: asyncio.Task[None] | None = None
        seq = start = 0
        try:
            async for chunk in chunks:
                if pending is not None:
                    await pending
                pending = asyncio.ensure_future(self._insert(storage_id, seq, start, chunk))
                seq += 1
                start += len(chunk)
            if pending is not None:
                await pending
        except BaseException:
            if pending is not None and not pending.done():
                # Let an INSERT in flight finish, so that nothing lands after the cleanup.
                with contextlib.suppress(BaseException):
                    await asyncio.shield(pending)
            await asyncio.shield(self.discard(storage_id))
            raise

    async def _fetch(self, storage_id: str, seq: int, lo: int, hi: int, n: int) -> bytes:
        async with self.pool.acquire() as conn:
            if lo == 0 and hi == n:
                data = await conn.fetchval(_WHOLE, storage_id, seq)
            else:
                data = await conn.fetchval(_SLICE, storage_id, seq, lo + 1, hi - lo)
        if data is None:
            raise BlobMissing(f"chunk {seq} of {storage_id} is gone")
        return bytes(data)

    async def read(self, storage_id: str, start: int, stop: int) -> AsyncIterator[bytes]:
        """Fetch the chunks overlapping `[start, stop)`, one ahead of the consumer."""
        if stop <= start:
            return
        async with self.pool.acquire() as conn:
            layout = await conn.fetch(_LAYOUT, storage_id, stop)
        parts: list[tuple[int, int, int, int]] = []
        for row in layout:
            first, n = int(row["start"]), int(row["n"])
            if first + n <= start:
                continue
            lo, hi = max(start, first) - first, min(stop, first + n) - first
            parts.append((int(row["seq"]), lo, hi, n))
        covered = sum(hi - lo for _, lo, hi, _ in parts)
        if covered != stop - start:
            raise BlobMissing(f"{storage_id} has {covered} of the {stop - start} bytes asked for")
        inflight: asyncio.Future[bytes] | None = None
        try:
            for i, part in enumerate(parts):
                if inflight is None:
                    inflight = asyncio.ensure_future(self._fetch(storage_id, *part))
                data = await inflight
                inflight = None
                if i + 1 < len(parts):
                    inflight = asyncio.ensure_future(self._fetch(storage_id, *parts[i + 1]))
                yield data
        finally:
            if inflight is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(inflight)

    async def delete(self, tx: Tx, storage_id: str) -> AfterCommit | None:
        """Delete the chunks inside the caller's transaction (they go iff it commits)."""
        await tx.execute("DELETE FROM _convect_blobs WHERE storage_id = $1", storage_id)
        return None

    async def discard(self, storage_id: str) -> None:
        """Delete a blob's chunks now."""
        async with self.pool.acquire() as conn:
            await conn.execute("DELETE FROM _convect_blobs WHERE storage_id = $1", storage_id)

    async def sweep(self, older_than_s: float) -> int:
        """Delete chunks older than `older_than_s` whose file never came to exist."""
        async with self.pool.acquire() as conn:
            status: Any = await conn.execute(
                "DELETE FROM _convect_blobs b WHERE b.created_at < now() - make_interval("
                "secs => $1) AND NOT EXISTS "
                '(SELECT 1 FROM docs."_storage" s WHERE s.id = b.storage_id)',
                float(older_than_s),
            )
        return int(str(status).rsplit(" ", 1)[-1])
