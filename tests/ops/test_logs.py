"""Prod mode logs JSON lines; a failing call's lines carry its request id, path, kind, duration."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx

from tests.support.servers import ServerProcess


async def _lines_with(server: ServerProcess, key: str, value: str) -> list[dict[str, Any]]:
    """The server's JSON log records whose `key` is `value` (waits briefly for them)."""
    found: list[dict[str, Any]] = []
    for _ in range(100):
        records = [json.loads(line) for line in server.log().splitlines() if line.strip()]
        found = [r for r in records if r.get(key) == value]
        if len(found) >= 2:
            break
        await asyncio.sleep(0.05)
    return found


async def test_a_server_error_in_prod_logs_json_lines_with_its_request_id(
    ops: httpx.AsyncClient, ops_server: ServerProcess
) -> None:
    r = await ops.post("/api/query", json={"path": "ledger:explode", "args": {}})
    body = r.json()
    assert body["status"] == "error"
    # Prod: the client gets the request id and no detail.
    match = re.fullmatch(r"\[Request ID: ([0-9a-f]+)\] Server Error", body["errorMessage"])
    assert match, body
    assert "kaboom" not in r.text
    rid = match.group(1)

    records = await _lines_with(ops_server, "request_id", rid)
    failure = [r for r in records if r["logger"] == "convect.runtime"]
    summary = [r for r in records if r["logger"] == "convect.calls"]
    assert len(failure) == 1 and len(summary) == 1, records
    assert failure[0]["level"] == "error"
    assert failure[0]["path"] == "ledger:explode" and failure[0]["kind"] == "query"
    assert "kaboom from ledger:explode" in failure[0]["msg"]  # the traceback stays server-side
    assert summary[0]["level"] == "warning"
    assert summary[0]["outcome"] == "error"
    assert summary[0]["path"] == "ledger:explode" and summary[0]["kind"] == "query"
    assert isinstance(summary[0]["duration_ms"], float) and summary[0]["duration_ms"] >= 0
    assert isinstance(summary[0]["ts"], float)


async def test_every_line_a_prod_server_logs_is_a_json_object(
    ops: httpx.AsyncClient, ops_server: ServerProcess
) -> None:
    await ops.post("/api/mutation", json={"path": "ledger:refuse", "args": {"code": "X"}})
    await ops.post("/api/query", json={"path": "ledger:explode", "args": {}})
    lines = [line for line in ops_server.log().splitlines() if line.strip()]
    assert lines
    for line in lines:
        record = json.loads(line)
        assert isinstance(record, dict), line
        assert {"ts", "level", "logger", "msg"} <= set(record), line


async def test_a_convex_error_is_logged_at_info_with_its_outcome(
    ops: httpx.AsyncClient, ops_server: ServerProcess
) -> None:
    code = "LOGGED-CODE"
    r = await ops.post("/api/mutation", json={"path": "ledger:refuse", "args": {"code": code}})
    assert r.json()["errorData"] == {"code": code}
    for _ in range(100):
        records = [json.loads(line) for line in ops_server.log().splitlines() if line.strip()]
        hits = [
            r for r in records if r.get("path") == "ledger:refuse" and code in r.get("error", "")
        ]
        if hits:
            break
        await asyncio.sleep(0.05)
    assert len(hits) == 1, hits
    assert hits[0]["level"] == "info" and hits[0]["outcome"] == "convex_error"
    assert hits[0]["logger"] == "convect.calls" and len(hits[0]["request_id"]) == 16
