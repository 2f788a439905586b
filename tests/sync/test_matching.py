"""Invalidation matching: Python's jsonb order equals PostgreSQL's, and ranges match exactly."""

from __future__ import annotations

import asyncpg
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.db.query import Bound, IndexRange
from app.db.readset import MISSING, RangeRead
from app.sync.index import InvalidationIndex
from app.sync.matching import compare, doc_in_range

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00"),
        max_size=6,
    ),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=6)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pairs=st.lists(st.tuples(values, values), min_size=20, max_size=20))
async def test_python_jsonb_order_agrees_with_postgresql(
    services: dict[str, str], pairs: list
) -> None:
    conn = await asyncpg.connect(services["database_url"])
    try:
        rows = await conn.fetch(
            "SELECT (a->0 < b->0) AS lt, (a->0 = b->0) AS eq "
            "FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(p, n), "
            "LATERAL (SELECT p->'a' AS a, p->'b' AS b) t ORDER BY n",
            orjson.dumps([{"a": [a], "b": [b]} for a, b in pairs]).decode(),
        )
    finally:
        await conn.close()
    for (a, b), row in zip(pairs, rows, strict=True):
        c = compare(a, b, exact_strings=True)
        if c is None:
            continue  # undecidable answers invalidate conservatively
        assert (c < 0) == row["lt"], (a, b)
        assert (c == 0) == row["eq"], (a, b)


def test_missing_sorts_before_null() -> None:
    assert compare(MISSING, None, True) == -1
    assert compare(None, MISSING, True) == 1


def _doc(author: object, ct: float = 1.0, doc_id: str = "x") -> dict:
    doc = {"_id": doc_id, "_creationTime": ct}
    if author is not MISSING:
        doc["author"] = author
    return doc


def test_equality_and_range_bounds_are_respected() -> None:
    r = IndexRange(
        "m",
        "by_author",
        ("author", "_creationTime"),
        eq=("ann",),
        lower=Bound(5.0, False),
        upper=Bound(10.0, True),
    )
    read = RangeRead(r)
    assert doc_in_range(_doc("ann", 6.0), read, True)
    assert doc_in_range(_doc("ann", 10.0), read, True)
    assert not doc_in_range(_doc("ann", 5.0), read, True)
    assert not doc_in_range(_doc("bob", 6.0), read, True)
    assert not doc_in_range(_doc(MISSING, 6.0), read, True)


def test_a_limited_read_only_covers_rows_up_to_the_last_one_returned() -> None:
    r = IndexRange("m", "by_creation_time", ("_creationTime",), order="desc")
    read = RangeRead(r, last_key=(50.0, "m"))
    assert doc_in_range(_doc("a", 60.0), read, True)
    assert not doc_in_range(_doc("a", 40.0), read, True)


def test_the_index_finds_only_entries_whose_prefix_matches() -> None:
    from app.db.readset import ReadSet

    class E:
        registrations: list = []

    index = InvalidationIndex()
    entries = {}
    for author in ("a", "b", "c"):
        e = E()
        rs = ReadSet(
            ranges=[
                RangeRead(IndexRange("m", "by_author", ("author", "_creationTime"), eq=(author,)))
            ]
        )
        index.add(e, rs)
        entries[author] = e
    hit = index.match(["m", "id1", None, _doc("b")])
    assert hit == {entries["b"]}
    assert index.match(["m", "id2", _doc("a"), _doc("c")]) == {entries["a"], entries["c"]}
    assert index.match(["other", "id3", None, _doc("a")]) == set()
    index.remove(entries["b"])
    assert index.match(["m", "id1", None, _doc("b")]) == set()
    assert index.match(["m", None, None, None]) == {entries["a"], entries["c"]}
