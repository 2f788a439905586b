"""What the engine needs of the subsystems built on top of it (they implement these).

The live-query hub (`app.sync`), the scheduler (`app.scheduler`) and file storage
(`app.storage`) import the engine; the engine knows them only by these protocols, so
imports run one way. `app.compose.build_engine` plugs the real ones in.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from app.db.readset import ReadSet
from app.db.transaction import Tx
from app.server.functions import RegisteredFunction

if TYPE_CHECKING:
    from app.auth import UserIdentity
    from app.engine.call import Call
    from app.engine.outcome import Failure, Outcome


class Part(Protocol):
    """A subsystem started after the pool opens and stopped before it closes."""

    async def start(self) -> None:
        """Get ready to serve (read state, open connections)."""

    async def stop(self) -> None:
        """Release what `start` took."""


class CachedResult(Protocol):
    """A query result the hub still holds as valid."""

    @property
    def value(self) -> Any:
        """The result, encoded."""

    @property
    def log_lines(self) -> Sequence[str]:
        """The log lines of the run that produced it."""


class LiveQueryCounts(Protocol):
    """What the hub reports of itself (metrics, `/api/debug/sync_stats`)."""

    @property
    def sessions(self) -> int: ...

    @property
    def subscriptions(self) -> int: ...

    @property
    def live_queries(self) -> int: ...

    @property
    def entries(self) -> int: ...

    @property
    def healthy(self) -> bool: ...

    @property
    def refreshes(self) -> int: ...

    @property
    def commits_seen(self) -> int: ...

    @property
    def commits_matched(self) -> int: ...

    @property
    def reruns(self) -> int: ...

    @property
    def affected(self) -> int: ...

    @property
    def cache_hits(self) -> int: ...

    @property
    def cache_misses(self) -> int: ...

    @property
    def invalidations(self) -> int: ...


class LiveQueries(Part, Protocol):
    """The live-query hub: subscriptions, and the HTTP query cache it keeps valid."""

    def snapshot(self) -> LiveQueryCounts:
        """Counts and counters at this moment."""

    def key_of(self, path: str, args: Any, identity: UserIdentity | None, admin: bool) -> Hashable:
        """The cache key of a call, computed once for `cached` and `store`."""

    def cached(
        self,
        path: str,
        args: Any,
        identity: UserIdentity | None,
        admin: bool,
        key: Any = None,
    ) -> CachedResult | None:
        """A still-valid result of this query, if one is held."""

    def generation(self) -> tuple[int, int]:
        """Where the hub is now; a result computed from here on may be stored."""

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
        key: Any = None,
    ) -> None:
        """Keep an HTTP query's result (with its run's log lines) while nothing it read
        changes."""

    def local_commit(self, ts: int, tx: Tx) -> None:
        """A mutation of this process committed."""

    def reload(self) -> None:
        """New code (dev reload): forget cached results, re-run every subscription."""

    def close_sockets(self, code: int, reason: str) -> None:
        """Close every sync socket (shutdown)."""

    async def drain(self) -> None:
        """Let sockets finish what they are sending (graceful shutdown)."""


class CommitNotifier(Part, Protocol):
    """Tells other processes (PostgreSQL NOTIFY) that this one committed."""

    def notify_soon(self) -> None:
        """Send a notification shortly (coalesced)."""


class Scheduling(Part, Protocol):
    """`ctx.scheduler`'s backend."""

    def for_call(self, call: Call) -> Any:
        """`ctx.scheduler` for one call."""


class Storage(Part, Protocol):
    """`ctx.storage`'s backend."""

    def reader(self, call: Call) -> Any:
        """`ctx.storage` in queries."""

    def writer(self, call: Call) -> Any:
        """`ctx.storage` in mutations."""

    def for_action(self, call: Call) -> Any:
        """`ctx.storage` in actions."""

    async def sweep(self) -> None:
        """Start the periodic sweep of what unfinished uploads and deletes left (API processes)."""

    @property
    def sweeps(self) -> SweepCounts:
        """What this process's sweeps did (metrics)."""


class SweepCounts(Protocol):
    """What the storage sweep reports (metrics)."""

    @property
    def runs(self) -> int: ...

    @property
    def removed(self) -> int: ...

    @property
    def failures(self) -> int: ...


class ActionRunner(Part, Protocol):
    """Runs client-called actions elsewhere (on the workers) instead of in this process."""

    async def run(
        self,
        fn: RegisteredFunction,
        args: Any,
        identity: UserIdentity | None,
        request_id: str | None = None,
    ) -> Outcome:
        """Run action `fn` and return its outcome (never raises for the action's errors)."""


class CallObserver(Protocol):
    """Told of every finished execution (the dev call log, the prod structured log)."""

    def __call__(self, fn: RegisteredFunction, outcome: Outcome) -> None:
        """Record one finished call."""


__all__ = [
    "ActionRunner",
    "CachedResult",
    "CallObserver",
    "CommitNotifier",
    "LiveQueries",
    "LiveQueryCounts",
    "Part",
    "Scheduling",
    "Storage",
]
