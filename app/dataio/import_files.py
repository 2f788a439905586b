"""The files of an import: into PostgreSQL chunks, or into the deployment's S3 bucket.

With `CONVECT_STORAGE=postgres` the bytes go into `_convect_blobs` inside the import's
one transaction, like its documents: all or nothing. With `CONVECT_STORAGE=s3` each file
streams into the bucket as its own object (a multipart upload of 8 MiB parts, so memory
stays flat whatever the file's size) while the transaction is open; the object exists
before the commit that makes its `_storage` document visible. If the import is refused
or fails, the objects it created are deleted again (the sweep removes any a crash left).

`--replace` empties `_storage` too. A file that comes back with the same id and the
same bytes keeps its object (nothing is uploaded, so a refused import cannot damage
it); one that comes back with other bytes has them checked before its object is
rewritten. After the commit, the objects of replaced files that did not come back are
deleted.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import zipfile
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import asyncpg

from app.dataio.format import FILES_DIR, ExportFormatError, Manifest
from app.dataio.progress import Bars
from app.storage.backend import CHUNK_SIZE
from app.storage.digest import digest_bytes
from app.storage.errors import FileTooLarge, StorageError
from app.storage.s3 import S3Blobs
from app.storage.streams import Meter

log = logging.getLogger("convect.storage")
STORAGE = "_storage"
REPLACED = "_convect_import_replaced"  # a temporary table of the import's connection
DELETE_BATCH = 1000


class ImportRefused(Exception):
    """The import cannot go ahead as asked; nothing was changed."""


class ImportFiles:
    """Loads an export's `files/` entries for one import on `conn` (inside its transaction)."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        zf: zipfile.ZipFile,
        bars: Bars,
        bucket: S3Blobs | None,
        to_bucket: bool,
    ) -> None:
        if to_bucket and bucket is None:
            raise ValueError("files can go to the bucket only when one is given")
        self.conn = conn
        self.zf = zf
        self.bars = bars
        self.bucket = bucket
        self.to_bucket = to_bucket
        self.created: list[str] = []  # objects this import made (deleted if it fails)
        self._replaced = False
        self.files = 0
        self.file_bytes = 0

    async def before_replace(self) -> None:
        """Before `_storage` is emptied: drop its chunks, remember its files (bucket only)."""
        await self.conn.execute(
            'DELETE FROM _convect_blobs b USING docs."_storage" s WHERE s.id = b.storage_id'
        )
        if self.bucket is None:
            return
        await self.conn.execute(
            f"CREATE TEMPORARY TABLE {REPLACED} ON COMMIT PRESERVE ROWS AS "
            "SELECT id, doc ->> 'sha256' AS sha256, (doc ->> 'size')::float8 AS size "
            'FROM docs."_storage"'
        )
        await self.conn.execute(f"ALTER TABLE {REPLACED} ADD PRIMARY KEY (id)")
        self._replaced = True

    async def load(self, manifest: Manifest, storage_ids: set[str]) -> None:
        """Load every file of the zip; each must belong to an imported `_storage` document,
        and each such document must have its file."""
        names = sorted(n for n in self.zf.namelist() if n.startswith(FILES_DIR) and n != FILES_DIR)
        if names and STORAGE not in manifest.tables:
            raise ExportFormatError("the export holds files but no _storage table")
        bar = self.bars.add("import files", manifest.file_bytes, unit="bytes")
        missing = set(storage_ids)
        for name in names:
            storage_id = name[len(FILES_DIR) :]
            if storage_id not in missing:
                raise ImportRefused(
                    f"{name} belongs to no _storage document of the export; nothing was imported"
                )
            row = await self.conn.fetchrow(
                "SELECT doc ->> 'sha256' AS sha256, (doc ->> 'size')::float8 AS size "
                'FROM docs."_storage" WHERE id = $1',
                storage_id,
            )
            expected = (row["sha256"], row["size"]) if row is not None else (None, -1.0)
            try:
                if self.to_bucket:
                    size = await self._into_bucket(name, storage_id, expected, bar)
                else:
                    size = await self._into_chunks(name, storage_id, expected, bar)
            except StorageError as exc:  # the store is down: a clear, retryable refusal
                raise ImportRefused(f"{exc}; nothing was imported") from None
            missing.discard(storage_id)
            self.files += 1
            self.file_bytes += size
        if missing:
            raise ImportRefused(
                f"the export lacks the bytes of {len(missing)} stored file(s) "
                f"(e.g. {sorted(missing)[0]}); nothing was imported"
            )
        bar.finish()

    # ------------------------------------------------------------- PostgreSQL

    async def _into_chunks(
        self, name: str, storage_id: str, expected: tuple[str | None, float], bar: Any
    ) -> int:
        await self.conn.execute("DELETE FROM _convect_blobs WHERE storage_id = $1", storage_id)
        digest = hashlib.sha256()
        seq = start = 0
        with self.zf.open(name) as f:
            while chunk := f.read(CHUNK_SIZE):
                await self.conn.execute(
                    "INSERT INTO _convect_blobs (storage_id, seq, start, data) "
                    "VALUES ($1, $2, $3, $4)",
                    storage_id,
                    seq,
                    start,
                    chunk,
                )
                digest.update(chunk)
                seq += 1
                start += len(chunk)
                bar.advance(len(chunk))
        _check(name, digest.digest(), start, expected)
        return start

    # ------------------------------------------------------------- S3

    async def _into_bucket(
        self, name: str, storage_id: str, expected: tuple[str | None, float], bar: Any
    ) -> int:
        bucket = self.bucket
        assert bucket is not None
        before = await self._replaced_file(storage_id)
        if before is not None and await bucket.exists(storage_id):
            raw, size = await asyncio.to_thread(_entry_digest, self.zf, name)
            _check(name, raw, size, expected)  # the zip's bytes are the document's
            if before == expected:  # the same file came back: its object is already right
                bar.advance(size)
                return size
            # Other bytes under a replaced file's id: checked above, so the upload below
            # cannot be refused half-way and leave the old document's object overwritten.
        else:
            self.created.append(storage_id)
        limit = int(expected[1]) if expected[1] >= 0 else 0
        meter = Meter(limit, bucket.chunk_size)
        try:
            await bucket.put(storage_id, meter.chunks(self._pieces(name, bar)))
        except FileTooLarge:
            _refuse(name)
        # A mismatch here is in a new object (a replaced file's bytes were checked above):
        # `rolled_back` deletes it.
        _check(name, meter.digest, meter.size, expected)
        return meter.size

    async def _replaced_file(self, storage_id: str) -> tuple[str | None, float] | None:
        """(sha256, size) of the file `storage_id` named before `--replace`, if any."""
        if not self._replaced:
            return None
        row = await self.conn.fetchrow(
            f"SELECT sha256, size FROM {REPLACED} WHERE id = $1", storage_id
        )
        return (row["sha256"], row["size"]) if row is not None else None

    async def _pieces(self, name: str, bar: Any) -> AsyncIterator[bytes]:
        with self.zf.open(name) as f:
            while piece := await asyncio.to_thread(f.read, CHUNK_SIZE):
                bar.advance(len(piece))
                yield piece

    # ------------------------------------------------------------- outcome

    async def rolled_back(self) -> None:
        """The import failed: delete the objects it created (a failure is only logged)."""
        bucket, created, self.created = self.bucket, self.created, []
        if bucket is None or not created:
            return
        try:
            for i in range(0, len(created), DELETE_BATCH):
                await bucket.discard_many(created[i : i + DELETE_BATCH])
        except StorageError as exc:
            log.warning("could not delete the objects of a failed import (the sweep will): %s", exc)

    async def committed(self) -> None:
        """The import committed: delete the objects of replaced files that are gone (or
        that now live in PostgreSQL chunks). A failure is only logged: the sweep retries."""
        if not self._replaced or self.bucket is None:
            return
        keep = 'AND NOT EXISTS (SELECT 1 FROM docs."_storage" s WHERE s.id = r.id)'
        after = ""
        try:
            while rows := await self.conn.fetch(
                f"SELECT r.id FROM {REPLACED} r WHERE r.id > $1 "
                f"{keep if self.to_bucket else ''} ORDER BY r.id LIMIT {DELETE_BATCH}",
                after,
            ):
                after = rows[-1]["id"]
                await self.bucket.discard_many([r["id"] for r in rows])
            await self.conn.execute(f"DROP TABLE {REPLACED}")
        except (StorageError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            # The import did commit: say so, and leave the objects to the sweep.
            log.warning("could not delete the objects of replaced files (the sweep will): %s", exc)


def _entry_digest(zf: zipfile.ZipFile, name: str) -> tuple[bytes, int]:
    """The sha256 and size of a zip entry's bytes."""
    digest = hashlib.sha256()
    size = 0
    with zf.open(name) as f:
        while piece := f.read(CHUNK_SIZE):
            digest.update(piece)
            size += len(piece)
    return digest.digest(), size


def _check(name: str, raw: bytes, size: int, expected: tuple[str | None, float]) -> None:
    """Refuse unless the bytes read have the document's sha256 and size."""
    sha256, want = expected
    if not _same_digest(raw, sha256) or size != want:
        _refuse(name)


def _refuse(name: str) -> NoReturn:
    raise ImportRefused(
        f"{name} does not match its _storage document (size or sha256 differ); nothing was imported"
    )


def _same_digest(raw: bytes, stored: str | None) -> bool:
    """True when a `_storage` sha256 (base64, or hex from older exports) is `raw`."""
    try:
        return stored is not None and digest_bytes(stored) == raw
    except ValueError:
        return False
