"""What one execution returns (`Outcome`), how it failed (`Failure`), and the error mapping."""

from __future__ import annotations

import logging
import os
import traceback
from dataclasses import dataclass, field
from typing import Any

from asyncpg.exceptions import InsufficientResourcesError, OperatorInterventionError

from app.db.errors import ConflictError, LimitError, is_connection_error, is_retryable
from app.db.readset import ReadSet
from app.values import UNSET, ArgumentValidationError, ConvexError, encode_value

log = logging.getLogger("convect.runtime")


class FunctionNotFound(LookupError):
    """No function (visible to the caller) at that path."""


class ReturnsValidationError(ValueError):
    """A function returned a value its `returns=` validator rejects."""


class ExecutionTimeout(LimitError):
    """A call ran past its time limit (`function_timeout` / `action_timeout`)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Function execution timed out (maximum duration: {seconds:g}s)")


class Overloaded(RuntimeError):
    """No database connection came free in time: the deployment is overloaded; retry."""


class InvalidArgs(ValueError):
    """Arguments that are not a Convex object (bad encoding, not an object, too large).

    `reason` is what is wrong, without the transport's framing of it.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason if reason is not None else message


@dataclass
class Failure:
    """A function's error as clients see it; `data` is UNSET unless it was a ConvexError.

    `cause` is the error as recorded where clients do not see it (a scheduled function's
    row): `Uncaught <Type>: <message>` whatever the mode. `transient` is true for errors
    that running again may cure (conflicts past the retries, a lost connection).
    `exception` is the exception of a failed HTTP action, whose response may depend on
    it (storage errors answer with their own status); None elsewhere, so that a failure
    kept with a cached result does not keep a traceback alive.
    """

    message: str
    data: Any = UNSET
    cause: str = ""
    transient: bool = False
    overloaded: bool = False  # HTTP answers 503 with Retry-After
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def is_convex_error(self) -> bool:
        """True when the error carries ConvexError data."""
        return self.data is not UNSET


@dataclass
class Outcome:
    """The result of one top-level execution (`Engine.execute`)."""

    value: Any = None
    error: Failure | None = None
    log_lines: list[str] = field(default_factory=list)
    commit_ts: int | None = None
    read_set: ReadSet | None = None
    request_id: str = ""
    duration_ms: float = 0.0
    retries: int = 0
    wrote: bool = False


def new_request_id() -> str:
    """A short random id that ties a client error to the server log."""
    return os.urandom(8).hex()  # 16 hex digits, without uuid4's object (a hot path)


def describe(exc: BaseException) -> str:
    """An error as Convex names it in texts: `Uncaught <Type>: <message>`."""
    if isinstance(exc, ConvexError):
        return f"Uncaught ConvexError: {exc}"
    if isinstance(exc, ArgumentValidationError):
        return f"ArgumentValidationError: {exc}"
    return f"Uncaught {type(exc).__name__}: {exc}"


def is_transient(exc: BaseException) -> bool:
    """True for errors that running the function again may cure: conflicts past the
    retries, a lost connection, a server out of connections or shutting down."""
    return (
        isinstance(
            exc, ConflictError | Overloaded | InsufficientResourcesError | OperatorInterventionError
        )
        or is_retryable(exc)
        or is_connection_error(exc)
    )


def client_status(exc: BaseException) -> int | None:
    """The 4xx status of an error that is the client's fault (declared by `status`)."""
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) and 400 <= status < 500 else None


def failure_of(
    exc: BaseException, request_id: str, path: str | None, kind: str | None, *, dev: bool
) -> Failure:
    """The one mapping from an exception to what clients see (and the server logs).

    An HTTP action has no error shape of its own: whatever escapes its handler is a server
    error (logged, a 500 unless the exception is a client's 4xx), and the exception is
    kept on the failure for `app.http.site.action_response`.
    """
    cause = describe(exc)
    if isinstance(exc, Overloaded):  # not a bug of the function's: named in every mode
        text = f"[Request ID: {request_id}] {exc}"
        return Failure(text, cause=cause, transient=True, overloaded=True)
    http_action = kind == "httpAction"
    if isinstance(exc, ConvexError) and not http_action:
        try:
            data = encode_value(exc.data) and exc.data
        except ValueError:
            data = str(exc.data)
        return Failure(cause, data, cause=cause)
    if isinstance(exc, ArgumentValidationError | InvalidArgs) and not http_action:
        text = cause if isinstance(exc, ArgumentValidationError) else str(exc)
        return Failure(text, cause=cause)
    if isinstance(exc, FunctionNotFound) and not http_action:
        return Failure(str(exc), cause=str(exc))
    where = path or "?"
    if not http_action or client_status(exc) is None:  # an HTTP action's 4xx: no log
        log.error(
            "function %s failed [request %s]: %s",
            where,
            request_id,
            "".join(traceback.format_exception(exc)).rstrip(),
            extra={"request_id": request_id, "path": where, "kind": kind},
        )
    text = f"[Request ID: {request_id}] Server Error"
    if dev or isinstance(exc, LimitError):  # a limit is named in every mode: the caller can act
        text += f"\n{cause}"
    return Failure(
        text, cause=cause, transient=is_transient(exc), exception=exc if http_action else None
    )


__all__ = [
    "ExecutionTimeout",
    "Failure",
    "FunctionNotFound",
    "InvalidArgs",
    "Outcome",
    "Overloaded",
    "ReturnsValidationError",
    "describe",
    "failure_of",
    "is_transient",
    "new_request_id",
]
