"""The hub's own state, without a database: subscriptions and their counts, entry states,
the HTTP cache, sessions, reload, snapshots, and refreshes over a scripted connection.

A refresh runs queries through the engine in `Hub._run_entry`; these tests replace that
one method with a stand-in that hands `Hub._settle` a result, so everything around the
engine call is the real code.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from app.db.query import IndexRange
from app.db.readset import RangeRead, ReadSet, Write
from app.engine import Failure
from app.settings import Settings
from app.sync import hub as hub_module
from app.sync.hub import Entry, EntryState, Hub, HubSnapshot, HubStats, Run, frozen

S = EntryState


class Session:
    """What the hub needs of a socket."""

    def __init__(self, queued: int = 0) -> None:
        self.queued_bytes = queued
        self.emitted: list[int] = []
        self.closed: tuple[int, str] | None = None
        self.drained = False

    def emit(self, ts: int) -> None:
        self.emitted.append(ts)

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def abort(self) -> None:
        self.closed = (0, "aborted")
        self.queued_bytes = 0

    async def drain(self) -> None:
        self.drained = True


class Conn:
    """Answers the refresh's scan: the commits that landed since the previous scan."""

    def __init__(self) -> None:
        self.landed: list[tuple[int, list[Any]]] = []
        self.scans = 0
        self.transactions = 0

    def commit(self, ts: int, *writes: list[Any]) -> None:
        self.landed.append((ts, list(writes)))

    async def fetch(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        self.scans += 1
        snap = f"snap{self.scans}"
        landed, self.landed = self.landed, []
        if not landed:
            return [{"snap": snap, "xmin": "1", "ts": None, "writes": None}]
        return [
            {"snap": snap, "xmin": "1", "ts": ts, "writes": orjson.dumps(w).decode()}
            for ts, w in landed
        ]

    async def fetchrow(self, sql: str, *params: Any) -> dict[str, Any]:
        """The light scan (no entries): the snapshot and the newest ts only."""
        rows = await self.fetch(sql, *params)
        return {**rows[0], "ts": max((r["ts"] for r in rows if r["ts"] is not None), default=None)}

    @contextlib.asynccontextmanager
    async def transaction(self, **options: Any) -> AsyncIterator[None]:
        self.transactions += 1
        yield


class Pool:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Conn]:
        yield self.conn


def reads(table: str = "t") -> ReadSet:
    return ReadSet(tables={table})


def make_hub(conn: Conn | None = None) -> Hub:
    engine = SimpleNamespace(
        pool=Pool(conn or Conn()),
        advance_ts=lambda ts: None,
        current_ts=lambda: 0,
        catalog=SimpleNamespace(tracked_fields=lambda table: ()),
        settings=Settings(mode="prod"),
    )
    return Hub(engine)  # type: ignore[arg-type]


class Queries:
    """Stands in for `Hub._run_entry`: each path's current result, read set and calls."""

    def __init__(self, hub: Hub) -> None:
        self.results: dict[str, Any] = {}
        self.failing: set[str] = set()
        self.read_sets: dict[str, ReadSet] = {}
        self.runs: list[str] = []
        self.explode: str | None = None
        self.hub = hub
        hub._run_entry = self._run  # type: ignore[method-assign]

    async def _run(self, conn: Any, entry: Entry) -> bool:
        self.runs.append(entry.path)
        if entry.path == self.explode:
            raise ConnectionResetError("lost the database")
        failure = Failure("boom") if entry.path in self.failing else None
        value = None if failure else self.results.get(entry.path)
        run = Run(frozen(value), failure, [], None, self.read_sets.get(entry.path, reads()))
        return self.hub._settle(entry, run, was_ready=entry.state.ready)


def local_write(table: str = "t") -> Any:
    return SimpleNamespace(
        writes={"x": Write(table, "x", None, {"_id": "x", "_creationTime": 1.0})},
        projected=None,  # (the hub projects the writes itself)
    )


def value_of(entry: Entry | None) -> Any:
    assert entry is not None and entry.value is not None
    return orjson.loads(orjson.dumps(entry.value))


# ----------------------------------------------------------------- EntryState


