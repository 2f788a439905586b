"""The demo app over the Convex HTTP API: every seed example, called as a client would."""

from __future__ import annotations

import httpx
import pytest

from tests.support.calls import CallFailed, action, mutation, query


async def test_create_then_list_returns_the_message(demo: httpx.AsyncClient) -> None:
    msg_id = await mutation(demo, "messages:create", {"author": "ann", "body": "hello"})
    docs = await query(demo, "messages:list")
    assert [(d["_id"], d["author"], d["body"]) for d in docs] == [(msg_id, "ann", "hello")]
    assert isinstance(docs[0]["_creationTime"], float)


async def test_get_by_author_uses_the_index_and_returns_only_that_author(
    demo: httpx.AsyncClient,
) -> None:
    for author, body in [("ann", "a1"), ("bob", "b1"), ("ann", "a2")]:
        await mutation(demo, "messages:create", {"author": author, "body": body})
    docs = await query(demo, "messages:get_by_author", {"author": "ann"})
    assert [d["body"] for d in docs] == ["a1", "a2"]


async def test_newest_by_author_returns_newest_first_limited(demo: httpx.AsyncClient) -> None:
    for i in range(5):
        await mutation(demo, "messages:create", {"author": "ann", "body": str(i)})
    docs = await query(demo, "messages:newest_by_author", {"author": "ann", "count": 3})
    assert [d["body"] for d in docs] == ["4", "3", "2"]


async def test_update_and_like_change_the_document(demo: httpx.AsyncClient) -> None:
    msg_id = await mutation(demo, "messages:create", {"author": "ann", "body": "x"})
    await mutation(demo, "messages:update", {"id": msg_id, "body": "y"})
    await mutation(demo, "messages:like", {"id": msg_id})
    await mutation(demo, "messages:like", {"id": msg_id})
    doc = await query(demo, "messages:get", {"id": msg_id})
    assert doc["body"] == "y"
    assert doc["likes"] == 2.0


async def test_like_of_a_deleted_message_is_a_convex_error(demo: httpx.AsyncClient) -> None:
    msg_id = await mutation(demo, "messages:create", {"author": "ann", "body": "x"})
    await mutation(demo, "messages:remove", {"id": msg_id})
    with pytest.raises(CallFailed) as info:
        await mutation(demo, "messages:like", {"id": msg_id})
    assert info.value.data == "Not found"


async def test_transfer_moves_money_atomically(demo: httpx.AsyncClient) -> None:
    a = await mutation(demo, "accounts:open", {"owner": "a", "balance": 100})
    b = await mutation(demo, "accounts:open", {"owner": "b", "balance": 0})
    await mutation(demo, "accounts:transfer", {"fromId": a, "toId": b, "amount": 30})
    with pytest.raises(CallFailed) as info:
        await mutation(demo, "accounts:transfer", {"fromId": a, "toId": b, "amount": 500})
    assert info.value.data == {"code": "INSUFFICIENT_FUNDS", "balance": 70.0}
    assert (await query(demo, "accounts:get", {"id": a}))["balance"] == 70.0
    assert (await query(demo, "accounts:get", {"id": b}))["balance"] == 30.0
    assert await query(demo, "accounts:total") == 100.0


async def test_search_with_optional_category_and_limit(demo: httpx.AsyncClient) -> None:
    for i in range(4):
        await mutation(
            demo, "items:add", {"name": f"n{i}", "category": "books" if i % 2 else "toys"}
        )
    books = await query(demo, "items:search", {"query": "", "category": "books"})
    assert sorted(d["name"] for d in books) == ["n1", "n3"]
    assert len(await query(demo, "items:search", {"query": "", "limit": 3})) == 3
    assert [d["name"] for d in await query(demo, "items:search", {"query": "n2"})] == ["n2"]


async def test_internal_functions_run_through_run_query_and_run_mutation(
    demo: httpx.AsyncClient,
) -> None:
    assert await mutation(demo, "logs:record_twice", {"event": "e"}) == 2.0
    assert sorted(d["event"] for d in await query(demo, "logs:list")) == ["e", "e again"]


async def test_filter_on_price_is_evaluated_in_the_database(demo: httpx.AsyncClient) -> None:
    await mutation(demo, "items:add", {"name": "cheap", "category": "c", "price": 5})
    await mutation(demo, "items:add", {"name": "dear", "category": "c", "price": 50})
    await mutation(demo, "items:add", {"name": "free", "category": "c"})
    docs = await query(demo, "items:cheaper_than", {"maxPrice": 10})
    assert [d["name"] for d in docs] == ["cheap"]


async def test_an_action_runs(demo: httpx.AsyncClient) -> None:
    result = await action(demo, "actions:echo", {"text": "hi"})
    assert result == {"text": "hi", "logged": 1.0}
