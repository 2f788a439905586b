"""Hostile clients against `convect serve` (prod): what they cost everyone else.

(a) Subscription flood: attacker sockets add 40,000 distinct live queries (in batches of
    4,096, the per-socket bound) while a victim socket runs mutations one after another;
    the victim's mutation round trips (send → MutationResponse), whether it stays
    connected, and the server's RSS before, at the peak and after the attacker leaves.
(b) Slowloris: 2,000 connections per listener that send an incomplete request head (or
    nothing), while ordinary calls run; how long until the server has closed them all.

Run alone: `python -m bench.hostile_bench` (embedded services of its own).
Environment: BENCH_HOSTILE_QUERIES (40000), BENCH_HOSTILE_SLOW (2000 per listener).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
from websockets.asyncio.client import connect

from bench.servers import run_alone, start_deployed_convect
from tests.support.servers import ADMIN_KEY

QUERIES = int(os.environ.get("BENCH_HOSTILE_QUERIES", "40000"))
SLOW = int(os.environ.get("BENCH_HOSTILE_SLOW", "2000"))
PER_SOCKET = 4096


def _ws_url(url: str) -> str:
    return url.replace("http://", "ws://") + "/api/sync"


async def _connect(url: str) -> Any:
    ws = await connect(_ws_url(url), max_size=None, open_timeout=30)
    await ws.send(orjson.dumps({"type": "Connect", "sessionId": str(uuid.uuid4()),
                                "connectionCount": 0}).decode())  # fmt: skip
    return ws


async def _attacker(url: str, first: int, count: int, done: asyncio.Event) -> str:
    """Add `count` distinct queries on one socket; keep it open until `done`."""
    ws = await _connect(url)
    adds = [
        {
            "type": "Add",
            "queryId": i,
            "udfPath": "messages:get_by_author",
            "args": [{"author": f"attacker-{first + i}"}],
        }
        for i in range(count)
    ]
    msg = {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": adds}
    await ws.send(orjson.dumps(msg).decode())

    async def drain() -> None:
        async for _ in ws:
            pass

    reader = asyncio.create_task(drain())
    await done.wait()
    reader.cancel()
    code = ws.close_code
    await ws.close()
    return f"closed {code}" if code is not None else "open"


async def _victim(url: str, stop: asyncio.Event, out: dict[str, Any]) -> None:
    """Mutations one after another; each round trip's time; whether the socket survived."""
    ws = await _connect(url)
    rid = 0
    times: list[float] = []
    try:
        while not stop.is_set():
            started = time.perf_counter()
            await ws.send(orjson.dumps({"type": "Mutation", "requestId": rid,
                                        "udfPath": "messages:create",
                                        "args": [{"author": "victim", "body": f"m{rid}"}]}).decode())  # fmt: skip
            while True:
                msg = orjson.loads(await asyncio.wait_for(ws.recv(), 60))
                if msg.get("type") == "MutationResponse" and msg.get("requestId") == rid:
                    break
            times.append((time.perf_counter() - started) * 1000)
            rid += 1
            await asyncio.sleep(0.05)
        out["connected"] = True
    except Exception as exc:  # the victim was closed or stalled: that is the finding
        out["connected"] = False
        out["error"] = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        out["times"] = times
        await ws.close()


