"""The demo app's search features over the Convex HTTP API, as a client calls them."""

from __future__ import annotations

import math
import random
from typing import Any

import httpx
import pytest

from tests.support.calls import CallFailed, action, mutation, query

DIMS = 384


def unit(rng: random.Random, around: list[float] | None = None) -> list[float]:
    """A random 384-d unit vector (near `around` when given)."""
    vec = [rng.gauss(0, 1) + (around[i] * 4 if around else 0) for i in range(DIMS)]
    norm = math.sqrt(sum(x * x for x in vec))
    return [x / norm for x in vec]


async def add_documents(demo: httpx.AsyncClient, rng: random.Random) -> dict[str, list[float]]:
    """Six documents in two categories; returns id -> vector."""
    out = {}
    for i in range(6):
        vec = unit(rng)
        doc_id = await mutation(
            demo,
            "documents:add",
            {"text": f"doc {i}", "category": "even" if i % 2 == 0 else "odd", "embedding": vec},
        )
        out[doc_id] = vec
    return out


async def test_semantic_search_with_a_client_vector_ranks_by_cosine(
    demo: httpx.AsyncClient,
) -> None:
    rng = random.Random(1)
    docs = await add_documents(demo, rng)
    target = next(iter(docs))
    near = unit(rng, around=docs[target])
    hits = await action(demo, "documents:semanticSearch", {"query": "", "vector": near})
    assert hits[0]["_id"] == target
    assert [h["_score"] for h in hits] == sorted((h["_score"] for h in hits), reverse=True)
    assert len(hits) == 6
    expected = sum(a * b for a, b in zip(docs[target], near, strict=True))
    assert hits[0]["_score"] == pytest.approx(expected, abs=1e-5)
    odd = await action(
        demo,
        "documents:semanticSearch",
        {"query": "", "vector": near, "category": "odd", "limit": 2},
    )
    assert len(odd) == 2
    found = await action(demo, "documents:search", {"query": "", "vector": near})
    assert found[0]["text"] == "doc 0" and "embedding" not in found[0]


async def test_wrong_vectors_get_clear_errors_and_change_nothing(demo: httpx.AsyncClient) -> None:
    with pytest.raises(CallFailed, match="must have 384 dimensions"):
        await mutation(
            demo, "documents:add", {"text": "x", "category": "c", "embedding": [1.0, 2.0]}
        )
    with pytest.raises(CallFailed, match="must have 384 dimensions"):
        await action(demo, "documents:semanticSearch", {"query": "", "vector": [1.0]})
    with pytest.raises(CallFailed, match="ArgumentValidationError"):
        await mutation(
            demo, "documents:add", {"text": "x", "category": "c", "embedding": ["a"] * DIMS}
        )
    assert (await query(demo, "documents:page", {"paginationOpts": opts(10)}))["page"] == []


def opts(n: int, cursor: str | None = None, **extra: Any) -> dict[str, Any]:
    """paginationOpts as a client sends them."""
    return {"numItems": n, "cursor": cursor, **extra}


async def test_a_client_pages_through_documents_newest_first(demo: httpx.AsyncClient) -> None:
    rng = random.Random(2)
    for i in range(25):
        await mutation(
            demo, "documents:add", {"text": f"d{i}", "category": "c", "embedding": unit(rng)}
        )
    texts: list[str] = []
    cursor = None
    while True:
        result = await query(demo, "documents:page", {"paginationOpts": opts(10, cursor)})
        texts += [d["text"] for d in result["page"]]
        if result["isDone"]:
            break
        cursor = result["continueCursor"]
    assert texts == [f"d{i}" for i in range(24, -1, -1)]
    with pytest.raises(CallFailed) as info:
        await query(demo, "documents:page", {"paginationOpts": opts(10, cursor + "x")})
    assert info.value.data["paginationError"] == "InvalidCursor"
    assert "InvalidCursor" in info.value.body["errorMessage"]


async def test_message_search_ranks_and_matches_prefixes_over_http(
    demo: httpx.AsyncClient,
) -> None:
    for author, body in [
        ("ann", "meeting notes for monday"),
        ("bob", "monday meeting moved"),
        ("ann", "lunch plans"),
        ("bob", "notes"),
    ]:
        await mutation(demo, "messages:create", {"author": author, "body": body})
    found = await query(demo, "search:messages", {"text": "meeting mon"})
    assert [m["body"] for m in found] == ["monday meeting moved", "meeting notes for monday"]
    assert [m["body"] for m in await query(demo, "search:messages", {"text": "lun"})] == [
        "lunch plans"
    ]
    by_ann = await query(demo, "search:messages", {"text": "notes", "author": "ann"})
    assert [m["body"] for m in by_ann] == ["meeting notes for monday"]
    first = await query(demo, "search:messages_page", {"text": "notes", "paginationOpts": opts(1)})
    rest = await query(
        demo,
        "search:messages_page",
        {"text": "notes", "paginationOpts": opts(5, first["continueCursor"])},
    )
    assert rest["isDone"] is True
    assert len(first["page"] + rest["page"]) == 2
