"""The invalidation index (app/sync/index.py) against a brute-force model.

Keys read by one entry hold it alone and become a set (or list) when a second joins: any
sequence of adds and removes must leave `match` answering what a scan of every live
read set answers, and a fully emptied index must hold nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.db.query import Bound, IndexRange
from app.db.readset import RangeRead, ReadSet
from app.sync.index import InvalidationIndex, Registration
from app.sync.matching import doc_in_range, eq_prefix, key_text

FIELDS = ("a", "b", "_creationTime")
TABLES = ("t", "u")
IDS = ("i1", "i2", "i3")
SMALL = st.integers(min_value=0, max_value=3)


class E:
    """An entry as the index sees it."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.registrations: Sequence[Registration] = ()

    def __repr__(self) -> str:
        return f"E{self.n}"


@st.composite
def range_reads(draw: st.DrawFn) -> RangeRead:
    eq = tuple(draw(st.lists(SMALL, max_size=2)))
    lower = draw(st.none() | SMALL.map(lambda v: Bound(v, True)))
    rng = IndexRange(draw(st.sampled_from(TABLES)), "by_ab", FIELDS, eq=eq, lower=lower)
    return RangeRead(rng)


read_sets = st.builds(
    ReadSet,
    ranges=st.lists(range_reads(), max_size=3),
    ids=st.sets(st.tuples(st.sampled_from(TABLES), st.sampled_from(IDS)), max_size=2),
    tables=st.sets(st.sampled_from(TABLES), max_size=1),
)
docs = st.none() | st.builds(lambda a, b: {"a": a, "b": b, "_creationTime": 1.0}, SMALL, SMALL)
writes = st.tuples(st.sampled_from(TABLES), st.sampled_from((*IDS, None)), docs, docs).map(list)
# (True, n, read set): add entry n (re-registering it if it is in); (False, n, _): remove it
steps = st.lists(st.tuples(st.booleans(), st.integers(0, 5), read_sets), max_size=25)


def model_match(live: dict[int, tuple[E, ReadSet]], write: list[Any]) -> set[E]:
    table, doc_id, old, new = write
    hit: set[E] = set()
    for entry, reads in live.values():
        if doc_id is None:
            if (
                table in reads.tables
                or any(t == table for t, _ in reads.ids)
                or any(r.range.table == table for r in reads.ranges)
            ):
                hit.add(entry)
            continue
        if (table, doc_id) in reads.ids or table in reads.tables:
            hit.add(entry)
        for read in reads.ranges:
            r = read.range
            for doc in (old, new):
                if doc is None or r.table != table:
                    continue
                if eq_prefix(doc, r.fields, len(r.eq)) == key_text(list(r.eq)) and doc_in_range(
                    doc, read, True
                ):
                    hit.add(entry)
    return hit


@settings(max_examples=300, deadline=None)
@given(steps=steps, probes=st.lists(writes, min_size=1, max_size=6))
def test_any_adds_and_removes_leave_match_agreeing_with_a_scan(
    steps: list[tuple[bool, int, ReadSet]], probes: list[list[Any]]
) -> None:
    index: InvalidationIndex[E] = InvalidationIndex()
    entries = {n: E(n) for n in range(6)}
    live: dict[int, tuple[E, ReadSet]] = {}
    for adding, n, reads in steps:
        entry = entries[n]
        if n in live:  # (the hub removes an entry's old read set before adding its new one)
            index.remove(entry)
            del live[n]
        if adding:
            index.add(entry, reads)
            live[n] = (entry, reads)
        for write in probes:
            assert index.match(write) == model_match(live, write), (write, live)
    for entry, _ in list(live.values()):
        index.remove(entry)
    assert (index.by_id, index.by_table, index.ranges) == ({}, {}, {})
    assert all(not e.registrations for e in entries.values())


def test_a_key_read_by_one_entry_holds_it_alone_and_by_two_holds_both() -> None:
    index: InvalidationIndex[E] = InvalidationIndex()
    one, two = E(1), E(2)
    reads = ReadSet(
        ranges=[RangeRead(IndexRange("t", "by_ab", FIELDS, eq=(1,)))], ids={("t", "i1")}
    )
    index.add(one, reads)
    assert index.by_id[("t", "i1")] is one
    [bucket] = index.ranges["t"]["by_ab"][1].values()
    assert not isinstance(bucket, list)
    index.add(two, reads)
    assert index.by_id[("t", "i1")] == {one, two}
    [bucket] = index.ranges["t"]["by_ab"][1].values()
    assert isinstance(bucket, list) and len(bucket) == 2
    index.remove(one)
    assert index.by_id[("t", "i1")] is two
    assert index.match(["t", "i9", None, {"a": 1, "b": 0, "_creationTime": 1.0}]) == {two}
