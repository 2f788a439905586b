"""The engine: one per process; owns the pool, the registry, the runner and subsystems."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from app.auth import (
    AuthenticationError,
    AuthVerifier,
    Principal,
    UserIdentity,
    parse_authorization,
    parse_providers,
    providers_from_json,
)
from app.db.catalog import Catalog
from app.db.pool import create_pool
from app.engine import logs
from app.engine.execute import Call, FunctionNotFound, Outcome, Runner, check_args
from app.server.functions import Kind, RegisteredFunction
from app.server.registry import PACKAGE, Registry
from app.settings import Settings
from app.values import UNSET, ArgumentValidationError, encode_value

log = logging.getLogger("convect.engine")
Hook = Callable[["Engine"], Awaitable[None]]


class Unavailable:
    """Stands in for a subsystem this process does not run; every use is a clear error."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"{self._what} is not available in this process")


class Engine:
    """Everything a Convect process needs to run the app's functions."""

    def __init__(self, settings: Settings, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry
        self.pool: asyncpg.Pool = None  # type: ignore[assignment]  # opened in start()
        self.catalog: Catalog = None  # type: ignore[assignment]
        self.runner = Runner(self)
        self.verifier: AuthVerifier | None = None
        self._ts = 0
        self.on_commit: list[Callable[[int, Any], None]] = []
        self.on_start: list[Hook] = []
        self.on_stop: list[Hook] = []
        self.on_reload: list[Hook] = []
        self.observers: list[Callable[[RegisteredFunction, Outcome], None]] = []
        self.services: dict[str, Any] = {}

    # ------------------------------------------------------------- life cycle

    async def start(self) -> None:
        """Open the pool, read the catalog, set up auth; run subsystem start hooks."""
        if not self.settings.database_url:
            raise RuntimeError("Engine.start needs a database URL (see app.embedded.resolve)")
        self.pool = await create_pool(self.settings.database_url, size=self.settings.pool_size)
        self.catalog = Catalog(self.pool, self.registry.schema, self.settings.database_url)
        await self.catalog.load()
        self._ts = int(await self.pool.fetchval("SELECT last_value FROM _convect_ts"))
        self._install_registry(self.registry)
        for hook in self.on_start:
            await hook(self)

    async def stop(self) -> None:
        """Run stop hooks and close the pool."""
        for hook in reversed(self.on_stop):
            try:
                await hook(self)
            except Exception:
                log.exception("stop hook failed")
        if self.verifier is not None:
            await self.verifier.aclose()
        if self.pool is not None:
            await self.pool.close()

    def _install_registry(self, registry: Registry) -> None:
        logs.install(PACKAGE)
        for module in registry.modules.values():
            module.__dict__["print"] = logs.captured_print
        providers = list(registry.auth_providers) + providers_from_json(
            self.settings.auth_providers
        )
        self.verifier = AuthVerifier(parse_providers(providers)) if providers else None

    async def reload(self, registry: Registry) -> None:
        """Swap in a newly loaded functions folder (dev mode)."""
        old_verifier = self.verifier
        self.registry = registry
        self.catalog.schema = registry.schema
        self.runner.multi_statement.clear()
        self._install_registry(registry)
        if old_verifier is not None:
            await old_verifier.aclose()
        for hook in self.on_reload:
            await hook(self)

    # ------------------------------------------------------------- calls

    async def principal(self, authorization: str | None) -> Principal:
        """Who is calling, from an Authorization header (raises AuthenticationError)."""
        return await parse_authorization(
            authorization, admin_key=self.settings.admin_key, verifier=self.verifier
        )

    async def identity_from_token(self, token: str) -> UserIdentity:
        """Verify a user JWT (WebSocket Authenticate)."""
        if self.verifier is None:
            raise AuthenticationError("No auth providers are configured for this deployment")
        return await self.verifier.verify(token)

    def lookup(self, path: str, kind: Kind | None, *, admin: bool = False) -> RegisteredFunction:
        """The function a client may call at `path` (internal ones only for admin).

        A function of another kind than `kind` is named as such (like Convex does), but
        only once the caller may see it: a non-admin caller learns nothing of an internal one.
        """
        fn = self.registry.get(path) if admin else self.registry.public(path)
        if fn is None:
            raise FunctionNotFound(f"Could not find public function for '{path}'")
        if kind is not None and fn.kind != kind:
            raise FunctionNotFound(
                f"Trying to execute {path} as {kind.capitalize()}, "
                f"but it is defined as {fn.kind.capitalize()}."
            )
        return fn

    async def call(
        self,
        path: str,
        args: Any,
        principal: Principal,
        kind: Kind | None,
        *,
        request_id: str | None = None,
    ) -> Outcome:
        """A client's call: find the function (public, or any for admin) and run it."""
        try:
            fn = self.lookup(path, kind, admin=principal.is_admin)
        except FunctionNotFound as exc:
            return Outcome(error=self.runner.failure(exc, request_id or "", None))
        hub = self.services.get("hub")
        if hub is None or fn.kind != "query":
            return await self.execute(fn, args, principal.identity, request_id=request_id)
        return await self._cached_query(hub, fn, args, principal, request_id)

    async def _cached_query(
        self,
        hub: Any,
        fn: RegisteredFunction,
        args: Any,
        principal: Principal,
        request_id: str | None,
    ) -> Outcome:
        """A query served from the live-query hub's still-valid results when it has one."""
        try:
            wire_args = encode_value(args)
        except ValueError:
            return await self.execute(fn, args, principal.identity, request_id=request_id)
        assert fn.path is not None
        entry = hub.cached(fn.path, wire_args, principal.identity, principal.is_admin)
        if entry is not None:  # never a failure: each failing call runs (own request id, logged)
            return Outcome(value=entry.value, request_id=request_id or "")
        gen = hub.generation()
        outcome = await self.execute(fn, args, principal.identity, request_id=request_id)
        if outcome.read_set is not None:
            hub.store(
                fn.path,
                wire_args,
                principal.identity,
                principal.is_admin,
                gen,
                outcome.value,
                outcome.error,
                outcome.read_set,
            )
        return outcome

    async def execute(
        self,
        fn: RegisteredFunction,
        args: Any,
        identity: UserIdentity | None,
        *,
        request_id: str | None = None,
    ) -> Outcome:
        """Run a registered function as a top-level call."""
        return await self.runner.execute(fn, args, identity, request_id=request_id)

    def check_args(self, fn: RegisteredFunction, args: Any) -> dict[str, Any]:
        """Validate a call's arguments."""
        return check_args(fn, args)

    def check_returns(self, fn: RegisteredFunction, value: Any) -> Any:
        """Validate a function's return value against `returns=`."""
        if fn.returns is None:
            return value
        if fn.returns.is_optional and (value is None or value is UNSET):
            # Python has no `undefined`: returning None (or falling through) is JS's
            # `return undefined`, which `v.optional(...)` accepts; the client gets null.
            return None
        try:
            return fn.returns.validate(value, "")
        except ArgumentValidationError as exc:
            raise ReturnsValidationError(f"Return value of {fn.path} is invalid: {exc}") from None

    # ------------------------------------------------------------- commits and clock

    def current_ts(self) -> int:
        """The newest commit ts this process knows of."""
        return self._ts

    def advance_ts(self, ts: int) -> None:
        """Move the process clock forward (never back)."""
        if ts > self._ts:
            self._ts = ts

    def committed(self, ts: int, tx: Any) -> None:
        """A mutation with writes committed in this process."""
        self.advance_ts(ts)
        for callback in self.on_commit:
            callback(ts, tx)

    # ------------------------------------------------------------- observation

    def observe(self, fn: RegisteredFunction, outcome: Outcome) -> None:
        """Tell metrics and the dev log about a finished call."""
        for observer in self.observers:
            try:
                observer(fn, outcome)
            except Exception:
                log.exception("observer failed")

    def metrics_retry(self, fn: RegisteredFunction) -> None:
        """Count an OCC retry."""
        metrics = self.services.get("metrics")
        if metrics is not None:
            metrics.retry(fn)

    # ------------------------------------------------------------- subsystems

    def scheduler_for(self, call: Call) -> Any:
        """`ctx.scheduler` for a call."""
        factory = self.services.get("scheduler")
        return factory(call) if factory is not None else Unavailable("ctx.scheduler")

    def storage_reader(self, call: Call) -> Any:
        """`ctx.storage` in queries."""
        factory = self.services.get("storage_reader")
        return factory(call) if factory is not None else Unavailable("ctx.storage")

    def storage_writer(self, call: Call) -> Any:
        """`ctx.storage` in mutations."""
        factory = self.services.get("storage_writer")
        return factory(call) if factory is not None else Unavailable("ctx.storage")

    def storage_action(self, call: Call) -> Any:
        """`ctx.storage` in actions."""
        factory = self.services.get("storage_action")
        return factory(call) if factory is not None else Unavailable("ctx.storage")

    async def vector_search(self, table: str, index: str, query: dict[str, Any]) -> Any:
        """Vector search (actions)."""
        impl = self.services.get("vector_search")
        if impl is None:
            raise RuntimeError("Vector search is not available in this build yet")
        return await impl(self, table, index, query)


class ReturnsValidationError(ValueError):
    """A function returned a value its `returns=` validator rejects."""
