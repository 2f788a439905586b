"""The live function log: a bounded buffer of finished calls, read as Convex's log stream.

`FunctionLogs` is an engine call observer (`engine.log_stream`). It keeps the last
`capacity` calls of this process (functions under `_system/` are not shown, as in
Convex) and wakes readers waiting for new ones. `GET /api/stream_function_logs?cursor=`
(what `npx convex logs` and the MCP server's `logs` tool poll) and the dashboard read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from app.engine import Outcome
from app.server.functions import RegisteredFunction

DEFAULT_CAPACITY = 10_000
UDF_TYPES = {
    "query": "Query",
    "mutation": "Mutation",
    "action": "Action",
    "httpAction": "HttpAction",
}
_LEVEL_RE = re.compile(r"^\[(LOG|DEBUG|INFO|WARN|ERROR)\] ?(.*)$", re.DOTALL)
_USAGE_FIELDS = [
    "databaseReadBytes",
    "databaseWriteBytes",
    "databaseIoReadBytes",
    "databaseIoWriteBytes",
    "databaseReadDocuments",
    "databaseWriteDocuments",
    "databaseWriteIndexRows",
    "storageReadBytes",
    "storageWriteBytes",
    "vectorIndexReadBytes",
    "vectorIndexWriteBytes",
    "textIndexQueryBytes",
    "textIndexWriteQueryBytes",
    "vectorIndexReadQueryBytes",
    "vectorIndexWriteQueryBytes",
    "networkEgressBytes",
    "memoryUsedMb",
]


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One finished call: when, what, how long, how it ended, and what it logged."""

    cursor: float  # ms since the epoch, strictly increasing within this process
    time_ms: float  # when it finished, ms since the epoch
    kind: str  # query | mutation | action | httpAction
    path: str
    public: bool
    duration_ms: float
    ok: bool
    log_lines: list[str] = field(default_factory=list)
    request_id: str = ""
    error: str | None = None
    cached: bool = False  # a query answered from the cache (nothing ran)

    def to_convex(self) -> dict[str, Any]:
        """Convex's `FunctionExecutionJson` (kind `Completion`), as its CLI reads it."""
        started = (self.time_ms - self.duration_ms) / 1000
        return {
            "kind": "Completion",
            "udfType": UDF_TYPES.get(self.kind, "Query"),
            "identifier": self.path,
            "componentPath": None,
            "logLines": [structured_line(line, self.time_ms) for line in self.log_lines],
            "timestamp": self.time_ms / 1000,
            "executionTimestamp": started,
            "cachedResult": self.cached,
            "caller": "",
            "parentExecutionId": None,
            "executionTime": self.duration_ms / 1000,
            "userExecutionTime": self.duration_ms / 1000,
            "success": None,
            "error": self.error,
            "requestId": self.request_id,
            "executionId": self.request_id,
            "usageStats": dict.fromkeys(_USAGE_FIELDS, 0),
            "returnBytes": None,
            "occInfo": None,
            "willRetry": False,
            "identityType": "",
            "environment": "python",
        }


def structured_line(line: str, time_ms: float) -> dict[str, Any]:
    """Convect's `[LEVEL] text` log line as Convex's `LogLineJson`."""
    match = _LEVEL_RE.match(line)
    level, text = (match.group(1), match.group(2)) if match else ("LOG", line)
    return {"messages": [text], "level": level, "timestamp": int(time_ms), "isTruncated": False}


class FunctionLogs:
    """The last `capacity` finished calls of this process, readable by cursor."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.entries: deque[LogEntry] = deque(maxlen=capacity)
        self._changed = asyncio.Event()
        self._waiters = 0  # long polls waiting: a call wakes them only when there are some
        self._last = 0.0

    def __call__(self, fn: RegisteredFunction, outcome: Outcome) -> None:
        path = fn.path or fn.name
        if path.startswith("_system/"):
            return
        now = time.time() * 1000
        self._last = max(now, self._last + 0.001)
        error = outcome.error.message if outcome.error is not None else None
        self.entries.append(
            LogEntry(
                cursor=self._last,
                time_ms=now,
                kind=fn.kind,
                path=path,
                public=fn.is_public,
                duration_ms=outcome.duration_ms,
                ok=error is None,
                log_lines=list(outcome.log_lines),
                request_id=outcome.request_id,
                error=error,
                cached=outcome.cached,
            )
        )
        if self._waiters:  # (a new Event per call cost the hot path a few µs for nothing)
            self._changed.set()
            self._changed = asyncio.Event()

    def since(self, cursor: float) -> list[LogEntry]:
        """The kept entries after `cursor`, oldest first."""
        if not self.entries or self.entries[-1].cursor <= cursor:
            return []
        return [entry for entry in self.entries if entry.cursor > cursor]

    async def wait_since(self, cursor: float, timeout: float) -> list[LogEntry]:
        """`since(cursor)`, waiting up to `timeout` seconds for one when there is none."""
        found = self.since(cursor)
        if found or timeout <= 0:
            return found
        self._waiters += 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
        finally:
            self._waiters -= 1
        return self.since(cursor)

    def head(self) -> float:
        """The cursor of the newest entry (0 when there is none)."""
        return self.entries[-1].cursor if self.entries else 0.0


__all__ = ["FunctionLogs", "LogEntry", "structured_line"]