@pytest.mark.parametrize(
    ("state", "ready", "serves_http", "cached_only", "touched", "unsubscribed"),
    [
        (S.PENDING, False, False, False, S.PENDING, S.PENDING),
        (S.FRESH, True, True, False, S.DIRTY, S.CACHED),
        (S.DIRTY, True, False, False, S.DIRTY, S.STALE),
        (S.CACHED, True, True, True, S.STALE, S.CACHED),
        (S.STALE, True, False, True, S.STALE, S.STALE),
    ],
)
def test_entry_states(
    state: EntryState,
    ready: bool,
    serves_http: bool,
    cached_only: bool,
    touched: EntryState,
    unsubscribed: EntryState,
) -> None:
    assert state.ready is ready
    assert state.serves_http is serves_http
    assert state.cached_only is cached_only
    assert state.touched() is touched
    assert state.unsubscribed() is unsubscribed


def test_an_entry_is_ready_exactly_when_its_state_is() -> None:
    entry = Entry("q:f", None, False, ("q:f", "{}", "", ""))
    assert entry.state is S.PENDING and not entry.ready
    entry.state = S.STALE
    assert entry.ready


def test_a_failed_entry_is_ready_with_its_failure_and_belongs_to_no_hub() -> None:
    entry = Entry.failed("q:f", "Invalid arguments: nope")
    assert entry.ready and entry.version == 1
    assert entry.modification(3) == {
        "type": "QueryFailed",
        "queryId": 3,
        "errorMessage": "Invalid arguments: nope",
        "logLines": [],
        "journal": None,
    }
    hub = make_hub()
    assert not hub.holds(entry)
    hub.unsubscribe(Session(), entry)  # ignored
    assert entry.state is S.FRESH and hub.snapshot().entries == 0


# ----------------------------------------------------------------- subscriptions


def test_a_new_subscription_is_a_pending_entry_queued_for_the_next_refresh() -> None:
    hub = make_hub()
    s = Session()
    entry = hub.subscribe(s, "q.js:f", {"a": 1}, None, False)
    assert entry.state is S.PENDING and entry.path == "q:f"
    assert hub.pending == {entry} and hub.holds(entry)
    assert dict(hub.entries) == {("q:f", '{"a":1}', "", ""): entry}
    assert entry.sessions == {s: 1}


def test_one_entry_per_query_args_and_identity_shared_and_counted_per_session() -> None:
    hub = make_hub()
    s1, s2 = Session(), Session()
    e1 = hub.subscribe(s1, "q:f", {"a": 1, "b": 2}, None, False)
    e2 = hub.subscribe(s1, "q:f", {"b": 2, "a": 1}, None, False)  # another query id
    e3 = hub.subscribe(s2, "q.js:f", {"a": 1, "b": 2}, None, False)
    assert e1 is e2 is e3
    assert e1.sessions == {s1: 2, s2: 1}
    admin = hub.subscribe(s1, "q:f", {"a": 1, "b": 2}, None, True)
    other_args = hub.subscribe(s1, "q:f", {"a": 2, "b": 2}, None, False)
    assert len({id(e1), id(admin), id(other_args)}) == 3
    snap = hub.snapshot()
    assert (snap.entries, snap.live_queries, snap.subscriptions, snap.pending) == (3, 3, 5, 3)


def test_unsubscribing_counts_down_and_the_last_one_drops_a_pending_entry() -> None:
    hub = make_hub()
    s1, s2 = Session(), Session()
    entry = hub.subscribe(s1, "q:f", {}, None, False)
    hub.subscribe(s1, "q:f", {}, None, False)
    hub.subscribe(s2, "q:f", {}, None, False)
    hub.unsubscribe(s1, entry)
    assert entry.sessions == {s1: 1, s2: 1}
    hub.unsubscribe(s1, entry)
    assert entry.sessions == {s2: 1} and hub.holds(entry)
    hub.unsubscribe(s2, entry)
    assert entry.sessions == {}
    assert not hub.holds(entry) and hub.pending == frozenset() and not hub.has_entries


