"""The engine: one per process, with declared parts; runs the app's functions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Literal

import asyncpg

from app.auth import (
    AuthVerifier,
    Principal,
    UserIdentity,
    parse_authorization,
    parse_providers,
    providers_from_json,
    without_providers,
)
from app.db.catalog import Catalog
from app.db.pool import create_pool
from app.db.snapshots import HeldSnapshots
from app.db.transaction import Tx
from app.db.vector import vector_search
from app.embedded import cursor_secret
from app.engine import logs
from app.engine.deadlines import Deadlines
from app.engine.execute import Executor, TxGuard
from app.engine.latches import Latches
from app.engine.metrics import Metrics
from app.engine.outcome import (
    Failure,
    FunctionNotFound,
    Outcome,
    Overloaded,
    failure_of,
    new_request_id,
)
from app.engine.parts import (
    ActionRunner,
    CallObserver,
    CommitNotifier,
    LiveQueries,
    Part,
    Scheduling,
    Storage,
)
from app.engine.registry import PACKAGE, Registry
from app.server.functions import Kind, RegisteredFunction
from app.server.refs import canonical_path
from app.settings import Settings
from app.values import encode_value

log = logging.getLogger("convect.engine")
Role = Literal["serve", "dev", "worker", "cli"]


class Engine:
    """Everything a Convect process needs to run the app's functions.

    Built by `app.compose.build_engine` (which plugs in the parts this role runs), then
    used as `async with engine:` (opens the pool, starts the parts; stops them in
    reverse order). `execute` is the one way a function runs; `call` adds the lookup by
    path and the live-query cache in front of it.
    """

    def __init__(self, settings: Settings, registry: Registry, role: Role = "cli") -> None:
        self.settings = settings
        self.registry = registry
        self.role: Role = role
        self.metrics = Metrics(self)
        self.deadlines = Deadlines()  # time limits of calls and pool waits, one watchdog
        self.latches = Latches()  # optimistic mutations take turns on a document
        self.executor = Executor(self)
        # Parts `build_engine` plugs in; None where this role does not run them.
        self.hub: LiveQueries | None = None
        self.notifier: CommitNotifier | None = None
        self.scheduler: Scheduling | None = None
        self.storage: Storage | None = None
        self.call_log: CallObserver | None = None
        self.log_stream: CallObserver | None = None  # recent calls for `npx convex logs`
        self.env: Part | None = None  # the deployment's environment variables (started first)
        self.index_builder: Part | None = None  # builds staged indexes in the background
        # Convex's admin surface (`_system/cli/...`): functions only an admin may call.
        self.system: dict[str, RegisteredFunction] = {}
        self.actions: ActionRunner | None = None  # client-called actions run on the workers
        self.verifier: AuthVerifier | None = None
        self.draining = False  # set on SIGTERM: /readyz answers 503, responses close
        self._pool: asyncpg.Pool | None = None
        self._catalog: Catalog | None = None
        self._snapshots: HeldSnapshots | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._ts = 0

    # ------------------------------------------------------------- life cycle

    @property
    def pool_if_open(self) -> asyncpg.Pool | None:
        """The pool while the engine runs, else None (for metrics read at any time)."""
        return self._pool

    @property
    def pool(self) -> asyncpg.Pool:
        """The PostgreSQL pool (open between start and stop)."""
        if self._pool is None:
            raise RuntimeError("The engine has not started")
        return self._pool

    @property
    def catalog(self) -> Catalog:
        """The schema's tables and indexes as deployed (loaded at start)."""
        if self._catalog is None:
            raise RuntimeError("The engine has not started")
        return self._catalog

    def connection(self) -> PoolConnection:
        """A pool connection for a call, within CONVECT_POOL_TIMEOUT (else `Overloaded`):
        `async with engine.connection() as conn`."""
        return PoolConnection(self)

    @property
    def started(self) -> bool:
        """True between start and stop."""
        return self._stack is not None

    async def start(self) -> None:
        """Open the pool, read the catalog, set up auth, start the parts."""
        if not self.settings.database_url:
            raise RuntimeError("Engine.start needs a database URL (see app.embedded.resolve)")
        async with contextlib.AsyncExitStack() as stack:
            self._pool = await create_pool(self.settings.database_url, size=self.settings.pool_size)
            stack.push_async_callback(self._close_pool)
            self._catalog = Catalog(
                self._pool,
                self.registry.schema,
                self.settings.database_url,
                cursor_secret=cursor_secret(self.settings),
            )
            await self._catalog.load()
            self._snapshots = HeldSnapshots(
                self._pool,
                self.settings.database_url,
                max_held=self.settings.consistent_read_snapshots,
                window_s=self.settings.consistent_read_window,
            )
            stack.push_async_callback(self._snapshots.close)
            self._ts = int(await self._pool.fetchval("SELECT last_value FROM _convect_ts"))
            self._install_registry(self.registry)
            stack.push_async_callback(self._close_verifier)
            parts = (
                self.env,
                self.storage,
                self.scheduler,
                self.actions,
                self.hub,
                self.notifier,
                self.index_builder,
            )
            for part in parts:
                if part is not None:
                    await part.start()
                    stack.push_async_callback(self._stopper(part))
            if self.storage is not None and self.role in ("serve", "dev"):
                await self.storage.sweep()
            self._stack = stack.pop_all()

    async def stop(self) -> None:
        """Stop the parts (reverse order) and close the pool."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @staticmethod
    def _stopper(part: Any) -> Any:
        async def stop() -> None:
            try:
                await part.stop()
            except Exception:
                log.exception("stopping %s failed", type(part).__name__)

        return stop

    async def _close_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _close_verifier(self) -> None:
        verifier, self.verifier = self.verifier, None
        if verifier is not None:
            await verifier.aclose()

    def _install_registry(self, registry: Registry) -> None:
        logs.install(PACKAGE)
        for module in registry.modules.values():
            module.__dict__["print"] = logs.captured_print
        providers = list(registry.auth_providers) + providers_from_json(
            self.settings.auth_providers
        )
        self.verifier = (
            AuthVerifier(parse_providers(providers), redact=not self.settings.dev)
            if providers
            else None
        )

    async def reload(self, registry: Registry) -> None:
        """Swap in a newly loaded functions folder (dev mode)."""
        old_verifier = self.verifier
        self.registry = registry
        self.catalog.schema = registry.schema
        self.executor.multi_statement.clear()
        self._install_registry(registry)
        if old_verifier is not None:
            await old_verifier.aclose()
        if self.hub is not None:
            self.hub.reload()

    # ------------------------------------------------------------- callers

    async def principal(self, authorization: str | None) -> Principal:
        """Who is calling, from an Authorization header (raises AuthenticationError)."""
        return await parse_authorization(
            authorization, admin_key=self.settings.admin_key, verifier=self.verifier
        )

    async def identity_from_token(self, token: str) -> UserIdentity:
        """Verify a user JWT (WebSocket Authenticate)."""
        if self.verifier is None:
            raise without_providers(token)
        return await self.verifier.verify(token)

    def lookup(self, path: str, kind: Kind | None, *, admin: bool = False) -> RegisteredFunction:
        """The function a client may call at `path` (internal ones only for admin).

        A function of another kind than `kind` is named as such (like Convex does), but
        only once the caller may see it: a non-admin caller learns nothing of an internal one.
        """
        fn = self.registry.get(path) if admin else self.registry.public(path)
        if fn is None and admin and path.startswith("_system/"):
            fn = self.system.get(canonical_path(path))
        if fn is None:
            raise FunctionNotFound(f"Could not find public function for '{path}'.")
        if kind is not None and fn.kind != kind:
            raise FunctionNotFound(
                f"Trying to execute {path} as {kind.capitalize()}, "
                f"but it is defined as {fn.kind.capitalize()}."
            )
        return fn

    # ------------------------------------------------------------- running functions

    async def call(
        self,
        path: str,
        args: Any,
        principal: Principal,
        kind: Kind | None,
        *,
        request_id: str | None = None,
        session: tuple[str, int] | None = None,
        tx: Tx | None = None,
    ) -> Outcome:
        """A client's call by path: find the function (public, or any for admin), run it.

        A query without `tx` is answered from the live-query hub's still-valid result
        when it holds one, and its result kept there otherwise. An action goes to the
        workers when this process has an `actions` runner (CONVECT_RUN_ACTIONS=worker).
        """
        try:
            fn = self.lookup(path, kind, admin=principal.is_admin)
        except FunctionNotFound as exc:
            request_id = request_id or new_request_id()
            return Outcome(error=self.failure(exc, request_id, None), request_id=request_id)
        if fn.kind == "action" and self.actions is not None:
            return await self.actions.run(fn, args, principal.identity, request_id)
        hub = self.hub
        # `_system/` functions read state outside the query's snapshot (no read set to
        # invalidate them by): never answered from the cache.
        if hub is None or fn.kind != "query" or tx is not None or path.startswith("_system/"):
            return await self.executor.execute(
                fn, args, principal.identity, request_id=request_id, session=session, tx=tx
            )
        try:
            wire_args = encode_value(args)
        except ValueError:
            return await self.execute(fn, args, principal.identity, request_id=request_id)
        identity, admin = principal.identity, principal.is_admin
        key = hub.key_of(path, wire_args, identity, admin)
        hit = hub.cached(path, wire_args, identity, admin, key)
        if hit is not None:  # never a failure: each failing call runs (own request id, logged)
            # The lines of the run that produced it, and a log entry of its own marked
            # cached, as Convex logs a cache hit.
            outcome = Outcome(
                value=hit.value,
                log_lines=list(hit.log_lines),
                request_id=request_id or new_request_id(),
                cached=True,
            )
            self.observe(fn, outcome)
            return outcome
        gen = hub.generation()
        outcome = await self.executor.execute(fn, args, identity, request_id=request_id)
        if outcome.read_set is not None:
            hub.store(
                path, wire_args, identity, admin, gen, outcome.value, outcome.error,
                outcome.read_set, outcome.log_lines, key,
            )  # fmt: skip
        return outcome

    async def query_ts(self) -> int:
        """`/api/query_ts`: the newest commit ts, its snapshot held for `query_at_ts`."""
        if self._snapshots is None:
            raise RuntimeError("The engine has not started")
        ts = await self._snapshots.take(self._ts)
        self.advance_ts(ts)
        return ts

    async def query_at_ts(
        self, path: str, args: Any, principal: Principal, ts: int, *, request_id: str | None = None
    ) -> Outcome:
        """`/api/query_at_ts`: a query read at the snapshot `query_ts` handed out for `ts`.

        Raises `SnapshotUnavailable` when that snapshot is no longer held (never reads
        the latest state instead).
        """
        if self._snapshots is None:
            raise RuntimeError("The engine has not started")
        try:
            fn = self.lookup(path, "query", admin=principal.is_admin)
        except FunctionNotFound as exc:
            return Outcome(error=self.failure(exc, request_id or "", None))
        async with self.connection() as conn, self._snapshots.reading(conn, ts):
            tx = Tx(conn, writable=False)
            outcome = await self.execute(fn, args, principal.identity, request_id=request_id, tx=tx)
        self.observe(fn, outcome)  # a call on a given tx is not observed by execute
        return outcome

    async def execute(
        self,
        fn: RegisteredFunction,
        args: Any,
        identity: UserIdentity | None,
        *,
        request_id: str | None = None,
        session: tuple[str, int] | None = None,
        guard: TxGuard | None = None,
        tx: Tx | None = None,
        auth_error: Exception | None = None,
    ) -> Outcome:
        """Run a registered function as a top-level call (see `Executor.execute`)."""
        return await self.executor.execute(
            fn,
            args,
            identity,
            request_id=request_id,
            session=session,
            guard=guard,
            tx=tx,
            auth_error=auth_error,
        )

    def failure(
        self, exc: BaseException, request_id: str, fn: RegisteredFunction | None
    ) -> Failure:
        """What a client sees of an error raised outside a function (lookup, arguments)."""
        return failure_of(
            exc,
            request_id,
            fn.path if fn else None,
            fn.kind if fn else None,
            dev=self.settings.dev,
            folder=self.registry.folder,
        )

    async def vector_search(self, table: str, index: str, query: dict[str, Any]) -> Any:
        """`ctx.vector_search`: nearest documents by cosine similarity."""
        return await vector_search(self.pool, self.catalog, table, index, query)

    # ------------------------------------------------------------- commits and clock

    def current_ts(self) -> int:
        """The newest commit ts this process knows of."""
        return self._ts

    def advance_ts(self, ts: int) -> None:
        """Move the process clock forward (never back)."""
        if ts > self._ts:
            self._ts = ts

    def committed(self, ts: int, tx: Tx) -> None:
        """A transaction with writes committed in this process: tell the hub and others."""
        self.advance_ts(ts)
        if self.hub is not None:
            self.hub.local_commit(ts, tx)
        if self.notifier is not None:
            self.notifier.notify_soon()

    # ------------------------------------------------------------- observation

    def observe(self, fn: RegisteredFunction, outcome: Outcome) -> None:
        """Count a finished call in the metrics and tell the call log (not system functions)."""
        if fn.path is not None and fn.path.startswith("_system/"):
            return
        try:
            self.metrics.observe(fn, outcome)
            if self.call_log is not None:
                self.call_log(fn, outcome)
            if self.log_stream is not None:
                self.log_stream(fn, outcome)
        except Exception:
            log.exception("observing a call failed")


class PoolConnection:
    """`Engine.connection()`: acquire within the pool timeout, release at exit.

    A class, not an `asynccontextmanager`: every call takes one, and the generator
    machinery cost a few microseconds each time.
    """

    __slots__ = ("_conn", "_engine")

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        engine = self._engine
        timeout = engine.settings.pool_timeout
        # Timed by the deadlines watchdog: acquire(timeout=) wraps each acquire in a task,
        # asyncio.timeout costs a timer per call.
        deadline = engine.deadlines.enter(timeout)
        try:
            conn: asyncpg.Connection = await engine.pool.acquire()
        except asyncio.CancelledError:
            if not engine.deadlines.stopped(deadline):
                raise
            raise Overloaded(
                f"Server overloaded: no database connection came free within {timeout:g} s "
                "(CONVECT_POOL_TIMEOUT); retry shortly"
            ) from None
        finally:
            engine.deadlines.leave(deadline)
        self._conn = conn
        return conn

    async def __aexit__(self, *exc_info: object) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._engine.pool.release(conn)


__all__ = ["Engine", "PoolConnection", "Role"]
