"""The one execution path: every entry (HTTP API, REST, sync socket, live-query re-runs,
HTTP actions, scheduled functions, `ctx.run_*` from actions) ends in `Executor.execute`.

It assigns the request id, captures log lines, validates arguments, runs the handler
within its time limit (`function_timeout`, `action_timeout`) in the transaction its kind needs (queries: a lazily opened snapshot; mutations:
SERIALIZABLE with retries and a commit-log row; actions and HTTP actions: none), checks
the result, maps an exception to a `Failure`, times the call and tells the observers
(metrics, the dev call log or the structured call log).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import orjson

from app.db.catalog import Catalog
from app.db.errors import (
    ConflictError,
    NeedsSerializable,
    NeedsTransaction,
    is_connection_error,
    is_retryable,
)
from app.db.readset import project
from app.db.sql import table_ref
from app.db.transaction import Tx, lock_timeout_ms, serializable
from app.db.writes import DocumentWrites
from app.engine import answers, logs
from app.engine.args import check_args, check_returns
from app.engine.call import Call
from app.engine.latches import LatchDied
from app.engine.outcome import ExecutionTimeout, Outcome, failure_of, new_request_id
from app.server.functions import RegisteredFunction
from app.values import decode_value, encode_value

if TYPE_CHECKING:
    from app.auth import UserIdentity
    from app.engine.engine import Engine

T = TypeVar("T")
COMMIT_SQL = (
    "INSERT INTO _convect_commits (ts, writes) VALUES (nextval('_convect_ts'), $1::jsonb) "
    "RETURNING ts"
)
SYSTEM_TX_ATTEMPTS = 8
MAX_LATCH_RESTARTS = 32  # then the call reads without latches (never expected)


def projected_writes(catalog: Catalog, tx: Tx) -> list[list[Any]]:
    """A transaction's writes as the commit log keeps them (and live queries match them):
    `[table, id, old, new]`, each document cut to the fields some index or query tracks."""
    out: list[list[Any]] = []
    for w in tx.writes.values():
        fields = catalog.tracked_fields(w.table)
        out.append([w.table, w.id, project(w.old, fields), project(w.new, fields)])
    return out


class TxGuard(Protocol):
    """Work a caller adds to a mutation's transaction (a scheduled mutation's row)."""

    async def begin(self, tx: Tx) -> bool:
        """Before the handler, each attempt; False skips the handler (nothing to do)."""

    def before_commit(self, tx: Tx) -> None:
        """After the handler succeeded, before the commit (in the same transaction)."""


class Executor:
    """Runs registered functions against the engine's pool."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.multi_statement: set[str] = set()  # queries that need a real transaction
        self.serial: set[str] = set()  # mutations that need SERIALIZABLE (not optimistic)

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
        """Run `fn` as a top-level call; never raises for the function's own errors.

        `session`: a socket's (session id, request id), to answer a resent mutation from
        its first run. `guard`: more work in a mutation's transaction. `tx`: run a query
        on this open transaction (a live-query refresh), in a savepoint of its own; a
        lost connection is raised there, since the whole refresh is lost. Such re-runs
        are not told to the metrics and the call log (`convect_sync_reruns` counts
        them): observing every re-run cost the live-query benchmark's update latency
        about 10 ms at p99. `auth_error`: an HTTP action's rejected `Authorization`
        header, raised by its `ctx.auth.get_user_identity()`.
        """
        request_id = request_id or new_request_id()
        engine = self.engine
        token = logs.start()
        started = time.perf_counter()
        outcome = Outcome(request_id=request_id)
        limit = (
            engine.settings.function_timeout
            if fn.kind in ("query", "mutation")
            else engine.settings.action_timeout
        )
        deadline = engine.deadlines.enter(limit)
        try:
            try:
                await self._run(
                    fn, args, identity, request_id, session, guard, tx, outcome, auth_error
                )
            except asyncio.CancelledError:
                if engine.deadlines.stopped(deadline):
                    raise ExecutionTimeout(limit) from None
                raise
            finally:
                engine.deadlines.leave(deadline)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            if tx is not None and is_connection_error(exc):
                raise  # the refresh's transaction is gone: the hub retries the refresh
            outcome.error = failure_of(
                exc,
                request_id,
                fn.path,
                fn.kind,
                dev=engine.settings.dev,
                folder=engine.registry.folder,
            )
            outcome.value = None
        finally:
            outcome.log_lines = logs.stop(token)
            outcome.duration_ms = (time.perf_counter() - started) * 1000
        if tx is None:  # a refresh's re-runs are the hub's work, counted by the hub
            engine.observe(fn, outcome)
        return outcome

    async def _run(
        self,
        fn: RegisteredFunction,
        args: Any,
        identity: UserIdentity | None,
        request_id: str,
        session: tuple[str, int] | None,
        guard: TxGuard | None,
        tx: Tx | None,
        outcome: Outcome,
        auth_error: Exception | None,
    ) -> None:
        """Run the handler in the transaction its kind needs; the value into `outcome`."""
        engine = self.engine
        if fn.kind == "httpAction":
            call = Call(engine, identity, "action", None, request_id, auth_error)
            outcome.value = await fn.handler(call.ctx(), args)
            return
        checked = check_args(fn, args)
        if fn.kind == "query":
            outcome.value, outcome.read_set = await self._query(
                fn, checked, identity, request_id, tx
            )
        elif fn.kind == "mutation":
            await self._mutation(fn, checked, identity, request_id, session, guard, outcome)
        else:
            call = Call(engine, identity, "action", None, request_id)
            outcome.value = check_returns(fn, await fn.handler(call.ctx(), checked))
        outcome.value = encode_value(outcome.value)

    # ------------------------------------------------------------- queries

    async def _query(
        self,
        fn: RegisteredFunction,
        args: dict[str, Any],
        identity: UserIdentity | None,
        rid: str,
        tx: Tx | None,
    ) -> tuple[Any, Any]:
        if tx is not None:
            async with tx.conn.transaction():  # a savepoint: one failing query spoils no other
                value = await self._run_query(tx, fn, args, identity, rid)
            return value, tx.read_set
        async with self.engine.connection() as conn:
            if fn.path not in self.multi_statement:
                lazy = Tx(conn, writable=False, lazy=True)
                try:
                    return await self._run_query(lazy, fn, args, identity, rid), lazy.read_set
                except NeedsTransaction:
                    self.multi_statement.add(fn.path or "")
                    logs.clear()
            snapshot = Tx(conn, writable=False)
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                value = await self._run_query(snapshot, fn, args, identity, rid)
            return value, snapshot.read_set

    async def _run_query(
        self,
        tx: Tx,
        fn: RegisteredFunction,
        args: dict[str, Any],
        identity: UserIdentity | None,
        rid: str,
    ) -> Any:
        call = Call(self.engine, identity, "query", tx, rid)
        return check_returns(fn, await fn.handler(call.ctx(), args))

    # ------------------------------------------------------------- mutations

    async def _mutation(
        self,
        fn: RegisteredFunction,
        args: dict[str, Any],
        identity: UserIdentity | None,
        rid: str,
        session: tuple[str, int] | None,
        guard: TxGuard | None,
        outcome: Outcome,
    ) -> None:
        """Run a mutation with retries, optimistically when its shape allows (see
        docs/architecture.md "Optimistic mutations"), else SERIALIZABLE; dedupe on a
        socket's (session, request)."""
        engine = self.engine
        attempts = max(1, engine.settings.mutation_retries)
        last: BaseException | None = None
        optimistic = (
            engine.settings.optimistic_mutations and guard is None and fn.path not in self.serial
        )
        latches = engine.latches
        holder = latches.holder()  # its age orders its waits for documents (wait-die)
        attempt, restarted = -1, False
        while restarted or (attempt := attempt + 1) < attempts:
            if attempt and not restarted:
                await asyncio.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.25)))
                logs.clear()
            restarted = False
            async with engine.connection() as conn:
                tx = Tx(conn, writable=True)
                tx.optimistic = optimistic
                if optimistic and holder.restarts < MAX_LATCH_RESTARTS:
                    tx.latch = partial(latches.acquire, holder)
                call = Call(engine, identity, "mutation", tx, rid)
                try:
                    async with (
                        _NO_TRANSACTION
                        if optimistic
                        else serializable(tx, lock_timeout_ms(attempt, attempts))
                    ):
                        if session is not None:
                            await tx.begin()  # (none armed when optimistic: on its own)
                            prior = await answers.find(conn, session)
                            if prior is not None:
                                outcome.value = decode_value(prior[0])
                                outcome.commit_ts, outcome.retries = prior[1], attempt
                                return
                        value = None
                        if guard is None or await guard.begin(tx):
                            value = await fn.handler(call.ctx(), args)
                            if tx.doomed is not None:
                                raise tx.doomed
                            value = check_returns(fn, value)
                            if guard is not None:
                                guard.before_commit(tx)
                        encoded = encode_value(value)  # not a Convex value: roll back
                        held = session is not None and optimistic and bool(tx.writes)
                        if held and session is not None:  # in the one commit statement
                            answers.hold(tx, session, encoded)
                        ts = await self.log_commit(tx)
                        if session is not None and not held:
                            await answers.store(conn, session, encoded, ts)
                except LatchDied as died:
                    # An older mutation holds a document this one wants: let it finish
                    # first (nothing was written), then run this attempt again.
                    latches.release(holder)
                    holder.restarts += 1
                    await latches.take_turn(holder, died.doc_id)
                    restarted = True
                    logs.clear()
                    continue
                except NeedsSerializable:
                    # Did more than read by id and write what it read: from now on this
                    # mutation runs SERIALIZABLE (nothing was sent but reads).
                    self.serial.add(fn.path or "")
                    optimistic, restarted = False, True  # the same attempt, again
                    logs.clear()
                    continue
                except BaseException as exc:
                    if tx.doomed is not None or is_retryable(exc) or answers.is_duplicate(exc):
                        last = exc
                        engine.metrics.retry(fn)
                        continue
                    raise
                finally:
                    latches.release(holder)  # committed or failed: others may read now
            await self._committed(call, tx, ts)
            outcome.value, outcome.commit_ts = value, ts
            outcome.retries, outcome.wrote = attempt, bool(tx.writes)
            return
        detail = getattr(last, "table_name", None)
        raise ConflictError(
            f"Mutation {fn.path} kept conflicting with concurrent writes and gave up after "
            f"{attempts} attempts" + (f" (tables: {detail})" if isinstance(detail, str) else "")
        )

    async def log_commit(self, tx: Tx) -> int:
        """Write the commit-log row (inside the transaction); return the commit ts.

        Writes the Tx held back go in the same statement (`Tx.flush_with`).
        """
        if tx.optimistic:
            if not tx.writes:  # read only: its reads must still be current, together
                await _check_reads(tx)
                return self.engine.current_ts()
            _check_optimistic(tx)
        if not tx.writes:
            await tx.flush()
            return self.engine.current_ts()
        writes = tx.projected = projected_writes(self.engine.catalog, tx)
        row = await tx.flush_with(COMMIT_SQL, [orjson.dumps(writes).decode()], final=True)
        assert row is not None
        ts: int = row["ts"]
        return ts

    async def _committed(self, call: Call, tx: Tx, ts: int) -> None:
        for hook in call.after_commit:
            await hook()
        if tx.writes:
            self.engine.committed(ts, tx)

    # ------------------------------------------------------------- system transactions

    async def system_tx(self, body: Callable[[Call], Awaitable[T]]) -> T:
        """Run `body(call)` in a short transaction of its own, commit-logged like a mutation.

        READ COMMITTED: the engine's own state changes (scheduled functions, files) lock
        their row and re-check it, so they are atomic compare-and-set steps. After-commit
        hooks run after the commit.
        """
        engine = self.engine
        for attempt in range(SYSTEM_TX_ATTEMPTS):
            async with engine.pool.acquire() as conn:
                tx = Tx(conn, writable=True)
                call = Call(engine, None, "mutation", tx)
                try:
                    async with conn.transaction():
                        value = await body(call)
                        ts = await self.log_commit(tx)
                except BaseException as exc:
                    if is_retryable(exc) and attempt + 1 < SYSTEM_TX_ATTEMPTS:
                        await asyncio.sleep(random.uniform(0, 0.002 * 2**attempt))
                        continue
                    raise
            await self._committed(call, tx, ts)
            return value
        raise AssertionError("unreachable")  # pragma: no cover


