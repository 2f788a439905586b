"""Live queries across processes, under concurrent writers, and through listener failures."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import DEMO
from tests.support.calls import mutation, query
from tests.support.servers import (
    ADMIN_KEY,
    ServerProcess,
    deploy_app,
    start_server,
    truncate_all,
)
from tests.support.ws import SyncClient

AUTHORS = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def pair(services: dict[str, str], data_dir: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two `convect serve` processes on one database."""
    env = deploy_app(services, "live_pair", DEMO, data_dir / "pair")
    a = start_server(env, data_dir / "pair-a.log")
    b = start_server(env, data_dir / "pair-b.log")
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


@pytest.fixture
async def clients(
    pair: tuple[ServerProcess, ServerProcess],
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    a, b = pair
    await truncate_all(a.env["DATABASE_URL"], a.url)
    await truncate_all(b.env["DATABASE_URL"], b.url)
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=30) as ca,
        httpx.AsyncClient(base_url=b.url, timeout=30) as cb,
    ):
        yield ca, cb


async def stats(client: httpx.AsyncClient) -> dict:
    r = await client.get("/api/debug/sync_stats", headers={"Authorization": f"Convex {ADMIN_KEY}"})
    assert r.status_code == 200, r.text
    return r.json()


async def converge(
    sub: SyncClient, qid: int, http: httpx.AsyncClient, path: str, args: dict, timeout: float = 5
) -> None:
    """Receive until the subscription's value equals a fresh query."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        fresh = await query(http, path, args)
        if (
            qid in sub.results
            and sub.results[qid]["type"] == "QueryUpdated"
            and _same(sub.value(qid), fresh)
        ):
            return
        remaining = deadline - asyncio.get_running_loop().time()
        assert remaining > 0, (
            f"{path}{args}: subscriber has {sub.results.get(qid)}, fresh query {fresh}"
        )
        try:
            await sub.recv(timeout=min(remaining, 0.5))
        except TimeoutError:
            pass


def _same(a: object, b: object) -> bool:
    from app.values import decode_value

    return decode_value(a) == b


async def test_a_mutation_through_one_process_reaches_subscribers_of_the_other(
    pair: tuple[ServerProcess, ServerProcess], clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    _a, b = pair
    ca, _ = clients
    sub = await SyncClient.open(b.url)
    qid = await sub.add("messages:get_by_author", {"author": "x"})
    await sub.wait_query_set()
    started = asyncio.get_running_loop().time()
    await mutation(ca, "messages:create", {"author": "x", "body": "across"})
    while not sub.value(qid):
        await sub.recv(timeout=1)
    assert asyncio.get_running_loop().time() - started < 1
    await sub.close()


async def test_a_refresh_does_not_parse_again_the_commits_its_own_process_matched(
    pair: tuple[ServerProcess, ServerProcess], clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    # A process matches its own commits against its live queries when it makes them
    # (`Hub.local_commit`); the refresh that follows skips their commit-log rows instead
    # of parsing and matching each one a second time.
    a, _ = pair
    ca, _ = clients
    sub = await SyncClient.open(a.url)
    qid = await sub.add("messages:get_by_author", {"author": "own"})
    await sub.wait_query_set()
    await asyncio.sleep(0.3)  # the other process's listener start, the last refreshes
    before = await stats(ca)
    for i in range(5):
        await mutation(ca, "messages:create", {"author": "own", "body": str(i)})
        await converge(sub, qid, ca, "messages:get_by_author", {"author": "own"})
    after = await stats(ca)
    assert after["commits_seen"] - before["commits_seen"] >= 5
    assert after["commits_matched"] - before["commits_matched"] == 0
    assert after["reruns"] - before["reruns"] == 5  # each commit still re-ran the query
    await sub.close()


async def test_only_affected_subscriptions_are_re_executed(
    pair: tuple[ServerProcess, ServerProcess], clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    a, _ = pair
    ca, _ = clients
    sub = await SyncClient.open(a.url)
    qa = await sub.add("messages:get_by_author", {"author": "a"})
    qb = await sub.add("messages:get_by_author", {"author": "b"})
    await sub.wait_query_set()
    before = await stats(ca)
    for i in range(5):
        await mutation(ca, "messages:create", {"author": "a", "body": str(i)})
    await converge(sub, qa, ca, "messages:get_by_author", {"author": "a"})
    await asyncio.sleep(0.3)
    after = await stats(ca)
    reruns = after["reruns"] - before["reruns"]
    assert reruns == after["affected"] - before["affected"]
    assert 1 <= reruns <= 5
    updates_b = [
        t for t in sub.transitions if any(m.get("queryId") == qb for m in t["modifications"])
    ]
    assert len(updates_b) == 1  # only its first result
    await sub.close()


async def test_random_concurrent_writers_leave_every_subscriber_equal_to_a_fresh_query(
    pair: tuple[ServerProcess, ServerProcess], clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    a, b = pair
    ca, cb = clients
    rng = random.Random(1234)
    subs: list[tuple[SyncClient, int, str, dict, httpx.AsyncClient]] = []
    specs = (
        [("messages:list", {})]
        + [("messages:get_by_author", {"author": x}) for x in AUTHORS]
        + [
            ("messages:newest_by_author", {"author": "a", "count": 3}),
            ("accounts:total", {}),
            ("logs:list", {}),
        ]
    )
    for server, http in ((a, ca), (b, cb)):
        for path, args in specs:
            s = await SyncClient.open(server.url)
            qid = await s.add(path, args)
            await s.wait_query_set()
            subs.append((s, qid, path, args, http))
    writer_sockets = [await SyncClient.open(a.url), await SyncClient.open(b.url)]
    before = [await stats(ca), await stats(cb)]

    async def http_writer(http: httpx.AsyncClient, n: int) -> None:
        ids: list[str] = []  # this writer's own: a like never races a remove of its id
        for _ in range(n):
            op = rng.random()
            if op < 0.5 or not ids:
                ids.append(
                    await mutation(
                        http, "messages:create", {"author": rng.choice(AUTHORS), "body": "h"}
                    )
                )
            elif op < 0.75:
                await mutation(http, "messages:like", {"id": rng.choice(ids)})
            elif op < 0.9:
                await mutation(http, "accounts:open", {"owner": "o", "balance": rng.randint(1, 9)})
            else:
                doc = rng.choice(ids)
                ids.remove(doc)
                await mutation(http, "messages:remove", {"id": doc})

    async def socket_writer(ws: SyncClient, n: int) -> None:
        for _ in range(n):
            r = await ws.mutation("messages:create", {"author": rng.choice(AUTHORS), "body": "w"})
            assert r["success"]

    # Stopped by an event, not by cancelling: on Python 3.11 `asyncio.wait_for` can swallow
    # a cancellation that arrives as its inner receive completes, and a drain cancelled
    # that way looped forever (the hang this test once had in full runs).
    stop = asyncio.Event()

    async def drain(s: SyncClient) -> None:
        while not stop.is_set():
            try:
                await s.recv(timeout=0.05)
            except TimeoutError:
                await asyncio.sleep(0.01)

    drains = [asyncio.create_task(drain(s)) for s, *_ in subs]
    try:
        async with asyncio.timeout(60):
            await asyncio.gather(
                http_writer(ca, 40),
                http_writer(cb, 40),
                socket_writer(writer_sockets[0], 20),
                socket_writer(writer_sockets[1], 20),
            )
    finally:
        stop.set()
        _, still_running = await asyncio.wait(drains, timeout=10)
        for t in still_running:
            t.cancel()
    assert not still_running
    for t in drains:
        assert t.exception() is None, t
    for s, qid, path, args, http in subs:
        await converge(s, qid, http, path, args)
    after = [await stats(ca), await stats(cb)]
    for x, y in zip(before, after, strict=True):
        assert y["reruns"] - x["reruns"] == y["affected"] - x["affected"]
        assert y["commits_seen"] > x["commits_seen"]
    for s, *_ in subs:
        await s.close()
    for w in writer_sockets:
        await w.close()


async def test_subscribers_converge_after_the_listener_connection_is_killed(
    pair: tuple[ServerProcess, ServerProcess], clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    a, b = pair
    ca, cb = clients
    subs = []
    for server in (a, b):
        s = await SyncClient.open(server.url)
        qid = await s.add("messages:get_by_author", {"author": "k"})
        await s.wait_query_set()
        subs.append((s, qid))
    conn = await asyncpg.connect(a.env["DATABASE_URL"])
    try:
        killed = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'convect-listen' AND datname = current_database()"
        )
        assert len(killed) == 2
    finally:
        await conn.close()
    for i in range(3):
        await mutation(ca if i % 2 else cb, "messages:create", {"author": "k", "body": str(i)})
    for s, qid in subs:
        await converge(s, qid, ca, "messages:get_by_author", {"author": "k"}, timeout=10)
        await s.close()


async def test_a_process_without_live_queries_serves_calls_and_its_commits_reach_others(
    pair: tuple[ServerProcess, ServerProcess],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
    data_dir: Path,
) -> None:
    a, _ = pair
    plain = start_server({**a.env, "CONVECT_LIVE_QUERIES": "false"}, data_dir / "pair-nolive.log")
    try:
        sub = await SyncClient.open(a.url)
        qid = await sub.add("messages:get_by_author", {"author": "nolive"})
        await sub.wait_query_set()
        async with httpx.AsyncClient(base_url=plain.url, timeout=30) as cp:
            await mutation(cp, "messages:create", {"author": "nolive", "body": "from plain"})
            assert [
                m["body"] for m in await query(cp, "messages:get_by_author", {"author": "nolive"})
            ] == ["from plain"]
            r = await cp.get(
                "/api/debug/sync_stats", headers={"Authorization": f"Convex {ADMIN_KEY}"}
            )
            assert r.status_code == 404  # no hub in this process
        with pytest.raises(Exception):  # noqa: B017 - any handshake failure
            await SyncClient.open(plain.url)
        await converge(sub, qid, clients[0], "messages:get_by_author", {"author": "nolive"})
        await sub.close()
    finally:
        plain.stop()