@pytest.mark.parametrize(("before", "after"), [(S.FRESH, S.CACHED), (S.DIRTY, S.STALE)])
def test_the_last_unsubscribe_keeps_a_result_for_http(
    before: EntryState, after: EntryState
) -> None:
    hub = make_hub()
    s = Session()
    entry = hub.subscribe(s, "q:f", {}, None, False)
    hub._settle(entry, Run(frozen([1]), None, [], None, reads()), was_ready=False)
    entry.state = before
    hub.unsubscribe(s, entry)
    assert hub.holds(entry) and entry.state is after
    served = hub.cached("q:f", {}, None, False)
    assert served is (entry if after.serves_http else None)


@pytest.mark.parametrize("state", [S.CACHED, S.STALE])
def test_subscribing_to_a_cached_result_queues_it_again(state: EntryState) -> None:
    hub = make_hub()
    hub.store("q:f", {}, None, False, hub.generation(), [1], None, reads())
    entry = hub.entries[("q:f", "{}", "", "")]
    entry.state = state
    assert hub.pending == frozenset()
    assert hub.subscribe(Session(), "q:f", {}, None, False) is entry
    assert entry.state is S.PENDING and hub.pending == {entry}


@pytest.mark.parametrize("state", [S.FRESH, S.DIRTY])
def test_subscribing_to_a_refreshed_result_uses_it_as_is(state: EntryState) -> None:
    hub = make_hub()
    s1, s2 = Session(), Session()
    entry = hub.subscribe(s1, "q:f", {}, None, False)
    hub._settle(entry, Run(frozen([1]), None, [], None, reads()), was_ready=False)
    hub._pending.clear()
    entry.state = state
    assert hub.subscribe(s2, "q:f", {}, None, False) is entry
    assert entry.state is state and hub.pending == frozenset()


# ----------------------------------------------------------------- local commits and the HTTP cache


def test_a_local_commit_touches_the_entries_that_read_what_it_wrote() -> None:
    hub = make_hub()
    s = Session()
    hub.attach(s)
    live = hub.subscribe(s, "q:live", {}, None, False)
    hub._settle(live, Run(frozen(1), None, [], None, reads("t")), was_ready=False)
    hub.store("q:cached", {}, None, False, hub.generation(), 2, None, reads("t"))
    hub.store("q:other", {}, None, False, hub.generation(), 3, None, reads("u"))
    cached, other = hub.entries[("q:cached", "{}", "", "")], hub.entries[("q:other", "{}", "", "")]
    before = hub.generation()
    hub.local_commit(9, local_write("t"))
    assert (live.state, cached.state, other.state) == (S.DIRTY, S.STALE, S.CACHED)
    assert hub.generation() != before
    assert hub.cached("q:live", {}, None, False) is None
    assert hub.cached("q:cached", {}, None, False) is None
    assert hub.cached("q:other", {}, None, False) is other
    stats = hub.snapshot()
    assert (stats.cache_hits, stats.cache_misses) == (1, 2)


def test_with_no_socket_a_local_commit_drops_what_it_touched_and_asks_no_refresh_each_time() -> (
    None
):
    """HTTP-only traffic: the cached results a local commit touches are dropped at once
    (and one computed across the commit is not stored), and the hub asks for a refresh
    at most once per LAZY_REFRESH_S instead of after every commit."""
    hub = make_hub()
    hub.store("q:cached", {}, None, False, hub.generation(), 2, None, reads("t"))
    hub.store("q:other", {}, None, False, hub.generation(), 3, None, reads("u"))
    other = hub.entries[("q:other", "{}", "", "")]
    hub._last_refresh = time.monotonic()  # a refresh just started
    requested = hub._requested
    across = hub.generation()
    hub.local_commit(9, local_write("t"))
    assert ("q:cached", "{}", "", "") not in hub.entries
    assert hub.cached("q:cached", {}, None, False) is None
    assert hub.cached("q:other", {}, None, False) is other
    hub.store("q:cached", {}, None, False, across, 1, None, reads("t"))  # ran across it
    assert hub.cached("q:cached", {}, None, False) is None
    assert hub._requested == requested  # no refresh asked for
    hub._last_refresh -= hub_module.LAZY_REFRESH_S
    hub.local_commit(10, local_write("u"))
    assert hub._requested > requested  # once a second: the snapshot moves along
    assert hub.cached("q:other", {}, None, False) is None


