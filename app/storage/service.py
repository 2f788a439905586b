"""The storage service of one engine: `_storage` documents, blobs, URLs and tokens."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from app.db import ids
from app.db.database import DatabaseReader
from app.db.transaction import Tx
from app.engine import Call
from app.storage import tokens
from app.storage.backend import BlobBackend
from app.storage.configured import configured_backend
from app.storage.digest import as_base64, as_hex, expected_digest
from app.storage.errors import (
    ChecksumMismatch,
    InvalidStorageId,
    InvalidUploadToken,
    NotAStorageId,
    StorageError,
    StorageIdNotFound,
)
from app.storage.streams import Meter
from app.storage.sweep import SweepCounts, Sweeper
from app.values import decode_value, encode_value

if TYPE_CHECKING:
    from app.engine import Engine

log = logging.getLogger("convect.storage")
STORAGE_TABLE = "_storage"
MAX_CONTENT_TYPE = 255
_CONTENT_TYPE_RE = re.compile(r"^[\x20-\x7e]*$")


def check_storage_id(value: object) -> str:
    """`value` if it is an id of the `_storage` table, else Convex's error for it."""
    if isinstance(value, str) and ids.is_id_for(value, STORAGE_TABLE):
        return value
    if isinstance(value, str) and ids.id_number(value) is not None:
        raise NotAStorageId(
            "Invalid storage ID. Storage ID cannot be an ID on any table other than '_storage'."
        )
    shown = str(value) if len(str(value)) <= 80 else str(value)[:77] + "..."
    # Convex's text, line break and indentation included (a multi-line Rust literal).
    raise InvalidStorageId(
        f'Invalid storage ID: "{shown}". Storage ID should be an\n'
        "                    Id of '_storage' table, or a UUID string."
    )


def not_found(storage_id: str) -> StorageIdNotFound:
    """Convex's error for deleting a file that does not exist."""
    return StorageIdNotFound(f"storage id {storage_id} not found")


