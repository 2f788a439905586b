"""Run functions: validation, transactions, retries, nested calls, errors, log lines."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import random
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from app.db.database import DatabaseReader, DatabaseWriter
from app.db.errors import ConflictError, NeedsTransaction, is_retryable
from app.db.ids import id_table
from app.db.readset import ReadSet, project
from app.db.transaction import Tx, lock_timeout_ms, savepoint, serializable
from app.engine import logs
from app.server.context import ActionCtx, MutationCtx, QueryCtx
from app.server.functions import Kind, RegisteredFunction
from app.server.refs import ref_path
from app.values import UNSET, ArgumentValidationError, ConvexError, decode_value, encode_value

if TYPE_CHECKING:
    from app.auth import UserIdentity
    from app.engine import Engine

log = logging.getLogger("convect.runtime")


COMMIT_SQL = (
    "INSERT INTO _convect_commits (ts, writes) VALUES (nextval('_convect_ts'), $1::jsonb) "
    "RETURNING ts"
)


class FunctionNotFound(LookupError):
    """No function (visible to the caller) at that path."""


@dataclass
class Failure:
    """A function's error as clients see it; `data` is UNSET unless it was a ConvexError."""

    message: str
    data: Any = UNSET

    @property
    def is_convex_error(self) -> bool:
        """True when the error carries ConvexError data."""
        return self.data is not UNSET


@dataclass
class Outcome:
    """The result of one top-level function call."""

    value: Any = None
    error: Failure | None = None
    log_lines: list[str] = field(default_factory=list)
    commit_ts: int | None = None
    read_set: ReadSet | None = None
    request_id: str = ""
    duration_ms: float = 0.0
    retries: int = 0
    wrote: bool = False


def new_request_id() -> str:
    """A short random id that ties a client error to the server log."""
    return os.urandom(8).hex()  # 16 hex digits, without uuid4's object (a hot path)


class _NestedFailure(Exception):
    """A nested call failed with a non-ConvexError; carries the message."""


class Call:
    """One top-level execution: engine, identity, and (for queries/mutations) its Tx."""

    def __init__(
        self,
        engine: Engine,
        identity: UserIdentity | None,
        kind: Kind,
        tx: Tx | None = None,
        request_id: str = "",
    ) -> None:
        self.engine = engine
        self.identity = identity
        self.kind = kind
        self.tx = tx
        self.request_id = request_id
        self.after_commit: list[Any] = []

    def resolve(self, ref: Any, kind: Kind) -> RegisteredFunction:
        """The function a reference names (internal ones included), of the expected kind."""
        path = ref_path(ref)
        fn = self.engine.registry.get(path)
        if fn is None:
            raise FunctionNotFound(f"Could not find function for {path!r}")
        if fn.kind != kind:
            raise TypeError(f"{path} is a {fn.kind}, not a {kind}")
        return fn

    async def nested(self, ref: Any, args: dict[str, Any] | None, kind: Kind) -> Any:
        """run_query / run_mutation inside a query or mutation: same transaction."""
        fn = self.resolve(ref, kind)
        checked = self.engine.check_args(fn, args if args is not None else {})
        assert self.tx is not None
        if kind == "query":
            db: DatabaseReader = DatabaseReader(self.tx, self.engine.catalog)
            value = await fn.handler(QueryCtx(self, db), checked)
        else:
            tx = self.tx
            # Copies of the Write records: the inner mutation updates them in place.
            writes = {k: dataclasses.replace(w) for k, w in tx.writes.items()}
            saved = (writes, dict(tx.cache), list(self.after_commit))
            await tx.flush()  # held-back writes so far belong to the outer mutation
            try:
                async with savepoint(tx.conn):
                    value = await fn.handler(
                        MutationCtx(self, DatabaseWriter(tx, self.engine.catalog)), checked
                    )
            except BaseException:
                tx.writes, tx.cache, self.after_commit = saved[0], saved[1], saved[2]
                tx.discard_deferred()  # the nested mutation's, not yet sent
                raise
        return self.engine.check_returns(fn, value)

    async def top_level(self, ref: Any, args: dict[str, Any] | None, kind: Kind) -> Any:
        """run_* from an action: each its own transaction; errors re-raised."""
        fn = self.resolve(ref, kind)
        outcome = await self.engine.execute(fn, args if args is not None else {}, self.identity)
        for line in outcome.log_lines:
            logs._append(line)
        if outcome.error is not None:
            if outcome.error.is_convex_error:
                raise ConvexError(outcome.error.data)
            raise _NestedFailure(outcome.error.message)
        return outcome.value


