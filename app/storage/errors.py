"""Errors of file storage; each maps to one HTTP status on the storage routes."""

from __future__ import annotations


class StorageError(ValueError):
    """A storage operation was refused; `status` and `code` are what HTTP clients see."""

    status = 400
    code = "StorageError"


class InvalidStorageId(StorageError):
    """The value is not an id of the `_storage` table."""

    code = "InvalidStorageId"


class FileNotFound(StorageError):
    """No stored file has this id (never stored, or deleted)."""

    status = 404
    code = "FileNotFound"


class FileTooLarge(StorageError):
    """The file exceeds the deployment's upload limit (`CONVECT_MAX_UPLOAD_BYTES`)."""

    status = 413
    code = "FileTooLarge"


class InvalidUploadToken(StorageError):
    """The upload URL's token is missing, malformed, tampered with or expired."""

    status = 403
    code = "InvalidUploadToken"


class ChecksumMismatch(StorageError):
    """The stored bytes do not have the sha256 the caller asserted."""

    code = "ChecksumMismatch"
