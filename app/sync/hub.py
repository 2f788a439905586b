"""The subscription hub: one live entry per distinct (query, args, identity, journal) in a process.

Every query a socket subscribes to, and every query result the HTTP cache keeps, is an
`Entry` with its read set in the invalidation index. A *refresh* is one REPEATABLE
READ transaction that (1) reads every commit-log row not visible to the previous
refresh's snapshot, (2) matches their write sets against the index, (3) re-runs the
affected subscribed entries and any new ones, all in that one snapshot. So every
result a socket holds always belongs to the latest refreshed snapshot, and a
transition never mixes two snapshots. Commits are matched to snapshots by visibility
(`pg_visible_in_snapshot`), never by sequence order.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import KeysView, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from app.auth import Principal
from app.db.paginate import journal_of, use_journal
from app.db.readset import ReadSet
from app.db.transaction import Tx
from app.engine import Failure, Outcome, new_request_id, projected_writes
from app.memory import release_free_memory
from app.server.refs import canonical_path
from app.sync.index import InvalidationIndex, Registration
from app.sync.protocol import query_result
from app.sync.subscribers import Subscribers
from app.values import (
    UNSET,
    ValueEncodingError,
    decode_value,
    encode_value,
    kept,
)

if TYPE_CHECKING:
    import asyncpg

    from app.auth import UserIdentity
    from app.engine import Engine

log = logging.getLogger("convect.sync")

# The statement's snapshot (one row even without commits) and the commits it sees that
# the previous snapshot ($2, xmin $1) did not.
SCAN_SQL = (
    "WITH s AS MATERIALIZED (SELECT pg_current_snapshot() AS snap) "
    "SELECT s.snap::text AS snap, pg_snapshot_xmin(s.snap)::text AS xmin, "
    "c.ts, c.writes::text AS writes FROM s LEFT JOIN _convect_commits c "
    "ON c.xid >= $1::text::xid8 AND NOT pg_visible_in_snapshot(c.xid, $2::text::pg_snapshot) "
    "ORDER BY c.ts"
)
# The same with no entry to match writes against: the snapshot and the newest commit ts.
# `max(c.ts + 0)`, not `max(c.ts)`: the latter becomes a backward walk of the ts index
# filtered by xid, which reads the whole commit log whenever no commit is new.
LIGHT_SCAN_SQL = (
    "WITH s AS MATERIALIZED (SELECT pg_current_snapshot() AS snap) "
    "SELECT s.snap::text AS snap, pg_snapshot_xmin(s.snap)::text AS xmin, "
    "(SELECT max(c.ts + 0) FROM _convect_commits c WHERE c.xid >= $1::text::xid8 "
    "AND NOT pg_visible_in_snapshot(c.xid, $2::text::pg_snapshot)) AS ts FROM s"
)
MAX_CACHED = 10_000
# Once the HTTP cache is full, a result is kept only the second time its query misses
# within the last SEEN_ONCE misses (a "doorkeeper", as in TinyLFU): a stream of distinct
# queries (a get by random id) would otherwise pay for keeping and evicting a result per
# call that no later call reads. Until the cache is full every result is kept.
SEEN_ONCE = MAX_CACHED
MIN_REFRESH_INTERVAL_S = 0.005
# With no socket attached, local commits ask for a refresh at most this often (it then
# only moves the hub's snapshot along; see `Hub.local_commit`).
LAZY_REFRESH_S = 1.0
# First runs of new subscriptions in one refresh: about this long, in turns across the
# sockets waiting (NEW_RUNS_PER_TURN each). What commits touch always runs; the rest of
# the new ones wait for the next refresh, so no socket's subscriptions hold up another's
# updates or mutation replies for longer than this.
NEW_RUNS_BUDGET_S = 0.02
NEW_RUNS_PER_TURN = 8
# Once this many subscriptions were given back or entries dropped, the hub compacts (a
# dict keeps the table it grew to; see `compact`) and hands freed heap memory back to the
# system, RELEASE_DELAY_S later (so a burst of closing sockets is mostly one compaction).
RELEASE_AT = 1_000
RELEASE_DELAY_S = 1.0


def identity_key(identity: UserIdentity | None, admin: bool = False) -> str:
    """A stable text naming an identity (queries are keyed by it)."""
    if identity is None:
        return "admin" if admin else ""
    return ("admin:" if admin else "") + identity.canonical_json


EntryKey = tuple[str, str, str, str]  # (canonical path, args text, identity text, journal)


def entry_key(
    path: str,
    args: Any,
    identity: UserIdentity | None,
    admin: bool,
    journal: str | None = None,
    *,
    args_text: str | None = None,
) -> EntryKey:
    """The key of a query's entry: what it runs and the page end it keeps ("" for none).

    The journal is part of the key, as in Convex's query cache: a paginated query's page
    end belongs to the subscription that first ran it, so a client subscribing later
    with the same arguments and no journal gets a fresh first page, not another
    client's grown one. `args_text`: `args_key(args)` when the caller has it.
    """
    text = args_key(args) if args_text is None else args_text
    return (canonical_path(path), text, identity_key(identity, admin), journal or "")


def frozen(value: Any) -> orjson.Fragment:
    """A cached result as its JSON text (`orjson.Fragment`: written out as is).

    One object instead of one per dict, list and string: thousands of cached results
    would otherwise be millions of objects that every full garbage collection walks,
    pausing the event loop for a good part of a second (measured: insert p99 230 ms with
    a filled cache against 80 ms without)."""
    return orjson.Fragment(kept(orjson.dumps(value)))


def args_key(args: Any) -> str:
    """A stable text of wire-encoded arguments."""
    return orjson.dumps(args, option=orjson.OPT_SORT_KEYS).decode()


class Subscriber(Protocol):
    """What the hub needs of a socket session (`SyncSession`)."""

    @property
    def queued_bytes(self) -> int: ...
    def emit(self, ts: int) -> None: ...
    def close(self, code: int, reason: str) -> None: ...
    def abort(self) -> None: ...
    async def drain(self) -> None: ...


class EntryState(enum.Enum):
    """Where an entry's result stands relative to the hub's latest refreshed snapshot.

    `PENDING` has no usable result: the next refresh runs it. `FRESH` was computed in a
    refresh: it holds at the hub's snapshot and serves sockets and HTTP. `CACHED` was
    computed by an HTTP call outside any refresh: it serves HTTP only, and a socket
    subscribing makes it `PENDING`. A local commit that may change a result makes
    `FRESH` `DIRTY` (still right at the hub's snapshot, so sockets keep it until the
    refresh re-runs it; HTTP, which must read its own writes, is not served) and
    `CACHED` `STALE` (serves nothing; the refresh drops it). Every refresh that runs
    an entry makes it `FRESH`.
    """

    PENDING = "pending"
    FRESH = "fresh"
    DIRTY = "dirty"
    CACHED = "cached"
    STALE = "stale"

    @property
    def ready(self) -> bool:
        """Has a result (valid at the hub's snapshot, or at least at some snapshot)."""
        return self is not EntryState.PENDING

    @property
    def serves_http(self) -> bool:
        """May answer an HTTP query (no local commit may have changed it since)."""
        return self is EntryState.FRESH or self is EntryState.CACHED

    @property
    def cached_only(self) -> bool:
        """Computed outside a refresh: a subscriber must have it recomputed first."""
        return self is EntryState.CACHED or self is EntryState.STALE

    def touched(self) -> EntryState:
        """The state after a local commit that may change the result."""
        if self is EntryState.FRESH:
            return EntryState.DIRTY
        if self is EntryState.CACHED:
            return EntryState.STALE
        return self

    def unsubscribed(self) -> EntryState:
        """The state once the last subscriber left (a ready result stays for HTTP)."""
        if self is EntryState.FRESH:
            return EntryState.CACHED
        if self is EntryState.DIRTY:
            return EntryState.STALE
        return self


@dataclass(eq=False, slots=True)
class Entry:
    """One distinct live query and its latest result (changed only by the hub)."""

    path: str
    identity: UserIdentity | None
    admin: bool
    key: EntryKey
    value: orjson.Fragment | None = None
    failure: Failure | None = None
    log_lines: Sequence[str] = ()
    digest: bytes | None = None
    version: int = 0
    state: EntryState = EntryState.PENDING
    sessions: Subscribers[Subscriber] = field(default_factory=lambda: Subscribers())
    registrations: Sequence[Registration] = ()  # see InvalidationIndex
    journal: str | None = None  # a paginated query's page end, kept across re-runs

    @classmethod
    def failed(cls, path: str, message: str) -> Entry:
        """A result that is a failure from the start (a query the hub cannot run)."""
        return cls(
            path,
            None,
            False,
            ("", "", "", ""),
            failure=Failure(message),
            version=1,
            state=EntryState.FRESH,
        )

    @property
    def args_text(self) -> str:
        """Its arguments, wire-encoded, as canonical JSON text (kept only in its key)."""
        return self.key[1]

    @property
    def args(self) -> Any:
        """Its arguments, wire-encoded (decoded JSON)."""
        return orjson.loads(self.key[1])

    @property
    def failed_from_start(self) -> bool:
        """A failure made by `failed`: the hub holds it not, and it runs no query."""
        return not self.key[0]

    @property
    def ready(self) -> bool:
        """Has a result sessions may be sent (`Result.ready`)."""
        return self.state.ready

    def modification(self, query_id: int) -> dict[str, Any]:
        """The QueryUpdated / QueryFailed for a socket."""
        return query_result(query_id, self.value, self.failure, self.log_lines, self.journal)


@dataclass(frozen=True)
class Run:
    """What one run of an entry's query in a refresh produced."""

    value: orjson.Fragment  # the encoded result (null on failure)
    failure: Failure | None
    log_lines: Sequence[str]
    journal: str | None  # a paginated query's page end (None when it did not paginate)
    read_set: ReadSet


@dataclass
class HubStats:
    """Counters for tests, metrics and benchmarks."""

    refreshes: int = 0
    commits_seen: int = 0
    commits_matched: int = 0  # of those, parsed here (not own ones, matched when made)
    reruns: int = 0
    affected: int = 0  # subscribed entries a commit touched (each re-run once)
    cache_hits: int = 0
    cache_misses: int = 0
    invalidations: int = 0


@dataclass(frozen=True)
class HubSnapshot:
    """What the hub holds at one moment, for metrics and `/api/debug/sync_stats`.

    Flat, so that `dataclasses.asdict` is the stats endpoint's body: the counts below,
    then every `HubStats` counter under its own name.
    """

    sessions: int  # open sync sockets
    subscriptions: int  # query ids of open sockets (one per socket and query id)
    live_queries: int  # distinct entries with at least one subscriber
    entries: int  # every entry: live queries plus cached HTTP results
    pending: int  # entries waiting for their first result
    queued_bytes: int  # bytes queued on all sockets
    cache_bytes: int  # bytes of unsubscribed results kept for HTTP calls
    healthy: bool  # False when the last refresh failed
    ts: int  # the commit ts every result held for sockets is valid at
    # HubStats, as they stood
    refreshes: int
    commits_seen: int
    commits_matched: int
    reruns: int
    affected: int
    cache_hits: int
    cache_misses: int
    invalidations: int


class Hub:
    """Live queries of one process.

    Its state changes only through its methods; other modules read it through
    `snapshot()` and the read-only views below.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._entries: dict[EntryKey, Entry] = {}
        self._cache_lru: OrderedDict[EntryKey, int] = OrderedDict()  # key -> bytes held
        self._cache_bytes = 0
        self._cache_budget = engine.settings.query_cache_bytes
        self._seen_once: OrderedDict[int, None] = OrderedDict()  # hashes of keys missed once
        self._index: InvalidationIndex[Entry] = InvalidationIndex()
        self._pending: dict[Entry, None] = {}  # waiting for a first run (or a re-run)
        self._pending_of: dict[Subscriber, dict[Entry, None]] = {}  # the same, by socket
        self._waiting: set[Subscriber] = set()  # sessions to emit after the next refresh
        self._sessions: dict[Subscriber, None] = {}
        self._queued_bytes = 0  # what all sockets have queued to send
        self._stats = HubStats()
        self._snapshot: str | None = None  # the latest refreshed PostgreSQL snapshot
        self._xmin: str = "0"
        self._ts = 0
        self._seen_ts = 0
        self._scan_gen = 0
        self._refreshing = False  # no HTTP result is kept while a refresh runs
        self._local_commits = 0  # see `generation`
        # This process's commits since the last refresh began, matched at commit time
        # (`local_commit`): their commit-log rows are skipped by the next refresh, which
        # otherwise parsed and matched every one of them a second time.
        self._own_ts: set[int] = set()
        self._own_affected: set[Entry] = set()
        self._last_refresh = 0.0  # when the last refresh started (time.monotonic)
        self._done_gen = 0
        self._requested = 0
        self._wake = asyncio.Event()
        self._done = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._rerun_all = False
        self._healthy = True
        self._changed: list[Entry] = []  # entries the last full refresh found changed
        # what the containers grew to since the last compaction, and what was given back
        self._peak_entries = 0
        self._peak_sessions = 0
        self._released = 0
        self._release: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------- reading

    @property
    def ts(self) -> int:
        """The commit ts every result the hub holds for sockets is valid at."""
        return self._ts

    @property
    def healthy(self) -> bool:
        """False while refreshes fail (they are retried)."""
        return self._healthy

    @property
    def stats(self) -> HubStats:
        """A copy of the counters."""
        return dataclasses.replace(self._stats)

    @property
    def entries(self) -> Mapping[EntryKey, Entry]:
        """Every entry by key (read-only view)."""
        return MappingProxyType(self._entries)

    @property
    def sessions(self) -> KeysView[Subscriber]:
        """The attached sessions (read-only view)."""
        return self._sessions.keys()

    @property
    def pending(self) -> frozenset[Entry]:
        """Entries queued for the next refresh."""
        return frozenset(self._pending)

    @property
    def has_entries(self) -> bool:
        """True when the hub holds any result (a refresh may have work to do)."""
        return bool(self._entries)

    def holds(self, entry: Entry) -> bool:
        """True when `entry` is the hub's current entry for its key."""
        return self._entries.get(entry.key) is entry

    def snapshot(self) -> HubSnapshot:
        """Counts and counters at this moment (one pass over entries and sessions)."""
        live = [e for e in self._entries.values() if e.sessions]
        return HubSnapshot(
            sessions=len(self._sessions),
            subscriptions=sum(sum(e.sessions.values()) for e in live),
            live_queries=len(live),
            entries=len(self._entries),
            pending=len(self._pending),
            queued_bytes=self._queued_bytes,
            cache_bytes=self._cache_bytes,
            healthy=self._healthy,
            ts=self._ts,
            **dataclasses.asdict(self._stats),
        )

    # ------------------------------------------------------------- life cycle

    async def start(self) -> None:
        """Take the starting snapshot and start the refresh loop."""
        await self._take_snapshot()
        self._task = asyncio.create_task(self._loop(), name="convect-sync-refresh")

    async def _take_snapshot(self) -> None:
        """Begin at the database's current snapshot (what `start` does before its loop)."""
        row = await self.engine.pool.fetchrow(
            "SELECT pg_current_snapshot()::text AS snap, pg_snapshot_xmin(pg_current_snapshot())::text AS xmin"
        )
        assert row is not None
        self._snapshot, self._xmin = row["snap"], row["xmin"]
        coll = await self.engine.pool.fetchval(
            "SELECT datcollate FROM pg_database WHERE datname = current_database()"
        )
        self._index.exact_strings = str(coll).split(".")[0] in ("C", "POSIX")
        self._ts = self.engine.current_ts()

    async def stop(self) -> None:
        """Close the sockets still open (1001, the client reconnects elsewhere), stop the loop."""
        self.close_sockets(1001, "ServerShuttingDown")
        if self._release is not None:
            self._release.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def reload(self) -> None:
        """New code (dev reload): forget what the old code computed.

        Subscribed entries are re-run by a refresh (sockets get the new results without
        reconnecting) and stop serving HTTP meanwhile; the others are dropped. An HTTP
        query still running the old code is not cached (`generation` moves on).
        """
        for entry in list(self._entries.values()):
            if entry.sessions:
                entry.state = entry.state.touched()
            else:
                self._drop(entry)
        self._scan_gen += 1
        self.request_refresh(rerun_all=True)

    # ------------------------------------------------------------- sessions

    def attach(self, session: Subscriber) -> None:
        """A socket connected (counted, closed and drained with the others)."""
        self._sessions[session] = None
        self._peak_sessions = max(self._peak_sessions, len(self._sessions))

    def detach(self, session: Subscriber) -> None:
        """A socket is gone (after it unsubscribed its queries): forget it, and what it
        still had queued to send."""
        self._queued_bytes -= session.queued_bytes
        self._pending_of.pop(session, None)
        self._sessions.pop(session, None)
        self._waiting.discard(session)
        self._released_some()

    def add_queued(self, delta: int) -> int:
        """A socket queued (or sent) `delta` bytes; returns what all sockets hold now."""
        self._queued_bytes += delta
        return self._queued_bytes

    def drop_slowest(self) -> None:
        """Over the process's send budget (CONVECT_MAX_QUEUED_BYTES): drop the socket that
        is furthest behind; its client reconnects and starts from a fresh state."""
        if not self._sessions:
            return
        slowest = max(self._sessions, key=lambda s: s.queued_bytes)
        log.warning(
            "sync sockets hold %d bytes to send (limit reached); dropping the slowest (%d bytes)",
            self._queued_bytes,
            slowest.queued_bytes,
        )
        slowest.abort()

    def close_sockets(self, code: int, reason: str) -> None:
        """Close every attached socket once what it has queued is sent (shutdown)."""
        for session in list(self._sessions):
            session.close(code, reason)

    async def drain(self) -> None:
        """Let every socket finish its mutation in progress, then close (graceful shutdown)."""
        await asyncio.gather(*(session.drain() for session in list(self._sessions)))

    def mark_dirty(self, session: Subscriber) -> None:
        """`session` waits for results: have it emit after the next refresh (asked for now)."""
        self._waiting.add(session)
        self.request_refresh()

    # ------------------------------------------------------------- requests

    def request_refresh(self, *, rerun_all: bool = False) -> int:
        """Ask for a refresh that starts after now; returns its generation to wait for."""
        if rerun_all:
            self._rerun_all = True
        self._requested = self._scan_gen + 1
        self._wake.set()
        return self._requested

    async def wait_refreshed(self, gen: int, timeout: float = 30.0) -> None:
        """Wait until a refresh of generation `gen` (or later) has completed."""
        async with self._done:
            await asyncio.wait_for(self._done.wait_for(lambda: self._done_gen >= gen), timeout)

    async def sync_after_commit(self) -> None:
        """Wait until a refresh that started after this call has completed."""
        await self.wait_refreshed(self.request_refresh())

    def generation(self) -> tuple[int, int]:
        """What an HTTP query notes before it runs, for `store` (refreshes and local commits)."""
        return self._scan_gen, self._local_commits

    def local_commit(self, ts: int, tx: Tx) -> None:
        """A commit in this process: stop serving affected cached results; refresh soon.

        With no socket attached there is nothing a refresh must re-run or push: the
        cached results the commit touches are dropped here and then (a query that ran
        across the commit cannot store its result: `generation`), and the hub moves to
        the newest snapshot at most once per LAZY_REFRESH_S, so a stream of HTTP
        mutations costs no statement per commit beyond its own.
        """
        self._local_commits += 1  # a query that ran across it may have read the old state
        rerun = False
        # Matched here, its row need not be matched again by the next refresh, unless a
        # refresh is running now: it may be computing results at a snapshot without this
        # commit, which only matching the row afterwards can find.
        own = not self._refreshing
        if own:
            self._own_ts.add(ts)
        if self._entries:
            writes = tx.projected
            if writes is None:
                writes = projected_writes(self.engine.catalog, tx)
            for write in writes:
                for entry in self._index.match(write):
                    if entry.sessions or self._sessions:
                        entry.state = entry.state.touched()
                        rerun = True
                        if own:
                            self._own_affected.add(entry)
                    elif self.holds(entry):
                        self._stats.invalidations += 1
                        self._drop(entry)
        if rerun or self._sessions or time.monotonic() - self._last_refresh >= LAZY_REFRESH_S:
            self.request_refresh()

    # ------------------------------------------------------------- subscriptions

    def subscribe(
        self,
        session: Subscriber,
        path: str,
        args: Any,
        identity: UserIdentity | None,
        admin: bool,
        journal: str | None = None,
        *,
        args_text: str | None = None,
    ) -> Entry:
        """The entry for a socket's query (created and queued if new); `args` wire-encoded,
        or `args_text`: them as `args_key` writes them (an entry keeps only that text)."""
        journal = journal if isinstance(journal, str) else None
        key = entry_key(path, args, identity, admin, journal, args_text=args_text)
        entry = self._entries.get(key)
        if entry is None:
            entry = Entry(key[0], identity, admin, key)
            entry.journal = journal
            self._add(entry)
            self._queue(entry, session)
        elif entry.state.cached_only:
            # A cached result belongs to another snapshot: recompute it in the next refresh.
            entry.state = EntryState.PENDING
            self._queue(entry, session)
        self._forget_cached(key)
        entry.sessions.add(session)
        return entry

    def unsubscribe(self, session: Subscriber, entry: Entry) -> None:
        """A socket no longer needs an entry (once per query id; entries the hub no longer
        holds are ignored)."""
        if not self.holds(entry):
            return
        self._released += 1
        entry.sessions.remove(session)
        if not entry.sessions:
            if entry.state.ready and not entry.key[3]:
                # Keeps serving HTTP while valid (not a page with a journal: HTTP has none).
                entry.state = entry.state.unsubscribed()
                self._remember(entry)
            else:
                self._drop(entry)

    def _remember(self, entry: Entry, text_size: int | None = None) -> None:
        """Keep an unsubscribed result for HTTP calls; past MAX_CACHED results or the cache's
        byte budget (CONVECT_QUERY_CACHE_BYTES), the least recently used go first.

        `text_size`: the result's JSON size when the caller has it (else it is measured).
        """
        self._forget_cached(entry.key)
        if text_size is None:
            text_size = len(orjson.dumps(entry.value))  # a Fragment: its text, copied once
        size = text_size + sum(len(part) for part in entry.key)
        size += sum(len(line) for line in entry.log_lines)
        self._cache_lru[entry.key] = size
        self._cache_bytes += size
        while self._cache_lru and (
            len(self._cache_lru) > MAX_CACHED or self._cache_bytes > self._cache_budget
        ):
            key, _ = next(iter(self._cache_lru.items()))
            self._forget_cached(key)
            old = self._entries.get(key)
            if old is not None and not old.sessions:
                self._drop(old)

    def _forget_cached(self, key: EntryKey) -> None:
        self._cache_bytes -= self._cache_lru.pop(key, 0)

    def _add(self, entry: Entry) -> None:
        self._entries[entry.key] = entry
        self._peak_entries = max(self._peak_entries, len(self._entries))

    def _drop(self, entry: Entry) -> None:
        self._released += 1
        self._index.remove(entry)
        self._pending.pop(entry, None)
        self._forget_cached(entry.key)
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]

    # ------------------------------------------------------------- memory

    def _released_some(self) -> None:
        """Past RELEASE_AT subscriptions given back or entries dropped, `compact` in
        RELEASE_DELAY_S (so a burst of closing sockets is mostly one; at once outside an
        event loop)."""
        if self._released < RELEASE_AT or self._release is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.compact()
            return
        self._release = loop.call_later(RELEASE_DELAY_S, self.compact)

    def compact(self) -> None:
        """Rebuild the containers that hold less than half of what they grew to, and then
        hand the heap's free pages back to the system (glibc's `malloc_trim`).

        A dict keeps the table it grew to when its keys are deleted: without this, the
        maps of 40,000 subscriptions stay that size once their sockets have closed.
        Each rebuild copies at most half of what was removed since the last one.
        """
        self._release = None
        self._released = 0
        shrunk = False
        if len(self._entries) * 2 < self._peak_entries:
            self._entries = dict(self._entries)
            self._pending = dict(self._pending)
            self._cache_lru = OrderedDict(self._cache_lru)
            self._index.compact()
            shrunk = True
        self._peak_entries = len(self._entries)
        if len(self._sessions) * 2 < self._peak_sessions:
            self._sessions = dict(self._sessions)
            self._pending_of = dict(self._pending_of)
            self._waiting = set(self._waiting)
            shrunk = True
        self._peak_sessions = len(self._sessions)
        if shrunk:  # (a cache that only turns over, full, frees nothing worth a trim)
            release_free_memory()

    # ------------------------------------------------------------- HTTP query cache

    def key_of(self, path: str, args: Any, identity: UserIdentity | None, admin: bool) -> EntryKey:
        """The cache key of a call, computed once for `cached` and `store`."""
        return entry_key(path, args, identity, admin)

    def cached(
        self,
        path: str,
        args: Any,
        identity: UserIdentity | None,
        admin: bool,
        key: EntryKey | None = None,
    ) -> Entry | None:
        """A still-valid result for an HTTP query, if the hub holds one.

        Never a failure: a failed call is run again, so that it gets its own request id
        and its own server log entry (a subscribed entry's failure stays for its sockets).
        `key`: the call's `entry_key`, when the caller has it (it is passed on to `store`).
        """
        entry = self._entries.get(key or entry_key(path, args, identity, admin))
        if entry is None or not entry.state.serves_http or entry.failure is not None:
            self._stats.cache_misses += 1
            return None
        self._stats.cache_hits += 1
        if entry.key in self._cache_lru:
            self._cache_lru.move_to_end(entry.key)
        return entry

    def store(
        self,
        path: str,
        args: Any,
        identity: UserIdentity | None,
        admin: bool,
        gen: tuple[int, int],
        value: Any,
        failure: Failure | None,
        read_set: ReadSet,
        log_lines: list[str] | None = None,
        key: EntryKey | None = None,
    ) -> None:
        """Keep an HTTP query's result (and the log lines of its run, which every answer
        from the cache repeats, as in Convex) if no refresh ran, even partly, while it ran
        (a refresh matches commits only against the entries there when it read them)."""
        if self._refreshing or gen != self.generation() or failure is not None:
            return
        key = key or entry_key(path, args, identity, admin)
        if key in self._entries or not self._admit(key):
            return
        text = kept(orjson.dumps(value))
        lines = tuple(log_lines or ())
        entry = Entry(
            key[0],
            identity,
            admin,
            key,
            value=orjson.Fragment(text),
            log_lines=lines,
            state=EntryState.CACHED,
        )
        self._add(entry)
        self._index.add(entry, read_set)
        self._remember(entry, len(text))

    def _admit(self, key: EntryKey) -> bool:
        """Whether to keep a new result: always while the cache has room; once it is full,
        only for a key that missed once before, recently (see SEEN_ONCE)."""
        if len(self._cache_lru) < MAX_CACHED and self._cache_bytes < self._cache_budget * 0.9:
            return True
        mark = hash(key)
        if self._seen_once.pop(mark, False) is None:
            return True
        self._seen_once[mark] = None
        if len(self._seen_once) > SEEN_ONCE:
            self._seen_once.popitem(last=False)
        return False

    # ------------------------------------------------------------- the refresh loop

    async def _loop(self) -> None:
        backoff = 0.05
        loop = asyncio.get_running_loop()
        last_start = 0.0
        while True:
            await self._wake.wait()
            # Under a stream of commits, start at most one refresh per MIN_REFRESH_INTERVAL_S:
            # requests that arrive meanwhile are served by the same refresh.
            wait = last_start + MIN_REFRESH_INTERVAL_S - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._wake.clear()
            last_start = loop.time()
            try:
                await self._refresh()
                backoff = 0.05
                self._healthy = True
            except asyncio.CancelledError:
                raise
            except Exception:
                self._healthy = False
                log.warning("live-query refresh failed; retrying in %.2fs", backoff, exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                self._rerun_all = True
                self._wake.set()

    async def _scan(self, conn: asyncpg.Connection) -> tuple[str, str, list[asyncpg.Record]]:
        """The current snapshot, its xmin, and the commits since the last one (one statement)."""
        rows = await conn.fetch(SCAN_SQL, self._xmin, self._snapshot)
        return rows[0]["snap"], rows[0]["xmin"], [r for r in rows if r["ts"] is not None]

    def _affected(self, rows: list[asyncpg.Record], own_ts: set[int]) -> set[Entry]:
        """Entries whose results the commits in `rows` may change (`_seen_ts`: the newest);
        the rows of `own_ts` were matched at commit time."""
        affected: set[Entry] = set()
        for r in rows:
            ts = r["ts"]
            self._seen_ts = max(self._seen_ts, ts)
            if ts in own_ts:
                continue
            self._stats.commits_matched += 1
            for write in orjson.loads(r["writes"]):
                affected |= self._index.match(write)
        self._stats.commits_seen += len(rows)
        return affected

    def _to_run(self, affected: set[Entry]) -> set[Entry]:
        """Subscribed entries among `affected` (plus pending ones); cached-only ones are
        dropped: the next HTTP call runs its query anew."""
        to_run: set[Entry] = set()
        for entry in affected:
            if entry.sessions:
                to_run.add(entry)
                self._pending.pop(entry, None)
            else:
                self._stats.invalidations += 1
                self._drop(entry)
        return to_run

    def _queue(self, entry: Entry, session: Subscriber | None) -> None:
        """`entry` waits for a run; `session` (or each of its sessions) waits for it."""
        self._pending[entry] = None
        for s in [session] if session is not None else list(entry.sessions):
            self._pending_of.setdefault(s, {})[entry] = None

    def _take_new(self, count: int) -> list[Entry]:
        """Up to `count` pending entries, NEW_RUNS_PER_TURN per socket in turn, oldest first."""
        taken: list[Entry] = []
        for session in list(self._pending_of):
            queue = self._pending_of[session]
            turn = 0
            while queue and turn < NEW_RUNS_PER_TURN and len(taken) < count:
                entry = next(iter(queue))
                del queue[entry]
                if entry not in self._pending:
                    continue  # taken for another socket already, or dropped
                del self._pending[entry]
                taken.append(entry)
                turn += 1
            if not queue:
                del self._pending_of[session]
            if len(taken) >= count:
                break
        if not taken and self._pending:  # waiting for no socket (a failed refresh's re-runs)
            for entry in list(self._pending)[:count]:
                del self._pending[entry]
                taken.append(entry)
        return taken

    async def _refresh(self) -> None:
        """Read the commits since the last refresh; re-run the subscribed queries they touch.

        Under a stream of writes most refreshes re-run nothing (no subscriber reads what
        changed): those read the snapshot and the new commits in one statement and stop.
        Otherwise the queries run in a REPEATABLE READ transaction, after reading the
        commits that landed between the two snapshots.
        """
        self._scan_gen += 1
        gen = self._scan_gen
        self._last_refresh = time.monotonic()
        self._seen_ts = self._ts
        rerun_all, self._rerun_all = self._rerun_all, False
        self._refreshing = True
        # Local commits matched so far all committed before this refresh's scans.
        own_ts, self._own_ts = self._own_ts, set()
        own_affected, self._own_affected = self._own_affected, set()
        try:
            if not self._entries and not self._pending and not rerun_all:
                await self._light_refresh()  # nothing to match commits against
            else:
                own_affected = {e for e in own_affected if self._entries.get(e.key) is e}
                await self._full_refresh(rerun_all, own_ts, own_affected)
        finally:
            self._refreshing = False
        self.engine.advance_ts(self._ts)
        self._stats.refreshes += 1
        self._scan_gen += 1  # a cached HTTP result computed across this refresh is not kept
        sessions = set(self._waiting)
        self._waiting.clear()
        for entry in self._changed:
            sessions.update(entry.sessions)
        self._changed = []
        for session in sessions:
            session.emit(self._ts)
        async with self._done:
            self._done_gen = max(self._done_gen, gen)
            self._done.notify_all()
        if self._pending:  # new subscriptions left for the next refresh
            self._wake.set()
        self._released_some()

    async def _light_refresh(self) -> None:
        """Move to the current snapshot and the newest commit ts, reading no writes."""
        async with self.engine.pool.acquire() as conn:
            row = await conn.fetchrow(LIGHT_SCAN_SQL, self._xmin, self._snapshot)
        assert row is not None
        self._snapshot, self._xmin = row["snap"], row["xmin"]
        if row["ts"] is not None:
            self._ts = max(self._ts, row["ts"])

    async def _full_refresh(
        self, rerun_all: bool, own_ts: set[int], own_affected: set[Entry]
    ) -> None:
        """Read the new commits' writes; re-run the subscribed entries they touch.

        `own_ts`: local commits already matched (their entries: `own_affected`); their
        rows are not parsed again.
        """
        changed: list[Entry] = []
        hit: set[Entry] = set()  # subscribed entries the new commits touch
        async with self.engine.pool.acquire() as conn:
            to_run: set[Entry] = set()
            if not rerun_all and not self._pending:
                self._snapshot, self._xmin, rows = await self._scan(conn)
                affected = self._affected(rows, own_ts) | own_affected
                own_affected = set()  # (taken: its subscribed entries are in `to_run`)
                hit |= {e for e in affected if e.sessions}
                to_run = self._to_run(affected)
                if not to_run:  # every result still holds at the new snapshot
                    self._ts = self._seen_ts
            if to_run or rerun_all or self._pending:
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    snapshot, xmin, rows = await self._scan(conn)
                    affected = self._affected(rows, own_ts) | own_affected
                    hit |= {e for e in affected if e.sessions}
                    if rerun_all:
                        affected |= {e for e in self._entries.values() if e.sessions}
                    to_run |= self._to_run(affected)
                    try:
                        await self._run_all(conn, list(to_run), changed)
                        # New subscriptions: a bounded share, in turns across sockets.
                        loop = asyncio.get_running_loop()
                        deadline = loop.time() + NEW_RUNS_BUDGET_S
                        while batch := self._take_new(4 * NEW_RUNS_PER_TURN):
                            to_run.update(batch)
                            await self._run_all(conn, batch, changed)
                            if loop.time() >= deadline:
                                break  # at least one round of turns per refresh
                    except BaseException:
                        for e in to_run:
                            if self.holds(e):
                                self._queue(e, None)
                        raise
                self._snapshot, self._xmin = snapshot, xmin
                self._ts = self._seen_ts  # results now match the commits seen
        self._stats.affected += len(hit)
        self._changed = changed

    async def _run_all(
        self, conn: asyncpg.Connection, entries: list[Entry], changed: list[Entry]
    ) -> None:
        """Run `entries` (those still held) on the refresh's transaction; note the changed."""
        for entry in entries:
            if not self.holds(entry):
                continue  # dropped while we ran
            self._stats.reruns += 1
            if await self._run_entry(conn, entry):
                changed.append(entry)

    async def _run_entry(self, conn: asyncpg.Connection, entry: Entry) -> bool:
        """Run an entry's query in the refresh transaction; `_settle` keeps the result.

        True when its sessions must hear about it: the result changed, or the entry was
        waiting for a result (sessions that subscribed meanwhile wait for it to be ready).
        """
        engine = self.engine
        was_ready = entry.state.ready
        tx = Tx(conn, writable=False)
        use_journal(tx, entry.journal)
        principal = Principal(entry.identity, entry.admin)
        try:
            args = decode_value(entry.args)
        except ValueEncodingError as exc:
            outcome = Outcome(error=engine.failure(exc, new_request_id(), None))
        else:
            outcome = await engine.call(entry.path, args, principal, "query", tx=tx)
        lines = outcome.log_lines if engine.settings.dev else ()
        run = Run(frozen(outcome.value), outcome.error, lines, journal_of(tx), tx.read_set)
        return self._settle(entry, run, was_ready=was_ready)

    def _settle(self, entry: Entry, run: Run, *, was_ready: bool) -> bool:
        """Keep a refresh's result of `entry` (now `FRESH`, its read set re-indexed).

        True when its sessions must hear about it: the result changed, or the entry was
        waiting for a result (`was_ready` False).
        """
        failure = run.failure
        digest = hashlib.blake2b(
            orjson.dumps(
                [
                    run.value,
                    # not the message: it holds the run's request id (Convex's dedup
                    # hash leaves it out too), so an unchanged failure is no change
                    (failure.trace or failure.message) if failure else None,
                    encode_value(failure.data) if failure and failure.data is not UNSET else None,
                    run.log_lines,
                    run.journal,
                ]
            ),
            digest_size=16,
        ).digest()
        entry.value, entry.failure, entry.log_lines = run.value, failure, run.log_lines
        entry.journal = run.journal or entry.journal
        entry.state = EntryState.FRESH
        if entry.journal != (entry.key[3] or None):
            self._rekey(entry)
        self._index.remove(entry)
        if self.holds(entry):  # not dropped while it ran (its read set would linger)
            self._index.add(entry, run.read_set)
        if digest != entry.digest:
            entry.digest = digest
            entry.version += 1
            return True
        return not was_ready

    def _rekey(self, entry: Entry) -> None:
        """File `entry` under the journal its run produced (its page end is now fixed).

        Another subscription that already holds that journal keeps its own entry; this
        one then gets a key nobody looks up, so no later subscriber joins its page.
        """
        assert entry.journal is not None
        old = entry.key
        new = (*old[:3], entry.journal)
        if new in self._entries:
            new = (*old[:3], f"{entry.journal}#{id(entry)}")
        self._forget_cached(old)
        if self._entries.get(old) is entry:
            del self._entries[old]
            self._entries[new] = entry
        entry.key = new


__all__ = [
    "Entry",
    "EntryState",
    "Hub",
    "HubSnapshot",
    "HubStats",
    "Run",
    "Subscriber",
    "args_key",
    "entry_key",
    "frozen",
    "identity_key",
]
