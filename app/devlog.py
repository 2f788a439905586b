"""Dev console output: one line per function call, and reload errors as `file:line`."""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path
from typing import IO, Any

from app.engine import Outcome
from app.server.functions import RegisteredFunction

KIND_LETTERS = {"query": "Q", "mutation": "M", "action": "A", "httpAction": "H"}
MAX_MESSAGE = 300
_RED, _GREEN, _DIM, _RESET = "\x1b[31m", "\x1b[32m", "\x1b[2m", "\x1b[0m"


def _one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    flat = text.replace("\r", "").replace("\n", "\\n")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def format_call(
    fn: RegisteredFunction, outcome: Outcome, when: float | None = None, *, color: bool = False
) -> str:
    """`12:00:01.234 Q messages:list 1.9ms ok  [LOG] 'hi'`: time, kind, path, duration,
    outcome and the call's log lines, on one line."""
    when = time.time() if when is None else when
    stamp = time.strftime("%H:%M:%S", time.localtime(when)) + f".{int(when * 1000) % 1000:03d}"
    kind = KIND_LETTERS.get(fn.kind, "?")
    if not fn.is_public:
        kind += "i"
    if outcome.error is None:
        result = f"{_GREEN}ok{_RESET}" if color else "ok"
        if outcome.retries:
            result += f" ({outcome.retries} retries)"
        if outcome.cached:
            result += " (cached)"
    else:
        message = outcome.error.message.split("\n")
        shown = " ".join(part.strip() for part in message if part.strip())
        result = f"error: {_one_line(shown)}"
        if color:
            result = f"{_RED}{result}{_RESET}"
    parts = [stamp, kind, fn.path or fn.name, f"{outcome.duration_ms:.1f}ms", result]
    line = " ".join(parts)
    if outcome.log_lines:
        logs = "  ".join(_one_line(entry) for entry in outcome.log_lines)
        line += "  " + (f"{_DIM}{logs}{_RESET}" if color else logs)
    return line


class CallLog:
    """An engine observer that prints every finished call on one line (dev mode)."""

    def __init__(self, stream: IO[str] | None = None, *, color: bool | None = None) -> None:
        self.stream = stream
        self.color = color

    def __call__(self, fn: RegisteredFunction, outcome: Outcome) -> None:
        stream = self.stream or sys.stderr
        color = self.color if self.color is not None else _isatty(stream)
        stream.write(format_call(fn, outcome, color=color) + "\n")
        stream.flush()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def describe_load_error(exc: BaseException, folder: Path) -> str:
    """A reload error as `path:line: Type: message` plus the offending source line."""
    cause = exc.__cause__ or exc
    if isinstance(cause, SyntaxError) and cause.filename:
        where = f"{_shown(cause.filename)}:{cause.lineno or '?'}"
        text = f"{where}: {type(cause).__name__}: {cause.msg}"
        if cause.text:
            source = cause.text.rstrip("\n")
            text += f"\n    {source.strip()}"
            if cause.offset:
                indent = len(source) - len(source.lstrip())
                text += "\n    " + " " * max(0, cause.offset - 1 - indent) + "^"
        return text
    root = folder.resolve()
    frames = [
        frame
        for frame in traceback.extract_tb(cause.__traceback__)
        if _inside(frame.filename, root)
    ]
    if not frames:
        return str(exc)
    last = frames[-1]
    text = f"{_shown(last.filename)}:{last.lineno}: {type(cause).__name__}: {cause}"
    if last.line:
        text += f"\n    {last.line.strip()}"
    return text


def _shown(filename: str) -> str:
    """A path relative to the working directory when it is inside it (shorter to read)."""
    try:
        return str(Path(filename).resolve().relative_to(Path.cwd()))
    except (OSError, ValueError):
        return filename


def _inside(filename: str, root: Path) -> bool:
    try:
        return Path(filename).resolve().is_relative_to(root)
    except (OSError, ValueError):
        return False


__all__ = ["CallLog", "describe_load_error", "format_call"]