def check_content_type(value: object) -> str | None:
    """A content type as stored: None when absent, else printable ASCII of bounded length."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise StorageError(f"content_type must be a string, got {type(value).__name__}")
    if len(value) > MAX_CONTENT_TYPE or not _CONTENT_TYPE_RE.match(value):
        raise StorageError(
            f"Invalid content type: at most {MAX_CONTENT_TYPE} printable ASCII characters"
        )
    return value.strip() or None


def metadata_of(doc: dict[str, Any]) -> dict[str, Any]:
    """`storage.get_metadata`'s shape (Convex's FileMetadata) from a `_storage` document."""
    return {
        "storageId": doc["_id"],
        "sha256": as_hex(doc["sha256"]),  # hex here, base64 in `_storage`: as Convex
        "size": doc["size"],
        "contentType": doc.get("contentType"),
    }


class StorageService:
    """File storage for one engine; the backend holds bytes, `_storage` holds metadata."""

    def __init__(self, engine: Engine, backend: BlobBackend | None = None) -> None:
        self.engine = engine
        self._backend = backend
        self._key: bytes | None = None
        self._sweeper: Sweeper | None = None

    async def start(self) -> None:
        """Load the signing secret and open the configured backend."""
        engine = self.engine
        try:
            secret = await engine.pool.fetchval(
                "SELECT value FROM _convect_secrets WHERE name = 'storage'"
            )
        except asyncpg.UndefinedTableError:
            secret = None
        if secret is None:
            raise RuntimeError("The storage secret is missing: run `convect deploy` (migrations)")
        self._key = tokens.derive_key(secret)
        if self._backend is None:
            self._backend = configured_backend(engine.settings, engine.pool)
        await self._backend.open()

    async def stop(self) -> None:
        """Stop the periodic sweep, close the backend (an object store's client)."""
        if self._sweeper is not None:
            await self._sweeper.stop()
        if self._backend is not None:
            await self._backend.close()

    async def sweep(self) -> None:
        """Start the periodic sweep of leftovers (API processes; `app.storage.sweep`), in
        the background: listing a large bucket must not hold up serving."""
        if self._sweeper is None:
            settings = self.engine.settings
            self._sweeper = Sweeper(
                self.engine.pool,
                lambda: self.backend,
                settings.storage_sweep_interval,
                settings.storage_sweep_min_age,
            )
        self._sweeper.start()

    @property
    def sweeps(self) -> SweepCounts:
        """What this process's sweeps did (zeros before the sweep starts)."""
        return self._sweeper.counts if self._sweeper is not None else SweepCounts()

    @property
    def backend(self) -> BlobBackend:
        """The blob backend (set once the engine has started)."""
        if self._backend is None:
            raise RuntimeError("File storage is not started yet")
        return self._backend

    @property
    def limit(self) -> int:
        """The largest file accepted, in bytes."""
        return self.engine.settings.max_upload_bytes

    # ------------------------------------------------------------- URLs and tokens

    def _signing_key(self) -> bytes:
        if self._key is None:
            raise RuntimeError("File storage is not started yet")
        return self._key

    def upload_url(self) -> str:
        """A new short-lived upload URL."""
        token = tokens.sign(self._signing_key())
        return f"{self.engine.settings.base_url}/api/storage/upload?token={token}"

    def check_token(self, token: object) -> None:
        """Raise InvalidUploadToken unless `token` is a valid, unexpired upload token."""
        tokens.verify(self._signing_key(), token)

    async def claim_token(self, token: object) -> None:
        """Take a valid upload token for one upload (InvalidUploadToken if already taken):
        an upload URL that leaked cannot be used to store more files."""
        expires, body = tokens.verified(self._signing_key(), token)
        pool = self.engine.pool
        taken = await pool.fetchval(
            "INSERT INTO _convect_upload_tokens (token, expires_ms) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            body,
            int(expires),
        )
        if taken is None:
            raise InvalidUploadToken(
                "This upload URL was already used (each takes one upload); generate a new one"
            )  # Convex accepts a token again within its hour: README, Differences
        if secrets.randbelow(100) == 0:  # now and then, forget tokens past their expiry
            await pool.execute(
                "DELETE FROM _convect_upload_tokens WHERE expires_ms < $1", int(time.time() * 1000)
            )

    def file_url(self, storage_id: str) -> str:
        """Where a stored file is served."""
        return f"{self.engine.settings.base_url}/api/storage/{storage_id}"

    # ------------------------------------------------------------- reads

    async def document(self, storage_id: str) -> dict[str, Any] | None:
        """The `_storage` document (decoded), read on its own (actions, serving)."""
        check_storage_id(storage_id)
        row = await self.engine.pool.fetchval(
            'SELECT doc FROM docs."_storage" WHERE id = $1', storage_id
        )
        return decode_value(orjson.loads(row)) if row is not None else None

    async def document_in(self, tx: Tx, storage_id: str) -> dict[str, Any] | None:
        """The `_storage` document read inside a query or mutation (recorded in its read set)."""
        check_storage_id(storage_id)
        doc = await DatabaseReader(tx, self.engine.catalog, system=True).get_encoded(storage_id)
        return decode_value(doc) if doc is not None else None

    async def in_postgres(self, storage_id: str) -> bool:
        """True while a file's bytes are chunks in PostgreSQL (not moved to S3 yet)."""
        found = await self.engine.pool.fetchval(
            "SELECT 1 FROM _convect_blobs WHERE storage_id = $1 LIMIT 1", storage_id
        )
        return found is not None

    def read(self, storage_id: str, start: int, stop: int) -> AsyncIterator[bytes]:
        """Bytes `[start, stop)` of a stored file, streamed."""
        return self.backend.read(storage_id, start, stop)

    # ------------------------------------------------------------- writes

    async def store(
        self, source: Any, content_type: object = None, *, sha256: object = None
    ) -> str:
        """Stream `source` into a new file; it exists (and is returned) only once complete."""
        ctype = check_content_type(content_type)
        expected = expected_digest(sha256)
        storage_id = ids.new_id(STORAGE_TABLE)
        backend = self.backend
        meter = Meter(self.limit, backend.chunk_size)
        await backend.put(storage_id, meter.chunks(source))
        try:
            actual = meter.digest
            if expected is not None and expected != actual:
                raise ChecksumMismatch(
                    f"Sha256 mismatch. Expected: {as_base64(expected)} Actual: {as_base64(actual)}"
                )
            doc: dict[str, Any] = {
                "_id": storage_id,
                "_creationTime": self.engine.catalog.clock.next(),
                "sha256": as_base64(actual),
                "size": float(meter.size),
            }
            if ctype is not None:
                doc["contentType"] = ctype
            await self._commit(storage_id, encode_value(doc))
        except BaseException:
            try:
                await asyncio.shield(backend.discard(storage_id))
            except StorageError as exc:  # the store failed too: the sweep removes it later
                log.warning("could not remove the bytes of unsaved file %s: %s", storage_id, exc)
            raise
        return storage_id

    async def _commit(self, storage_id: str, new: dict[str, Any] | None) -> None:
        """Insert (`new`) or delete (`new` None) a `_storage` document in its own transaction."""

        async def body(call: Call) -> None:
            tx = call.tx
            assert tx is not None
            if new is not None:
                await tx.execute(
                    'INSERT INTO docs."_storage" (id, creation_time, doc) '
                    "VALUES ($1, $2, $3::jsonb)",
                    storage_id,
                    new["_creationTime"],
                    orjson.dumps(new).decode(),
                )
                tx.record_write(STORAGE_TABLE, storage_id, None, new)
                return
            row = await tx.fetchrow(
                'DELETE FROM docs."_storage" WHERE id = $1 RETURNING doc', storage_id
            )
            if row is None:
                raise not_found(storage_id)
            tx.record_write(STORAGE_TABLE, storage_id, orjson.loads(row["doc"]), None)
            after = await self.backend.delete(tx, storage_id)
            if after is not None:
                call.after_commit.append(after)

        await self.engine.executor.system_tx(body)

    async def delete(self, storage_id: str) -> None:
        """Delete a file in a transaction of its own (actions)."""
        check_storage_id(storage_id)
        await self._commit(storage_id, None)

    async def delete_in(self, call: Call, storage_id: str) -> None:
        """Delete a file inside a mutation's transaction (undone if the mutation rolls back)."""
        tx = call.tx
        if tx is None or not tx.writable:
            raise StorageError("storage.delete needs a mutation or an action")
        old = await DatabaseReader(tx, self.engine.catalog, system=True).get_encoded(
            check_storage_id(storage_id)
        )
        if old is None:
            raise not_found(storage_id)
        await tx.execute('DELETE FROM docs."_storage" WHERE id = $1', storage_id)
        tx.record_write(STORAGE_TABLE, storage_id, old, None)
        after = await self.backend.delete(tx, storage_id)
        if after is not None:
            call.after_commit.append(after)