class Runner:
    """Executes registered functions against the engine's pool."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.multi_statement: set[str] = set()

    # ------------------------------------------------------------- errors

    def failure(
        self, exc: BaseException, request_id: str, fn: RegisteredFunction | None
    ) -> Failure:
        """Turn an exception into what the client sees."""
        if isinstance(exc, ConvexError):
            try:
                data = encode_value(exc.data) and exc.data
            except ValueError:
                data = str(exc.data)
            return Failure(f"Uncaught ConvexError: {exc}", data)
        if isinstance(exc, ArgumentValidationError):
            return Failure(f"ArgumentValidationError: {exc}")
        if isinstance(exc, FunctionNotFound):
            return Failure(str(exc))
        where = fn.path if fn is not None else "?"
        log.error(
            "function %s failed [request %s]: %s",
            where,
            request_id,
            "".join(traceback.format_exception(exc)).rstrip(),
            extra={"request_id": request_id, "path": where, "kind": fn.kind if fn else None},
        )
        if self.engine.settings.dev:
            return Failure(
                f"[Request ID: {request_id}] Server Error\nUncaught {type(exc).__name__}: {exc}"
            )
        return Failure(f"[Request ID: {request_id}] Server Error")

    # ------------------------------------------------------------- entry points

    async def execute(
        self,
        fn: RegisteredFunction,
        args: Any,
        identity: UserIdentity | None,
        *,
        request_id: str | None = None,
        session: tuple[str, int] | None = None,
    ) -> Outcome:
        """Validate args, run the function in the right transaction, capture logs and errors."""
        request_id = request_id or new_request_id()
        token = logs.start()
        started = time.perf_counter()
        outcome = Outcome(request_id=request_id)
        try:
            checked = self.engine.check_args(fn, args)
            if fn.kind == "query":
                outcome.value, outcome.read_set = await self._query(
                    fn, checked, identity, request_id
                )
            elif fn.kind == "mutation":
                (
                    outcome.value,
                    outcome.commit_ts,
                    outcome.retries,
                    outcome.wrote,
                ) = await self._mutation(fn, checked, identity, request_id, session)
            else:
                outcome.value = await self._action(fn, checked, identity, request_id)
            outcome.value = encode_value(outcome.value)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            outcome.error = self.failure(exc, request_id, fn)
            outcome.value = None
        finally:
            outcome.log_lines = logs.stop(token)
            outcome.duration_ms = (time.perf_counter() - started) * 1000
        self.engine.observe(fn, outcome)
        return outcome

    async def _query(
        self, fn: RegisteredFunction, args: dict[str, Any], identity: UserIdentity | None, rid: str
    ) -> tuple[Any, ReadSet]:
        pool = self.engine.pool
        async with pool.acquire() as conn:
            if fn.path not in self.multi_statement:
                tx = Tx(conn, writable=False, lazy=True)
                try:
                    value = await self.run_query_in(tx, fn, args, identity, rid)
                    return value, tx.read_set
                except NeedsTransaction:
                    self.multi_statement.add(fn.path or "")
                    logs.clear()
            tx = Tx(conn, writable=False)
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                value = await self.run_query_in(tx, fn, args, identity, rid)
            return value, tx.read_set

    async def run_query_in(
        self,
        tx: Tx,
        fn: RegisteredFunction,
        args: dict[str, Any],
        identity: UserIdentity | None,
        rid: str = "",
    ) -> Any:
        """Run a query's handler on an open Tx (used for batched live-query re-runs too)."""
        call = Call(self.engine, identity, "query", tx, rid)
        db = DatabaseReader(tx, self.engine.catalog)
        value = await fn.handler(QueryCtx(call, db), args)
        return self.engine.check_returns(fn, value)

    async def _mutation(
        self,
        fn: RegisteredFunction,
        args: dict[str, Any],
        identity: UserIdentity | None,
        rid: str,
        session: tuple[str, int] | None = None,
    ) -> tuple[Any, int, int, bool]:
        """Run a mutation SERIALIZABLE with retries; dedupe on a socket's (session, request)."""
        attempts = max(1, self.engine.settings.mutation_retries)
        last: BaseException | None = None
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.25)))
                logs.clear()
            async with self.engine.pool.acquire() as conn:
                tx = Tx(conn, writable=True)
                call = Call(self.engine, identity, "mutation", tx, rid)
                try:
                    async with serializable(conn, lock_timeout_ms(attempt, attempts)):
                        if session is not None:
                            prior = await conn.fetchval(
                                "SELECT response::text FROM _convect_mutation_requests "
                                "WHERE session_id = $1 AND request_id = $2",
                                *session,
                            )
                            if prior is not None:
                                stored = orjson.loads(prior)
                                return decode_value(stored["value"]), stored["ts"], attempt, False
                        value = await fn.handler(
                            MutationCtx(call, DatabaseWriter(tx, self.engine.catalog)), args
                        )
                        if tx.doomed is not None:
                            raise tx.doomed
                        value = self.engine.check_returns(fn, value)
                        encoded = encode_value(value)  # not a Convex value: roll back
                        ts = await self._log_commit(tx, call)
                        if session is not None:
                            await conn.execute(
                                "INSERT INTO _convect_mutation_requests "
                                "(session_id, request_id, response) VALUES ($1, $2, $3::jsonb)",
                                *session,
                                orjson.dumps({"value": encoded, "ts": ts}).decode(),
                            )
                except BaseException as exc:
                    if tx.doomed is not None or is_retryable(exc):
                        last = exc
                        self.engine.metrics_retry(fn)
                        continue
                    raise
            for hook in call.after_commit:
                await hook()
            if tx.writes:
                self.engine.committed(ts, tx)
            return value, ts, attempt, bool(tx.writes)
        tables = sorted(self._tables_of(last))
        raise ConflictError(
            f"Mutation {fn.path} kept conflicting with concurrent writes and gave up after "
            f"{attempts} attempts" + (f" (tables: {', '.join(tables)})" if tables else "")
        )

    @staticmethod
    def _tables_of(exc: BaseException | None) -> set[str]:
        detail = getattr(exc, "table_name", None)
        return {detail} if isinstance(detail, str) else set()

    async def _log_commit(self, tx: Tx, call: Call) -> int:
        """Write the commit-log row (inside the transaction); return the commit ts.

        Writes the Tx held back go in the same statement (`Tx.flush_with`).
        """
        if not tx.writes:
            await tx.flush()
            return self.engine.current_ts()
        catalog = self.engine.catalog
        writes = [
            [
                w.table,
                w.id,
                project(w.old, catalog.tracked_fields(w.table)),
                project(w.new, catalog.tracked_fields(w.table)),
            ]
            for w in tx.writes.values()
        ]
        row = await tx.flush_with(COMMIT_SQL, [orjson.dumps(writes).decode()])
        assert row is not None
        ts: int = row["ts"]
        return ts

    async def _action(
        self, fn: RegisteredFunction, args: dict[str, Any], identity: UserIdentity | None, rid: str
    ) -> Any:
        call = Call(self.engine, identity, "action", None, rid)
        value = await fn.handler(ActionCtx(call), args)
        return self.engine.check_returns(fn, value)


def check_args(fn: RegisteredFunction, args: Any) -> dict[str, Any]:
    """Validate and normalise a function's arguments (always an object)."""
    if not isinstance(args, dict):
        raise ArgumentValidationError(
            f"Arguments of {fn.path} must be an object, got {type(args).__name__}"
        )
    if fn.args is None:
        return args
    checked: dict[str, Any] = fn.args.validate(args, "", id_table=id_table)
    return checked


__all__ = ["Call", "Failure", "FunctionNotFound", "Outcome", "Runner", "check_args"]
