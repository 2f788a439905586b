"""Resource bounds of the sync endpoint: socket churn and clients that stop reading."""

from __future__ import annotations

import asyncio
import socket
import uuid

import httpx
import orjson
import psutil
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

from tests.support.calls import mutation
from tests.support.servers import ServerProcess
from tests.support.ws import SyncClient


def rss(server: ServerProcess) -> int:
    return psutil.Process(server.proc.pid).memory_info().rss


async def _open_and_drop(url: str, n: int) -> None:
    async def one(i: int) -> None:
        c = await SyncClient.open(url)
        await c.add("messages:get_by_author", {"author": f"churn-{i % 50}"})
        await c.wait_query_set()
        await c.close()

    for start in range(0, n, 250):
        await asyncio.gather(*(one(i) for i in range(start, min(n, start + 250))))


async def test_ten_thousand_sockets_opened_and_dropped_leave_memory_where_it_was(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    # One full round first: the allocator and the (deliberately lazy) garbage collector of
    # `convect serve` reach their steady state; a leak would keep growing after it.
    await _open_and_drop(demo_server.url, 10_000)
    await asyncio.sleep(1)
    before = rss(demo_server)
    await _open_and_drop(demo_server.url, 10_000)
    await asyncio.sleep(2)
    after = rss(demo_server)
    stats = (
        await demo.get(
            "/api/debug/sync_stats",
            headers={"Authorization": "Convex test-admin-key-0123456789abcdefghijkl"},
        )
    ).json()
    assert stats["sessions"] == 0
    assert after <= before * 1.10, (before, after)


async def test_a_client_that_stops_reading_is_dropped_without_growing_memory(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    big = "x" * 200_000
    for i in range(5):
        await mutation(demo, "messages:create", {"author": "slow", "body": f"{i}{big}"})
    # A raw socket with a tiny receive buffer that is never read after the handshake.
    proto = ClientProtocol(
        parse_uri(demo_server.url.replace("http://", "ws://") + "/api/sync"), max_size=None
    )
    sock = socket.create_connection(("127.0.0.1", demo_server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    proto.send_request(proto.connect())
    sock.sendall(b"".join(proto.data_to_send()))
    proto.receive_data(sock.recv(4096))
    for msg in (
        {
            "type": "Connect",
            "sessionId": str(uuid.uuid4()),
            "connectionCount": 0,
            "lastCloseReason": "InitialConnect",
            "clientTs": 0,
        },
        {
            "type": "ModifyQuerySet",
            "baseVersion": 0,
            "newVersion": 1,
            "modifications": [
                {
                    "type": "Add",
                    "queryId": 0,
                    "udfPath": "messages:get_by_author",
                    "args": [{"author": "slow"}],
                }
            ],
        },
    ):
        proto.send_text(orjson.dumps(msg))
        sock.sendall(b"".join(proto.data_to_send()))
    before = rss(demo_server)
    headers = {"Authorization": "Convex test-admin-key-0123456789abcdefghijkl"}
    for i in range(150):
        await mutation(demo, "messages:create", {"author": "slow", "body": f"more {i}"})
        stats = (await demo.get("/api/debug/sync_stats", headers=headers)).json()
        if stats["sessions"] == 0:
            break
    assert stats["sessions"] == 0, "the slow client was never dropped"
    assert rss(demo_server) - before < 150 * 2**20
    sock.close()