def test_a_full_cache_keeps_a_new_result_only_when_its_query_missed_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Until the cache is full every result is kept; then a query seen once is not (a
    stream of distinct calls would only churn it), and one that comes back is."""
    monkeypatch.setattr(hub_module, "MAX_CACHED", 3)
    hub = make_hub()
    for i in range(3):
        hub.store(f"q:f{i}", {}, None, False, hub.generation(), i, None, reads())
        assert hub.cached(f"q:f{i}", {}, None, False) is not None  # kept at once
    hub.store("q:new", {}, None, False, hub.generation(), 9, None, reads())
    assert hub.cached("q:new", {}, None, False) is None  # full: seen once, not kept
    assert hub.cached("q:f0", {}, None, False) is not None  # nothing was evicted for it
    hub.store("q:new", {}, None, False, hub.generation(), 9, None, reads())
    kept = hub.cached("q:new", {}, None, False)
    assert kept is not None and orjson.dumps(kept.value) == b"9"  # came back: kept
    assert len(hub._cache_lru) == 3


def test_store_keeps_only_successes_computed_within_one_generation() -> None:
    hub = make_hub()
    gen = hub.generation()
    hub.store("q:f", {}, None, False, gen, [1], Failure("no"), reads())
    assert not hub.has_entries
    hub.request_refresh()  # asking does not move the generation; refreshing does
    hub.store("q:f", {}, None, False, gen, [1], None, reads())
    entry = hub.cached("q:f", {}, None, False)
    assert entry is not None and entry.state is S.CACHED and value_of(entry) == [1]
    hub.store("q:f", {}, None, False, hub.generation(), [2], None, reads())
    assert value_of(hub.cached("q:f", {}, None, False)) == [1]  # the first one stays


def test_a_failure_held_for_sockets_is_never_served_over_http() -> None:
    hub = make_hub()
    entry = hub.subscribe(Session(), "q:f", {}, None, False)
    hub._settle(entry, Run(frozen(None), Failure("boom"), [], None, reads()), was_ready=False)
    assert entry.state is S.FRESH
    assert hub.cached("q:f", {}, None, False) is None


def test_the_http_cache_forgets_its_least_recently_used_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hub_module, "MAX_CACHED", 2)
    hub = make_hub()
    live = hub.subscribe(Session(), "q:live", {}, None, False)
    for name in ("a", "b"):
        hub.store(f"q:{name}", {}, None, False, hub.generation(), name, None, reads())
    assert hub.cached("q:a", {}, None, False) is not None  # a is now the most recent
    for _ in range(2):  # full: kept the second time it runs (see SEEN_ONCE)
        hub.store("q:c", {}, None, False, hub.generation(), "c", None, reads())
    held = {key[0] for key in hub.entries}
    assert held == {"q:live", "q:a", "q:c"} and hub.holds(live)


# ----------------------------------------------------------------- sessions, reload, snapshots


def test_sessions_attach_detach_close_and_drain() -> None:
    hub = make_hub()
    s1, s2 = Session(queued=10), Session(queued=5)
    hub.attach(s1)
    hub.attach(s2)
    hub.attach(s1)
    hub.add_queued(15)  # what the sockets queued (a SyncSession tells the hub as it queues)
    assert set(hub.sessions) == {s1, s2}
    snap = hub.snapshot()
    assert (snap.sessions, snap.queued_bytes) == (2, 15)
    hub.close_sockets(1001, "ServerShuttingDown")
    assert s1.closed == s2.closed == (1001, "ServerShuttingDown")
    hub.detach(s2)
    hub.detach(s2)
    assert set(hub.sessions) == {s1}


def table_bytes(hub: Hub) -> dict[str, int]:
    """What the hub's maps take (their tables, not what they point to)."""
    index = hub._index
    leaves = [
        by_prefix
        for by_index in index.ranges.values()
        for by_n in by_index.values()
        for by_prefix in by_n.values()
    ]
    return {
        "entries": sys.getsizeof(hub._entries),
        "pending": sys.getsizeof(hub._pending),
        "cache": sys.getsizeof(hub._cache_lru),
        "sessions": sys.getsizeof(hub._sessions),
        "by_id": sys.getsizeof(index.by_id),
        "by_table": sum(sys.getsizeof(s) for s in index.by_table.values()),
        "ranges": sum(sys.getsizeof(d) for d in leaves),
    }


