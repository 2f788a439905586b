"""`convect logs [--follow]`: a deployment's function calls, one line each.

Reads the live log stream of a running server (`GET /api/stream_function_logs`, the one
`npx convex logs` and the dashboard's Logs view read) as admin: time, kind, path,
duration, outcome and request id, then the call's log lines and error, indented.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from typing import IO, Any

import httpx
import orjson

KIND_LETTERS = {"Query": "Q", "Mutation": "M", "Action": "A", "HttpAction": "H"}
RETRY_S = 1.0


class LogsError(Exception):
    """The log stream cannot be read (no server, wrong admin key)."""


def format_entry(entry: dict[str, Any]) -> str:
    """One call as text: `12:00:01.234 M messages:send 4.6ms ok [request id]` and its lines."""
    when = datetime.fromtimestamp(float(entry.get("timestamp", 0))).strftime("%H:%M:%S.%f")[:-3]
    kind = KIND_LETTERS.get(str(entry.get("udfType")), "?")
    ms = float(entry.get("executionTime") or 0) * 1000
    error = entry.get("error")
    outcome = "failed" if error else "ok"
    lines = [
        f"{when} {kind} {entry.get('identifier')} {ms:.1f}ms {outcome} [{entry.get('requestId')}]"
    ]
    for line in entry.get("logLines") or []:
        if isinstance(line, dict):
            text = " ".join(str(m) for m in line.get("messages", []))
            lines.append(f"  [{line.get('level', 'LOG')}] {text}")
        else:
            lines.append(f"  {line}")
    if error:
        lines.extend("  " + part for part in str(error).splitlines())
    return "\n".join(lines)


async def _poll(client: httpx.AsyncClient, cursor: float) -> tuple[list[dict[str, Any]], float]:
    r = await client.get("/api/stream_function_logs", params={"cursor": repr(cursor)})
    if r.status_code in (401, 403):
        raise LogsError(f"the server refused the admin key ({r.status_code}): {r.text}")
    if r.status_code == 404:
        raise LogsError("this server has no function log stream (is it `convect dev`/`serve`?)")
    r.raise_for_status()
    body = r.json()
    return list(body.get("entries", [])), float(body.get("newCursor", cursor))


async def stream_logs(
    base_url: str,
    admin_key: str | None,
    *,
    follow: bool,
    history: int,
    jsonl: bool = False,
    out: IO[str] | None = None,
) -> None:
    """Print the last `history` calls, then (with `follow`) every new one until stopped."""
    if not admin_key:
        raise LogsError("no admin key: set CONVECT_ADMIN_KEY (or run in the dev server's folder)")
    write = out or sys.stdout
    headers = {"Authorization": f"Convex {admin_key}"}
    timeout = httpx.Timeout(30.0, connect=5.0)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout) as client:
        cursor = 0.0
        first = True
        while True:
            try:
                entries, cursor = await _poll(client, cursor)
            except httpx.TransportError as exc:
                if first:
                    raise LogsError(f"cannot reach {base_url}: {exc}") from None
                await asyncio.sleep(RETRY_S)  # a restarting dev server: keep following
                continue
            if first:
                entries = entries[-history:] if history > 0 else []
            for entry in entries:
                text = orjson.dumps(entry).decode() if jsonl else format_entry(entry)
                write.write(text + "\n")
            write.flush()
            if first and not follow:
                return
            first = False
