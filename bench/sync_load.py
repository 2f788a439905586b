"""Load generator for live queries (runs as its own process; prints one JSON line).

Scenario a: N sockets each subscribed to messages:get_by_author for a distinct author;
a writer posts as random authors; update latency (mutation sent → subscriber has it).
Scenario b: M sockets on the same query; one write; time until the last one has it.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid

import httpx
import orjson
from websockets.asyncio.client import connect


class Sub:
    """A minimal subscriber: one query, records when a marker body first appears."""

    def __init__(self, url: str, author: str) -> None:
        self.url, self.author = url, author
        self.ready = asyncio.Event()
        self.seen: dict[str, float] = {}
        self.conn = None

    async def run(self) -> None:
        self.conn = await connect(self.url, max_size=None, open_timeout=60, ping_interval=None)
        await self.conn.send(
            orjson.dumps(
                {
                    "type": "Connect",
                    "sessionId": str(uuid.uuid4()),
                    "connectionCount": 0,
                    "lastCloseReason": "InitialConnect",
                    "clientTs": 0,
                }
            ).decode()
        )
        await self.conn.send(
            orjson.dumps(
                {
                    "type": "ModifyQuerySet",
                    "baseVersion": 0,
                    "newVersion": 1,
                    "modifications": [
                        {
                            "type": "Add",
                            "queryId": 0,
                            "udfPath": "messages:get_by_author",
                            "args": [{"author": self.author}],
                        }
                    ],
                }
            ).decode()
        )
        async for raw in self.conn:
            now = time.perf_counter()
            msg = orjson.loads(raw)
            if msg.get("type") != "Transition":
                continue
            for mod in msg["modifications"]:
                if mod.get("type") == "QueryUpdated":
                    self.ready.set()
                    for doc in mod["value"]:
                        self.seen.setdefault(doc["body"], now)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")


async def scenario_a(base: str, n: int, writes: int, rate: float) -> dict:
    ws_url = base.replace("http://", "ws://") + "/api/1.48.0/sync"
    subs = [Sub(ws_url, f"author-{i}") for i in range(n)]
    tasks = []
    for i in range(0, n, 200):
        tasks += [asyncio.create_task(s.run()) for s in subs[i : i + 200]]
        await asyncio.gather(*(s.ready.wait() for s in subs[i : i + 200]))
    sent: dict[str, tuple[float, float, int]] = {}
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for k in range(writes):
            i = random.randrange(n)
            body = f"m{k}"
            t0 = time.perf_counter()
            r = await http.post(
                "/api/mutation",
                json={"path": "messages:create", "args": {"author": f"author-{i}", "body": body}},
            )
            assert r.json()["status"] == "success", r.text
            sent[body] = (t0, time.perf_counter(), i)
            await asyncio.sleep(max(0.0, 1 / rate - (time.perf_counter() - t0)))
        await asyncio.sleep(2)
    lat_sent, lat_commit, missing = [], [], 0
    for body, (t0, t1, i) in sent.items():
        got = subs[i].seen.get(body)
        if got is None:
            missing += 1
            continue
        lat_sent.append((got - t0) * 1000)
        lat_commit.append(max(0.0, got - t1) * 1000)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "sockets": n,
        "writes": writes,
        "missing": missing,
        "p50_ms": statistics.median(lat_sent),
        "p99_ms": pct(lat_sent, 99),
        "after_ack_p50_ms": statistics.median(lat_commit),
        "after_ack_p99_ms": pct(lat_commit, 99),
    }


async def scenario_b(base: str, m: int) -> dict:
    ws_url = base.replace("http://", "ws://") + "/api/1.48.0/sync"
    subs = [Sub(ws_url, "hot") for _ in range(m)]
    tasks = []
    for i in range(0, m, 200):
        tasks += [asyncio.create_task(s.run()) for s in subs[i : i + 200]]
        await asyncio.gather(*(s.ready.wait() for s in subs[i : i + 200]))
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        t0 = time.perf_counter()
        r = await http.post(
            "/api/mutation",
            json={"path": "messages:create", "args": {"author": "hot", "body": "fanout"}},
        )
        assert r.json()["status"] == "success"
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline and not all("fanout" in s.seen for s in subs):
        await asyncio.sleep(0.005)
    times = [s.seen["fanout"] - t0 for s in subs if "fanout" in s.seen]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "sockets": m,
        "received": len(times),
        "last_ms": max(times) * 1000 if times else None,
        "first_ms": min(times) * 1000 if times else None,
    }


async def main() -> None:
    base = sys.argv[1]
    which = sys.argv[2]
    if which == "a":
        out = await scenario_a(
            base,
            int(os.environ.get("SYNC_SOCKETS", "5000")),
            int(os.environ.get("SYNC_WRITES", "300")),
            float(os.environ.get("SYNC_RATE", "50")),
        )
    else:
        out = await scenario_b(base, int(os.environ.get("SYNC_FANOUT", "1000")))
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
