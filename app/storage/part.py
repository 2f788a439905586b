"""`FileStorage`: the engine's storage part, the service plus the `ctx.storage` objects."""

from __future__ import annotations

from app.engine import Call
from app.storage.context import StorageActionWriter, StorageReader, StorageWriter
from app.storage.service import StorageService


class FileStorage(StorageService):
    """File storage as the engine uses it (`app.engine.parts.Storage`)."""

    def reader(self, call: Call) -> StorageReader:
        """`ctx.storage` in queries."""
        return StorageReader(self, call)

    def writer(self, call: Call) -> StorageWriter:
        """`ctx.storage` in mutations."""
        return StorageWriter(self, call)

    def for_action(self, call: Call) -> StorageActionWriter:
        """`ctx.storage` in actions."""
        return StorageActionWriter(self, call)
