"""What one execution returns (`Outcome`), how it failed (`Failure`), and the error mapping."""

from __future__ import annotations

import inspect
import itertools
import logging
import os
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path
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
    row): `Uncaught <Type>: <message>` whatever the mode. `trace` is the cause with the
    source lines of the app's code it passed (`    at handler (functions/m.py:12:5)`),
    each ending in a newline, as Convex writes an error: what an action that ran the
    function sees, and an HTTP action's `trace`. `transient` is true for errors
    that running again may cure (conflicts past the retries, a lost connection).
    `exception` is the exception of a failed HTTP action, whose response may depend on
    it (a body over the limit answers 413); None elsewhere, so that a failure
    kept with a cached result does not keep a traceback alive.
    """

    message: str
    data: Any = UNSET
    cause: str = ""
    trace: str = ""
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
    cached: bool = False  # answered from the hub's still-valid result: nothing ran


def new_request_id() -> str:
    """A short random id that ties a client error to the server log."""
    return os.urandom(8).hex()  # 16 hex digits, without uuid4's object (a hot path)


def error_name(exc: BaseException) -> str:
    """The name Convex gives an error in texts: its class name, or its `error_name`."""
    name = getattr(type(exc), "error_name", None)
    return name if isinstance(name, str) else type(exc).__name__


def describe(exc: BaseException) -> str:
    """An error as Convex names it in texts: `Uncaught <Type>: <message>`."""
    if isinstance(exc, ArgumentValidationError):
        return f"ArgumentValidationError: {exc}"
    if isinstance(exc, FunctionNotFound | InvalidArgs):
        return str(exc)
    message = str(exc)
    return f"Uncaught {error_name(exc)}: {message}" if message else f"Uncaught {error_name(exc)}"


def source_lines(exc: BaseException, folder: Path | None) -> list[str]:
    """Where the app's code (files under `folder`) raised or passed `exc`, innermost
    first, as Convex writes a stack frame: `    at handler (functions/m.py:12:5)`.

    A coroutine frame waiting on the frame below it is `at async name`, as in V8.
    """
    if folder is None:
        return []
    root = str(folder) + os.sep
    walked: list[tuple[types.FrameType, int, int | None]] = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        position = next(itertools.islice(code.co_positions(), tb.tb_lasti // 2, None), None)
        walked.append((tb.tb_frame, tb.tb_lineno, position[2] if position else None))
        tb = tb.tb_next
    lines: list[str] = []
    for i in range(len(walked) - 1, -1, -1):
        frame, lineno, col = walked[i]
        filename = frame.f_code.co_filename
        if not filename.startswith(root):
            continue
        below = walked[i + 1][0] if i + 1 < len(walked) else None
        waiting = (
            below is not None
            and bool(frame.f_code.co_flags & inspect.CO_COROUTINE)
            and bool(below.f_code.co_flags & inspect.CO_COROUTINE)
        )
        where = f"{Path(filename).relative_to(folder.parent).as_posix()}:{lineno}"
        if col is not None:
            where += f":{col + 1}"
        lines.append(f"    at {'async ' if waiting else ''}{frame.f_code.co_name} ({where})")
    return lines


def trace_of(exc: BaseException, folder: Path | None) -> str:
    """The error as Convex's JsError writes it: `Uncaught <Type>: <message>\n` and one
    line per frame of the app's code, each ending in a newline."""
    return "".join(f"{line}\n" for line in [describe(exc), *source_lines(exc, folder)])


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
    exc: BaseException,
    request_id: str,
    path: str | None,
    kind: str | None,
    *,
    dev: bool,
    folder: Path | None = None,
) -> Failure:
    """The one mapping from an exception to what clients see (and the server logs).

    As Convex: `[Request ID: <id>] Server Error`, then in dev the error with the source
    lines of the app's code in `folder` (`Failure.trace`). Prod hides the error of an
    unexpected exception and every source line, but names what the caller can act on:
    a ConvexError's message (its data reaches the client anyway), a validation or
    lookup failure, a limit hit. An HTTP action has no error shape of its own: whatever
    escapes its handler is a server error (logged, a 500 unless the exception is a
    client's 4xx), and the exception is kept on the failure for
    `app.http.site.action_response`.
    """
    cause = describe(exc)
    trace = trace_of(exc, folder)
    head = f"[Request ID: {request_id}] Server Error"
    if isinstance(exc, Overloaded):  # not a bug of the function's: named in every mode
        text = f"[Request ID: {request_id}] {exc}"
        return Failure(text, cause=cause, trace=trace, transient=True, overloaded=True)
    http_action = kind == "httpAction"
    data: Any = UNSET
    if isinstance(exc, ConvexError):
        try:
            data = encode_value(exc.data) and exc.data
        except ValueError:
            data = str(exc.data)
        if not http_action:
            shown = trace if dev else f"{cause}\n"  # prod: no source lines
            return Failure(f"{head}\n{shown}", data, cause, trace)
    caller_s = isinstance(exc, ArgumentValidationError | InvalidArgs | FunctionNotFound)
    if caller_s and not http_action:
        return Failure(f"{head}\n{cause}\n", cause=cause, trace=trace)
    where = path or "?"
    if not http_action or client_status(exc) is None:  # an HTTP action's 4xx: no log
        log.error(
            "function %s failed [request %s]: %s",
            where,
            request_id,
            "".join(traceback.format_exception(exc)).rstrip(),
            extra={"request_id": request_id, "path": where, "kind": kind},
        )
    text = head
    if dev:
        text += f"\n{trace}"
    elif isinstance(exc, LimitError):  # a limit is named in every mode: the caller can act
        text += f"\n{cause}\n"
    return Failure(
        text,
        data,
        cause=cause,
        trace=trace,
        transient=is_transient(exc),
        exception=exc if http_action else None,
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
    "error_name",
    "failure_of",
    "is_transient",
    "new_request_id",
    "source_lines",
    "trace_of",
]
