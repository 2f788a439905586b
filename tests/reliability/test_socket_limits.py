"""The sync listener's bounds, each met with a clear error (a server with tiny limits).

Queries per socket, mutations waiting per socket, sockets per process: a client past one
gets a FatalError (or a 1013 close) that names the limit and its setting, and nothing
else on the server is disturbed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed

from tests.conftest import DEMO
from tests.support.calls import query
from tests.support.servers import ServerProcess, served_app
from tests.support.ws import SyncClient


@pytest.fixture(scope="module")
def tight(services: dict[str, str], data_dir: Path) -> Iterator[ServerProcess]:
    """The demo app with limits small enough to reach in a test."""
    with served_app(
        services,
        "rel_limits",
        DEMO,
        data_dir / "rel-limits",
        CONVECT_MAX_SOCKET_QUERIES="5",
        CONVECT_MAX_SOCKET_MUTATIONS="3",
        CONVECT_MAX_SOCKETS="4",
    ) as server:
        yield server


async def test_a_query_set_past_the_per_socket_limit_is_a_named_protocol_error(
    tight: ServerProcess,
) -> None:
    c = await SyncClient.open(tight.url)
    adds = [
        {"type": "Add", "queryId": i, "udfPath": "messages:list", "args": [{}]} for i in range(6)
    ]
    await c.send(
        {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": adds}
    )
    msg = await c.recv_type("FatalError")
    assert "Too many queries on one connection (6; limit: 5" in msg["error"]
    assert "CONVECT_MAX_SOCKET_QUERIES" in msg["error"]
    with pytest.raises(ConnectionClosed):
        await c.recv(timeout=5)
    ok = await SyncClient.open(tight.url)  # five are fine
    for _ in range(5):
        await ok.add("messages:list")
    await ok.wait_query_set()
    await ok.close()


async def test_too_many_mutations_waiting_on_one_socket_close_it_with_the_limit_named(
    tight: ServerProcess,
) -> None:
    c = await SyncClient.open(tight.url)
    frames = [
        orjson.dumps(
            {"type": "Mutation", "requestId": i, "udfPath": "messages:create",
             "args": [{"author": "flood", "body": str(i)}]}
        ).decode()
        for i in range(200)
    ]  # fmt: skip
    for frame in frames:  # all at once: they wait while the first ones run
        await c.conn.send(frame)
    msg = await c.recv_type("FatalError", timeout=20)
    assert "Too many mutations waiting on one connection (limit: 3" in msg["error"]
    async with httpx.AsyncClient(base_url=tight.url) as http:  # the server is fine
        assert isinstance(await query(http, "messages:list"), list)


async def test_sockets_past_the_process_limit_are_told_to_try_again_later(
    tight: ServerProcess,
) -> None:
    opened, refused = [], []
    for _ in range(8):
        try:
            c = await SyncClient.open(tight.url)
            await c.recv(timeout=0.5)  # an accepted socket says nothing yet
            opened.append(c)
        except TimeoutError:
            opened.append(c)
        except ConnectionClosed as exc:
            refused.append(exc.rcvd)
    assert len(opened) <= 4 and len(refused) >= 4
    assert all(r is not None and r.code == 1013 for r in refused)
    assert "too many connections (limit: 4)" in refused[0].reason
    for c in opened:
        await c.close()
