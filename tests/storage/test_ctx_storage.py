"""`ctx.storage` in queries, mutations and actions (the kitchen and demo apps)."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest

from tests.storage.conftest import gone, stored
from tests.support.calls import CallFailed, action, mutation, query
from tests.support.servers import ServerProcess


async def _store(kitchen: httpx.AsyncClient, text: str = "hello") -> str:
    storage_id: str = await action(kitchen, "files_ops:store_text", {"text": text})
    return storage_id


async def test_an_action_stores_and_reads_a_file(kitchen: httpx.AsyncClient) -> None:
    storage_id = await action(
        kitchen, "files_ops:store_text", {"text": "héllo", "contentType": "text/plain"}
    )
    got = await action(kitchen, "files_ops:read", {"id": storage_id})
    sha = hashlib.sha256("héllo".encode()).hexdigest()
    assert got["bytes"] == "héllo".encode()
    assert (got["size"], got["type"], got["sha256"]) == (6, "text/plain", sha)
    assert got["url"] == f"{kitchen.base_url}/api/storage/{storage_id}"
    assert got["meta"] == {
        "storageId": storage_id,
        "sha256": sha,
        "size": 6,
        "contentType": "text/plain",
    }
    part = await action(kitchen, "files_ops:read", {"id": storage_id, "start": 1, "stop": 3})
    assert part["bytes"] == "héllo".encode()[1:3]


async def test_queries_see_metadata_through_storage_and_db_system(
    kitchen: httpx.AsyncClient,
) -> None:
    storage_id = await _store(kitchen)
    both = await query(kitchen, "files_ops:metadata_of", {"id": storage_id})
    assert both["meta"]["storageId"] == storage_id
    assert both["doc"]["_id"] == storage_id
    assert both["doc"]["size"] == 5
    assert "contentType" not in both["doc"]
    url = await query(kitchen, "files_ops:url_of", {"id": storage_id})
    assert (await kitchen.get(url)).content == b"hello"


async def test_an_async_generator_is_stored_and_its_sha256_checked(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    pieces = ["a" * 700_000, "b" * 700_000, "c"]
    sha = hashlib.sha256("".join(pieces).encode()).hexdigest()
    storage_id = await action(kitchen, "files_ops:store_pieces", {"pieces": pieces, "sha256": sha})
    assert storage_id in await stored(kitchen_server)
    got = await action(kitchen, "files_ops:read", {"id": storage_id})
    assert got["bytes"] == "".join(pieces).encode()
    b64 = base64.b64encode(hashlib.sha256("".join(pieces).encode()).digest()).decode()
    again = await action(kitchen, "files_ops:store_pieces", {"pieces": pieces, "sha256": b64})
    assert again in await stored(kitchen_server)  # base64, as Convex's store(blob, {sha256})
    before = await stored(kitchen_server)
    with pytest.raises(CallFailed, match=r"Sha256 mismatch\. Expected: A{43}= Actual: "):
        await action(kitchen, "files_ops:store_pieces", {"pieces": pieces, "sha256": "0" * 64})
    with pytest.raises(CallFailed, match="64 hexadecimal or 44 base64"):
        await action(kitchen, "files_ops:store_pieces", {"pieces": pieces, "sha256": "zz"})
    assert await stored(kitchen_server) == before


async def test_store_refuses_what_is_not_bytes_and_keeps_nothing(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    before = await stored(kitchen_server)
    expected = {
        "str": "store() takes bytes",
        "ints": "must yield bytes",
        "content_type": "Invalid content type",
        "failing_stream": "the source broke",
    }
    for kind, message in expected.items():
        with pytest.raises(CallFailed) as info:
            await action(kitchen, "files_ops:store_bad", {"kind": kind})
        assert message in str(info.value), kind
    assert await stored(kitchen_server) == before


async def test_a_mutation_that_fails_after_deleting_keeps_the_file(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    storage_id = await _store(kitchen)
    with pytest.raises(CallFailed) as info:
        await mutation(kitchen, "files_ops:delete_then_fail", {"id": storage_id})
    assert info.value.data == "failed after deleting"
    assert (await kitchen.get(f"/api/storage/{storage_id}")).content == b"hello"
    with pytest.raises(CallFailed, match=f"storage id {storage_id} not found"):
        await mutation(kitchen, "files_ops:delete_twice", {"id": storage_id})
    assert (await kitchen.get(f"/api/storage/{storage_id}")).status_code == 200
    assert storage_id in await stored(kitchen_server)


async def test_a_mutation_sees_its_own_delete(kitchen: httpx.AsyncClient) -> None:
    storage_id = await _store(kitchen)
    seen = await mutation(kitchen, "files_ops:delete_and_look", {"id": storage_id})
    assert seen == {"url": None, "doc": None}
    assert (await kitchen.get(f"/api/storage/{storage_id}")).status_code == 404
    with pytest.raises(CallFailed, match=f"storage id {storage_id} not found"):
        await mutation(kitchen, "files_ops:delete", {"id": storage_id})


async def test_deleting_from_an_action_removes_the_file_and_its_chunks(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    storage_id = await _store(kitchen)
    await action(kitchen, "files_ops:delete_in_action", {"id": storage_id})
    assert await action(kitchen, "files_ops:read", {"id": storage_id}) is None
    assert await query(kitchen, "files_ops:url_of", {"id": storage_id}) is None
    assert await gone(kitchen_server, storage_id)
    with pytest.raises(CallFailed, match=f"Uncaught Error: storage id {storage_id} not found"):
        await action(kitchen, "files_ops:delete_in_action", {"id": storage_id})


async def test_ids_that_are_not_storage_ids_are_clear_errors(kitchen: httpx.AsyncClient) -> None:
    storage_id = await _store(kitchen)
    typo = storage_id[:10] + ("1" if storage_id[10] != "1" else "2") + storage_id[11:]
    for bad in ["nope", 42, None, typo, storage_id + "0", {"id": storage_id}]:
        for fn in ("files_ops:url_of", "files_ops:metadata_of"):
            with pytest.raises(CallFailed) as info:
                await query(kitchen, fn, {"id": bad})
            assert "storage ID" in str(info.value) or "document id" in str(info.value), (fn, bad)
        with pytest.raises(CallFailed, match="Uncaught Error: Invalid storage ID: "):
            await mutation(kitchen, "files_ops:delete", {"id": bad})
        with pytest.raises(CallFailed, match="Invalid storage ID: "):
            await action(kitchen, "files_ops:read", {"id": bad})
    assert (await kitchen.get(f"/api/storage/{storage_id}")).status_code == 200


async def test_deleting_a_missing_file_or_a_malformed_id_gives_convex_messages(
    kitchen: httpx.AsyncClient,
) -> None:
    storage_id = await _store(kitchen)
    await mutation(kitchen, "files_ops:delete", {"id": storage_id})
    with pytest.raises(CallFailed) as missing:
        await mutation(kitchen, "files_ops:delete", {"id": storage_id})
    assert f"Uncaught Error: storage id {storage_id} not found\n" in str(missing.value)
    with pytest.raises(CallFailed) as malformed:
        await mutation(kitchen, "files_ops:delete", {"id": "nope"})
    assert (
        'Invalid storage ID: "nope". Storage ID should be an\n'
        "                    Id of '_storage' table, or a UUID string.\n"
    ) in str(malformed.value)
    other = await mutation(kitchen, "core_db:insert", {"table": "core_things", "doc": {"n": 0}})
    with pytest.raises(CallFailed) as wrong_table:
        await mutation(kitchen, "files_ops:delete", {"id": other})
    assert (
        "Invalid storage ID. Storage ID cannot be an ID on any table other than '_storage'.\n"
    ) in str(wrong_table.value)


async def test_demo_actions_store_read_and_copy_files(demo: httpx.AsyncClient) -> None:
    storage_id = await action(demo, "files:store_text", {"name": "note", "text": "note body"})
    assert await action(demo, "files:read_text", {"storageId": storage_id}) == "note body"
    copy_id = await action(demo, "files:copy", {"storageId": storage_id})
    assert copy_id != storage_id
    assert await action(demo, "files:read_text", {"storageId": copy_id}) == "note body"
    [doc] = await query(demo, "files:list")
    assert (doc["name"], doc["size"]) == ("note", 9)
    assert (await demo.get(doc["url"])).text == "note body"
    meta = await query(demo, "files:metadata", {"storageId": copy_id})
    assert meta["contentType"] == "text/plain; charset=utf-8"
