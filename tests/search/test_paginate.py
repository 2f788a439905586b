"""`.paginate()`: keyset pages on any index and order, stable under concurrent inserts."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from app.db.cursor import InvalidCursor
from app.db.database import DatabaseReader
from app.db.paginate import PaginationError, journal_of, use_journal
from app.db.readset import doc_key
from app.db.transaction import Tx
from app.sync.matching import doc_in_range
from tests.search.conftest import Store

Builder = Any


def random_n(rng: random.Random) -> dict[str, Any]:
    """A document whose `n` is a number, a string, null, or missing."""
    roll = rng.random()
    if roll < 0.1:
        return {"group": rng.choice("ab")}
    if roll < 0.15:
        return {"n": None, "group": rng.choice("ab")}
    if roll < 0.25:
        return {"n": f"s{rng.randrange(100)}", "group": rng.choice("ab")}
    return {"n": float(rng.randrange(1000)), "group": rng.choice("ab")}


async def page(store: Store, build: Any, opts: dict[str, Any]) -> dict[str, Any]:
    """One page of `build(db.query("pages"))`, in a transaction of its own."""
    result: dict[str, Any] = await store.query(lambda db: build(db.query("pages")).paginate(opts))
    return result


async def all_pages(
    store: Store, build: Any, num: int, **extra: Any
) -> tuple[list[dict[str, Any]], int]:
    """Follow continueCursor to the end; return every document and the page count."""
    docs: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        result = await page(store, build, {"numItems": num, "cursor": cursor, **extra})
        pages += 1
        docs += result["page"]
        if result["isDone"]:
            return docs, pages
        assert result["continueCursor"] != cursor
        cursor = result["continueCursor"]


ORDERINGS = {
    "creation time, ascending": lambda q: q,
    "creation time, descending": lambda q: q.order("desc"),
    "by_n, ascending": lambda q: q.with_index("by_n"),
    "by_n, descending": lambda q: q.with_index("by_n").order("desc"),
    "by_group_n = a, descending": lambda q: q.with_index(
        "by_group_n", lambda r: r.eq("group", "a")
    ).order("desc"),
    "by_n > 500, filtered": lambda q: q.with_index("by_n", lambda r: r.gt("n", 500)).filter(
        lambda f: f.eq(f.field("group"), "b")
    ),
}


@pytest.mark.parametrize("ordering", list(ORDERINGS))
async def test_paging_10000_documents_under_concurrent_inserts_visits_each_exactly_once(
    store: Store, ordering: str
) -> None:
    build = ORDERINGS[ordering]
    rng = random.Random(ordering)
    originals = await store.bulk_insert("pages", [random_n(rng) for _ in range(10_000)], 1.0)
    expected = {d["_id"] for d in await store.query(lambda db: build(db.query("pages")).collect())}
    assert expected <= set(originals)
    stop = asyncio.Event()
    inserted = 0

    async def insert_meanwhile() -> None:
        nonlocal inserted
        while not stop.is_set():
            batch = [random_n(rng) for _ in range(20)]

            async def run(db: Any, batch: list[dict[str, Any]] = batch) -> None:
                for doc in batch:
                    await db.insert("pages", doc)

            await store.write(run)
            inserted += len(batch)
            await asyncio.sleep(0)

    writer = asyncio.create_task(insert_meanwhile())
    try:
        docs, pages = await all_pages(store, build, 400)
    finally:
        stop.set()
        await writer
    assert inserted > 0
    seen = [d["_id"] for d in docs]
    assert len(seen) == len(set(seen)), "a document appeared on two pages"
    assert expected <= set(seen), f"{len(expected - set(seen))} originals were skipped"
    assert pages >= len(expected) // 400
    # The pages, concatenated, are in the index order.
    final = await store.query(lambda db: build(db.query("pages")).collect())
    position = {d["_id"]: i for i, d in enumerate(final)}
    assert [position[i] for i in seen] == sorted(position[i] for i in seen)


async def seed_n(store: Store, values: list[float]) -> list[str]:
    """Documents with these `n` values, inserted in order."""
    return await store.bulk_insert("pages", [{"n": n} for n in values], 1.0)


def by_n(q: Builder) -> Builder:
    """The query used by the smaller tests: the by_n index, ascending."""
    return q.with_index("by_n")


async def test_end_cursor_keeps_a_page_covering_exactly_its_range(store: Store) -> None:
    await seed_n(store, [float(i * 10) for i in range(20)])
    first = await page(store, by_n, {"numItems": 5, "cursor": None})
    assert [d["n"] for d in first["page"]] == [0, 10, 20, 30, 40]
    await store.write(lambda db: db.insert("pages", {"n": 15.0}))
    await store.write(lambda db: db.insert("pages", {"n": 45.0}))
    again = await page(
        store, by_n, {"numItems": 5, "cursor": None, "endCursor": first["continueCursor"]}
    )
    assert [d["n"] for d in again["page"]] == [0, 10, 15, 20, 30, 40]
    assert again["continueCursor"] == first["continueCursor"]
    assert again["isDone"] is False
    second = await page(store, by_n, {"numItems": 5, "cursor": first["continueCursor"]})
    assert [d["n"] for d in second["page"]] == [45, 50, 60, 70, 80]


async def test_a_live_page_reads_only_its_own_range(store: Store) -> None:
    await seed_n(store, [float(i) for i in range(30)])
    first = await page(store, by_n, {"numItems": 10, "cursor": None})

    async def second_page(db: DatabaseReader) -> Any:
        return await by_n(db.query("pages")).paginate(
            {"numItems": 10, "cursor": first["continueCursor"]}
        )

    result, tx = await store.read(second_page)
    assert [d["n"] for d in result["page"]] == list(range(10, 20))
    [read] = tx.read_set.ranges
    fields = read.range.fields

    def doc(n: float, ct: float) -> dict[str, Any]:
        return {"_id": "x", "_creationTime": ct, "n": n}

    assert doc_in_range(doc(14.5, 5.0), read, True)
    assert not doc_in_range(doc(3.5, 5.0), read, True)  # on the first page
    assert not doc_in_range(doc(25.0, 5.0), read, True)  # after this page
    assert not doc_in_range({"_id": "x", "_creationTime": 1.0}, read, True)  # missing n
    assert read.last_key == doc_key(result["page"][-1], fields)


async def test_maximum_rows_read_limits_the_rows_a_filtered_page_scans(store: Store) -> None:
    await seed_n(store, [float(i) for i in range(100)])

    def evens(q: Builder) -> Builder:
        return q.with_index("by_n").filter(lambda f: f.eq(f.mod(f.field("n"), 2), 0))

    result = await page(store, evens, {"numItems": 50, "cursor": None, "maximumRowsRead": 10})
    assert [d["n"] for d in result["page"]] == [0, 2, 4, 6, 8]
    assert result["isDone"] is False
    nxt = await page(
        store, evens, {"numItems": 3, "cursor": result["continueCursor"], "maximumRowsRead": 10}
    )
    assert [d["n"] for d in nxt["page"]] == [10, 12, 14]
    docs, _ = await all_pages(store, evens, 7, maximumRowsRead=9)
    assert [d["n"] for d in docs] == [float(i) for i in range(0, 100, 2)]


async def test_maximum_rows_read_does_not_cut_a_page_that_runs_to_its_end_cursor(
    store: Store,
) -> None:
    # As in Convex: a page with an end cursor (a live page's re-run) reads its whole
    # range whatever the limits say; past 3/4 of maximumRowsRead it recommends a split.
    await seed_n(store, [float(i) for i in range(40)])
    first = await page(store, by_n, {"numItems": 30, "cursor": None})
    opts = {"numItems": 30, "cursor": None, "endCursor": first["continueCursor"]}
    whole = await page(store, by_n, {**opts, "maximumRowsRead": 12})
    assert [d["n"] for d in whole["page"]] == [float(i) for i in range(30)]
    assert whole["continueCursor"] == first["continueCursor"]
    assert whole["pageStatus"] == "SplitRecommended"
    left = await page(store, by_n, {**opts, "endCursor": whole["splitCursor"]})
    right = await page(store, by_n, {**opts, "cursor": whole["splitCursor"]})
    assert [d["n"] for d in left["page"] + right["page"]] == [float(i) for i in range(30)]
    assert len(left["page"]) == 15
    roomy = await page(store, by_n, {**opts, "maximumRowsRead": 40})
    assert roomy["pageStatus"] is None and len(roomy["page"]) == 30
    # Without an end cursor the limit still ends the page.
    cut = await page(store, by_n, {"numItems": 30, "cursor": None, "maximumRowsRead": 12})
    assert len(cut["page"]) == 12 and cut["isDone"] is False


async def test_number_of_items_zero_and_an_empty_or_missing_table(store: Store) -> None:
    await seed_n(store, [1.0, 2.0])
    zero = await page(store, by_n, {"numItems": 0, "cursor": None})
    assert zero["page"] == [] and zero["isDone"] is False
    nxt = await page(store, by_n, {"numItems": 5, "cursor": zero["continueCursor"]})
    assert [d["n"] for d in nxt["page"]] == [1, 2] and nxt["isDone"] is True
    done = await page(store, by_n, {"numItems": 5, "cursor": nxt["continueCursor"]})
    assert done["page"] == [] and done["isDone"] is True
    nothing = await store.query(
        lambda db: db.query("never_created").paginate({"numItems": 5, "cursor": None})
    )
    assert nothing["page"] == [] and nothing["isDone"] is True


async def test_a_query_journal_makes_a_rerun_page_end_where_it_ended(store: Store) -> None:
    await seed_n(store, [float(i) for i in range(10)])
    async with store.pool.acquire() as conn:
        tx = Tx(conn, writable=False)
        first = await by_n(DatabaseReader(tx, store.catalog).query("pages")).paginate(
            {"numItems": 3, "cursor": None}
        )
        journal = journal_of(tx)
        assert journal == first["continueCursor"]
    await store.write(lambda db: db.insert("pages", {"n": -1.0}))
    async with store.pool.acquire() as conn:
        tx = Tx(conn, writable=False)
        use_journal(tx, journal)
        rerun = await by_n(DatabaseReader(tx, store.catalog).query("pages")).paginate(
            {"numItems": 3, "cursor": None}
        )
    assert [d["n"] for d in rerun["page"]] == [-1, 0, 1, 2]
    assert rerun["continueCursor"] == journal


async def test_search_queries_paginate_in_relevance_order(store: Store) -> None:
    async def run(db: Any) -> None:
        for i in range(45):
            await db.insert("notes", {"author": "a", "body": "word " * (1 + i % 4) + f"n{i}"})

    await store.write(run)

    def searching(q: Builder) -> Builder:
        return q.with_search_index("search_body", lambda s: s.search("body", "word"))

    every = await store.query(lambda db: searching(db.query("notes")).collect())
    docs: list[dict[str, Any]] = []
    cursor = None
    while True:
        result = await store.query(
            lambda db, c=cursor: searching(db.query("notes")).paginate(
                {"numItems": 10, "cursor": c}
            )
        )
        docs += result["page"]
        if result["isDone"]:
            break
        cursor = result["continueCursor"]
    assert [d["_id"] for d in docs] == [d["_id"] for d in every]


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"numItems": -1, "cursor": None}, "must be a positive number"),
        ({"numItems": "5", "cursor": None}, "must be a positive number"),
        ({"numItems": float("nan"), "cursor": None}, "must be a positive number"),
        ({"numItems": True, "cursor": None}, "must be a positive number"),
        ({"cursor": None}, "must be a positive number"),
        ({"numItems": 100_000, "cursor": None}, "at most 16384"),
        ({"numItems": 5, "cursor": 7}, "must be a string or null"),
        ({"numItems": 5, "cursor": None, "endCursor": 1}, "must be a string or null"),
        ({"numItems": 5, "cursor": None, "maximumRowsRead": 0}, "maximumRowsRead"),
    ],
)
async def test_bad_pagination_options_get_a_clear_error(
    store: Store, opts: dict[str, Any], message: str
) -> None:
    with pytest.raises(PaginationError, match=message):
        await page(store, by_n, opts)


async def test_bad_tampered_and_foreign_cursors_are_refused(store: Store) -> None:
    await seed_n(store, [float(i) for i in range(10)])
    good = (await page(store, by_n, {"numItems": 3, "cursor": None}))["continueCursor"]
    body, tag = good.split(".")
    flipped = body[:-3] + ("A" if body[-3] != "A" else "B") + body[-2:]
    foreign = (await page(store, lambda q: q, {"numItems": 3, "cursor": None}))["continueCursor"]
    backwards = (
        await page(
            store, lambda q: q.with_index("by_n").order("desc"), {"numItems": 3, "cursor": None}
        )
    )["continueCursor"]
    for bad in [
        "",
        "garbage",
        "a.b",
        good + "x",
        f"{flipped}.{tag}",
        f"{body}.{tag[:-2]}",
        foreign,
        backwards,
        "." * 10,
        "x" * 100_000,
    ]:
        with pytest.raises(InvalidCursor) as info:
            await page(store, by_n, {"numItems": 3, "cursor": bad})
        assert info.value.data["paginationError"] == "InvalidCursor"
        with pytest.raises(InvalidCursor):
            await page(store, by_n, {"numItems": 3, "cursor": None, "endCursor": bad})
    assert len((await page(store, by_n, {"numItems": 3, "cursor": good}))["page"]) == 3
