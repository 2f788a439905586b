"""The S3 blob backend: one object per file in an S3-compatible bucket (AWS, MinIO, R2, GCS).

Uploads stream as multipart uploads of `PART_SIZE` parts, one part in flight while the
next is received (memory stays at about two parts); a file of one part is one PUT. The
object is complete before the `_storage` document that makes the file exist is written,
so a file never points at missing bytes. Deleting a file removes its object after the
deleting transaction commits, once, in the background; `sweep` removes objects whose
`_storage` document is gone (a delete that failed, a process that died) and multipart
uploads that were never finished. Any failure of the store is `StorageUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import asyncpg
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from app.db import ids
from app.db.transaction import Tx
from app.settings import Settings
from app.storage.backend import AfterCommit, BlobBackend, BlobMissing
from app.storage.errors import StorageUnavailable

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

log = logging.getLogger("convect.storage")
MiB = 1024 * 1024
PART_SIZE = 8 * MiB  # S3 wants parts of 5 MiB or more; 10,000 parts make 80 GiB at most
READ_PIECE = 256 * 1024
_MISSING = {"NoSuchKey", "404", "NotFound"}
_FAILURES = (BotoCoreError, ClientError, aiohttp.ClientError, OSError, asyncio.TimeoutError)
T = TypeVar("T")


def object_prefix(prefix: str) -> str:
    """The key prefix as used: empty, or ending with exactly one "/"."""
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


class S3Blobs(BlobBackend):
    """File bytes as objects `<prefix><storage id>` in one bucket."""

    chunk_size = PART_SIZE

    def __init__(self, settings: Settings, pool: asyncpg.Pool | None) -> None:
        if not settings.s3_bucket:
            raise RuntimeError("CONVECT_STORAGE=s3 needs CONVECT_S3_BUCKET (the bucket's name)")
        self.settings = settings
        self.bucket = settings.s3_bucket
        self.prefix = object_prefix(settings.s3_prefix)
        self.pool = pool
        self._client: S3Client | None = None
        self._stack = AsyncExitStack()
        self._deletes: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        """Create the S3 client (credentials from the standard AWS environment)."""
        settings = self.settings
        config = AioConfig(
            signature_version="s3v4",
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
            s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        client = get_session().create_client(
            "s3",
            region_name=settings.s3_region or "us-east-1",
            endpoint_url=settings.s3_endpoint_url,
            config=config,
        )
        self._client = await self._stack.enter_async_context(client)

    async def close(self) -> None:
        """Let background deletes finish (briefly), then close the client."""
        if self._deletes:
            await asyncio.wait(set(self._deletes), timeout=5)
        await self._stack.aclose()
        self._client = None

    @property
    def client(self) -> S3Client:
        """The open S3 client."""
        if self._client is None:
            raise RuntimeError("The S3 client is not open")
        return self._client

    def key(self, storage_id: str) -> str:
        """The object key of a file."""
        return self.prefix + storage_id

    @staticmethod
    async def _s3(what: str, call: Awaitable[T]) -> T:
        """Await one S3 call; a failure of the store becomes StorageUnavailable."""
        try:
            return await call
        except _FAILURES as exc:
            raise StorageUnavailable(
                f"The object store failed to {what} ({type(exc).__name__}: {exc}); "
                "nothing was changed, try again"
            ) from exc

    # ------------------------------------------------------------- writes

    async def put(self, storage_id: str, chunks: AsyncIterable[bytes]) -> None:
        """One PUT for a file of one part, else a multipart upload (aborted on any error)."""
        key = self.key(storage_id)
        source = aiter(chunks)
        first = await anext(source, None)
        second = await anext(source, None) if first is not None else None
        if second is None:
            await self._s3(
                "store a file",
                self.client.put_object(Bucket=self.bucket, Key=key, Body=first or b""),
            )
            return
        created = await self._s3(
            "start an upload",
            self.client.create_multipart_upload(Bucket=self.bucket, Key=key),
        )
        upload_id = created["UploadId"]
        assert first is not None
        parts: list[dict[str, Any]] = []
        pending: asyncio.Task[dict[str, Any]] | None = None
        try:

            async def every() -> AsyncIterator[bytes]:
                yield first
                yield second
                async for chunk in source:
                    yield chunk

            number = 0
            async for chunk in every():
                if pending is not None:
                    parts.append(await pending)
                number += 1
                pending = asyncio.ensure_future(self._part(key, upload_id, number, chunk))
            if pending is not None:
                parts.append(await pending)
                pending = None
            await self._s3(
                "finish an upload",
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
                ),
            )
        except BaseException:
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            await asyncio.shield(self._abort(key, upload_id))
            raise

    async def _part(self, key: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        done = await self._s3(
            "store a part of a file",
            self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            ),
        )
        return {"PartNumber": number, "ETag": done["ETag"]}

    async def _abort(self, key: str, upload_id: str) -> None:
        try:
            await self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            )
        except _FAILURES as exc:  # the sweep aborts it later
            log.warning("could not abort the multipart upload of %s: %s", key, exc)

    # ------------------------------------------------------------- reads

    async def exists(self, storage_id: str) -> bool:
        """True when the file's object exists."""
        try:
            await self.client.head_object(Bucket=self.bucket, Key=self.key(storage_id))
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
                return False
            raise StorageUnavailable(f"The object store failed to look up a file: {exc}") from exc
        except _FAILURES as exc:
            raise StorageUnavailable(f"The object store failed to look up a file: {exc}") from exc
        return True

    async def read(self, storage_id: str, start: int, stop: int) -> AsyncIterator[bytes]:
        """One ranged GET, streamed in pieces of `READ_PIECE` bytes."""
        if stop <= start:
            return
        try:
            got = await self.client.get_object(
                Bucket=self.bucket, Key=self.key(storage_id), Range=f"bytes={start}-{stop - 1}"
            )
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
                raise BlobMissing(f"the object of {storage_id} is missing") from None
            raise StorageUnavailable(f"The object store failed to read a file: {exc}") from exc
        except _FAILURES as exc:
            raise StorageUnavailable(f"The object store failed to read a file: {exc}") from exc
        body = got["Body"]
        try:
            async for piece in body.iter_chunks(READ_PIECE):
                yield piece
        except _FAILURES as exc:
            raise StorageUnavailable(f"The object store failed mid-read: {exc}") from exc
        finally:
            body.close()

    def presigned_url(
        self, storage_id: str, ttl_s: int, content_type: str, disposition: str | None
    ) -> Awaitable[str]:
        """A GET URL of the object valid for `ttl_s` seconds, answering with these headers."""
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.key(storage_id),
            "ResponseContentType": content_type,
        }
        if disposition is not None:
            params["ResponseContentDisposition"] = disposition
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=ttl_s)

    # ------------------------------------------------------------- deletes

    async def delete(self, tx: Tx, storage_id: str) -> AfterCommit | None:
        """Remove the object after the commit, in the background (the sweep retries)."""

        async def remove() -> None:
            task = asyncio.ensure_future(self._remove(storage_id))
            self._deletes.add(task)
            task.add_done_callback(self._deletes.discard)

        return remove

    async def _remove(self, storage_id: str) -> None:
        try:
            await self.client.delete_object(Bucket=self.bucket, Key=self.key(storage_id))
        except _FAILURES as exc:
            log.warning("could not delete the object of %s (the sweep will): %s", storage_id, exc)

    async def discard(self, storage_id: str) -> None:
        """Delete the object now."""
        await self._s3(
            "delete a file",
            self.client.delete_object(Bucket=self.bucket, Key=self.key(storage_id)),
        )

    async def discard_many(self, storage_ids: list[str]) -> None:
        """Delete the objects of up to 1,000 files now (one request)."""
        if not storage_ids:
            return
        await self._s3(
            "delete files",
            self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": self.key(s)} for s in storage_ids], "Quiet": True},
            ),
        )

    async def sweep(self, older_than_s: float) -> int:
        """Abort stale multipart uploads; delete objects older than `older_than_s` whose
        `_storage` document is gone. Returns how many objects and uploads were removed."""
        try:
            return await self._sweep(older_than_s)
        except _FAILURES as exc:
            raise StorageUnavailable(f"The object store failed during the sweep: {exc}") from exc

    async def _sweep(self, older_than_s: float) -> int:
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
        client = self.client
        removed = 0
        uploads = client.get_paginator("list_multipart_uploads")
        async for page in uploads.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for up in page.get("Uploads", []):
                if up["Initiated"] < cutoff and ids.is_id_for(
                    up["Key"][len(self.prefix) :], "_storage"
                ):
                    await self._abort(up["Key"], up["UploadId"])
                    removed += 1
        objects = client.get_paginator("list_objects_v2")
        async for page in objects.paginate(Bucket=self.bucket, Prefix=self.prefix):
            old = {
                obj["Key"][len(self.prefix) :]: obj["Key"]
                for obj in page.get("Contents", [])
                if obj["LastModified"] < cutoff
                and ids.is_id_for(obj["Key"][len(self.prefix) :], "_storage")
            }
            if not old:
                continue
            if self.pool is None:
                raise RuntimeError("sweeping an S3 bucket needs the deployment's database")
            async with self.pool.acquire() as conn:
                alive = {
                    r["id"]
                    for r in await conn.fetch(
                        'SELECT id FROM docs."_storage" WHERE id = ANY($1::text[])', list(old)
                    )
                }
            gone = [key for sid, key in old.items() if sid not in alive]
            if gone:
                log.debug("the sweep deletes %d orphaned object(s): %s", len(gone), gone)
                await client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in gone], "Quiet": True},
                )
                removed += len(gone)
        return removed
