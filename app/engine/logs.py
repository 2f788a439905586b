"""Capture `print` and `logging` inside functions as Convex log lines ("[LOG] 'text'")."""

from __future__ import annotations

import builtins
import contextvars
import io
import logging
from typing import Any

_lines: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "convect_log_lines", default=None
)
_LEVELS = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARN",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "ERROR",
}
MAX_LINES = 256
MAX_LINE_CHARS = 32_768


def _append(line: str) -> bool:
    lines = _lines.get()
    if lines is None:
        return False
    if len(line) > MAX_LINE_CHARS:
        line = line[:MAX_LINE_CHARS] + " (truncated)"
    if len(lines) < MAX_LINES:
        lines.append(line)
    elif len(lines) == MAX_LINES:
        lines.append("[WARN] Log overflow (maximum 256). Remaining log lines omitted.")
    return True


def extend(lines: list[str]) -> None:
    """Add lines (a function an action ran) to the running function's log."""
    for line in lines:
        _append(line)


def captured_print(
    *args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
) -> None:
    """`print` for function modules: a log line while a function runs, stdout otherwise."""
    if file is None and _lines.get() is not None:
        buf = io.StringIO()
        builtins.print(*args, sep=sep, end="", file=buf)
        _append(f"[LOG] {buf.getvalue()!r}")
        return
    builtins.print(*args, sep=sep, end=end, file=file, flush=flush)


class _Handler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = _LEVELS.get(record.levelno, "LOG")
            _append(f"[{level}] {self.format(record)}")
        except Exception:
            self.handleError(record)


_handler = _Handler()


def install(logger_name: str) -> None:
    """Capture records of `logger_name` (the functions package) while functions run."""
    logger = logging.getLogger(logger_name)
    if _handler not in logger.handlers:
        logger.addHandler(_handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.DEBUG)


def start() -> contextvars.Token[list[str] | None]:
    """Begin collecting log lines for the current call."""
    return _lines.set([])


def current() -> list[str]:
    """Log lines collected so far in this call."""
    return list(_lines.get() or [])


def stop(token: contextvars.Token[list[str] | None]) -> list[str]:
    """Stop collecting; return the lines."""
    lines = _lines.get() or []
    _lines.reset(token)
    return lines


def clear() -> None:
    """Forget the lines collected so far (a retried attempt starts afresh)."""
    lines = _lines.get()
    if lines is not None:
        lines.clear()
