"""`ctx.storage`: the reader queries see, the writer mutations see, and the actions' one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from app.storage.digest import as_hex
from app.storage.errors import StorageError
from app.storage.service import StorageService, check_storage_id, metadata_of

if TYPE_CHECKING:
    from app.db.transaction import Tx
    from app.engine import Call


class StoredFile:
    """A stored file from `ctx.storage.get` (like a JS Blob): size, type, and its bytes."""

    def __init__(self, service: StorageService, doc: dict[str, Any]) -> None:
        self._service = service
        self.storage_id: str = doc["_id"]
        self.size = int(doc["size"])
        self.content_type: str | None = doc.get("contentType")
        self.sha256: str = as_hex(doc["sha256"])  # hex, as storage.get_metadata

    @property
    def type(self) -> str:
        """The content type, or "" when the file has none (as Blob.type)."""
        return self.content_type or ""

    def stream(self, start: int = 0, stop: int | None = None) -> AsyncIterator[bytes]:
        """The file's bytes `[start, stop)`, in chunks (memory stays bounded)."""
        stop = self.size if stop is None else min(stop, self.size)
        return self._service.read(self.storage_id, max(0, start), stop)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.stream()

    async def read(self) -> bytes:
        """All of the file's bytes (the whole file in memory: prefer `stream` for big ones)."""
        parts = [chunk async for chunk in self.stream()]
        return b"".join(parts)

    async def text(self, encoding: str = "utf-8") -> str:
        """The file's bytes decoded as text."""
        return (await self.read()).decode(encoding)

    def __repr__(self) -> str:
        return f"StoredFile({self.storage_id!r}, size={self.size}, type={self.type!r})"


class StorageReader:
    """`ctx.storage` in queries: `get_url`, `get_metadata` (reads join the query's read set)."""

    __slots__ = ("_call", "_service")

    def __init__(self, service: StorageService, call: Call) -> None:
        self._service = service
        self._call = call

    def _tx(self) -> Tx:
        tx = self._call.tx
        if tx is None:
            raise StorageError("This ctx.storage has no transaction")
        return tx

    async def get_url(self, storage_id: str) -> str | None:
        """The URL that serves the file, or None if it does not exist."""
        doc = await self._service.document_in(self._tx(), storage_id)
        return self._service.file_url(storage_id) if doc is not None else None

    async def get_metadata(self, storage_id: str) -> dict[str, Any] | None:
        """`{storageId, sha256, size, contentType}` or None (prefer ctx.db.system.get)."""
        doc = await self._service.document_in(self._tx(), storage_id)
        return metadata_of(doc) if doc is not None else None


class StorageWriter(StorageReader):
    """`ctx.storage` in mutations: adds `generate_upload_url` and `delete`."""

    __slots__ = ()

    async def generate_upload_url(self) -> str:
        """A short-lived URL a client POSTs a file to; the reply is `{"storageId": ...}`."""
        return self._service.upload_url()

    async def delete(self, storage_id: str) -> None:
        """Delete a file as part of this mutation (kept if the mutation fails)."""
        await self._service.delete_in(self._call, storage_id)


class StorageActionWriter:
    """`ctx.storage` in actions: each operation is a transaction of its own."""

    __slots__ = ("_service",)

    def __init__(self, service: StorageService, call: Call) -> None:
        self._service = service

    async def get_url(self, storage_id: str) -> str | None:
        """The URL that serves the file, or None if it does not exist."""
        doc = await self._service.document(storage_id)
        return self._service.file_url(storage_id) if doc is not None else None

    async def get_metadata(self, storage_id: str) -> dict[str, Any] | None:
        """`{storageId, sha256, size, contentType}` or None."""
        doc = await self._service.document(storage_id)
        return metadata_of(doc) if doc is not None else None

    async def generate_upload_url(self) -> str:
        """A short-lived upload URL."""
        return self._service.upload_url()

    async def store(
        self, data: Any, content_type: str | None = None, *, sha256: str | None = None
    ) -> str:
        """Store bytes, a StoredFile or an (async) iterable of bytes; returns the storage id.

        The bytes are streamed into storage (memory does not grow with the file); pass
        `sha256` (hex) to have the stored bytes checked, as Convex's `store(blob, {sha256})`.
        """
        if content_type is None and isinstance(data, StoredFile):
            content_type = data.content_type
        return await self._service.store(data, content_type, sha256=sha256)

    async def get(self, storage_id: str) -> StoredFile | None:
        """The stored file (read its bytes with `read()` or `stream()`), or None."""
        doc = await self._service.document(check_storage_id(storage_id))
        return StoredFile(self._service, doc) if doc is not None else None

    async def delete(self, storage_id: str) -> None:
        """Delete a file now."""
        await self._service.delete(storage_id)
