"""`Call`: one running function's link to the engine, behind its `ctx`."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from app.db.database import DatabaseReader, DatabaseWriter
from app.db.errors import NeedsSerializable
from app.db.transaction import Tx, savepoint
from app.engine import logs
from app.engine.args import check_args, check_returns
from app.engine.outcome import FunctionNotFound
from app.server.context import ActionCtx, MutationCtx, QueryCtx
from app.server.functions import Kind, RegisteredFunction
from app.server.refs import ref_path
from app.values import ConvexError

if TYPE_CHECKING:
    from app.auth import UserIdentity
    from app.engine.engine import Engine

AfterCommit = Callable[[], Awaitable[None]]


class NestedFailure(Exception):
    """A function an action ran failed with a non-ConvexError; its text is the inner
    error with its source lines, which Convex names again: `Uncaught Error: Uncaught ...`."""

    error_name = "Error"


class NestedConvexError(ConvexError):
    """A function an action ran threw a ConvexError: the same data, and as its text the
    inner error with its source lines (`Uncaught ConvexError: Uncaught ConvexError: ...`)."""

    error_name = "ConvexError"

    def __init__(self, data: Any, text: str) -> None:
        super().__init__(data)
        self.args = (data, text)  # so that it pickles
        self.text = text

    def __str__(self) -> str:
        """The inner error as the function that threw it wrote it."""
        return self.text


class Unavailable:
    """Stands in for a subsystem this process does not run; every use is a clear error."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"{self._what} is not available in this process")


class Call:
    """One execution: engine, identity, kind, and (queries and mutations) its Tx.

    Implements what `ctx` needs (`app.server.context.CallContext`); subsystems reach the
    transaction (`tx`) and queue work for after the commit (`after_commit`).
    """

    __slots__ = (
        "__weakref__",
        "after_commit",
        "auth_error",
        "engine",
        "identity",
        "kind",
        "request_id",
        "tx",
    )

    def __init__(
        self,
        engine: Engine,
        identity: UserIdentity | None,
        kind: Kind,
        tx: Tx | None = None,
        request_id: str = "",
        auth_error: Exception | None = None,
    ) -> None:
        self.engine = engine
        self.auth_error = auth_error
        self.identity = identity
        self.kind = kind
        self.tx = tx
        self.request_id = request_id
        self.after_commit: list[AfterCommit] = []

    # ------------------------------------------------------------- ctx

    def ctx(self, kind: Kind | None = None) -> QueryCtx | MutationCtx | ActionCtx:
        """The `ctx` for a handler of `kind` (this call's, or a nested function's)."""
        kind = kind or self.kind
        if kind == "query":
            assert self.tx is not None
            return QueryCtx(self, DatabaseReader(self.tx, self.engine.catalog))
        if kind == "mutation":
            assert self.tx is not None
            return MutationCtx(self, DatabaseWriter(self.tx, self.engine.catalog))
        return ActionCtx(self)

    def storage(self, kind: Kind) -> Any:
        """`ctx.storage` for a handler of `kind`."""
        storage = self.engine.storage
        if storage is None:
            return Unavailable("ctx.storage")
        if kind == "query":
            return storage.reader(self)
        if kind == "mutation":
            return storage.writer(self)
        return storage.for_action(self)

    def scheduler(self) -> Any:
        """`ctx.scheduler`."""
        scheduler = self.engine.scheduler
        return scheduler.for_call(self) if scheduler is not None else Unavailable("ctx.scheduler")

    async def vector_search(self, table: str, index: str, query: dict[str, Any]) -> Any:
        """`ctx.vector_search` (actions)."""
        return await self.engine.vector_search(table, index, query)

    # ------------------------------------------------------------- calling other functions

    def resolve(self, ref: Any, kind: Kind) -> RegisteredFunction:
        """The function a reference names (internal ones included), of the expected kind."""
        path = ref_path(ref)
        fn = self.engine.registry.get(path)
        if fn is None:
            raise FunctionNotFound(f"Could not find function for {path!r}")
        if fn.kind != kind:
            raise TypeError(f"{path} is a {fn.kind}, not a {kind}")
        return fn

    async def run(self, ref: Any, args: dict[str, Any] | None, kind: Kind) -> Any:
        """`ctx.run_query/run_mutation/run_action`: in this transaction, or (actions) its own."""
        fn = self.resolve(ref, kind)
        if self.kind == "action":
            return await self._top_level(fn, args if args is not None else {})
        return await self._nested(fn, args if args is not None else {})

    async def _nested(self, fn: RegisteredFunction, args: dict[str, Any]) -> Any:
        """A query or mutation inside a query or mutation: the same transaction."""
        checked = check_args(fn, args)
        tx = self.tx
        assert tx is not None
        if fn.kind == "query":
            return check_returns(fn, await fn.handler(self.ctx("query"), checked))
        # Copies of the Write records: the inner mutation updates them in place.
        writes = {k: dataclasses.replace(w) for k, w in tx.writes.items()}
        saved = (writes, dict(tx.cache), list(self.after_commit))
        if tx.optimistic:
            raise NeedsSerializable  # a savepoint needs a transaction
        await tx.flush()  # held-back writes so far belong to the outer mutation
        await tx.begin()  # a savepoint needs the transaction open
        try:
            async with savepoint(tx.conn):
                value = await fn.handler(self.ctx("mutation"), checked)
        except BaseException:
            tx.writes, tx.cache, self.after_commit = saved[0], saved[1], saved[2]
            tx.discard_deferred()  # the nested mutation's, not yet sent
            raise
        return check_returns(fn, value)

    async def _top_level(self, fn: RegisteredFunction, args: dict[str, Any]) -> Any:
        """A function an action runs: its own execution; its errors re-raised here."""
        outcome = await self.engine.execute(fn, args, self.identity)
        logs.extend(outcome.log_lines)
        if outcome.error is not None:
            failure = outcome.error
            text = failure.trace or failure.message
            if failure.is_convex_error:
                raise NestedConvexError(failure.data, text)
            raise NestedFailure(text)
        return outcome.value


__all__ = ["AfterCommit", "Call", "NestedConvexError", "NestedFailure", "Unavailable"]
