"""The blob backend a deployment's settings ask for (`CONVECT_STORAGE`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from app.settings import Settings
from app.storage.backend import BlobBackend
from app.storage.postgres import PostgresBlobs
from app.storage.s3 import S3Blobs
from app.storage.tiers import TieredBlobs


def configured_backend(settings: Settings, pool: asyncpg.Pool) -> BlobBackend:
    """New files go to `CONVECT_STORAGE`; reads fall back to the other backend when it is
    configured (PostgreSQL always is; S3 when a bucket is set), so files not yet moved
    by `convect storage migrate` are still served."""
    postgres = PostgresBlobs(pool)
    if settings.storage == "s3":
        return TieredBlobs(S3Blobs(settings, pool), postgres)
    if settings.s3_bucket:
        return TieredBlobs(postgres, S3Blobs(settings, pool))
    return postgres


def s3_primary(backend: BlobBackend) -> S3Blobs | None:
    """The S3 backend when it is where new files go, else None."""
    if isinstance(backend, TieredBlobs):
        backend = backend.primary
    return backend if isinstance(backend, S3Blobs) else None


def bucket_of(backend: BlobBackend) -> S3Blobs | None:
    """The S3 backend among a deployment's backends (where new files go, or not), or None."""
    tiers = [backend.primary, backend.secondary] if isinstance(backend, TieredBlobs) else [backend]
    return next((b for b in tiers if isinstance(b, S3Blobs)), None)


@asynccontextmanager
async def opened_bucket(settings: Settings) -> AsyncIterator[S3Blobs | None]:
    """The deployment's S3 bucket, opened, for a command run beside it (None without one)."""
    if not settings.s3_bucket:
        yield None
        return
    bucket = S3Blobs(settings, None)
    await bucket.open()
    try:
        yield bucket
    finally:
        await bucket.close()
