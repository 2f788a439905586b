"""The live function log: `GET /api/stream_function_logs` (what `npx convex logs` polls)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from app.engine import Outcome
from app.engine.outcome import Failure
from app.logstream import FunctionLogs
from app.server.functions import RegisteredFunction
from tests.support.calls import CallFailed, call
from tests.support.servers import ADMIN_KEY, ServerProcess

ADMIN = {"Authorization": f"Convex {ADMIN_KEY}"}
STREAM = "/api/stream_function_logs"


@pytest.fixture
async def client(admin_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the admin app."""
    async with httpx.AsyncClient(base_url=admin_server.url, timeout=30) as c:
        yield c


async def test_the_stream_needs_the_admin_key(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{STREAM}?cursor=0")).status_code == 401
    wrong = {"Authorization": "Convex wrong"}
    assert (await client.get(f"{STREAM}?cursor=0", headers=wrong)).status_code == 403
    assert (await client.get(f"{STREAM}?cursor=soon", headers=ADMIN)).status_code == 400


async def test_finished_calls_reach_a_waiting_reader(client: httpx.AsyncClient) -> None:
    head = (await client.get(f"{STREAM}?cursor=0", headers=ADMIN)).json()["newCursor"]
    started = time.monotonic()
    poll = asyncio.create_task(client.get(f"{STREAM}?cursor={head}", headers=ADMIN))
    await asyncio.sleep(0.3)
    assert not poll.done()  # nothing new yet: the poll waits
    await call(client, "mutation", "posts:add", {"name": "ann", "title": "hello"})
    body = (await poll).json()
    assert time.monotonic() - started < 5
    [entry] = body["entries"]
    assert entry["kind"] == "Completion" and entry["udfType"] == "Mutation"
    assert entry["identifier"] == "posts:add" and entry["error"] is None
    assert entry["logLines"][0]["level"] == "LOG"
    assert entry["logLines"][0]["messages"] == ["'adding hello'"]
    assert entry["requestId"] and entry["executionTime"] >= 0
    assert body["newCursor"] > head
    with pytest.raises(CallFailed):
        await call(client, "mutation", "posts:fail", {})
    await call(client, "query", "_system/cli/tables", {}, ADMIN)  # system calls are not shown
    later = (await client.get(f"{STREAM}?cursor={body['newCursor']}", headers=ADMIN)).json()
    [failed] = later["entries"]
    assert failed["identifier"] == "posts:fail" and "nope" in failed["error"]


async def _handler(ctx: object, args: dict[str, object]) -> None:
    return None


async def test_a_query_answered_from_the_cache_is_logged_as_cached(
    client: httpx.AsyncClient,
) -> None:
    # As Convex's function log: a cache hit is an execution of its own, `cachedResult`.
    head = (await client.get(f"{STREAM}?cursor=0", headers=ADMIN)).json()["newCursor"]
    runs: list[dict] = []
    # (a result computed while the hub refreshed is not kept: call until one is)
    while len(runs) < 50 and not any(e["cachedResult"] for e in runs):
        await call(client, "query", "posts:titles", {})
        body = (await client.get(f"{STREAM}?cursor={head}", headers=ADMIN)).json()
        runs = [e for e in body["entries"] if e["identifier"] == "posts:titles"]
        await asyncio.sleep(0.02)
    assert not runs[0]["cachedResult"] and runs[-1]["cachedResult"]
    assert runs[-1]["udfType"] == "Query" and runs[-1]["error"] is None
    assert len({e["requestId"] for e in runs}) == len(runs)  # each answer its own request


def test_the_buffer_is_bounded_and_cursors_increase() -> None:
    logs = FunctionLogs(capacity=3)
    fn = RegisteredFunction("query", "public", _handler, None, None, "q", "m", "m:q")
    for i in range(5):
        logs(fn, Outcome(value=i, request_id=str(i)))
    logs(fn, Outcome(error=Failure("boom"), request_id="5"))
    assert [e.request_id for e in logs.entries] == ["3", "4", "5"]
    cursors = [e.cursor for e in logs.entries]
    assert cursors == sorted(set(cursors))
    assert [e.request_id for e in logs.since(cursors[0])] == ["4", "5"]
    assert logs.since(logs.head()) == []
    assert logs.entries[-1].to_convex()["error"] == "boom"