# An optimistic mutation's run: no BEGIN, its commit is one statement on its own.
_NO_TRANSACTION: contextlib.nullcontext[None] = contextlib.nullcontext()


async def _check_reads(tx: Tx) -> None:
    """An optimistic mutation that wrote nothing: one statement checks that every document
    it read still has the version read, so its reads (made one by one) are those of one
    snapshot; else a serialization failure, and the mutation runs again. A document read
    as missing stays missing (ids are never reused)."""
    by_table: dict[str, list[tuple[str, str]]] = {}
    for table, doc_id in tx.read_set.ids:  # (table, id) of every read by id
        version = tx.versions.get(doc_id)
        if version is not None:
            by_table.setdefault(table, []).append((doc_id, version))
    if not by_table:
        return
    checks: list[str] = []
    args: list[Any] = []
    for table, read in by_table.items():
        args += [[d for d, _ in read], [v for _, v in read]]
        checks.append(
            f"(SELECT count(*) FROM {table_ref(table)} t JOIN unnest(${len(args) - 1}::text[], "
            f"${len(args)}::text[]) AS r(id, v) ON t.id = r.id AND t.xmin = r.v::xid) = {len(read)}"
        )
    await tx.conn.fetchval(f"SELECT _convect_unchanged({' AND '.join(checks)})", *args)


def _check_optimistic(tx: Tx) -> None:
    """An optimistic mutation may commit as one statement only if every document it read
    is one it updates (so the version check covers every read: a document only read
    could change before the commit without the statement noticing, and PostgreSQL's
    serializable checks do not see reads made outside a SERIALIZABLE transaction)."""
    batch = tx.deferred(DocumentWrites.key)
    rows = batch.rows if isinstance(batch, DocumentWrites) else {}
    for doc_id, version in tx.versions.items():
        row = rows.get(doc_id)
        if version is None or row is None or row.insert:
            raise NeedsSerializable
    if isinstance(batch, DocumentWrites):
        batch.versions = tx.versions


__all__ = ["COMMIT_SQL", "Executor", "TxGuard", "projected_writes"]