def test_once_most_subscriptions_are_gone_the_hub_gives_back_their_tables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A dict or set keeps the table it grew to when its keys go: the maps of an
    # attacker's 40,000 subscriptions stayed that size after its sockets closed.
    monkeypatch.setattr(hub_module, "MAX_CACHED", 100)  # unsubscribed results: 100 kept
    hub = make_hub()
    crowd = [Session() for _ in range(2_000)]  # sockets that come and go
    for s in crowd:
        hub.attach(s)
    for s in crowd:
        hub.detach(s)
    sessions = [Session() for _ in range(4)]
    held: dict[Session, list[Entry]] = {s: [] for s in sessions}
    for n, s in enumerate(sessions):
        hub.attach(s)
        for i in range(2_000):
            entry = hub.subscribe(s, "q:f", {"n": n, "i": i}, None, False)
            author = f"a{n}-{i}"
            eq = IndexRange("t", "by_author", ("author", "_creationTime"), eq=(author,))
            read = ReadSet([RangeRead(eq)], {("t", author)}, {"t"})
            hub._settle(entry, Run(frozen(i), None, [], None, read), was_ready=False)
            held[s].append(entry)
    pending = [hub.subscribe(sessions[0], "q:p", {"i": i}, None, False) for i in range(2_000)]
    grown = table_bytes(hub)
    for s in sessions:
        for entry in held[s] + (pending if s is sessions[0] else []):
            hub.unsubscribe(s, entry)
        hub.detach(s)
    assert len(hub.entries) == 100 and not hub.sessions  # the cache is full, no socket left
    small = make_hub()
    for i in range(100):  # what a hub that only ever held the 100 takes
        entry = small.subscribe(sessions[0], "q:f", {"i": i}, None, False)
        eq = IndexRange("t", "by_author", ("author", "_creationTime"), eq=(f"a{i}",))
        read = ReadSet([RangeRead(eq)], {("t", f"a{i}")}, {"t"})
        small._settle(entry, Run(frozen(i), None, [], None, read), was_ready=False)
        small.unsubscribe(sessions[0], entry)
    expected = table_bytes(small)
    for name, size in table_bytes(hub).items():
        assert size <= max(expected[name], 1024), (name, size, grown[name])


async def test_in_an_event_loop_the_hub_compacts_just_after_a_burst_of_closes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hub_module, "RELEASE_DELAY_S", 0.0)
    trims: list[int] = []

    def trim() -> bool:
        trims.append(1)
        return True

    monkeypatch.setattr(hub_module, "release_free_memory", trim)
    hub = make_hub()
    s = Session()
    hub.attach(s)
    entries = [hub.subscribe(s, "q:p", {"i": i}, None, False) for i in range(2_000)]
    for entry in entries:
        hub.unsubscribe(s, entry)  # pending: dropped
    hub.detach(s)
    assert not trims  # not in the middle of the burst
    await asyncio.sleep(0.01)
    assert trims == [1] and sys.getsizeof(hub._entries) == sys.getsizeof({})


async def test_drain_drains_every_attached_session() -> None:
    hub = make_hub()
    sessions = [Session() for _ in range(3)]
    for s in sessions:
        hub.attach(s)
    await hub.drain()
    assert all(s.drained for s in sessions)


def test_reload_marks_subscribed_results_and_drops_the_others() -> None:
    hub = make_hub()
    s = Session()
    fresh = hub.subscribe(s, "q:fresh", {}, None, False)
    hub._settle(fresh, Run(frozen(1), None, [], None, reads()), was_ready=False)
    pending = hub.subscribe(s, "q:pending", {}, None, False)
    hub.store("q:cached", {}, None, False, hub.generation(), 2, None, reads())
    before = hub.generation()
    hub.reload()
    assert fresh.state is S.DIRTY and pending.state is S.PENDING
    assert {key[0] for key in hub.entries} == {"q:fresh", "q:pending"}
    assert hub.cached("q:fresh", {}, None, False) is None
    # An HTTP query that started before the reload ran the old code: not kept.
    hub.store("q:new", {}, None, False, before, 3, None, reads())
    assert hub.cached("q:new", {}, None, False) is None


