"""A cached query answer carries the log lines of the run that produced it (as in Convex)."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.conftest import ADMIN_HEADERS
from tests.support.npm import run_script
from tests.support.servers import ServerProcess

LINES = [
    "[LOG] 'hello world'",
    "[INFO] info line",
    "[WARN] careful",
    "[ERROR] bad",
    "[LOG] \"{'a': 1}\"",
]


async def test_a_cached_http_answer_repeats_the_log_lines(kitchen: httpx.AsyncClient) -> None:
    body = {"path": "core_tx:noisy", "args": {"tag": uuid.uuid4().hex}}
    first = (await kitchen.post("/api/query", json=body)).json()
    second = (await kitchen.post("/api/query", json=body)).json()
    assert first["logLines"] == LINES
    assert second == first
    stats = (await kitchen.get("/api/debug/sync_stats", headers=ADMIN_HEADERS)).json()
    assert stats["cache_hits"] >= 1


async def test_official_npm_clients_see_the_log_lines_of_a_cached_or_shared_result(
    kitchen_server: ServerProcess, kitchen: httpx.AsyncClient
) -> None:
    env = {"CONVECT_URL": kitchen_server.url, "TAG": uuid.uuid4().hex}
    out = await asyncio.to_thread(run_script, "cached_log_lines.mjs", env=env)
    first, second = out["http"]
    assert first["value"] == second["value"] == "done"
    assert len(first["lines"]) == len(LINES) and "hello world" in first["lines"][0]
    assert second["lines"] == first["lines"]  # the second answer came from the cache
    one, two = out["socket"]
    assert one["value"] == two["value"] == "done"
    assert len(one["lines"]) == len(LINES)
    assert two["lines"] == one["lines"]
