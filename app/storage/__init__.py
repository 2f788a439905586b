"""File storage: `_storage` documents, blob backends, upload URLs and file serving."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.storage.backend import BlobBackend
from app.storage.context import StorageActionWriter, StorageReader, StorageWriter, StoredFile
from app.storage.errors import (
    ChecksumMismatch,
    FileNotFound,
    FileTooLarge,
    InvalidStorageId,
    InvalidUploadToken,
    StorageError,
)
from app.storage.service import StorageService

if TYPE_CHECKING:
    from app.engine import Engine

__all__ = [
    "BlobBackend",
    "ChecksumMismatch",
    "FileNotFound",
    "FileTooLarge",
    "InvalidStorageId",
    "InvalidUploadToken",
    "StorageActionWriter",
    "StorageError",
    "StorageReader",
    "StorageService",
    "StorageWriter",
    "StoredFile",
    "install_storage",
]


def install_storage(engine: Engine, *, role: str) -> StorageService:
    """Give `engine` file storage: ctx.storage factories, start hooks and (API) routes."""
    from app.storage.routes import storage_routes

    service = StorageService(engine)
    engine.services["storage"] = service
    engine.services["storage_reader"] = lambda call: StorageReader(service, call)
    engine.services["storage_writer"] = lambda call: StorageWriter(service, call)
    engine.services["storage_action"] = lambda call: StorageActionWriter(service, call)
    engine.on_start.append(service.start)
    if role in ("serve", "dev"):
        engine.on_start.append(service.sweep)
        engine.services.setdefault("api_routes", []).append(lambda _engine: storage_routes(service))
    return service