async def _flood(url: str, pid: int) -> list[str]:
    proc = psutil.Process(pid)
    rss = lambda: proc.memory_info().rss / 2**20  # noqa: E731
    async with httpx.AsyncClient(base_url=url) as http:  # warm the process up
        for i in range(50):
            await http.post("/api/mutation", json={"path": "messages:create",
                                                   "args": {"author": "warm", "body": str(i)}})  # fmt: skip
    await asyncio.sleep(1)
    before = rss()
    stop, leave = asyncio.Event(), asyncio.Event()
    victim: dict[str, Any] = {}
    baseline: dict[str, Any] = {}
    quiet = asyncio.Event()
    task = asyncio.create_task(_victim(url, quiet, baseline))
    await asyncio.sleep(5)
    quiet.set()
    await task
    victim_task = asyncio.create_task(_victim(url, stop, victim))
    started = time.monotonic()
    attackers = [
        asyncio.create_task(_attacker(url, first, min(PER_SOCKET, QUERIES - first), leave))
        for first in range(0, QUERIES, PER_SOCKET)
    ]
    peak = before
    while time.monotonic() - started < 30:
        await asyncio.sleep(0.5)
        peak = max(peak, rss())
    stop.set()
    await victim_task
    leave.set()
    states = await asyncio.gather(*attackers)
    await asyncio.sleep(10)
    after = rss()
    async with httpx.AsyncClient(base_url=url) as http:
        stats = (await http.get("/api/debug/sync_stats",
                                headers={"Authorization": f"Convex {ADMIN_KEY}"})).json()  # fmt: skip

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    t, b = victim["times"], baseline["times"]
    return [
        f"(a) {QUERIES:,} live queries added on {len(attackers)} attacker sockets "
        f"({PER_SOCKET:,} each) while a victim socket runs mutations for 30 s",
        f"    victim mutation round trip: p50 {statistics.median(t):.1f} ms, p99 {pct(t, 0.99):.1f} ms, "
        f"max {max(t):.1f} ms over {len(t)} mutations [target p99 ≤ 200 ms]; "
        f"alone before: p50 {statistics.median(b):.1f} ms, p99 {pct(b, 0.99):.1f} ms",
        f"    victim stayed connected: {victim['connected']}"
        + (f" ({victim.get('error')})" if not victim["connected"] else ""),
        f"    attacker sockets at the end: {', '.join(sorted(set(states)))}",
        f"    server RSS: {before:.0f} MiB before, {peak:.0f} MiB peak, {after:.0f} MiB 10 s after "
        f"the attacker left (+{after - before:.0f} MiB) [target ≤ +50 MiB]; the hub then held "
        f"{stats['entries']:,} entries ({stats['cache_bytes']:,} bytes of cached results) "
        f"for {stats['sessions']} sockets",
    ]


async def _slow_one(port: int, head: bytes) -> float:
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        await asyncio.wait_for(reader.read(), 120)
    finally:
        writer.close()
    return time.monotonic() - started


async def _slowloris(url: str, site_url: str) -> list[str]:
    ports = [int(url.rsplit(":", 1)[1]), int(site_url.rsplit(":", 1)[1])]
    heads = [b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", b""]
    started = time.monotonic()
    attacks = [
        asyncio.create_task(_slow_one(port, heads[i % 2])) for port in ports for i in range(SLOW)
    ]
    calls: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        while not all(a.done() for a in attacks) and time.monotonic() - started < 60:
            t0 = time.perf_counter()
            await http.post("/api/query", json={"path": "messages:list", "args": {}})
            calls.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.05)
    closed = await asyncio.gather(*attacks, return_exceptions=True)
    took = [c for c in closed if isinstance(c, float)]
    return [
        f"(b) slowloris: {len(attacks):,} connections ({SLOW:,} per listener; half a begun head, "
        "half nothing), header timeout 10 s",
        f"    all closed by the server within {max(took):.1f} s of opening "
        f"({len(took)} of {len(attacks)}); ordinary queries meanwhile: p50 "
        f"{statistics.median(calls):.1f} ms, max {max(calls):.1f} ms over {len(calls)} calls",
    ]


def run_hostile_bench(database_base_url: str, redis_url: str, data_dir: Path) -> list[str]:
    """Both scenarios against a fresh `convect serve` in prod mode; report lines."""
    server = start_deployed_convect(database_base_url, redis_url, data_dir, "bench_hostile")
    lines = ["", "## Hostile clients", ""]
    try:
        only = os.environ.get("BENCH_HOSTILE_ONLY", "")
        if only in ("", "flood"):
            lines += asyncio.run(_flood(server.url, server.proc.pid))
        if only in ("", "slowloris"):
            lines += asyncio.run(_slowloris(server.url, server.site_url))
    finally:
        server.stop()
    return lines


def main() -> None:
    """Run on embedded services of its own; print the report."""
    run_alone("hostile", run_hostile_bench)


if __name__ == "__main__":
    main()