def test_the_snapshot_counts_and_copies() -> None:
    hub = make_hub()
    s1, s2 = Session(queued=3), Session()
    hub.attach(s1)
    hub.attach(s2)
    hub.add_queued(3)
    hub.subscribe(s1, "q:a", {}, None, False)
    hub.subscribe(s2, "q:a", {}, None, False)
    hub.subscribe(s2, "q:b", {}, None, False)
    hub.store("q:c", {}, None, False, hub.generation(), 1, None, reads())
    hub.cached("q:c", {}, None, False)
    snap = hub.snapshot()
    assert snap == HubSnapshot(
        sessions=2,
        subscriptions=3,
        live_queries=2,
        entries=3,
        pending=2,
        queued_bytes=3,
        cache_bytes=len("1") + len("q:c") + len("{}"),  # the result's text and its key
        healthy=True,
        ts=0,
        refreshes=0,
        commits_seen=0,
        commits_matched=0,
        reruns=0,
        affected=0,
        cache_hits=1,
        cache_misses=0,
        invalidations=0,
    )
    hub.cached("q:c", {}, None, False)
    assert snap.cache_hits == 1 and hub.snapshot().cache_hits == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.sessions = 5  # type: ignore[misc]


def test_the_snapshot_is_the_stats_body_with_every_counter() -> None:
    body = dataclasses.asdict(make_hub().snapshot())
    counters = {f.name for f in dataclasses.fields(HubStats)}
    assert counters <= set(body)
    # What the stats endpoint's readers (tests, benches) look up.
    assert {"sessions", "entries", "pending", "queued_bytes", "ts"} <= set(body)


# ----------------------------------------------------------------- refreshes


async def test_a_refresh_runs_pending_entries_and_tells_their_sessions() -> None:
    conn = Conn()
    hub = make_hub(conn)
    queries = Queries(hub)
    queries.results["q:f"] = [1]
    s = Session()
    entry = hub.subscribe(s, "q:f", {}, None, False)
    hub.mark_dirty(s)
    await hub._refresh()
    assert queries.runs == ["q:f"] and conn.transactions == 1
    assert entry.state is S.FRESH and value_of(entry) == [1] and entry.version == 1
    assert hub.pending == frozenset()
    assert s.emitted == [0]  # once, though both dirty and subscribed
    stats = hub.snapshot()
    assert (stats.refreshes, stats.reruns) == (1, 1)


async def test_a_commit_re_runs_subscribed_entries_and_drops_cached_ones() -> None:
    conn = Conn()
    hub = make_hub(conn)
    queries = Queries(hub)
    queries.results["q:live"] = "v1"
    s = Session()
    live = hub.subscribe(s, "q:live", {}, None, False)
    await hub._refresh()
    hub.store("q:cached", {}, None, False, hub.generation(), 2, None, reads())
    hub.store("q:elsewhere", {}, None, False, hub.generation(), 3, None, reads("u"))
    queries.results["q:live"] = "v2"
    conn.commit(41, ["t", "x", None, {}])
    await hub._refresh()
    assert queries.runs == ["q:live", "q:live"]
    assert value_of(live) == "v2" and live.version == 2 and live.state is S.FRESH
    assert {key[0] for key in hub.entries} == {"q:live", "q:elsewhere"}
    assert hub.ts == 41 and s.emitted == [0, 41]
    stats = hub.snapshot()
    assert (stats.commits_seen, stats.affected, stats.invalidations) == (1, 1, 1)


async def test_a_re_run_with_the_same_result_tells_no_one() -> None:
    conn = Conn()
    hub = make_hub(conn)
    queries = Queries(hub)
    queries.results["q:f"] = "same"
    s = Session()
    entry = hub.subscribe(s, "q:f", {}, None, False)
    await hub._refresh()
    hub.local_commit(50, local_write("t"))
    assert entry.state is S.DIRTY
    conn.commit(50, ["t", "x", None, {}])
    await hub._refresh()
    assert queries.runs == ["q:f", "q:f"] and entry.version == 1
    assert entry.state is S.FRESH and hub.cached("q:f", {}, None, False) is entry
    assert s.emitted == [0] and hub.ts == 50


