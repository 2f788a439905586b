"""Fuzzing the HTTP API and the sync protocol with seeded hostile input (tests/reliability/
fuzz.py, hostile.py) against the kitchen app on a server and database of their own.

Random and mutated bodies, wrong types, huge and deeply nested values, invalid UTF-8,
`$`-fields and injection strings in every name and value; over the socket also random
and mutated messages, wrong versions, binary and oversized frames. Expectations: no
status of 500 or more (the API documents none), the process never dies, a rejected call
writes nothing, and a normal call still works afterwards. The short runs are part of
`make test`; the long ones (more cases, other seeds) of `make reliability`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
from collections.abc import AsyncIterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.reliability.fuzz import deep
from tests.reliability.hostile import Fingerprint, Report
from tests.reliability.hostile_http import http_bases, http_case, run_http
from tests.reliability.hostile_sync import run_sync, sync_case
from tests.support.calls import mutation, query
from tests.support.servers import ADMIN_KEY, ServerProcess
from tests.support.ws import SyncClient


@pytest.fixture
def target(kitchen_target: ServerProcess) -> ServerProcess:
    """The kitchen app on the fuzzer's own database (tests/reliability/conftest.py)."""
    return kitchen_target


@pytest.fixture
async def client(target: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=target.url, timeout=60) as c:
        yield c


@pytest.fixture
async def fingerprint(target: ServerProcess) -> AsyncIterator[Fingerprint]:
    fp = await Fingerprint.open(target.env["DATABASE_URL"])
    yield fp
    await fp.close()


async def _still_serving(client: httpx.AsyncClient, target: ServerProcess) -> None:
    """The process is the one we started, and ordinary calls over HTTP and a socket work."""
    assert target.proc.poll() is None, target.log()[-3000:]
    assert (await client.get("/healthz")).status_code == 200
    doc_id = await mutation(
        client, "core_db:insert", {"table": "core_events", "doc": {"event": "ok"}}
    )
    assert (await query(client, "core_db:get", {"id": doc_id}))["event"] == "ok"
    c = await SyncClient.open(target.url)
    qid = await c.add("core_db:get", {"id": doc_id})
    await c.wait_query_set()
    assert c.value(qid)["event"] == "ok"
    await c.close()


def _summary(kind: str, seed: int, report: Report) -> str:
    return (
        f"{kind} seed {seed}: {report.cases} cases in {report.seconds:.1f}s, "
        f"{report.accepted} accepted, outcomes {dict(sorted(report.statuses.items(), key=str))}; "
        f"slowest {report.slowest}"
    )


async def _fuzz(
    kind: str,
    client: httpx.AsyncClient,
    target: ServerProcess,
    fp: Fingerprint,
    seed: int,
    n: int,
    budget: float,
) -> Report:
    """Run `n` seeded hostile cases over HTTP (`kind` "HTTP") or the sync protocol ("sync")
    for at most `budget` seconds; no problems, and the server still serves."""
    doc_id = await mutation(client, "core_db:insert", {"table": "core_things", "doc": {"n": 1}})
    rng = random.Random(seed)
    if kind == "HTTP":
        bases = http_bases(doc_id)
        report = await run_http(client, fp, [http_case(rng, bases, i) for i in range(n)], budget)
    else:
        cases = [sync_case(rng, doc_id, i) for i in range(n)]
        report = await run_sync(target.url, fp, cases, budget)
    print(_summary(kind, seed, report))
    assert report.problems == [], "\n".join(report.problems[:10])
    await _still_serving(client, target)
    if kind == "sync":
        stats = await client.get(
            "/api/debug/sync_stats", headers={"Authorization": f"Convex {ADMIN_KEY}"}
        )
        assert stats.json()["sessions"] <= 1  # every fuzz socket is gone
    return report


async def test_five_hundred_hostile_http_requests_get_no_5xx_and_write_nothing_when_refused(
    client: httpx.AsyncClient, target: ServerProcess, fingerprint: Fingerprint
) -> None:
    report = await _fuzz("HTTP", client, target, fingerprint, seed=1, n=500, budget=60)
    assert report.cases == 500


async def test_three_hundred_hostile_sync_sessions_never_crash_or_write_when_refused(
    client: httpx.AsyncClient, target: ServerProcess, fingerprint: Fingerprint
) -> None:
    report = await _fuzz("sync", client, target, fingerprint, seed=1, n=300, budget=60)
    assert report.cases == 300


@pytest.mark.reliability
@pytest.mark.parametrize("seed", [2, 3, 4])
async def test_three_thousand_hostile_http_requests_per_seed_get_no_5xx(
    client: httpx.AsyncClient, target: ServerProcess, fingerprint: Fingerprint, seed: int
) -> None:
    report = await _fuzz("HTTP", client, target, fingerprint, seed=seed, n=3000, budget=100)
    assert report.cases >= 1000


@pytest.mark.reliability
@pytest.mark.parametrize("seed", [2, 3, 4])
async def test_a_thousand_hostile_sync_sessions_per_seed_never_crash(
    client: httpx.AsyncClient, target: ServerProcess, fingerprint: Fingerprint, seed: int
) -> None:
    report = await _fuzz("sync", client, target, fingerprint, seed=seed, n=1000, budget=100)
    assert report.cases >= 500


# ----------------------------------------------------------------- cases the fuzzer found


async def test_arguments_nested_three_hundred_deep_fail_the_query_and_the_socket_answers_on(
    target: ServerProcess,
) -> None:
    c = await SyncClient.open(target.url)
    started = asyncio.get_running_loop().time()
    add = {"type": "Add", "queryId": 0, "udfPath": "core_tx:echo", "args": [{"value": deep(300)}]}
    msg = {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": [add]}
    await c.conn.send(json.dumps(msg))  # orjson refuses to write 300 levels; the server reads them
    c.query_set, qid = 1, 0
    await c.wait_query_set()
    assert c.results[qid]["type"] == "QueryFailed"
    assert "nesting depth exceeds 64" in c.results[qid]["errorMessage"]
    r = await c.mutation("rest_types:refuse", {"reason": "still answering"})
    assert r["errorData"] == {"code": "REFUSED", "reason": "still answering"}
    assert asyncio.get_running_loop().time() - started < 2
    await c.close()


async def test_a_session_id_with_a_nul_character_is_refused_at_connect(
    target: ServerProcess,
) -> None:
    c = await SyncClient.open(target.url, connect_msg=False)
    c.session_id = "a\x00b"
    await c.connect()
    msg = await c.recv_type("FatalError")
    assert "sessionId" in msg["error"]
    with pytest.raises(ConnectionClosed):
        await c.recv(timeout=5)


async def test_text_frames_of_invalid_utf8_close_only_that_socket(target: ServerProcess) -> None:
    for payload in (b"\xff\xfe", b'{"type": "Connect", "sessionId": "\xc0\xaf"}', b"\xed\xa0\x80"):
        reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /api/1.48.0/sync HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)  # FIN + text, masked
        await writer.drain()
        close = await asyncio.wait_for(reader.read(64), 10)
        assert close[:1] == b"\x88" and int.from_bytes(close[2:4], "big") == 1007, close
        writer.close()
    c = await SyncClient.open(target.url)
    qid = await c.add("core_tx:echo", {"value": "fine"})
    await c.wait_query_set()
    assert c.value(qid) == "fine"
    await c.close()
