"""`convect storage migrate --to s3|postgres`: move every file's bytes to one backend.

File by file, in id order: copy the bytes to the target, then remove them from the
source. A file is always whole in the source or the target (or both for a moment), and
every process reads through `TieredBlobs`, which looks in both, so the deployment keeps
serving files throughout. Running it again resumes: files already in the target are
skipped, a copy cut short is made again. `_storage` documents are never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import asyncpg

from app.settings import Settings
from app.storage.backend import BlobMissing
from app.storage.postgres import PostgresBlobs
from app.storage.s3 import S3Blobs
from app.storage.streams import Meter

log = logging.getLogger("convect.storage")
Target = Literal["s3", "postgres"]
BATCH = 200
_FILES = (
    "SELECT id, (doc ->> 'size')::float8 AS size FROM docs.\"_storage\" "
    "WHERE id > $1 ORDER BY id LIMIT $2"
)
_CHUNKED = "SELECT coalesce(sum(octet_length(data)), 0) FROM _convect_blobs WHERE storage_id = $1"
_STILL = 'SELECT 1 FROM docs."_storage" WHERE id = $1'


@dataclass
class MigrateSummary:
    """What a migration run did."""

    moved: int = 0
    moved_bytes: int = 0
    already: int = 0
    vanished: int = 0  # deleted while the run went on


class Migration:
    """Moves files between PostgreSQL chunks and the S3 bucket of `settings`."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool, to: Target) -> None:
        if to not in ("s3", "postgres"):
            raise ValueError(f"--to must be s3 or postgres, not {to!r}")
        if not settings.s3_bucket:
            raise ValueError("moving files needs the bucket: set CONVECT_S3_BUCKET")
        self.pool = pool
        self.to = to
        self.postgres = PostgresBlobs(pool)
        self.s3 = S3Blobs(settings, pool)
        self.summary = MigrateSummary()

    async def run(self, progress: Callable[[MigrateSummary], None] | None = None) -> MigrateSummary:
        """Move every file (resuming where an earlier run stopped)."""
        await self.s3.open()
        try:
            after = ""
            while rows := await self.pool.fetch(_FILES, after, BATCH):
                for row in rows:
                    await self._one(row["id"], int(row["size"] or 0))
                    after = row["id"]
                if progress is not None:
                    progress(self.summary)
        finally:
            await self.s3.close()
        return self.summary

    async def _in_postgres(self, storage_id: str) -> int:
        return int(await self.pool.fetchval(_CHUNKED, storage_id))

    async def _one(self, storage_id: str, size: int) -> None:
        try:
            if self.to == "s3":
                await self._to_s3(storage_id, size)
            else:
                await self._to_postgres(storage_id, size)
        except BlobMissing:
            if await self.pool.fetchval(_STILL, storage_id) is not None:
                raise
            self.summary.vanished += 1  # deleted meanwhile; a leftover copy is swept

    async def _to_s3(self, storage_id: str, size: int) -> None:
        chunked = await self._in_postgres(storage_id)
        if chunked == 0 and (size > 0 or await self.s3.exists(storage_id)):
            self.summary.already += 1
            return
        if chunked != size:
            raise BlobMissing(f"{storage_id} has {chunked} of its {size} bytes in PostgreSQL")
        meter = Meter(size, self.s3.chunk_size)
        await self.s3.put(storage_id, meter.chunks(self.postgres.read(storage_id, 0, size)))
        await self.postgres.discard(storage_id)
        self._moved(size)

    async def _to_postgres(self, storage_id: str, size: int) -> None:
        chunked = await self._in_postgres(storage_id)
        if chunked == size and (size > 0 or not await self.s3.exists(storage_id)):
            await self.s3.discard(storage_id)  # a run cut short after copying
            self.summary.already += 1
            return
        if chunked:  # a copy cut short: make it again
            await self.postgres.discard(storage_id)
        meter = Meter(size, self.postgres.chunk_size)
        await self.postgres.put(storage_id, meter.chunks(self.s3.read(storage_id, 0, size)))
        await self.s3.discard(storage_id)
        self._moved(size)

    def _moved(self, size: int) -> None:
        self.summary.moved += 1
        self.summary.moved_bytes += size
