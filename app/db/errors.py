"""Errors of the document store, and the one place SQLSTATEs map to "retry"."""

from __future__ import annotations

import asyncpg

# serialization failure, deadlock, lock wait timeout (app.db.transaction.serializable)
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


class DocumentError(ValueError):
    """A document operation was refused (bad id, schema violation, limit exceeded)."""


class LimitError(DocumentError):
    """A documented limit (size, nesting, reads, writes) was exceeded."""


class ConflictError(RuntimeError):
    """A mutation kept conflicting with concurrent ones and gave up."""


class NeedsTransaction(BaseException):
    """Raised inside a lazily-opened query at its second statement: re-run in a transaction."""


class NeedsSerializable(BaseException):
    """Raised inside an optimistic mutation that did more than read by id and write what
    it read: re-run it in a SERIALIZABLE transaction (see `Tx.optimistic`)."""


def is_retryable(exc: BaseException) -> bool:
    """True for serialization failures and deadlocks: the mutation may be re-run."""
    return isinstance(exc, asyncpg.PostgresError) and exc.sqlstate in RETRYABLE_SQLSTATES


def is_connection_error(exc: BaseException) -> bool:
    """True when the database connection was lost or could not be made."""
    return isinstance(
        exc,
        asyncpg.PostgresConnectionError
        | asyncpg.InterfaceError
        | ConnectionError
        | OSError
        | asyncpg.CannotConnectNowError,
    )
