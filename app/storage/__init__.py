"""File storage: `_storage` documents, blob backends, upload URLs and file serving."""

from __future__ import annotations

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
from app.storage.part import FileStorage
from app.storage.service import StorageService

__all__ = [
    "BlobBackend",
    "ChecksumMismatch",
    "FileNotFound",
    "FileStorage",
    "FileTooLarge",
    "InvalidStorageId",
    "InvalidUploadToken",
    "StorageActionWriter",
    "StorageError",
    "StorageReader",
    "StorageService",
    "StorageWriter",
    "StoredFile",
]