async def test_a_resubscribed_result_is_sent_once_re_run_even_if_unchanged() -> None:
    conn = Conn()
    hub = make_hub(conn)
    queries = Queries(hub)
    queries.results["q:f"] = "same"
    s1, s2 = Session(), Session()
    entry = hub.subscribe(s1, "q:f", {}, None, False)
    await hub._refresh()
    hub.unsubscribe(s1, entry)
    assert entry.state is S.CACHED
    assert hub.subscribe(s2, "q:f", {}, None, False) is entry and entry.state is S.PENDING
    await hub._refresh()
    assert entry.version == 1 and entry.state is S.FRESH
    assert s2.emitted == [0]  # it waited for the entry to be ready again


async def test_commits_nobody_reads_move_the_ts_without_a_transaction() -> None:
    conn = Conn()
    hub = make_hub(conn)
    queries = Queries(hub)
    s = Session()
    hub.subscribe(s, "q:f", {}, None, False)
    await hub._refresh()
    conn.commit(7, ["other", "x", None, {}])
    await hub._refresh()
    assert queries.runs == ["q:f"] and conn.transactions == 1
    assert hub.ts == 7 and s.emitted == [0]


async def test_reload_re_runs_every_subscribed_entry() -> None:
    conn = Conn()
    hub = make_hub(conn)
    queries = Queries(hub)
    for name in ("a", "b"):
        queries.results[f"q:{name}"] = name
        hub.subscribe(Session(), f"q:{name}", {}, None, False)
    await hub._refresh()
    queries.runs.clear()
    hub.reload()
    await hub._refresh()
    assert sorted(queries.runs) == ["q:a", "q:b"]
    assert all(e.state is S.FRESH for e in hub.entries.values())


async def test_a_failed_refresh_queues_its_entries_again() -> None:
    conn = Conn()
    hub = make_hub(conn)
    queries = Queries(hub)
    queries.explode = "q:f"
    s = Session()
    entry = hub.subscribe(s, "q:f", {}, None, False)
    with pytest.raises(ConnectionResetError):
        await hub._refresh()
    assert entry.state is S.PENDING and hub.pending == {entry} and s.emitted == []
    queries.explode = None
    await hub._refresh()
    assert entry.state is S.FRESH and s.emitted == [0]


async def test_a_detached_session_is_not_told_after_the_refresh() -> None:
    hub = make_hub()
    Queries(hub)
    s = Session()
    hub.attach(s)
    hub.mark_dirty(s)
    hub.detach(s)
    await hub._refresh()
    assert s.emitted == []


async def test_an_entry_dropped_while_it_ran_leaves_nothing_in_the_index() -> None:
    hub = make_hub()
    s = Session()
    entry = hub.subscribe(s, "q:f", {}, None, False)
    hub.unsubscribe(s, entry)  # dropped (it had no result yet)
    hub._settle(entry, Run(frozen(1), None, [], None, reads("t")), was_ready=False)
    assert hub._index.match(["t", "x", None, {}]) == set()


async def test_one_sockets_many_new_queries_take_turns_with_anothers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An attacker's thousands of Adds must not sit in front of a victim's query: a refresh
    # runs new subscriptions in turns across sockets, for a bounded time, and goes on later.
    monkeypatch.setattr(hub_module, "NEW_RUNS_BUDGET_S", 0.0)  # one round of turns each
    hub = make_hub(Conn())
    queries = Queries(hub)
    attacker, victim = Session(), Session()
    many = [hub.subscribe(attacker, f"q:a{i}", {}, None, False) for i in range(200)]
    mine = hub.subscribe(victim, "q:mine", {}, None, False)
    await hub._refresh()
    assert mine.state is S.FRESH and "q:mine" in queries.runs
    assert len(queries.runs) <= 1 + hub_module.NEW_RUNS_PER_TURN  # not all 200
    assert len(hub.pending) == 200 - (len(queries.runs) - 1)
    assert hub._wake.is_set()  # the rest in the next refresh
    while hub.pending:
        await hub._refresh()
    assert all(e.state is S.FRESH for e in many)


