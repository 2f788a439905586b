"""Vector indexes: recall against brute force, selective filters, scores, bad input."""

from __future__ import annotations

import math
import random
from typing import Any

import orjson
import pytest

from app.db.errors import DocumentError
from app.db.ids import new_id
from app.db.search_schema import filter_index_sql, vector_index_sql
from app.db.vector import (
    VectorSearchError,
    check_query,
    ef_search,
    search_sql,
    vector_columns,
    vector_search,
)
from app.values import UNSET, encode_value
from tests.search.conftest import DIMS, Store


def centres(k: int, rng: random.Random) -> list[list[float]]:
    """`k` random cluster centres."""
    return [[rng.gauss(0, 1) for _ in range(DIMS)] for _ in range(k)]


def clustered(n: int, clusters: int | list[list[float]], rng: random.Random) -> list[list[float]]:
    """`n` vectors around cluster centres (like real embeddings: clumpy)."""
    if isinstance(clusters, int):
        clusters = centres(clusters, rng)
    out = []
    for _ in range(n):
        c = rng.choice(clusters)
        out.append([x + rng.gauss(0, 0.35) for x in c])
    return out


def cosine(a: list[float], b: list[float]) -> float:
    """Cosine similarity, computed in Python."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def brute_force(
    docs: dict[str, tuple[list[float], str]], query: list[float], k: int, cat: str | None = None
) -> list[str]:
    """The exact top `k` ids by cosine similarity (optionally within one category)."""
    scored = [
        (cosine(vec, query), doc_id) for doc_id, (vec, c) in docs.items() if cat is None or c == cat
    ]
    scored.sort(reverse=True)
    return [doc_id for _, doc_id in scored[:k]]


async def insert_vectors(
    store: Store, vectors: list[list[float]], cats: list[str]
) -> dict[str, tuple[list[float], str]]:
    """Insert many documents fast: the first 100 through the writer, the rest in bulk with
    the vector column computed as the writer computes it."""
    out: dict[str, tuple[list[float], str]] = {}
    head = min(100, len(vectors))
    ids = await store.write(lambda db: _insert_chunk(db, vectors[:head], cats[:head]))
    for j, doc_id in enumerate(ids):
        out[doc_id] = (vectors[j], cats[j])
    rows = []
    for j in range(head, len(vectors)):
        doc_id = new_id("vecs")
        doc = {"label": f"v{j}", "cat": cats[j], "emb": vectors[j], "_id": doc_id,
               "_creationTime": 1000.0 + j}  # fmt: skip
        _, [vec] = vector_columns(store.catalog, "vecs", encode_value(doc))
        rows.append((doc_id, doc["_creationTime"], orjson.dumps(encode_value(doc)).decode(), vec))
        out[doc_id] = (vectors[j], cats[j])
    async with store.pool.acquire() as conn:
        # As a deploy does: load the rows, then build the HNSW graph in one go.
        await conn.execute('DROP INDEX docs."vecs__by_emb"')
        await conn.executemany(
            'INSERT INTO docs."vecs" (id, creation_time, doc, "vec__by_emb") '
            "VALUES ($1, $2, $3::jsonb, $4::vector)",
            rows,
        )
        await conn.execute(vector_index_sql("vecs", "by_emb", concurrently=False))
        await conn.execute('ANALYZE docs."vecs"')
    return out


async def _insert_chunk(db: Any, vectors: list[list[float]], cats: list[str]) -> list[str]:
    return [
        await db.insert("vecs", {"label": f"v{i}", "cat": c, "emb": vec})
        for i, (vec, c) in enumerate(zip(vectors, cats, strict=True))
    ]


async def test_recall_at_10_matches_brute_force_on_clustered_vectors(store: Store) -> None:
    rng = random.Random(6)
    middles = centres(30, rng)
    vectors = clustered(3000, middles, rng)
    docs = await insert_vectors(store, vectors, ["a"] * len(vectors))
    queries = clustered(30, middles, rng)
    hits = 0
    for q in queries:
        got = await vector_search(
            store.pool, store.catalog, "vecs", "by_emb", {"vector": q, "limit": 10}
        )
        exact = brute_force(docs, q, 10)
        hits += len({r["_id"] for r in got} & set(exact))
        scores = [r["_score"] for r in got]
        assert scores == sorted(scores, reverse=True)
        for r in got:
            assert r["_score"] == pytest.approx(cosine(docs[r["_id"]][0], q), abs=1e-5)
    recall = hits / (10 * len(queries))
    assert recall >= 0.95, recall


async def test_a_one_percent_filter_still_returns_limit_results_and_the_exact_ones(
    store: Store,
) -> None:
    rng = random.Random(7)
    middles = centres(20, rng)
    vectors = clustered(5000, middles, rng)
    cats = ["rare" if i % 100 == 0 else "common" for i in range(len(vectors))]
    docs = await insert_vectors(store, vectors, cats)
    for q in clustered(5, middles, rng):
        got = await vector_search(
            store.pool,
            store.catalog,
            "vecs",
            "by_emb",
            {"vector": q, "limit": 10, "filter": lambda f: f.eq("cat", "rare")},
        )
        assert len(got) == 10
        assert all(docs[r["_id"]][1] == "rare" for r in got)
        assert [r["_id"] for r in got] == brute_force(docs, q, 10, "rare")


async def test_or_filter_and_a_filter_matching_nothing(store: Store) -> None:
    rng = random.Random(8)
    vectors = clustered(300, 5, rng)
    cats = [("x", "y", "z")[i % 3] for i in range(len(vectors))]
    docs = await insert_vectors(store, vectors, cats)
    got = await vector_search(
        store.pool,
        store.catalog,
        "vecs",
        "by_emb",
        {
            "vector": vectors[0],
            "limit": 256,
            "filter": lambda q: q.or_(q.eq("cat", "x"), q.eq("cat", "z")),
        },
    )
    assert len(got) == 200
    assert {docs[r["_id"]][1] for r in got} == {"x", "z"}
    none = await vector_search(
        store.pool,
        store.catalog,
        "vecs",
        "by_emb",
        {"vector": vectors[0], "filter": lambda q: q.eq("cat", "nope")},
    )
    assert none == []


async def test_default_limit_is_ten_and_the_nearest_scores_one(store: Store) -> None:
    rng = random.Random(9)
    vectors = clustered(50, 3, rng)
    docs = await insert_vectors(store, vectors, ["a"] * 50)
    got = await vector_search(store.pool, store.catalog, "vecs", "by_emb", {"vector": vectors[7]})
    assert len(got) == 10
    assert docs[got[0]["_id"]][0] == vectors[7]
    assert got[0]["_score"] == pytest.approx(1.0, abs=1e-6)


async def test_updates_and_removed_vectors_change_what_the_index_finds(store: Store) -> None:
    a = [1.0] + [0.0] * (DIMS - 1)
    b = [0.0, 1.0] + [0.0] * (DIMS - 2)
    doc_id = await store.write(lambda db: db.insert("vecs", {"label": "x", "cat": "c", "emb": a}))
    other = await store.write(lambda db: db.insert("vecs", {"label": "y", "cat": "c", "emb": b}))

    async def nearest(vec: list[float]) -> list[str]:
        return [
            r["_id"]
            for r in await vector_search(
                store.pool, store.catalog, "vecs", "by_emb", {"vector": vec}
            )
        ]

    assert (await nearest(a))[0] == doc_id
    await store.write(lambda db: db.patch(doc_id, {"emb": b}))
    assert set(await nearest(a)) == {doc_id, other}
    await store.write(lambda db: db.patch(doc_id, {"emb": UNSET}))
    assert await nearest(a) == [other]
    await store.write(lambda db: db.delete(other))
    assert await nearest(a) == []


@pytest.mark.parametrize(
    ("emb", "message"),
    [
        ([1.0, 2.0, 3.0], "must have 16 dimensions, got a vector of length 3"),
        ([1.0] * (DIMS + 1), "must have 16 dimensions"),
        ([float("nan")] + [1.0] * (DIMS - 1), "must be a finite 32-bit float"),
        ([1e39] + [1.0] * (DIMS - 1), "must be a finite 32-bit float"),
    ],
)
async def test_a_wrong_vector_is_refused_on_write_and_nothing_is_stored(
    store: Store, emb: list[float], message: str
) -> None:
    with pytest.raises(DocumentError, match=message):
        await store.write(lambda db: db.insert("vecs", {"label": "bad", "cat": "c", "emb": emb}))
    ok = await store.write(
        lambda db: db.insert("vecs", {"label": "ok", "cat": "c", "emb": [1.0] * DIMS})
    )
    with pytest.raises(DocumentError, match=message):
        await store.write(lambda db: db.patch(ok, {"emb": emb}))
    assert await store.query(lambda db: db.query("vecs").collect()) == [
        await store.query(lambda db: db.get(ok))
    ]


async def test_non_numeric_vectors_are_refused_by_the_schema(store: Store) -> None:
    with pytest.raises(DocumentError, match="does not match the schema"):
        await store.write(
            lambda db: db.insert("vecs", {"label": "s", "cat": "c", "emb": ["a"] * DIMS})
        )


GOOD = [1.0] * DIMS


@pytest.mark.parametrize(
    ("table", "index", "query", "message"),
    [
        ("vecs", "by_emb", {"vector": GOOD, "limit": 0}, "'limit' must be an integer from 1"),
        ("vecs", "by_emb", {"vector": GOOD, "limit": 257}, "from 1 to 256"),
        ("vecs", "by_emb", {"vector": GOOD, "limit": 2.5}, "'limit' must be an integer"),
        ("vecs", "by_emb", {"vector": GOOD, "limit": True}, "'limit' must be an integer"),
        ("vecs", "by_emb", {"vector": GOOD, "limit": "10"}, "'limit' must be an integer"),
        ("vecs", "by_emb", {"vector": [1.0, 2.0]}, "must have 16 dimensions"),
        ("vecs", "by_emb", {"vector": ["x"] * DIMS}, r"\[0\] must be a number"),
        ("vecs", "by_emb", {"vector": [0.0] * DIMS}, "must not be all zeros"),
        ("vecs", "by_emb", {"vector": "[1,2]"}, "must be an array"),
        ("vecs", "by_emb", {}, "'vector' is required"),
        ("vecs", "by_emb", {"vector": GOOD, "limt": 3}, "unknown option"),
        ("vecs", "by_emb", {"vector": GOOD, "filter": 3}, "must be a function"),
        (
            "vecs",
            "by_emb",
            {"vector": GOOD, "filter": lambda q: q.eq("label", "x")},
            "not a filter field",
        ),
        ("vecs", "by_emb", {"vector": GOOD, "filter": lambda q: True}, "must return q.eq"),
        ("vecs", "nope", {"vector": GOOD}, "Vector index vecs.nope not found"),
        ("notes", "by_emb", {"vector": GOOD}, "not found"),
        ('x"; DROP TABLE vecs; --', "by_emb", {"vector": GOOD}, "not found"),
    ],
)
async def test_bad_vector_searches_get_a_clear_error(
    store: Store, table: str, index: str, query: dict[str, Any], message: str
) -> None:
    await store.write(lambda db: db.insert("vecs", {"label": "x", "cat": "c", "emb": GOOD}))
    with pytest.raises(VectorSearchError, match=message):
        await vector_search(store.pool, store.catalog, table, index, query)
    assert len(await store.query(lambda db: db.query("vecs").collect())) == 1


async def test_the_hnsw_iterative_scan_alone_fills_a_one_percent_filter(store: Store) -> None:
    rng = random.Random(10)
    middles = centres(20, rng)
    vectors = clustered(5000, middles, rng)
    cats = ["rare" if i % 100 == 0 else "common" for i in range(len(vectors))]
    docs = await insert_vectors(store, vectors, cats)
    hits = 0
    async with store.pool.acquire() as conn:
        await conn.execute('DROP INDEX docs."vecs__$filter$cat"')  # leave only the HNSW path
        try:
            for vec in clustered(5, middles, rng):
                q = check_query(
                    store.catalog,
                    "vecs",
                    "by_emb",
                    {"vector": vec, "filter": lambda f: f.eq("cat", "rare")},
                )
                sql, args = search_sql(q, exact=False)
                async with conn.transaction():
                    await conn.execute(
                        f"SET LOCAL hnsw.ef_search = {ef_search(q.limit)}; "
                        "SET LOCAL hnsw.iterative_scan = relaxed_order; "
                        "SET LOCAL enable_seqscan = off"  # small table: force the graph
                    )
                    plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql, *args))
                    rows = await conn.fetch(sql, *args)
                assert "vecs__by_emb" in plan
                assert len(rows) == 10
                hits += len({r["id"] for r in rows} & set(brute_force(docs, vec, 10, "rare")))
        finally:
            await conn.execute(filter_index_sql("vecs", "cat", concurrently=False))
    assert hits / 50 >= 0.9


async def test_a_filter_that_correlates_with_location_still_finds_the_exact_nearest(
    store: Store,
) -> None:
    rng = random.Random(11)
    middles = centres(20, rng)
    vectors, cats = [], []
    for i in range(4000):
        k = i % 20
        vectors.append([x + rng.gauss(0, 0.35) for x in middles[k]])
        cats.append(f"c{k}")
    docs = await insert_vectors(store, vectors, cats)
    for k in range(5):
        near_a = clustered(1, [middles[k]], rng)[0]
        other = f"c{(k + 10) % 20}"  # documents far from the query
        got = await vector_search(
            store.pool,
            store.catalog,
            "vecs",
            "by_emb",
            {"vector": near_a, "limit": 10, "filter": lambda q, c=other: q.eq("cat", c)},
        )
        assert [r["_id"] for r in got] == brute_force(docs, near_a, 10, other)
