"""Storage writes reach live queries: uploads, action stores and deletes are commits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from tests.storage.conftest import upload
from tests.support.calls import action, mutation
from tests.support.servers import ServerProcess
from tests.support.ws import SyncClient


def _value(client: SyncClient, qid: int) -> Any:
    try:
        return client.value(qid)
    except KeyError:
        return None


async def _until(
    client: SyncClient, qid: int, check: Callable[[Any], bool], timeout: float = 5
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check(_value(client, qid)):
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"the subscription never got there: {_value(client, qid)!r}"
        await client.recv(timeout=left)


async def test_subscribers_of_storage_see_uploads_stores_and_deletes(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    sub = await SyncClient.open(demo_server.url)
    try:
        stored = await sub.add("files:stored")
        await sub.wait_query_set()
        uploaded = await upload(demo, b"via url")
        await _until(sub, stored, lambda v: v is not None and [d["_id"] for d in v] == [uploaded])
        from_action = await action(demo, "files:store_text", {"name": "n", "text": "via action"})
        await _until(sub, stored, lambda v: v is not None and len(v) == 2)
        listed = await sub.add("files:list")
        await _until(sub, listed, lambda v: v is not None and v[0]["url"] is not None)
        await action(demo, "files:delete_stored", {"storageId": from_action})
        await _until(sub, stored, lambda v: [d["_id"] for d in v] == [uploaded])
        await _until(sub, listed, lambda v: v[0]["url"] is None)  # the URL query re-ran
        file_id = await mutation(demo, "files:save", {"name": "u", "storageId": uploaded})
        await _until(sub, listed, lambda v: len(v) == 2)
        await mutation(demo, "files:remove", {"id": file_id})
        await _until(sub, stored, lambda v: v == [])
    finally:
        await sub.close()