async def test_what_a_commit_touches_runs_even_while_new_queries_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hub_module, "NEW_RUNS_BUDGET_S", 0.0)
    conn = Conn()
    hub = make_hub(conn)
    queries = Queries(hub)
    victim, attacker = Session(), Session()
    queries.results["q:live"] = "v1"
    live = hub.subscribe(victim, "q:live", {}, None, False)
    await hub._refresh()
    for i in range(100):
        hub.subscribe(attacker, f"q:a{i}", {}, None, False)
    queries.results["q:live"], queries.runs = "v2", []
    conn.commit(7, ["t", "x", None, {}])
    await hub._refresh()
    assert value_of(live) == "v2" and hub.ts == 7
    assert len(queries.runs) <= 1 + hub_module.NEW_RUNS_PER_TURN


def test_the_http_cache_keeps_to_its_byte_budget_least_recently_used_first() -> None:
    hub = make_hub()
    hub._cache_budget = 3_100  # three results of ~1,008 bytes (text and key)
    big = "x" * 1_000
    for i in range(3):
        hub.store(f"q:f{i}", {}, None, False, hub.generation(), big, None, reads())
    assert hub.cached("q:f0", {}, None, False) is not None  # f0 is now the most recent
    for _ in range(2):  # full: kept the second time it runs (see SEEN_ONCE)
        hub.store("q:f3", {}, None, False, hub.generation(), big, None, reads())
    assert hub.cached("q:f1", {}, None, False) is None  # least recently used: gone
    assert hub.cached("q:f0", {}, None, False) is not None
    assert hub.snapshot().cache_bytes <= 3_100
    for _ in range(2):
        hub.store("q:huge", {}, None, False, hub.generation(), "y" * 10_000, None, reads())
    assert hub.cached("q:huge", {}, None, False) is None  # larger than the whole budget
    assert hub.snapshot().cache_bytes <= 3_100


def test_past_the_process_send_budget_the_slowest_socket_is_dropped() -> None:
    hub = make_hub()
    fast, slow = Session(queued=10), Session(queued=5_000)
    for s in (fast, slow):
        hub.attach(s)
        hub.add_queued(s.queued_bytes)
    assert hub.snapshot().queued_bytes == 5_010
    hub.drop_slowest()
    assert slow.closed is not None and fast.closed is None
    hub.detach(fast)  # a socket that goes takes what it still had queued off the count
    assert hub.snapshot().queued_bytes == 5_000


async def test_a_paginated_entry_is_filed_under_its_journal_and_shared_only_by_it() -> None:
    hub = make_hub()
    queries = Queries(hub)
    queries.results["q:p"] = {"page": [1, 2]}

    async def run(conn: Any, entry: Entry) -> bool:  # every run ends its page at "J1"
        queries.runs.append(entry.path)
        value = frozen(queries.results["q:p"])
        run = Run(value, None, [], "J1", reads())
        return hub._settle(entry, run, was_ready=entry.state.ready)

    hub._run_entry = run  # type: ignore[method-assign]
    s1, s2, s3 = Session(), Session(), Session()
    first = hub.subscribe(s1, "q:p", {}, None, False)
    hub.mark_dirty(s1)
    await hub._refresh()
    assert first.key == ("q:p", "{}", "", "J1") and hub.holds(first)
    assert first.journal == "J1"
    # Another client with the same args and no journal: a page of its own, run afresh.
    second = hub.subscribe(s2, "q:p", {}, None, False)
    assert second is not first and second.state is S.PENDING
    hub.mark_dirty(s2)
    await hub._refresh()
    assert hub.holds(first) and hub.holds(second) and second.key != first.key
    assert second.journal == "J1"
    # A client that reconnects with the journal it was sent joins the entry filed under it.
    assert hub.subscribe(s3, "q:p", {}, None, False, "J1") is first
    # HTTP (no journal) is never served a page with one; the last unsubscribe drops it.
    assert hub.cached("q:p", {}, None, False) is None
    for session, entry in ((s1, first), (s3, first), (s2, second)):
        hub.unsubscribe(session, entry)
    assert dict(hub.entries) == {}
