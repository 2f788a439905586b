"""Errors of file storage; each maps to one HTTP status on the storage routes."""

from __future__ import annotations


class StorageError(ValueError):
    """A storage operation was refused; `status` and `code` are what HTTP clients see."""

    status = 400
    code = "StorageError"
    error_name = "Error"  # in a function's error text: `Uncaught Error: ...`, as in Convex


class InvalidStorageId(StorageError):
    """The value is not an id at all (Convex's code and text)."""

    code = "InvalidStorageId"


class NotAStorageId(StorageError):
    """The value is an id of another table than `_storage` (Convex's code and text)."""

    code = "InvalidArgument"


class InvalidStoragePath(StorageError):
    """A file URL whose path is no storage id (Convex's code and text)."""

    code = "InvalidStoragePath"


class StorageIdNotFound(StorageError):
    """`storage.delete` of a file that does not exist (Convex: 400 `StorageIdNotFound`)."""

    code = "StorageIdNotFound"


class BadHeader(StorageError):
    """A request header that cannot be parsed (Convex's `BadHeader`)."""

    code = "BadHeader"


class FileNotFound(StorageError):
    """No stored file has this id (never stored, or deleted)."""

    status = 404
    code = "FileNotFound"


class FileTooLarge(StorageError):
    """The file exceeds the deployment's upload limit (`CONVECT_MAX_UPLOAD_BYTES`)."""

    status = 413
    code = "FileTooLarge"


class InvalidUploadToken(StorageError):
    """The upload URL's token is missing, malformed, tampered with or already used
    (Convex: 401 `StorageTokenInvalid`)."""

    status = 401
    code = "StorageTokenInvalid"


class ExpiredUploadToken(InvalidUploadToken):
    """The upload URL's token expired (Convex: 401 `StorageTokenExpired`)."""

    code = "StorageTokenExpired"


class ChecksumMismatch(StorageError):
    """The stored bytes do not have the sha256 the caller asserted (Convex's code)."""

    code = "Sha256Mismatch"


class StorageUnavailable(StorageError):
    """The object store could not be reached or failed; nothing changed, try again later."""

    status = 503
    code = "StorageUnavailable"
