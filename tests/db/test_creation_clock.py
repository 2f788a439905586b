"""Document creation times come from the catalog's own clock, strictly increasing."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from app.db.clock import TICK_MS, CreationClock
from app.db.database import DatabaseWriter
from app.db.transaction import Tx
from tests.db.fakes import FakeConn, catalog


def _readings(*values: float) -> Iterator[float]:
    yield from values


def test_a_stuck_clock_still_gives_strictly_increasing_times() -> None:
    clock = CreationClock(lambda: 1000.0)
    times = [clock.next() for _ in range(5)]
    assert times[0] == 1000.0
    assert all(b > a for a, b in itertools.pairwise(times))
    assert times[-1] == pytest.approx(1000.0 + 4 * TICK_MS)


def test_a_clock_stepping_back_never_goes_back() -> None:
    readings = _readings(1000.0, 999.0, 500.0, 1001.0)
    clock = CreationClock(lambda: next(readings))
    times = [clock.next() for _ in range(4)]
    assert all(b > a for a, b in itertools.pairwise(times))
    assert times[-1] == 1001.0  # caught up with the wall clock again


def test_the_default_clock_reads_the_wall_clock_in_ms() -> None:
    before = time.time() * 1000.0
    got = CreationClock().next()
    assert before <= got <= time.time() * 1000.0 + 1


def test_each_catalog_owns_its_clock() -> None:
    a, b = catalog(), catalog()
    assert a.clock is not b.clock
    a_times = [a.clock.next() for _ in range(3)]
    assert b.clock.next() <= a_times[-1] + 1000  # b was not pushed ahead by a's ticks
    assert isinstance(a.clock, CreationClock)


async def test_inserts_take_their_creation_time_from_the_catalogs_clock() -> None:
    slow = catalog(tables=("notes",), clock=CreationClock(lambda: 5.0))
    fast = catalog(tables=("notes",), clock=CreationClock(lambda: 7.0))
    for cat in (slow, fast):
        await cat.load()
    got = []
    for cat in (slow, fast, slow):
        tx = Tx(FakeConn(), writable=True)  # type: ignore[arg-type]
        doc_id = await DatabaseWriter(tx, cat).insert("notes", {"a": 1.0})
        new = tx.writes[doc_id].new
        assert new is not None
        got.append(new["_creationTime"])
    assert got == [5.0, 7.0, 5.0 + TICK_MS]
